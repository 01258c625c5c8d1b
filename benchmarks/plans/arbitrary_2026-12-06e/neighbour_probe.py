"""Does the encoder extrapolate badly to unseen paintings (issue 28)? For each painting of
tools/arbitrary_quality.py: its own encoding against the encoding of the training painting nearest to
it in the encoder's input statistics (standardised over the 176 training paintings, cosine), and the
mean of the two; Lite2 on the 12 quality photos (the painting at its style size). CPU."""
import json
import statistics
import sys
from pathlib import Path

sys.path[:0] = ["/work/main", "/work/main/tools"]
import torch  # noqa: E402
from arbitrary_quality import BUNDLED, UNSEEN_HELD_OUT, UNSEEN_STYLES, painting_file, pick_photos  # noqa: E402

from cvtools.backbones import load_backbone  # noqa: E402
from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style.arbitrary import ArbitraryStylizer, bundled_record, channel_statistics, encoder_input  # noqa: E402
from cvtools.style.losses import gram_distances, style_target  # noqa: E402
from cvtools.style.records import bundled_records  # noqa: E402
from cvtools.style.stylize import resize_long_side  # noqa: E402
from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS  # noqa: E402

torch.set_num_threads(2)
shared = Path("/work/shared")
arb = ArbitraryStylizer(device="cpu")
cfg = arb.config
held = set(bundled_record()["recipe"]["holdout"])
train = sorted(p for p in (shared / "data/paintings").glob("*.jpg") if p.stem not in held)


@torch.no_grad()
def stats_and_embedding(img):
    x = encoder_input(pil_to_tensor(img)[None], cfg)
    feats = arb.backbone.features(x, cfg.encoder_layers)
    return torch.cat([channel_statistics(feats[k]) for k in cfg.encoder_layers], 1)[0], arb.net.encoder(feats)[0]


S, E = [], []
for p in train:
    s, e = stats_and_embedding(load_image(p).rgb)
    S.append(s)
    E.append(e)
S, E = torch.stack(S), torch.stack(E)
mu, sd = S.mean(0), S.std(0).clamp_min(1e-6)
Z = torch.nn.functional.normalize((S - mu) / sd, dim=1)
photos = pick_photos(shared)
images = [pil_to_tensor(load_image(p).rgb) for _, p, _ in photos]
judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
records = {r.name: r for r in bundled_records()}
out = {}
for name in BUNDLED + UNSEEN_STYLES + UNSEEN_HELD_OUT:
    img = load_image(painting_file(shared, name)).rgb
    size = int(records[name].recipe.get("style_size", 512)) if name in records else 512
    tgt = style_target(judge, pil_to_tensor(resize_long_side(img, size)), INDEPENDENT_LAYERS)
    s, e = stats_and_embedding(img)
    z = torch.nn.functional.normalize((s - mu) / sd, dim=0)
    sim = Z @ z
    k = int(sim.argmax())
    variants = {"own": e, "nearest": E[k], "mean": (e + E[k]) / 2}
    row = {"nearest_painting": train[k].stem, "similarity": round(float(sim[k]), 3)}
    for label, emb in variants.items():
        d = []
        with torch.no_grad():
            for x in images:
                y = (arb.stylize(x, emb.float()).clamp(0, 1) * 255).round() / 255
                f = judge.features(y[None], INDEPENDENT_LAYERS)
                d.append(float(torch.stack(list(gram_distances(f, tgt).values())).mean()))
        row[label] = statistics.mean(d)
    out[name] = row
    print(name, {k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in row.items()}, flush=True)
Path("/tmp/neighbour_probe.json").write_text(json.dumps(out, indent=1))
