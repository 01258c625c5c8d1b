"""A layer's feature maps for one image, as a labelled grid (``cvtools visualize activations``)."""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch


@torch.no_grad()
def layer_activations(backbone, x: torch.Tensor, layer: str) -> torch.Tensor:
    """C×h×w activations of ``layer`` for one [0, 1] image (3×H×W or 1×3×H×W), float32 on the CPU."""
    if x.dim() == 3:
        x = x[None]
    return backbone.features(x.to(backbone.device), [layer])[layer][0].float().cpu()


def most_active(activations: torch.Tensor, count: int) -> List[int]:
    """The ``count`` channels with the highest mean positive activation, strongest first."""
    means = activations.clamp_min(0).mean(dim=(1, 2))
    return means.argsort(descending=True)[: min(count, len(means))].tolist()


def activation_grid(image: torch.Tensor, activations: torch.Tensor, channels: Sequence[int], layer: str = "",
                    colormap: str = "viridis", tile: int = 112, title: Optional[str] = None):
    """The photo, then one tile per channel: its positive part (what a following ReLU passes on;
    block outputs of EfficientNet or ResNet are linear and signed) scaled so the channel's 99th
    percentile is full brightness (weak channels still show their pattern, one hot pixel cannot
    darken the rest; the label gives the peak), enlarged to ``tile`` px."""
    from PIL import Image

    from cvtools.visualize.attribution import percentile_normalize
    from cvtools.visualize.colormaps import apply_colormap
    from cvtools.visualize.render import grid, to_pil

    h, w = activations.shape[-2:]
    th, tw = (tile, max(1, round(tile * w / h))) if h <= w else (max(1, round(tile * h / w)), tile)
    tiles = [to_pil(image).resize((tw, th), Image.BICUBIC)]
    labels = ["input"]
    for c in channels:
        a = activations[c].clamp_min(0)
        hi = a.max()
        norm = percentile_normalize(a[None])[0]
        # Nearest-neighbour enlargement: the true resolution of the map stays visible.
        up = torch.nn.functional.interpolate(norm[None, None], size=(th, tw), mode="nearest")[0, 0]
        tiles.append(to_pil(apply_colormap(up, colormap)))
        labels.append(f"#{c}  max {float(hi):.2g}")
    return grid(tiles, labels, title=title or f"{layer}: {len(channels)} of {activations.shape[0]} channels "
                                                f"({h}x{w}), positive part, each scaled to its own range")
