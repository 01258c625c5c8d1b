"""Issue 29 (2026-12-06h): the strongest spectral spikes of the paintings themselves at their
networks' style size (48-px tiles, the people-quality lattice measure). Run from the repository root."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, ROOT)
SHARED = os.environ.get('CVTOOLS_SHARED', os.path.join(ROOT, '..', 'shared'))
import math
import sys
from collections import Counter

import torch

from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.ops import resize_long_side
from tools.people_quality import TILE, _neighbourhood_ratio, luminance

hann = torch.hann_window(TILE, periodic=False); window = hann[:, None] * hann[None, :]
fy, fx = torch.meshgrid(torch.fft.fftfreq(TILE), torch.fft.fftfreq(TILE), indexing="ij")
ring = (fy ** 2 + fx ** 2).sqrt() > 2.5 / TILE
for name, size in [('mona',512),('great_wave',512),('scream',512),('starry_night',512)]:
    im = load_image(SHARED + f'/styles/{name}.jpg').rgb
    p = pil_to_tensor(resize_long_side(im, size))
    y = luminance(p); h, w = y.shape
    cnt = Counter(); vals=[]
    for ty in range(0, h - TILE + 1, TILE // 2):
        for tx in range(0, w - TILE + 1, TILE // 2):
            r = _neighbourhood_ratio(y[ty:ty+TILE, tx:tx+TILE], window)
            r = torch.where(ring, r, torch.zeros_like(r))
            i = int(r.argmax()); ky, kx = i // TILE, i % TILE
            ky = ky if ky <= TILE//2 else ky - TILE; kx = kx if kx <= TILE//2 else kx - TILE
            cnt[(max(abs(ky),abs(kx)), min(abs(ky),abs(kx)))] += 1; vals.append(math.log10(float(r.max())))
    print(name, p.shape, 'mean spike', round(sum(vals)/len(vals),2), cnt.most_common(6))
