"""Gradients of large images tile by tile, with memory bounded by the tile size.

Each tile is run with a margin of surrounding context, and only the gradient of its core is
kept, so the network sees real neighbours across tile borders instead of padding. The tile grid
moves by a random offset at every step, so whatever error remains at a border lands somewhere
else each time and never builds up into a seam. An axis that fits in one tile is not split: a
whole image that fits one tile gives exactly the untiled gradient.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

#: Context around each tile's core, in input pixels: three strides of the deepest usual layers
#: (32). Cosine of the tiled to the whole gradient of EfficientNet-Lite0's default dream layers
#: (blocks.10 + blocks.12) at 342x512 and 343x513, 192- and 256-px tiles, 13 random grid offsets
#: over rocket, chelsea, coffee: margin 64 0.978-0.998, 96 0.995-0.9999, 128 0.999-1.0.
DEFAULT_MARGIN = 96
#: Smallest tile auto-tiling and out-of-memory fallbacks go down to.
MIN_TILE = 128

Span = Tuple[int, int, int, int]  # core start, core end, context start, context end


def tile_spans(n: int, tile: int, offset: int = 0, margin: int = DEFAULT_MARGIN, align: int = 1) -> List[Span]:
    """Split an axis of length ``n`` into cores of at most ``tile`` (grid shifted by ``offset``),
    each with up to ``margin`` pixels of context on both sides.

    ``align`` (the network's total stride) moves each context start down to a multiple of it and
    lengthens the context until its length is congruent to ``n`` modulo ``align``. Both matter
    with TensorFlow-"same" padding (EfficientNet-Lite): a stride-2 layer puts its top/left pad
    by the parity of its input's length, so an input of length L sees the grid of sample centres
    shifted by one pixel from an input of length n unless ceil(L / 2^k) and ceil(n / 2^k) have
    the same parity at every stride-2 layer k, which for all k < log2(align) is exactly
    L = n (mod align). With both, every tile sees the stride grid where the whole image has it,
    so neighbouring tiles' gradients agree in phase instead of jumping at borders (measured on
    a 342x512 input with 192-px tiles: cosine to the whole gradient 0.64 with lengths rounded
    to multiples of 32, 0.999 congruent to n). A context that reaches the image's end has
    length n - start, congruent by construction.
    Core slivers shorter than the margin are merged into their neighbour (they would cost a
    whole forward pass for a few pixels).
    """
    if n <= tile:
        return [(0, n, 0, n)]
    offset %= tile
    edges = [0] + list(range(tile - offset if offset else tile, n, tile)) + [n]
    edges = sorted(set(edges))
    cores = [[a, b] for a, b in zip(edges, edges[1:])]
    if len(cores) > 1 and cores[0][1] - cores[0][0] < margin:
        cores[1][0] = cores[0][0]
        cores.pop(0)
    if len(cores) > 1 and cores[-1][1] - cores[-1][0] < margin:
        cores[-2][1] = cores[-1][1]
        cores.pop()
    spans = []
    for a, b in cores:
        start = max(0, (a - margin) // align * align)
        # the shortest length >= core + margin that is congruent to n (mod align)
        need = b + margin - start
        length = need + (n - need) % align
        spans.append((a, b, start, min(n, start + length)))
    return spans


def tiled_gradient(x, gradient: Callable, tile: int, offset: Tuple[int, int] = (0, 0),
                   margin: int = DEFAULT_MARGIN, align: int = 1):
    """``gradient(crop) -> d objective / d crop`` applied tile by tile over ``x`` (N×C×H×W)."""
    import torch

    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for ys, ye, ya, yb in tile_spans(h, tile, offset[0], margin, align):
        for xs, xe, xa, xb in tile_spans(w, tile, offset[1], margin, align):
            g = gradient(x[:, :, ya:yb, xa:xb])
            out[:, :, ys:ye, xs:xe] = g[:, :, ys - ya:ye - ya, xs - xa:xe - xa]
    return out


# ----------------------------------------------------------------------------- memory planning


def bytes_per_pixel(backbone, layers) -> float:
    """Memory one input pixel costs in a forward+backward pass up to ``layers``.

    Counted from the distinct activation tensors the network produces up to the deepest layer,
    probed once at a small size in the backbone's own dtype and device (in-place activations and
    folded BatchNorms share storage, so storages are counted, not module outputs). Measured peak
    on the CPU for EfficientNet-Lite0: 2.0-2.1x those bytes (blocks.4, blocks.10+12, head, at 512
    and 1024 px), so 2.5x is used, plus the float32 image, its rolled copy and gradients.
    """
    import torch

    key = tuple(sorted(layers))
    cache = backbone.__dict__.setdefault("_dream_bpp", {})
    if key in cache:
        return cache[key]
    size = 128
    storages = {}
    keep = []  # hold every output so no storage is freed and its address reused mid-count

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            keep.append(output)
            storages[output.untyped_storage().data_ptr()] = output.untyped_storage().nbytes()

    handles = [m.register_forward_hook(hook) for m in backbone.model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            backbone.features(torch.zeros(1, 3, size, size), list(layers))
    finally:
        for h in handles:
            h.remove()
    cache[key] = sum(storages.values()) / (size * size) * 2.5 + 32
    return cache[key]


def memory_budget(device) -> int:
    """Bytes a dream step may use: half the free GPU memory, or on the CPU 40% of the
    available RAM up to 4 GiB (large images are tiled long before a laptop starts swapping)."""
    from cvtools.device import memory_budget as budget

    return budget(device, gpu_fraction=0.5, cpu_fraction=0.4, cpu_cap=4 << 30)


def auto_tile(pixels_h: int, pixels_w: int, bpp: float, budget: int, margin: int = DEFAULT_MARGIN) -> Optional[int]:
    """None when the whole image fits the budget, else the largest tile (multiple of 64) that does."""
    if pixels_h * pixels_w * bpp <= budget:
        return None
    side = int((budget / bpp) ** 0.5) - 2 * margin
    return max(MIN_TILE, side // 64 * 64)
