"""Issue 29 (2026-12-06h): where the lattice's spectral spike sits in the bundled networks' outputs
on the 12 people photos, and whether it moves with the photo's JPEG grid (the photo shifted by 3 px,
rescaled 0.9x, blurred). Run from the repository root: python3 THIS mona,great_wave"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, ROOT)
SHARED = os.environ.get('CVTOOLS_SHARED', os.path.join(ROOT, '..', 'shared'))
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.records import resolve_style
from cvtools.style.stylize import Stylizer
from tools.people_quality import FLAT_STD, PEOPLE, TILE, _neighbourhood_ratio, lattice_score, luminance

torch.set_num_threads(2); torch.set_grad_enabled(False)
research = Path(SHARED + '/data/photos/research')
styles = sys.argv[1].split(',')
def spikes(y_out, y_photo):
    h, w = y_out.shape
    std = F.avg_pool2d((y_photo ** 2)[None, None], 16) - F.avg_pool2d(y_photo[None, None], 16) ** 2
    flat16 = std.clamp_min(0).sqrt()[0, 0] < FLAT_STD
    fy, fx = torch.meshgrid(torch.fft.fftfreq(TILE), torch.fft.fftfreq(TILE), indexing="ij")
    ring = (fy ** 2 + fx ** 2).sqrt() > 2.5 / TILE
    hann = torch.hann_window(TILE, periodic=False); window = hann[:, None] * hann[None, :]
    found = []
    for ty in range(0, h - TILE + 1, TILE // 2):
        for tx in range(0, w - TILE + 1, TILE // 2):
            if not bool(flat16[ty // 16:(ty + TILE) // 16, tx // 16:(tx + TILE) // 16].all()): continue
            out = _neighbourhood_ratio(y_out[ty:ty + TILE, tx:tx + TILE], window)
            own = _neighbourhood_ratio(y_photo[ty:ty + TILE, tx:tx + TILE], window)
            keep = ring & (own < 20)
            r = torch.where(keep, out, torch.zeros_like(out))
            i = int(r.argmax()); ky, kx = i // TILE, i % TILE
            ky = ky if ky <= TILE//2 else ky - TILE; kx = kx if kx <= TILE//2 else kx - TILE
            found.append((abs(ky), abs(kx), math.log10(float(r.max()))))
    return found
from collections import Counter

for name in styles:
    net = Stylizer(resolve_style(name), device='cpu', precision='fp32')
    for variant in ['orig', 'shift3', 'scale0.9', 'blur']:
        cnt = Counter(); scores = []
        for pid in PEOPLE:
            p = pil_to_tensor(load_image(research / f'bsds500_{pid}.jpg').rgb)
            if variant == 'shift3': p = p[:, 3:, 3:]
            elif variant == 'scale0.9':
                p = F.interpolate(p[None], scale_factor=0.9, mode='bilinear', antialias=True, align_corners=False)[0].clamp(0,1)
            elif variant == 'blur':
                k = torch.tensor([1., 2., 1.]); k = (k[:, None] * k[None]) / 16
                p = F.conv2d(F.pad(p[:, None], (1,1,1,1), mode='replicate'), k[None, None])[:, 0]
            out = net(p, tile=None).clamp(0, 1); out = (out * 255).round() / 255
            yo, yp = luminance(out), luminance(p)
            s = spikes(yo, yp)
            for ky, kx, v in s: cnt[(max(ky,kx), min(ky,kx))] += 1
            scores.append(lattice_score(yo, yp))
        sc = [x for x in scores if x == x]
        print(name, variant, 'lattice', round(sum(sc)/len(sc), 3), 'top spikes (k of 48):', cnt.most_common(5), flush=True)
