"""Which held-out paintings do the synthetic kinds bring training data near (issue 28)? For each
painting of tools/arbitrary_quality.py, the cosine similarity of its encoder-input statistics
(Lite0 channel means and deviations at the encoder's layers, standardised over the training
paintings) to the nearest training painting, and to the nearest synthetic render of one (each
kind of cvtools.style.synthetic_paintings, rendered from every training painting). All at the
training crops' scale: a 256-px centre crop of the painting read at a 512-px long side. CPU, the
shipped network's encoder trunk; one render per painting and kind (seed 0)."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = ["/work/main", "/work/main/tools"]
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from arbitrary_quality import BUNDLED, UNSEEN_HELD_OUT, UNSEEN_STYLES, painting_file  # noqa: E402

from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style import synthetic_paintings as sp  # noqa: E402
from cvtools.style.arbitrary import ArbitraryStylizer, bundled_record, channel_statistics  # noqa: E402
from cvtools.style.stylize import resize_long_side  # noqa: E402

torch.set_num_threads(2)
shared = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared")
arb = ArbitraryStylizer(device="cpu")
cfg = arb.config
held = set(bundled_record()["recipe"]["holdout"])
train = sorted(p for p in (shared / "data/paintings").glob("*.jpg") if p.stem not in held)


def crop(path):
    x = pil_to_tensor(resize_long_side(load_image(path).rgb, 512))
    h, w = x.shape[-2:]
    s = min(256, h, w)
    x = x[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return F.interpolate(x[None], size=(256, 256), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


@torch.no_grad()
def stats(batch):
    feats = arb.backbone.features(batch, cfg.encoder_layers)
    return torch.cat([channel_statistics(feats[k]) for k in cfg.encoder_layers], 1)


crops = torch.stack([crop(p) for p in train])
real = torch.cat([stats(crops[i:i + 16]) for i in range(0, len(crops), 16)])
mu, sd = real.mean(0), real.std(0).clamp_min(1e-6)


def unit(s):
    return F.normalize((s - mu) / sd, dim=-1)


banks = {"real": unit(real)}
for kind in sp.KINDS:
    rendered = torch.cat([sp.synthesize(crops[i:i + 16], [kind] * len(crops[i:i + 16]), np.random.default_rng(i))
                          for i in range(0, len(crops), 16)])
    banks[kind] = unit(torch.cat([stats(rendered[i:i + 16]) for i in range(0, len(rendered), 16)]))
    print("rendered", kind, flush=True)
out = {}
for name in BUNDLED + UNSEEN_STYLES + UNSEEN_HELD_OUT:
    z = unit(stats(crop(painting_file(shared, name))[None])[0])
    row = {k: round(float((bank @ z).max()), 3) for k, bank in banks.items()}
    out[name] = row
    print(name, row, flush=True)
Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/coverage_probe.json").write_text(json.dumps(out, indent=1))
