"""Image parameterisations (Olah et al. 2017, "Feature Visualization"; lucid/lucent's ``param``).

Optimising raw pixels gives high-frequency noise the network happens to like. Two changes of
variables make the optimiser prefer natural-looking images:

- the Fourier basis, scaled by 1/f: every frequency moves at the speed it has in natural images,
  so low frequencies (shapes) are not starved by the high ones (noise);
- decorrelated colour: the three channels optimised are the principal components of ImageNet's
  RGB colour, so colours come out as saturated as photos rather than washed-out grey.

A sigmoid maps the result into valid [0, 1] RGB.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import nn

# Square root of ImageNet's RGB colour covariance (from lucid), scaled so its widest column has
# norm 1: maps the decorrelated channels back to RGB.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                           [0.27, 0.00, -0.05],
                                           [0.27, -0.09, 0.03]])
COLOR_CORRELATION = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()


def _size(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def spectrum_frequencies(height: int, width: int) -> torch.Tensor:
    """|f| of each coefficient of an rfft2 of an H×W image (cycles per pixel), H×(W//2+1)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class FourierImage(nn.Module):
    """N×C×H×W images held as their 2-D spectra, each frequency scaled by ``1 / f**decay_power``."""

    def __init__(self, size, batch: int = 1, channels: int = 3, sd: float = 0.01, decay_power: float = 1.5,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.height, self.width = _size(size)
        freqs = spectrum_frequencies(self.height, self.width)
        scale = 1.0 / freqs.clamp_min(1.0 / max(self.height, self.width)) ** decay_power
        self.register_buffer("scale", scale[None, None, :, :, None])
        shape = (batch, channels) + tuple(freqs.shape) + (2,)
        self.spectrum = nn.Parameter(torch.randn(shape, generator=generator) * sd)

    def forward(self) -> torch.Tensor:
        coefficients = torch.view_as_complex((self.scale * self.spectrum).contiguous())
        image = torch.fft.irfftn(coefficients, s=(self.height, self.width), dim=(-2, -1), norm="ortho")
        return image / 4.0  # lucid's constant: keeps the sigmoid out of saturation at the start


class PixelImage(nn.Module):
    """N×C×H×W images held as plain pixels (for comparison: noisier results)."""

    def __init__(self, size, batch: int = 1, channels: int = 3, sd: float = 0.01,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        h, w = _size(size)
        self.pixels = nn.Parameter(torch.randn((batch, channels, h, w), generator=generator) * sd)

    def forward(self) -> torch.Tensor:
        return self.pixels


class ImageParam(nn.Module):
    """A batch of optimisable images; calling it gives N×3×H×W RGB in [0, 1].

    ``fft``: Fourier parameterisation (else pixels); ``decorrelate``: optimise decorrelated colour
    channels; ``seed``: the random start (a few hundredths from grey). ``decay_power`` 1.5 rather
    than lucid's 1: on EfficientNet-Lite, whose strided depthwise convolutions pass back
    checkerboard gradients, 1 leaves a fine speckle over every picture; 1.5 gives bold shapes and
    full colour in the same number of steps (compared by eye on blocks.8, 128 px, 128 steps).
    """

    def __init__(self, size=128, batch: int = 1, fft: bool = True, decorrelate: bool = True, sd: float = 0.01,
                 decay_power: float = 1.5, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.spatial = (FourierImage(size, batch, 3, sd, decay_power, gen) if fft
                        else PixelImage(size, batch, 3, sd, gen))
        self.decorrelate = decorrelate
        self.register_buffer("color", COLOR_CORRELATION.clone())

    def forward(self) -> torch.Tensor:
        image = self.spatial()
        if self.decorrelate:
            image = torch.einsum("nchw,rc->nrhw", image, self.color)
        return torch.sigmoid(image)
