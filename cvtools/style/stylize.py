"""Apply a trained style to images: the Python API behind ``cvtools stylize``.

>>> from cvtools.style import Stylizer
>>> stylizer = Stylizer("mona")                       # a bundled name, a .json record or a .safetensors
>>> out = stylizer(image)                             # 3×H×W (or PIL) in, 3×H×W float in [0, 1] out
>>> out = stylizer(image, strength=0.6, preserve_color=True, tile=1024)

Speed: on a GPU the network runs in fp16 and channels-last under ``inference_mode`` (optionally
``torch.compile``d); on the CPU in fp32 (bf16 was measured slower on CPUs without AMX).
Memory: images that would not fit are cut into overlapping tiles, all normalised with the
instance-norm statistics of one pass over a downscaled copy of the whole image, and blended
with smooth weights (see :mod:`cvtools.style.tiling`), so no seams show.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

from cvtools.errors import UsageError
from cvtools.style import tiling
from cvtools.style.records import StyleRecord, resolve_style

#: Overlap between tiles; wider than the network's receptive-field radius (≈ 54 px), so each
#: pixel's blended value comes from tiles that saw its whole neighbourhood.
TILE_OVERLAP = 128
#: The instance-norm statistics for tiled images come from a copy downscaled to at most this
#: many pixels (cheap, and close to full-size statistics: see tests/test_style.py).
GUIDE_PIXELS = 1024 * 1024
#: On the CPU never use more than this for activations, whatever is free (a 24-megapixel photo
#: then stays under 4 GB peak RSS, measured: BENCHMARKS.md).
CPU_ACTIVATION_BUDGET = 1536 * 1024 ** 2


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of ...×3×H×W RGB, keeping the channel dimension."""
    r, g, b = rgb.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def transfer_luminance(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """The original's colours with the stylized luminance (``--preserve-color``).

    In YCbCr, taking Y from the stylized image and Cb, Cr from the original is the same as adding
    the luma difference to every RGB channel of the original, which is what this computes.
    """
    return (original + (luminance(stylized) - luminance(original))).clamp_(0, 1)


def finish_pixels(stylized: torch.Tensor, original: torch.Tensor, strength: float,
                  preserve_color: bool) -> torch.Tensor:
    """Per-pixel post-processing (so it can run tile by tile): colour, then blending strength.

    Always returns a new tensor (never an inference-mode one: callers may modify it in place).
    """
    stylized = stylized.float().clamp(0, 1)
    original = original.float()
    if preserve_color:
        stylized = transfer_luminance(stylized, original)
    if strength < 1.0:
        stylized = original + strength * (stylized - original)
    return stylized.clamp_(0, 1)


def _available_cpu_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 1024 ** 3


@dataclass
class StylizeSettings:
    strength: float = 1.0
    preserve_color: bool = False
    tile: Union[str, int, None] = "auto"  # "auto", a tile side in pixels, or None/0 for never


class Stylizer:
    """One loaded style, ready to stylize any number of images.

    style: a bundled name, a record path (.json), a weights path (.safetensors) or a StyleRecord.
    device: auto | cpu | cuda | cuda:N | mps. precision: auto (fp16 on GPU, fp32 on CPU) | fp32 |
    fp16 | bf16. channels_last: None = on for GPUs. compile: torch.compile the network (pays off
    for many same-size images).
    """

    def __init__(self, style: Union[str, os.PathLike, StyleRecord] = "mona", device: str = "auto",
                 precision: str = "auto", channels_last: Optional[bool] = None, compile: bool = False):
        from cvtools.backbones import resolve_device, resolve_precision

        self.record = resolve_style(style)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        net = self.record.load_network(device="cpu")
        self.net = net.to(self.device, self.dtype)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        # The compiled forward is used for whole images only; tiling's record/reuse modes run eager.
        self._forward = torch.compile(self.net, dynamic=False) if compile else self.net
        self.last_tiles = 0  # how many tiles the last image took (0: it went whole)
        #: where notes for the user go (the CLI's -q silences them)
        self.notify: Callable[[str], None] = lambda msg: print(f"cvtools: note: {msg}", file=sys.stderr)

    @property
    def name(self) -> str:
        return self.record.name

    # ------------------------------------------------------------------ memory
    def bytes_per_pixel(self) -> int:
        """Peak activation memory per input pixel of one forward pass (upper estimate).

        The widest moment is the last upsampling stage: the upsampled, the padded and the
        convolved maps at full resolution, plus the input and output.
        """
        from cvtools.style.network import channels_for

        c1, c2, _ = channels_for(self.net.width)
        elem = torch.finfo(self.dtype).bits // 8
        return int((2 * c2 + 2 * c1 + 12) * elem * 1.25)

    def activation_budget(self) -> int:
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free * 0.7)
        return min(int(_available_cpu_memory() * 0.5), CPU_ACTIVATION_BUDGET)

    def auto_tile(self, height: int, width: int) -> Optional[int]:
        """A tile side for this image, or None when the whole image fits."""
        budget = self.activation_budget()
        if height * width * self.bytes_per_pixel() <= budget:
            return None
        side = int(math.sqrt(budget / self.bytes_per_pixel()))
        return max(256, min(side, 4096) // 8 * 8)

    # ------------------------------------------------------------------ forward
    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).to(self.dtype)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def stylize_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """The raw network on a batch N×3×H×W in [0, 1] (device and dtype handled); no tiling."""
        with torch.inference_mode():
            return self._forward(self._to_input(images))

    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False,
                 tile: Union[str, int, None] = "auto", progress: Optional[Callable[[int], None]] = None
                 ) -> torch.Tensor:
        """Stylize one image (3×H×W float tensor in [0, 1], or a PIL image) → 3×H×W float, CPU.

        strength: 0 returns the input, 1 the full style. preserve_color: keep the input's
        colours (the style's luminance only). tile: "auto", a tile side in pixels, or None.
        progress: called with the number of tiles, then once per tile done (``progress(0)``).
        """
        if not 0.0 <= strength <= 1.0:
            raise UsageError(f"--strength must be between 0 and 1, not {strength}")
        if not torch.is_tensor(image):
            from cvtools.imageio import pil_to_tensor

            image = pil_to_tensor(image.convert("RGB"))
        if image.dim() == 4:
            image = image[0]
        image = image.float()
        _, h, w = image.shape
        self.last_tiles = 0
        if strength == 0.0:
            return image.clone()
        side = self._tile_side(tile, h, w)
        if side is None:
            try:
                out = self.stylize_tensor(image)[0]
                return finish_pixels(out.float().cpu(), image, strength, preserve_color)
            except torch.cuda.OutOfMemoryError:
                if tile not in ("auto", None):
                    raise
                torch.cuda.empty_cache()
                side = max(256, int(math.sqrt(h * w)) // 2 // 8 * 8)
                self.notify(f"out of GPU memory at {w}x{h}; stylizing in {side}px tiles instead")
        return self._tiled(image, side, strength, preserve_color, progress)

    def _tile_side(self, tile, h, w) -> Optional[int]:
        if tile in (None, 0, "0", "none", "off"):
            return None
        if tile == "auto":
            return self.auto_tile(h, w)
        side = int(tile)
        if side < 2 * TILE_OVERLAP:
            raise UsageError(f"--tile {side} is too small; use at least {2 * TILE_OVERLAP} (or auto)")
        return None if side >= max(h, w) else side

    def _tiled(self, image, side, strength, preserve_color, progress) -> torch.Tensor:
        _, h, w = image.shape
        net = self.net
        # 1. statistics of every instance norm from the whole image, downscaled if large
        scale = min(1.0, math.sqrt(GUIDE_PIXELS / (h * w)))
        guide = image.unsqueeze(0)
        if scale < 1.0:
            gh, gw = max(8, round(h * scale)), max(8, round(w * scale))
            guide = F.interpolate(guide, size=(gh, gw), mode="bilinear", antialias=True, align_corners=False)
        with net.norm_mode("record"), torch.inference_mode():
            net(self._to_input(guide))
        # 2. every tile normalised with those statistics, blended into the output
        self.last_tiles = tiling.tile_count(h, w, side, TILE_OVERLAP)
        if progress:
            progress(self.last_tiles)

        def one_tile(y0, x0, th, tw):
            crop = image[:, y0:y0 + th, x0:x0 + tw]
            with torch.inference_mode():
                styled = net(self._to_input(crop))[0].float().cpu()
            return finish_pixels(styled, crop, strength, preserve_color)

        out = torch.zeros_like(image)
        with net.norm_mode("reuse"):
            tiling.run_tiled(one_tile, h, w, side, TILE_OVERLAP, out,
                             progress=(lambda: progress(0)) if progress else None)
        return out.clamp_(0, 1)


def stylize(image, style="mona", strength: float = 1.0, preserve_color: bool = False,
            tile: Union[str, int, None] = "auto", device: str = "auto") -> torch.Tensor:
    """One-shot convenience: ``stylize(pil_or_tensor, "starry_night")`` → 3×H×W tensor."""
    return Stylizer(style, device=device)(image, strength=strength, preserve_color=preserve_color, tile=tile)


def resize_long_side(image, size: Optional[int]):
    """A PIL image with its longer side ``size`` (LANCZOS), or unchanged when size is None."""
    if not size:
        return image
    from PIL import Image

    w, h = image.size
    scale = size / max(w, h)
    if abs(scale - 1.0) < 1e-6:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
