"""Transformation robustness (lucid/lucent's ``transform``): random small changes applied to the
image at every step, so only features that survive them (real structure, not pixel-exact noise
the network over-reacts to) get optimised.

Every transform keeps the image's size (the network sees the same resolution each step) and is
differentiable. Each is called as ``t(images, generator)`` and draws one random setting per
image from ``generator``, so a seed reproduces a run.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _choice(values: Sequence[float], n: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    idx = torch.randint(len(values), (n,), generator=generator)
    return torch.tensor(values, dtype=torch.float32)[idx]


class Jitter:
    """Shift each image by up to ``pixels`` in x and y (reflected at the borders)."""

    def __init__(self, pixels: int):
        self.pixels = int(pixels)

    def __call__(self, images, generator=None):
        n, _, h, w = images.shape
        d = min(self.pixels, h - 1, w - 1)  # reflection needs a pad smaller than the image
        if d <= 0:
            return images
        padded = F.pad(images, (d, d, d, d), mode="reflect")
        shifts = torch.randint(0, 2 * d + 1, (n, 2), generator=generator).tolist()
        return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts)])


class Pad:
    """Frame each image with a ``pixels`` wide border of constant ``value`` and fit it back into
    the original size: the network sees the content smaller, away from the edges, so features
    cannot lean on the border."""

    def __init__(self, pixels: int, value: float = 0.5):
        self.pixels, self.value = int(pixels), value

    def __call__(self, images, generator=None):
        if self.pixels <= 0:
            return images
        h, w = images.shape[-2:]
        padded = F.pad(images, (self.pixels,) * 4, mode="constant", value=self.value)
        return F.interpolate(padded, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


class RandomScale:
    """Zoom each image by a factor drawn from ``scales``."""

    def __init__(self, scales: Sequence[float]):
        self.scales = list(scales)

    def __call__(self, images, generator=None):
        s = _choice(self.scales, images.shape[0], generator)
        theta = torch.zeros(images.shape[0], 2, 3)
        theta[:, 0, 0] = 1 / s
        theta[:, 1, 1] = 1 / s
        return _affine(images, theta)


class RandomRotate:
    """Rotate each image by an angle (degrees) drawn from ``degrees``."""

    def __init__(self, degrees: Sequence[float]):
        self.degrees = list(degrees)

    def __call__(self, images, generator=None):
        a = _choice(self.degrees, images.shape[0], generator) * (math.pi / 180)
        h, w = images.shape[-2:]
        theta = torch.zeros(images.shape[0], 2, 3)
        # affine_grid works in [-1, 1] coordinates: correct for the aspect ratio so shapes do not shear.
        theta[:, 0, 0] = torch.cos(a)
        theta[:, 0, 1] = -torch.sin(a) * h / w
        theta[:, 1, 0] = torch.sin(a) * w / h
        theta[:, 1, 1] = torch.cos(a)
        return _affine(images, theta)


class Compose:
    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, images, generator=None):
        for t in self.transforms:
            images = t(images, generator)
        return images


def standard_transforms(size: int = 128) -> Compose:
    """lucid's standard set (pad 12, jitter 8, scale ±10 %, rotate ±10°, jitter 4 at 224 px),
    with the pixel amounts scaled to ``size``."""
    k = size / 224
    return Compose([
        Pad(round(12 * k)),
        Jitter(max(1, round(8 * k))),
        RandomScale([1 + (i - 5) / 50 for i in range(11)]),
        RandomRotate(list(range(-10, 11)) + 5 * [0]),
        Jitter(max(1, round(4 * k))),
    ])


def class_transforms(size: int = 224) -> Compose:
    """Stronger robustness for class logits: pad 16, jitter 16, scale 0.8-1.2, rotate ±15°,
    jitter 8 at 224 px (scaled to ``size``). A class logit pools over the whole image, so with
    lucid's gentle set it is satisfied by a texture of class cues (a fish's orange, a daisy's
    petals) spread everywhere; a wider range of zooms and shifts rewards parts that survive
    them, and object-like shapes come out larger and more coherent."""
    k = size / 224
    return Compose([
        Pad(round(16 * k)),
        Jitter(max(1, round(16 * k))),
        RandomScale([0.8 + 0.04 * i for i in range(11)]),
        RandomRotate(list(range(-15, 16))),
        Jitter(max(1, round(8 * k))),
    ])
