"""Does the any-painting network's own loss see what the independent Lite2 yardstick sees? (issue #28)

For each bundled painting, on 16 crops of the 8 quality photos it is not fitted on: the style term
(Lite0 + Lite1, SWAG Grams + channel statistics, the painting at 512 px) and the content term of
the network's training loss, for the one-pass picture, the `--fit` picture (100 steps on the first
4 photos) and the trained per-painting network's picture. Run from the repository root:

    CVTOOLS_SHARED=../shared python3 benchmarks/arbitrary/loss_rank.py
"""
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style.arbitrary import ArbitraryStylizer  # noqa: E402
from cvtools.style.arbitrary_fit import FIT_CROP, StyleFitter, _crop_pool  # noqa: E402
from cvtools.style.losses import content_distance  # noqa: E402
from cvtools.style.records import bundled_records  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402
from tools.arbitrary_quality import BUNDLED, painting_file, pick_photos  # noqa: E402

torch.set_num_threads(2)
shared = Path(os.environ.get("CVTOOLS_SHARED", "../shared"))
photos = pick_photos(shared)
images = {s: pil_to_tensor(load_image(p).rgb) for s, p, _ in photos}
records = {r.name: r for r in bundled_records()}
arb = ArbitraryStylizer(device="cpu"); fitter = StyleFitter(arb)
pool = _crop_pool([images[s] for s, _, _ in photos[4:]], FIT_CROP, per_photo=2)  # photos NOT fitted on
x = pool.float().div(255)
def parts(y, target):
    n = x.shape[0]
    expand = lambda f: {k: v.expand(n, *v.shape[1:]) for k, v in f.items()}
    feats = fitter.backbone.features(y, list(dict.fromkeys(fitter.style_layers + [fitter.content_layer])))
    style = fitter.distance(feats, expand(target[0]), fitter.style_layers)
    for (bb, layers), t in zip(fitter.extra, target[1:]):
        style = style + fitter.distance(bb.features(y, layers), expand(t), layers)
    style = float(style.mean()) / (1 + len(fitter.extra))
    content = float(content_distance(feats[fitter.content_layer], fitter.backbone.features(x, [fitter.content_layer])[fitter.content_layer]).mean())
    return round(style, 5), round(content, 3)
for name in BUNDLED:
    art = pil_to_tensor(load_image(painting_file(shared, name)).rgb)
    target = fitter._painting_features(art)
    emb = arb.encode(art)
    with torch.enable_grad():
        fitted = fitter.fit(art, [images[s] for s, _, _ in photos[:4]], steps=100, start=emb)
    trained = Stylizer(records[name], device="cpu", precision="fp32")
    with torch.no_grad():
        one = arb.net.transformer(x, arb.style_params(emb).expand(x.shape[0], -1))
        fit = arb.net.transformer(x, fitted[None].expand(x.shape[0], -1))
        tr = torch.stack([trained(xi, tile=None) for xi in x])
        print(name, "style, content  one-pass", parts(one, target), " fitted", parts(fit, target), " trained", parts(tr, target), flush=True)
