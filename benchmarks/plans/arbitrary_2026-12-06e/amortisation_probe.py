"""Amortisation gap: on paintings the network TRAINED on vs never saw, how much does --fit gain
over the one pass (Lite2, the 12 quality photos)? Big gain on training paintings too -> the
encoder underfits (info/capacity); small on train, big on unseen -> generalisation."""
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, "/work/main")
import torch

from cvtools.backbones import load_backbone
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.arbitrary import ArbitraryStylizer, bundled_record
from cvtools.style.arbitrary_fit import StyleFitter
from cvtools.style.losses import gram_distances, style_target
from cvtools.style.stylize import resize_long_side
from tools.arbitrary_quality import painting_file, pick_photos
from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS

torch.set_num_threads(2)
shared = Path("/work/shared")
photos = pick_photos(shared)
images = {s: pil_to_tensor(load_image(p).rgb) for s, p, _ in photos}
fit_on = [images[s] for s, _, _ in photos[:4]]
judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
arb = ArbitraryStylizer(device="cpu"); fitter = StyleFitter(arb)
rec = bundled_record()
held = set(rec.get("holdout", []) or rec.get("recipe", {}).get("holdout", []))
allp = sorted(p for p in (shared / "data/paintings").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
train = [p for p in allp if p.stem not in held and p.name not in held]
print("held", len(held), "train", len(train), flush=True)
random.Random(7).shuffle(train)
sets = {"train": train[:4], "unseen": [painting_file(shared, n) for n in ("monet_grand_canal", "paul_gauguin_arlesiennes_mistral", "constant_troyon_pasture_in_normandy")]}
q = lambda y: (y.clamp(0, 1) * 255).round() / 255
out = {}
for kind, paths in sets.items():
    for p in paths:
        img = load_image(p).rgb
        art = pil_to_tensor(img)
        tgt = style_target(judge, pil_to_tensor(resize_long_side(img, 512)), INDEPENDENT_LAYERS)
        def d(y):
            with torch.no_grad():
                f = judge.features(y.float().unsqueeze(0), INDEPENDENT_LAYERS)
                return float(torch.stack(list(gram_distances(f, tgt).values())).mean())
        e = arb.encode(art)
        t0 = time.time(); params = fitter.fit(art, fit_on, steps=100); tf = time.time() - t0
        rows = {"photo": [], "one": [], "fit": []}
        with torch.no_grad():
            for s, _, _ in photos:
                x = images[s]
                rows["photo"].append(d(x)); rows["one"].append(d(q(arb.stylize(x, e)))); rows["fit"].append(d(q(arb.stylize(x, params))))
        m = {k: statistics.mean(v) for k, v in rows.items()}
        out[p.stem] = dict(kind=kind, **m, ratio=m["fit"] / m["one"], fit_s=tf)
        print(kind, p.stem[:40], {k: round(v, 3) for k, v in out[p.stem].items() if k != "kind"}, flush=True)
for kind in [k for k in sets if sets[k]]:
    r = [v["ratio"] for v in out.values() if v["kind"] == kind]
    print(kind, "fit/one mean", round(statistics.mean(r), 3), [round(x, 3) for x in r])
Path("/tmp/amort/out.json").write_text(json.dumps(out, indent=1))
