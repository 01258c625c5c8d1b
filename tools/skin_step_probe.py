#!/usr/bin/env python3
"""Probe (issue 29): an inference-time step on skin after the style network (see
benchmarks/plans/issue29_people.md). Writes /tmp/skinstep.png (portraits: photo, then per style
the network and the network + the step) and /tmp/skinstep_crop.png (2x of one face).

    python tools/skin_step_probe.py great_wave mona     # needs $CVTOOLS_SHARED's research photos
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("CVTOOLS_SHARED", ROOT.parent / "shared"))
RESEARCH = SHARED / "data" / "photos" / "research"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchvision.transforms.functional import pil_to_tensor, to_pil_image  # noqa: E402

from cvtools.io.decode import load_image  # noqa: E402
from cvtools.style.losses import chrominance, luminance, skin_mask  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402

IDS = ["train_260081", "test_368037", "train_189003", "test_246009", "test_15062", "test_105027"]
STY = sys.argv[1:] or ["great_wave", "mona"]


def blur(x, r):
    k = 2 * r + 1
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), k, 1)


def skin_step(photo, out, amount=1.0, chroma=1.0):
    """On skin: the output's low-pass luminance replaced by the photo's (mapped by the output's
    global luminance mean/std), its chroma pulled towards the photo's; strokes (high-pass) kept."""
    h, w = photo.shape[-2:]
    r = max(2, round(min(h, w) / 60))
    m = blur(skin_mask(photo), 2 * r).clamp(0, 1) * amount
    yp, ys = luminance(photo), luminance(out)
    mapped = (yp - yp.mean()) * (ys.std() / yp.std().clamp_min(1e-3)).clamp_min(1.0) + ys.mean()
    dy = (blur(mapped, r) - blur(ys, r)) * m
    cp, cs = chrominance(photo), chrominance(out)
    dc = (blur(cp, r) - blur(cs, r)) * m * chroma
    # back to RGB: Y adds to every channel; (Cb, Cr) through JPEG's inverse
    dr = dy + 1.402 * dc[:, 1:2]
    dg = dy - 0.344136 * dc[:, 0:1] - 0.714136 * dc[:, 1:2]
    db = dy + 1.772 * dc[:, 0:1]
    return (out + torch.cat([dr, dg, db], 1)).clamp(0, 1), m


rows = []
for pid in IDS:
    p = pil_to_tensor(load_image(RESEARCH / f"bsds500_{pid}.jpg").rgb).float()[None] / 255
    row = [p]
    for s in STY:
        st = Stylizer(s, device="cpu", precision="fp32")
        o = st(p[0], tile=None)[None].float()
        o2, m = skin_step(p, o)
        row += [o, o2]
    rows.append(row)

# sheet: each row photo | s1 | s1+skin | s2 | s2+skin, each at 320 px wide
tiles = []
for row in rows:
    ims = [F.interpolate(t, size=(int(320 * t.shape[-2] / t.shape[-1]), 320), mode="area") for t in row]
    hmax = max(i.shape[-2] for i in ims)
    ims = [F.pad(i, (0, 0, 0, hmax - i.shape[-2]), value=1) for i in ims]
    tiles.append(torch.cat(ims, 3))
wmax = max(t.shape[-1] for t in tiles)
sheet = torch.cat([F.pad(t, (0, wmax - t.shape[-1]), value=1) for t in tiles], 2)
to_pil_image(sheet[0]).save("/tmp/skinstep.png")
# 2x crop of the dark-skinned old man's face
p = pil_to_tensor(load_image(RESEARCH / "bsds500_train_260081.jpg").rgb).float()[None] / 255
st = Stylizer(STY[0], device="cpu", precision="fp32")
o = st(p[0], tile=None)[None].float()
o2, _ = skin_step(p, o)
h, w = p.shape[-2:]


def crop(t):
    return F.interpolate(t[..., int(0.25 * h):int(0.6 * h), int(0.3 * w):int(0.7 * w)], scale_factor=2, mode="nearest")


to_pil_image(torch.cat([crop(p), crop(o), crop(o2)], 3)[0]).save("/tmp/skinstep_crop.png")
print("ok")
