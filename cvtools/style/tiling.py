"""Overlapping tiles with smooth blending, for images larger than memory allows at once.

Tiles overlap by ``overlap`` pixels. Inside each overlap the two tiles' weights fall and rise as
raised-cosine ramps, and the outermost quarter of the overlap gets weight 0: that is where a
tile's output is least like the untiled one (reflection padding at the cut stands in for the
missing neighbourhood). The window is separable and the tile grid regular, so the weights'
sum is the product of two 1-D sums: each tile is normalised before it is added, and no
full-size weight map is ever allocated.
"""

from __future__ import annotations

import math
from typing import Callable, List, Tuple

import torch


def tile_starts(length: int, tile: int, overlap: int, align: int = 4) -> List[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping by ≥ ``overlap``,
    spread evenly. Starts are multiples of ``align``: the network downsamples twice by 2, and a
    tile cut at another phase would see a differently subsampled image (a visible shift in
    texture). The last tile runs to the end (it may be up to ``align - 1`` pixels longer)."""
    if tile >= length:
        return [0]
    if overlap >= tile - align:
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    n = math.ceil((length - overlap) / (tile - overlap - align))
    n = max(n, 2)
    step = (length - tile) / (n - 1)
    # Rounding down to the alignment can land two starts on one offset when the image is only a
    # few pixels longer than a tile: keep each start once (the last tile still runs to the end).
    return sorted({int(round(i * step)) // align * align for i in range(n)})


def tile_spans(length: int, tile: int, overlap: int, align: int = 4) -> List[Tuple[int, int]]:
    """(start, size) of each tile along one axis."""
    starts = tile_starts(length, tile, overlap, align)
    ends = [min(s + tile, length) for s in starts[:-1]] + [length]
    return [(s, e - s) for s, e in zip(starts, ends)]


def ramp_weights(size: int, before: int, after: int) -> torch.Tensor:
    """1-D window of one tile: ramps over the ``before``/``after`` pixels it shares with its
    neighbours (0 means an image border: full weight up to the edge)."""
    w = torch.ones(size, dtype=torch.float64)
    for overlap, flip in ((before, False), (after, True)):
        if overlap <= 0:
            continue
        dead = overlap // 4  # the tile's own border zone: outweighed completely by the neighbour
        ramp_len = max(1, overlap - 2 * dead)
        d = torch.arange(overlap, dtype=torch.float64)
        r = ((d - dead + 0.5) / ramp_len).clamp(0, 1)
        r = 0.5 - 0.5 * torch.cos(math.pi * r)
        if flip:
            w[size - overlap:] = torch.minimum(w[size - overlap:], r.flip(0))
        else:
            w[:overlap] = torch.minimum(w[:overlap], r)
    return w


def axis_windows(length: int, tile: int, overlap: int) -> List[Tuple[int, int, torch.Tensor]]:
    """(start, size, normalised 1-D weights) for every tile along one axis; weights sum to 1."""
    spans = tile_spans(length, tile, overlap)
    raw = []
    for i, (s, size) in enumerate(spans):
        before = (spans[i - 1][0] + spans[i - 1][1] - s) if i > 0 else 0
        after = (s + size - spans[i + 1][0]) if i + 1 < len(spans) else 0
        raw.append((s, size, ramp_weights(size, before, after)))
    total = torch.zeros(length, dtype=torch.float64)
    for s, n, w in raw:
        total[s:s + n] += w
    if (total <= 0).any():  # only if overlap left a gap, which tile_starts never does
        raise ValueError("tiles leave pixels uncovered")
    return [(s, n, (w / total[s:s + n]).float()) for s, n, w in raw]


def run_tiled(fn: Callable[[int, int, int, int], torch.Tensor], height: int, width: int, tile: int,
              overlap: int, out: torch.Tensor, progress: Callable[[], None] = None) -> torch.Tensor:
    """Blend ``fn(y0, x0, h, w)`` (a C×h×w result for that region, any device) into ``out``
    (C×H×W, float32, zeroed, CPU) and return it."""
    rows = axis_windows(height, tile, overlap)
    cols = axis_windows(width, tile, overlap)
    for y0, th, wy in rows:
        for x0, tw, wx in cols:
            piece = fn(y0, x0, th, tw).float().cpu()
            out[:, y0:y0 + th, x0:x0 + tw] += piece * wy.view(1, -1, 1) * wx.view(1, 1, -1)
            if progress:
                progress()
    return out


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))
