"""Issue 29 (2026-12-06h): the three flat tiles (one per photo) where a network's lattice is strongest
on the 12 people photos, 5x and contrast-stretched, for the photo and each weights folder:
python3 THIS STYLE bundled,/tmp/ft/TAG OUT.png (research photos: for looking only, never commit)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, ROOT)
SHARED = os.environ.get('CVTOOLS_SHARED', os.path.join(ROOT, '..', 'shared'))
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.records import read_record, resolve_style
from cvtools.style.stylize import Stylizer
from tools.people_quality import FLAT_STD, PEOPLE, TILE, _neighbourhood_ratio, luminance

torch.set_num_threads(1); torch.set_grad_enabled(False)
style = sys.argv[1]; dirs = sys.argv[2].split(','); out = sys.argv[3]
nets = [Stylizer(resolve_style(style) if d == 'bundled' else read_record(f'{d}/{style}.json'), device='cpu', precision='fp32') for d in dirs]
hann = torch.hann_window(TILE, periodic=False); window = hann[:, None] * hann[None, :]
fy, fx = torch.meshgrid(torch.fft.fftfreq(TILE), torch.fft.fftfreq(TILE), indexing="ij")
ring = (fy ** 2 + fx ** 2).sqrt() > 2.5 / TILE
cands = []
for pid in PEOPLE:
    p = pil_to_tensor(load_image(SHARED + f'/data/photos/research/bsds500_{pid}.jpg').rgb)
    o = nets[0](p, tile=None).clamp(0, 1)
    yp, yo = luminance(p), luminance(o); h, w = yp.shape
    std = F.avg_pool2d((yp ** 2)[None, None], 16) - F.avg_pool2d(yp[None, None], 16) ** 2
    flat16 = std.clamp_min(0).sqrt()[0, 0] < FLAT_STD
    for ty in range(0, h - TILE + 1, TILE // 2):
        for tx in range(0, w - TILE + 1, TILE // 2):
            if not bool(flat16[ty // 16:(ty + TILE) // 16, tx // 16:(tx + TILE) // 16].all()): continue
            r = _neighbourhood_ratio(yo[ty:ty + TILE, tx:tx + TILE], window)
            cands.append((math.log10(float(r[ring].max())), pid, ty, tx))
cands.sort(reverse=True)
seen, picks = set(), []
for c in cands:
    if c[1] not in seen: seen.add(c[1]); picks.append(c)
    if len(picks) == 3: break
rows = []
for score, pid, ty, tx in picks:
    p = pil_to_tensor(load_image(SHARED + f'/data/photos/research/bsds500_{pid}.jpg').rgb)
    row = []
    for c in [p] + [n(p, tile=None).clamp(0, 1) for n in nets]:
        crop = c[:, ty:ty + TILE, tx:tx + TILE]
        crop = (crop - crop.mean((1, 2), keepdim=True)) / (crop.std() * 5) + 0.5
        a = (crop.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        row.append(Image.fromarray(a).resize((TILE * 5, TILE * 5), Image.NEAREST))
    rows.append(row); print(pid, ty, tx, round(score, 2))
S = TILE * 5 + 4
W = Image.new('RGB', (S * len(rows[0]), S * len(rows)), 'white')
for i, row in enumerate(rows):
    for j, im in enumerate(row): W.paste(im, (j * S, i * S))
W.save(out); print(out, W.size)
