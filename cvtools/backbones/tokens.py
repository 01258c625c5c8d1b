"""Layer outputs that are feature maps in another layout, seen as N×C×h×w.

Every effect that uses a layer (the CAM family, dream, style, feature visualisation) expects an
N×C×h×w map, but transformers produce other layouts:

- a token sequence N×T×C (ViT, DeiT, timm's ViTs): ``T = extra + h*w`` where the ``extra``
  leading tokens (class, distillation, register tokens) belong to no position. :class:`TokenGrid`
  drops them and lays the ``h*w`` patch tokens out on the patch grid;
- a channels-last map N×h×w×C (torchvision's Swin stages and ConvNeXt's block internals, timm's
  Swin): :class:`ChannelsLast` permutes it.

A view is applied where a layer is tapped (:meth:`cvtools.backbones.base.Backbone.tap`) and, for
methods that hook a module themselves and may replace its output (Grad-CAM swaps in a leaf
tensor), through :class:`MapHookModule` (what ``Backbone.module(layer)`` returns for such a layer):
the hook sees the map, and a map it returns is put back into the layer's own layout (the extra
tokens re-attached), so the network runs on and gradients flow through the reshape both ways.

:func:`view_for` decides, from one probe at a known input size, which view (if any) makes a
layer's output a map.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import nn

#: At most this many leading tokens that are not patches (class + distillation + registers: timm's
#: ViTs have up to 1 + 1 + 16).
MAX_EXTRA_TOKENS = 18


class ChannelsLast:
    """N×h×w×C <-> N×C×h×w."""

    kind = "channels-last map"

    def to_map(self, out: torch.Tensor) -> torch.Tensor:
        return out.permute(0, 3, 1, 2)

    def from_map(self, grid: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return grid.permute(0, 2, 3, 1)

    def describe(self) -> str:
        return "N×h×w×C permuted to N×C×h×w"


class TokenGrid:
    """N×(extra + h·w)×C tokens <-> an N×C×h×w map of the patch tokens.

    ``stride`` is the input pixels per patch measured at the probe; ``input_size`` returns the
    (H, W) of the network's current input, so the grid follows the input where the network
    accepts several sizes (a fixed-size network always sees its one size).
    """

    kind = "token sequence"

    def __init__(self, extra: int, stride: Tuple[float, float], input_size: Callable[[], Tuple[int, int]]):
        self.extra = extra
        self.stride = stride
        self.input_size = input_size

    def grid(self, tokens: int) -> Tuple[int, int]:
        """(h, w) of the patch grid for ``tokens`` tokens at the current input size."""
        height, width = self.input_size()
        patches = tokens - self.extra
        for h in {math.floor(height / self.stride[0]), math.ceil(height / self.stride[0])}:
            for w in {math.floor(width / self.stride[1]), math.ceil(width / self.stride[1])}:
                if h * w == patches:
                    return h, w
        raise ValueError(f"{tokens} tokens do not make a patch grid at {height}x{width} px "
                         f"({self.extra} extra tokens, {self.stride[0]:g} px per patch)")

    def to_map(self, out: torch.Tensor) -> torch.Tensor:
        n, t, c = out.shape
        h, w = self.grid(t)
        return out[:, self.extra:].transpose(1, 2).reshape(n, c, h, w)

    def from_map(self, grid: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        tokens = grid.flatten(2).transpose(1, 2)
        if not self.extra:
            return tokens
        # A hook may hand back several copies of one image's map (Ablation-CAM does): the extra
        # tokens are repeated to match.
        extra = like[:, :self.extra].expand(grid.shape[0], -1, -1)
        return torch.cat([extra.to(tokens.dtype), tokens], dim=1)

    def describe(self) -> str:
        dropped = f", {self.extra} leading token{'s' if self.extra != 1 else ''} dropped" if self.extra else ""
        return f"N×T×C tokens on the patch grid{dropped}"


def _spatial(h: int, w: int, height: int, width: int) -> bool:
    """Could (h, w) be a feature map's size for an input of height×width (within rounding)?"""
    return 1 <= h <= height and 1 <= w <= width and abs(h * width - w * height) <= max(height, width)


def _token_grid(tokens: int, height: int, width: int, seen: Sequence[Tuple[int, int]]):
    """(extra, h, w) for a sequence of ``tokens``, or None: the grid of a map seen earlier in the
    network (the patch embedding's) when the count fits it, else the fewest extra tokens that
    leave a grid of the input's aspect ratio."""
    fits = [(tokens - h * w, h, w) for h, w in seen if 0 <= tokens - h * w <= MAX_EXTRA_TOKENS and h * w > 1]
    if fits:
        return min(fits)
    for extra in range(min(MAX_EXTRA_TOKENS, tokens - 2) + 1):
        patches = tokens - extra
        h = max(1, round(math.sqrt(patches * height / width)))
        for hh in (h, h - 1, h + 1):
            # at least a 2×2 grid: a few tokens are rarely patches
            if hh >= 1 and patches % hh == 0 and patches >= 4 and _spatial(hh, patches // hh, height, width):
                return extra, hh, patches // hh
    return None


def view_for(shape: Sequence[int], batch: int, input_size: Tuple[int, int], seen_grids: Sequence[Tuple[int, int]],
             current_size: Callable[[], Tuple[int, int]], other=None):
    """How a layer's output of ``shape`` (probed with ``batch`` images at ``input_size``) reads as
    a map: ``("map", None)`` already N×C×h×w, ``("map", view)`` through a view, or
    ``(kind, None)`` for "vector" (N×C), "tokens" (a sequence without a grid) and "other".
    ``seen_grids``: the (h, w) of the maps before it, in which a patch grid is looked for;
    ``other``: (its shape, the input size) at a second, non-square size, when the network runs
    there, which settles N×C×h×w against N×h×w×C where the first size cannot (C = h = w)."""
    height, width = input_size
    if len(shape) < 2 or shape[0] != batch:
        return "other", None
    if len(shape) == 2:
        return "vector", None
    if len(shape) == 4:
        first, last = _spatial(shape[2], shape[3], height, width), _spatial(shape[1], shape[2], height, width)
        if first and last and other is not None and len(other[0]) == 4:
            (o, (oh, ow)) = other
            first = _spatial(o[2], o[3], oh, ow) or not _spatial(o[1], o[2], oh, ow)
        if first:
            return "map", None
        if last:
            return "map", ChannelsLast()
        return "other", None
    if len(shape) == 3:
        found = _token_grid(shape[1], height, width, seen_grids)
        if found is None:
            return "tokens", None
        extra, h, w = found
        return "map", TokenGrid(extra, (height / h, width / w), current_size)
    return "other", None


class MapHookModule:
    """A layer's module whose forward hooks see (and may replace) its output as an N×C×h×w map.

    ``Backbone.module(layer)`` returns this for a layer read through a view, so code that hooks
    the module directly (the CAM methods) works unchanged on transformers. Any other attribute
    is the module's own.
    """

    def __init__(self, module: nn.Module, view):
        self._module = module
        self._view = view

    def register_forward_hook(self, hook, **kwargs):
        view = self._view

        def on_map(module, inputs, output):
            result = hook(module, inputs, view.to_map(output))
            return None if result is None else view.from_map(result, output)

        return self._module.register_forward_hook(on_map, **kwargs)

    def __getattr__(self, name):
        return getattr(self._module, name)

    def __repr__(self) -> str:
        return f"MapHookModule({self._module.__class__.__name__}, {self._view.describe()})"


def describe_view(view: Optional[object]) -> str:
    return view.describe() if view is not None else ""
