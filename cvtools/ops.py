"""Small image operations shared by the effects: resizing and Gaussian blur.

>>> small = resize_long_side(pil_image, 512)      # PIL, LANCZOS, longer side 512 (enlarge=False: at most)
>>> y = resize(x, (h, w))                         # N×C×H×W, bilinear, antialiased when shrinking
>>> y = resize_area(x, (h, w))                    # N×C×H×W, area average down, bilinear up
>>> blur = GaussianBlur(1.0, device)              # weights built once, radius ceil(3σ)
>>> y = gaussian_blur(maps, 2.0)                  # one-off blur of N×C×H×W or H×W maps

Pure functions of their inputs (no globals, no printing); torch is imported lazily so importing
this module stays cheap for the CLI.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence


def resize_long_side(image, size: Optional[int], enlarge: bool = True):
    """A PIL image with its longer side ``size`` (LANCZOS), or unchanged when size is None/0
    or already that size. Works for any mode (RGB, an alpha channel "L").

    ``enlarge=False`` only shrinks: a smaller image is returned as it is (the command line's
    ``--size``, where upscaling a photo only blurs it); paintings scaled for the style losses
    keep the default, which scales both ways."""
    if not size:
        return image
    from PIL import Image

    w, h = image.size
    scale = size / max(w, h)
    if abs(scale - 1.0) < 1e-6 or (scale > 1.0 and not enlarge):
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)


def resize(x, size: Sequence[int]):
    """Bilinear resize of N×C×H×W to ``size`` (h, w), antialiased when shrinking (no aliasing
    in a pyramid); ``x`` itself when it already has that size."""
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)


def resize_area(x, size: Sequence[int]):
    """N×C×H×W to ``size`` (h, w): area averaging when shrinking both sides (no aliasing),
    bilinear otherwise; ``x`` itself when it already has that size."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if size[0] <= h and size[1] <= w:
        return F.interpolate(x, size=tuple(size), mode="area")
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def gaussian_kernel(sigma: float, radius: int, dtype=None, device=None):
    """The normalised 1-D Gaussian of ``2 * radius + 1`` taps (sums to 1)."""
    import torch

    t = torch.arange(-radius, radius + 1, dtype=dtype or torch.float32, device=device)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    return k / k.sum()


class GaussianBlur:
    """Separable Gaussian blur of N×C×H×W tensors (reflect padding, radius ``ceil(3σ)``),
    weights built once for ``channels`` channels on ``device`` (for a blur run every step)."""

    def __init__(self, sigma: float, device, channels: int = 3):
        radius = max(1, math.ceil(3 * sigma))
        k = gaussian_kernel(sigma, radius)
        self.taps = [float(v) for v in k]
        k = k.to(device)
        self.radius = radius
        self.channels = channels
        self.horizontal = k.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
        self.vertical = k.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def __call__(self, x):
        import torch.nn.functional as F

        r, c = self.radius, self.channels
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), self.horizontal, groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), self.vertical, groups=c)

    def stencil(self, x):
        """The same blur as a weighted sum of shifted views: slow eager, but under torch.compile
        each direction becomes one fused kernel (the depthwise convolution took 4.9 ms of a
        95 ms 1080p dream, in PyTorch's generic fp32 kernel plus the padding copies)."""
        import torch.nn.functional as F

        r, h, w = self.radius, x.shape[-2], x.shape[-1]
        xp = F.pad(x, (r, r, 0, 0), mode="reflect")
        y = sum(k * xp[..., :, i:i + w] for i, k in enumerate(self.taps))
        yp = F.pad(y, (0, 0, r, r), mode="reflect")
        return sum(k * yp[..., i:i + h, :] for i, k in enumerate(self.taps))


def gaussian_blur(maps, sigma: float):
    """Separable Gaussian blur of N×C×H×W (or H×W) tensors, reflect-padded; sigma in pixels.

    One-off use (heat maps, metrics): the radius is ``round(3σ)``, shrunk to fit maps smaller
    than the kernel (reflect padding needs radius < side); sigma <= 0 returns ``maps``."""
    import torch.nn.functional as F

    if sigma <= 0:
        return maps
    squeeze = maps.dim() == 2
    m = maps[None, None] if squeeze else maps
    radius = max(1, min(int(3 * sigma + 0.5), min(m.shape[-2:]) - 1))
    k = gaussian_kernel(sigma, radius, dtype=m.dtype, device=m.device).repeat(m.shape[1], 1, 1, 1)
    m = F.conv2d(F.pad(m, (radius, radius, 0, 0), mode="reflect"), k.view(-1, 1, 1, 2 * radius + 1), groups=m.shape[1])
    m = F.conv2d(F.pad(m, (0, 0, radius, radius), mode="reflect"), k.view(-1, 1, 2 * radius + 1, 1), groups=m.shape[1])
    return m[0, 0] if squeeze else m
