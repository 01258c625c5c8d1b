"""issue 29, 2026-12-06d probe: histogram-preserving blending for --stable's carry mode. carry.keep_contrast
restores a blend's stroke detail to the energy the two pictures had (variance-preserving blending); averaging
strokes also makes their detail Gaussian (less sparse), which the variance cannot see. Here, after it, the
blended pixels' detail (the image minus its CONTRAST_LOW box mean) is remapped, per channel, to the sorted
detail values of the network's own output at the same pixels (Heitz & Neyret 2018's histogram-preserving
blending, global over the blended region). Runs tools/video_flicker.py with it:
    python histogram_blend.py [--min-weight W] -- <video_flicker args>"""
import os
import runpy
import sys

import torch

import cvtools.video.carry as carry
from cvtools.video.stability import box_mean

split = sys.argv.index("--")
MIN_WEIGHT = float(sys.argv[sys.argv.index("--min-weight") + 1]) if "--min-weight" in sys.argv[:split] else 0.05
#: 0: one remap over the whole blended region; T: one per T x T tile (env HIST_TILE)
TILE = int(os.environ.get("HIST_TILE", "0"))


def tile_match(d_res, d_out, mask, t):
    """Per t x t tile and channel, the masked pixels' d_res values replaced by the masked d_out values of
    the same tile, rank for rank (both have the same count: the mask is shared)."""
    c, h, w = d_res.shape
    ph, pw = (-h) % t, (-w) % t
    pad = lambda x, v: torch.nn.functional.pad(x, (0, pw, 0, ph), value=v)  # noqa: E731
    m = pad(mask[None].float(), 0.0).bool()
    H, W = h + ph, w + pw
    def tiles(x):
        return x.reshape(x.shape[0], H // t, t, W // t, t).permute(0, 1, 3, 2, 4).reshape(x.shape[0], -1, t * t)
    inf = float("inf")
    r = tiles(torch.where(m, pad(d_res, 0.0), torch.full_like(pad(d_res, 0.0), inf)))
    o = tiles(torch.where(m, pad(d_out, 0.0), torch.full_like(pad(d_out, 0.0), inf)))
    order = torch.argsort(r, dim=-1)
    target = torch.sort(o, dim=-1).values
    out = torch.empty_like(r).scatter_(-1, order, target)
    out = out.reshape(c, H // t, W // t, t, t).permute(0, 1, 3, 2, 4).reshape(c, H, W)[:, :h, :w]
    return torch.where(mask[None], out, d_res)
real = carry.keep_contrast


def keep_contrast(out, carried, weight, most=None, low=None, window=carry.REGION, skip=None):
    result = real(out, carried, weight, most, low, window, skip)
    low = carry.CONTRAST_LOW if low is None else low
    mask = (weight > MIN_WEIGHT) if skip is None else (weight > MIN_WEIGHT) & ~skip
    mask = mask[0, 0]
    if int(mask.sum()) < 64:
        return result
    d_res = result - box_mean(result, low)
    d_out = out - box_mean(out, low)
    if TILE:
        new = tile_match(d_res[0], d_out[0], mask, TILE)[None]
        return (result - d_res + new).clamp(0, 1)
    new = d_res.clone()
    for ch in range(result.shape[1]):
        v = d_res[0, ch][mask]
        order = torch.argsort(v)
        target = torch.sort(d_out[0, ch][mask]).values
        remapped = torch.empty_like(v)
        remapped[order] = target
        plane = new[0, ch]
        plane[mask] = remapped
    return (result - d_res + new).clamp(0, 1)


carry.keep_contrast = keep_contrast
here = os.path.dirname(os.path.abspath(__file__))
tools = os.path.normpath(os.path.join(here, "../../../tools"))
sys.path.insert(0, tools)
sys.argv = [os.path.join(tools, "video_flicker.py")] + sys.argv[split + 1:]
runpy.run_path(sys.argv[0], run_name="__main__")
