"""Optimise images for an objective (lucid/lucent's ``render``): Adam on an :class:`ImageParam`,
a random robustness transform each step, the backbone frozen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch

from cvtools.device import autotuned
from cvtools.visualize.featurevis.objectives import Objective
from cvtools.visualize.featurevis.param import ImageParam
from cvtools.visualize.featurevis.transforms import class_transforms, standard_transforms


@dataclass
class Visualization:
    images: torch.Tensor  # N×3×H×W in [0, 1], on the CPU
    history: torch.Tensor  # steps×N objective values (on the transformed images the optimiser saw)
    objective: str


def activations_for(backbone, objective: Objective, images: torch.Tensor):
    """The activations ``objective`` reads, for [0, 1] images (one forward pass, cut short after
    the deepest layer unless the logits are needed)."""
    return backbone.features(images, objective.feature_layers, logits=objective.needs_logits)


def evaluate(backbone, objective: Objective, images: torch.Tensor) -> torch.Tensor:
    """The objective's value (N) for ``images`` as they are (no transforms)."""
    with torch.no_grad():
        return objective(activations_for(backbone, objective, images.to(backbone.device))).float().cpu()


@autotuned
def render(backbone, objective: Objective, batch: int = 1, size: int = 128, steps: int = 128, lr: float = 0.03,
           param: Optional[ImageParam] = None, transforms: Optional[Callable] = "standard", seed: int = 0,
           progress: Optional[Callable[[int], None]] = None) -> Visualization:
    """Images (``batch`` of them, ``size`` px) that maximise ``objective`` on ``backbone``.

    ``param``: the image parameterisation (default: Fourier + decorrelated colour, seeded);
    ``transforms``: "standard" (:func:`standard_transforms`), "class" (:func:`class_transforms`),
    None, or a callable
    ``(images, generator) -> images`` of the same size; ``progress(step)`` is called after each step.
    Images in a batch are independent (Adam is per coordinate and the loss is their sum), so
    ``channel(layer, [0, 1, 2, ...])`` renders one channel per image in one pass.
    """
    device = backbone.device
    param = (param or ImageParam(size, batch=batch, seed=seed)).to(device)
    if transforms == "standard":
        transforms = standard_transforms(size)
    elif transforms == "class":
        transforms = class_transforms(size)
    gen = torch.Generator().manual_seed(seed + 1)
    optimizer = torch.optim.Adam(param.parameters(), lr=lr)
    history: List[torch.Tensor] = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        images = param()
        seen = transforms(images, gen) if transforms else images
        value = objective(activations_for(backbone, objective, seen))
        (-value.sum()).backward()
        optimizer.step()
        history.append(value.detach().float().cpu())
        if progress:
            progress(step)
    with torch.no_grad():
        final = param().detach().float().cpu()
    return Visualization(final, torch.stack(history) if history else torch.empty(0, batch), objective.name)


def parse_channels(spec, count: int) -> List[int]:
    """``0:16`` (a slice, end excluded), ``0-15`` (a range, end included), ``3,7,12``, ``8:`` or
    ``all`` (text or a :class:`~cvtools.specs.ChannelSpec`) -> channel indices of a layer with
    ``count`` channels; a UsageError naming the spec and the layer's channels otherwise."""
    from cvtools.specs import parse_channel_spec

    return parse_channel_spec(spec).resolve(count)


def labelled_grid(vis_images: torch.Tensor, labels: Sequence[str], title: Optional[str] = None, tile: int = 0):
    """The rendered images as a labelled grid (PIL), each tile at least ``tile`` px."""
    from PIL import Image

    from cvtools.visualize.render import grid, to_pil

    tiles = [to_pil(im) for im in vis_images]
    if tile and tiles[0].width < tile:
        tiles = [t.resize((tile, round(tile * t.height / t.width)), Image.LANCZOS) for t in tiles]
    return grid(tiles, labels, title=title)
