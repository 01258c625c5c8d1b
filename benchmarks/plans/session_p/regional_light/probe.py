"""Session p's variant of session l's keep_light probe: the photo's *regional* light given back as a gain, not a band.

regional_light(out, photo, sigma, alpha): the output's luminance multiplied by (G(Y_photo) / G(Y_out))^alpha, G a
Gaussian of sigma px (far above the strokes' scale), the gain applied to all three channels (chroma and every
local ratio, i.e. the strokes, kept): the picture's exposure region by region moves towards the photo's.

Below, session l's original docstring.

Probe (session l, 2026-12-07): does restoring the photo's mid-scale light after the network keep light
subjects light (the polar bear every bundled style paints as a dark silhouette) at what Lite2 cost?

keep_light(out, photo): the luminance band between Gaussian sigma s1 and s2 (subject against its surroundings,
above the strokes' scale) taken from the photo where the output departs from it by more than t (soft threshold),
added to all three channels (the chroma stays the network's). Variants (s1, s2, t) on the 12 people photos + the
polar bear (subject numbers, Lite2 on them) and the 20 held-out photos (Lite2, paired)."""
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
from people_quality import PEOPLE, luminance, measure  # noqa: E402
from style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS, _blur, held_out_photos, painting_for  # noqa: E402

from cvtools.backbones import load_backbone  # noqa: E402
from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style.losses import gram_distances, style_target  # noqa: E402
from cvtools.style.records import resolve_style  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402

SHARED = Path(sys.argv[1])
OUT = Path(sys.argv[2])
STYLES = sys.argv[3].split(",") if len(sys.argv) > 3 else ["mona", "starry_night", "great_wave", "scream", "composition_vii", "grande_jatte"]
VARIANTS = {"none": None, "g16 a0.5": (16, 0.5), "g16 a1": (16, 1.0), "g32 a0.5": (32, 0.5), "g32 a1": (32, 1.0)}
SUBJECTS = dict(PEOPLE, test_100007=("polar bear on snow (light on light)", [(0.21, 0.42, 0.5, 0.67)]))


def keep_light(out, photo, sigma, alpha):
    yp, yo = luminance(photo)[None, None], luminance(out)[None, None]
    gain = ((_blur(yp, sigma) + 0.02) / (_blur(yo, sigma) + 0.02)).pow(alpha)
    return (out * gain[0]).clamp(0, 1)


def main():
    torch.set_num_threads(2)
    torch.set_grad_enabled(False)
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    research = SHARED / "data" / "photos" / "research"
    people = {pid: pil_to_tensor(load_image(research / f"bsds500_{pid}.jpg").rgb) for pid in SUBJECTS}
    held = [pil_to_tensor(load_image(p).rgb) for p in held_out_photos(SHARED)]
    rows = []
    for style in STYLES:
        record = resolve_style(style)
        target = style_target(judge, pil_to_tensor(painting_for(record, SHARED)), INDEPENDENT_LAYERS)
        net = Stylizer(record, device="cpu", precision="fp32")

        def dist(x):
            return float(torch.stack(list(gram_distances(judge.features(x[None], INDEPENDENT_LAYERS), target).values())).mean())

        for group, photos in (("people", people.items()), ("held", enumerate(held))):
            for pid, photo in photos:
                out = net(photo, tile=None).clamp(0, 1)
                for name, v in VARIANTS.items():
                    o = out if v is None else keep_light(out, photo, *v)
                    o = (o * 255).round() / 255
                    row = dict(style=style, variant=name, group=group, photo=str(pid), style_distance=dist(o))
                    if group == "people":
                        row.update(measure(photo, o, SUBJECTS[pid][1]))
                        row.pop("lattice"), row.pop("lattice_photo")
                        if pid == "test_100007":
                            from torchvision.transforms.functional import to_pil_image
                            to_pil_image(o).save(OUT / f"bear_{style}_{name.replace(' ', '_')}.png")
                    rows.append(row)
        print(style, "done", flush=True)
        (OUT / "rows.json").write_text(json.dumps(rows, indent=0))


main()
