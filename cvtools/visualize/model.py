"""The backbone as a function of pixels, and the choice of the class to explain."""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from cvtools.errors import UsageError

#: What ``target`` may be: None or "top1" (each image's own top class), a class index, a class name,
#: or one index per image.
Target = Union[None, int, str, Sequence[int], torch.Tensor]


class PixelModel(nn.Module):
    """``[0, 1] RGB (N×3×H×W, float32) -> float32 logits`` with the backbone's normalisation inside.

    Attribution methods differentiate this function, so their maps are in pixel space (a
    gradient per RGB value of the image the user gave), whatever the backbone's mean/std,
    dtype or memory layout. ``net`` is the backbone's eager module (never the compiled one:
    hooks must see every layer).
    """

    def __init__(self, backbone):
        super().__init__()
        self.net = backbone.model
        self.backbone = backbone  # a dataclass, so a plain attribute (not a sub-module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.backbone.prepare(x)).float()


def parse_target(spec: Target, categories=None) -> Target:
    """A command-line target (``top1``, ``281``, ``tabby``) -> None, an int, or what was given;
    names are looked up in ``categories`` (a network's class names; default ImageNet's)."""
    if spec is None or isinstance(spec, (int, torch.Tensor)) or not isinstance(spec, str):
        return spec
    from cvtools.backbones.categories import imagenet_categories, parse_class_target
    from cvtools.visualize.catalog import with_class_hint

    try:
        return parse_class_target(spec, categories)
    except UsageError as exc:
        names = imagenet_categories() if categories is None else categories
        raise with_class_hint(exc, spec, names) from None


def checked_target(target: Target, categories) -> Target:
    """``target`` (:func:`parse_target`) checked against a network's classes once, before any
    image: an index out of range or an unknown name is one UsageError, not one per image."""
    target = parse_target(target, categories)
    if isinstance(target, int) and not isinstance(target, bool):
        if target < 0:
            raise UsageError(f"{target} is not a class index: class indices run 0..{len(categories) - 1}, and a "
                             "negative one does not count from the end", param="target")
        if target >= len(categories):
            raise UsageError(f"class index {target} out of range 0..{len(categories) - 1} (the network has "
                             f"{len(categories)} classes)", param="target")
    return target


def resolve_class_indices(target: Target, logits: torch.Tensor, categories=None) -> torch.Tensor:
    """One class index per image (a long tensor on the logits' device, no host sync); a class
    name is looked up in ``categories`` (default ImageNet's)."""
    n, classes = logits.shape
    target = parse_target(target, categories)
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, int):
        if not 0 <= target < classes:
            raise UsageError(f"class index {target} out of range 0..{classes - 1}")
        return torch.full((n,), target, dtype=torch.long, device=logits.device)
    t = torch.as_tensor(target, dtype=torch.long).to(logits.device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise UsageError(f"{t.numel()} targets for {n} images")
    return t


@torch.no_grad()
def predict(backbone, x: torch.Tensor, target: Target = None):
    """(target indices, their probabilities, logits) for a batch of [0, 1] images."""
    logits = backbone.model(backbone.prepare(x)).float()
    idx = resolve_class_indices(target, logits, backbone.categories)
    prob = backbone.probabilities(logits).gather(1, idx[:, None])[:, 0]
    return idx, prob, logits


def check_image_batch(x: torch.Tensor, backbone) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise UsageError("expected [0, 1] RGB images as an N×3×H×W tensor")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if min(x.shape[-2:]) < backbone.min_size:
        raise UsageError(f"images must be at least {backbone.min_size} px on each side for {backbone.name}")
    return x.to(backbone.device, torch.float32)
