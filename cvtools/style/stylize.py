"""Apply a trained style to images: the Python API behind ``cvtools stylize``.

>>> from cvtools.style import Stylizer
>>> stylizer = Stylizer("mona")                       # a bundled name, a .json record or a .safetensors
>>> out = stylizer(image)                             # 3×H×W (or PIL) in, 3×H×W float in [0, 1] out
>>> out = stylizer(image, strength=0.6, preserve_color=True, tile=1024)

Speed: the decoder runs in its sub-pixel form (same function, no upsampled maps). On a GPU the
network runs in fp16 and channels-last under ``inference_mode`` (optionally ``torch.compile``d);
on the CPU in channels-last, bf16 where the CPU computes bf16 natively (AMX, AVX512-BF16) and
fp32 elsewhere (BENCHMARKS.md has the measurements behind each choice).
Memory: images that would not fit are cut into overlapping tiles, all normalised with the
instance-norm statistics of one pass over a downscaled copy of the whole image, and blended
with smooth weights (see :mod:`cvtools.style.tiling`), so no seams show.
"""

from __future__ import annotations

import math
import os
from typing import Callable, List, Optional, Tuple, Union

import torch

from cvtools.device import cudnn_benchmark
from cvtools.errors import UsageError
from cvtools.ops import resize_long_side  # noqa: F401  (re-exported: callers import it from here)
from cvtools.specs import parse_tile
from cvtools.style import tiling
from cvtools.style.fast_cpu import cpu_has_native_bf16  # noqa: F401  (used below; re-exported)
from cvtools.style.limits import checked_strength  # noqa: F401  (re-exported: callers import it from here)
from cvtools.style.records import StyleRecord, resolve_style

#: Overlap between tiles; wider than the network's receptive-field radius (≈ 54 px), so each
#: pixel's blended value comes from tiles that saw its whole neighbourhood.
TILE_OVERLAP = 128
#: Tiled images share one set of instance-norm statistics, taken from the whole image when it
#: has at most this many pixels (None: as many as the memory budget allows), else jointly from
#: GUIDE_CROP-sized full-resolution crops spread over the image, as many as fit.
GUIDE_PIXELS = None
GUIDE_CROP = 512
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


def _as_floats(image: Optional[torch.Tensor], pixels: Optional[torch.Tensor]) -> torch.Tensor:
    """The input as 3×H×W floats in [0, 1] (8-bit ``pixels`` divided as pil_to_tensor does)."""
    return image if pixels is None else pixels.float().div_(255.0)


#: Images with a shorter side below this are stylized at this size (the network's padding needs it).
MIN_SIDE = 16


class Stylizer:
    """One loaded style, ready to stylize any number of images.

    style: a bundled name, a record path (.json), a weights path (.safetensors) or a StyleRecord.
    device: auto | cpu | cuda | cuda:N | mps. precision: auto (fp16 on GPU, fp32 on CPU) | fp32 |
    fp16 | bf16. channels_last: None = on for GPUs. compile: True torch.compiles the network for
    every image size (pays off for many same-size images; each size compiled is recorded in this
    machine's compile cache, :mod:`cvtools.compile_cache`); False never; None (the default) runs
    eager, except on CUDA for a size the cache holds (``cvtools bench --warm`` or an earlier
    compiled run), which switches to the compiled network once the time this object has spent
    on that size would have paid for loading it (:mod:`cvtools.compile_cache`): long folders and
    videos get the fast path, a single photo or a short folder never waits for it. tune: let cuDNN autotune each new image size on CUDA (seconds
    per size, faster frames after), set for each call and put back; None leaves the process's
    setting as it is (what a video run decides, say). on_note: called with one-line
    messages for the user (a fallback to tiles after running out of GPU memory); None: silent.
    """

    def __init__(self, style: Union[str, os.PathLike, StyleRecord] = "mona", device: str = "auto",
                 precision: str = "auto", channels_last: Optional[bool] = None, compile: Optional[bool] = None,
                 tune: Optional[bool] = None, on_note: Optional[Callable[[str], None]] = None):
        from cvtools.device import resolve_device, resolve_precision
        from cvtools.timings import mark

        mark("imports")
        self.record = resolve_style(style)
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            torch.empty(1, device=self.device)  # the CUDA context starts here
        mark("device")
        if precision in (None, "auto") and self.device.type == "cpu" and cpu_has_native_bf16():
            self.dtype = torch.bfloat16  # AMX / AVX512-BF16: 1.5x faster than fp32, PSNR ~60 dB to it
        else:
            self.dtype = resolve_precision(precision, self.device)
        # channels-last is faster on GPUs and (with our instance norm) on CPUs too: measured
        self.channels_last = self.device.type in ("cuda", "cpu") if channels_last is None else channels_last
        # the sub-pixel form of the decoder: same function, no 4x upsampled maps (faster, less memory);
        # the space-to-depth form of the 9x9 convolutions where it measured faster (BENCHMARKS.md):
        # GPUs (H200 1080p: 9.1 -> 7.6 ms eager, 3.75 -> 2.0 ms compiled) and fp32 on CPUs
        # (512x512 on 2 cores: 382 -> 341 ms), not bf16 on CPUs (254 -> 266 ms)
        s2d = self.device.type == "cuda" or (self.device.type == "cpu" and self.dtype == torch.float32)
        net = self.record.load_network(device="cpu").for_inference(space_to_depth=s2d)
        self.net = net.to(self.device, self.dtype)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # Autotuning costs more than a one-photo run takes (H100, 1080p: first result 1.8 s
        # tuned); folders of same-size photos and video frames ask for it with tune. Set per call
        # (stylize_tensor) and put back, so this network never changes another one's speed.
        self.tune = tune
        # The compiled forward is used for whole images only; tiling's record/reuse modes run eager.
        # Compiled lazily (an eager run never imports the compiler), per shape, from the cache.
        from cvtools.compile_cache import CachedCompile, network_key, precision_name

        self._forward = CachedCompile(
            self.net, network_key(self.net, f"transformernet-w{self.net.width:g}"), self.device,
            precision_name(self.dtype), "channels_last" if self.channels_last else "contiguous",
            mode=compile, on_note=self._note)
        mark("model")
        self.last_tiles = 0  # how many tiles the last image took (0: it went whole)
        self.overlap = TILE_OVERLAP
        self._guide_pixels = GUIDE_PIXELS
        self.guide_crop = GUIDE_CROP
        #: where notes for the user go (None: nowhere); may be set after construction
        self.on_note = on_note

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def guide_pixels(self) -> int:
        """Pixels the statistics pass may take (default: what the memory budget allows)."""
        if self._guide_pixels is not None:
            return self._guide_pixels
        return max(GUIDE_CROP * GUIDE_CROP, self.activation_budget() // self.bytes_per_pixel())

    @guide_pixels.setter
    def guide_pixels(self, value: Optional[int]) -> None:
        self._guide_pixels = value

    # ------------------------------------------------------------------ memory
    def bytes_per_pixel(self) -> int:
        """Peak activation memory per input pixel of one forward pass (an upper estimate).

        The widest moment is the last decoder stage: its sub-pixel convolution's output (4·c1
        channels at half size = c1 per pixel... times the pixel shuffle's copy), the padded
        map and the input and output images. Measured for width 0.5 in fp32 on the CPU:
        260-300 bytes per pixel (peak RSS over 1-4 MP images); this says ~400.
        """
        from cvtools.style.network import channels_for

        c1, c2, _ = channels_for(self.net.width)
        elem = torch.finfo(self.dtype).bits // 8
        return int((4 * c1 + c2 // 2 + 12) * elem * 1.1)

    def activation_budget(self) -> int:
        return activation_budget(self.device)

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
        with torch.inference_mode(), cudnn_benchmark(self.tune, self.device):
            return self._forward(self._to_input(images))

    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False,
                 tile: Union[str, int, None] = "auto", progress: Optional[Callable[[int], None]] = None,
                 as_uint8: bool = False) -> torch.Tensor:
        """Stylize one image (3×H×W float tensor in [0, 1], or a PIL image) → 3×H×W float, CPU.

        strength: 0 returns the input, 1 the full style. preserve_color: keep the input's
        colours (the style's luminance only). tile: "auto", a tile side in pixels, or None.
        progress: called with the number of tiles, then once per tile done (``progress(0)``).
        as_uint8: where the image is stylized whole on the device, return it already rounded to
        8 bits there (a quarter of the bytes to copy back, no float work left for the CPU; a
        result with NaN/inf stays float so that saving refuses it). Other paths return float.
        """
        strength = checked_strength(strength)
        self.last_tiles = 0
        image, pixels = self._as_input(image)
        _, h, w = (image if pixels is None else pixels).shape
        if strength == 0.0:
            return _as_floats(image, pixels).clone()
        if min(h, w) < MIN_SIDE:
            return self._stylize_tiny(_as_floats(image, pixels), strength, preserve_color)
        side = self.tile_side(tile, h, w)
        if side is None:
            try:
                return self._stylize_whole(image, pixels, strength, preserve_color, as_uint8)
            except torch.cuda.OutOfMemoryError:
                if tile not in ("auto", None):
                    raise  # the caller chose to go whole: theirs to handle
            # (outside the except block: the failed attempt's device tensors are released now)
            torch.cuda.empty_cache()
            side = max(256, int(math.sqrt(h * w)) // 2 // 8 * 8)
            self._note(f"out of GPU memory at {w}x{h}; stylizing in {side}px tiles instead")
        return self._tiled(_as_floats(image, pixels), side, strength, preserve_color, progress)

    def _note(self, message: str) -> None:
        if self.on_note is not None:
            self.on_note(message)

    @staticmethod
    def _as_input(image) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """(3×H×W float, None) for a tensor; (None, 3×H×W uint8) for a PIL image, whose 8 bits
        go to the device as they are when the image is stylized whole (a quarter of the bytes)."""
        import numpy as np

        from cvtools.io.decode import one_image

        image = one_image(image)
        if torch.is_tensor(image):
            return image, None
        return None, torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)

    def _stylize_tiny(self, image: torch.Tensor, strength: float, preserve_color: bool) -> torch.Tensor:
        """Images with a side under MIN_SIDE (icons, 1×1 pixels): the network reflect-pads by 4 px
        at full size and 1 px at a quarter, so they are stylized at MIN_SIDE and brought back."""
        _, h, w = image.shape
        if min(h, w) < 1:  # one_image refuses these; a direct call gets the same line
            raise UsageError(f"the image is empty ({w}x{h} pixels)", param="image")
        scale = MIN_SIDE / min(h, w)
        size = (max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale)))
        big = torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        out = self(big, strength=strength, preserve_color=preserve_color, tile=None)
        return torch.nn.functional.interpolate(out[None], size=(h, w), mode="area")[0].clamp(0, 1)

    def _stylize_whole(self, image: Optional[torch.Tensor], pixels: Optional[torch.Tensor], strength: float,
                       preserve_color: bool, as_uint8: bool) -> torch.Tensor:
        """One forward over the whole image (``image`` floats, or ``pixels`` 8-bit, converted on
        the device)."""
        if pixels is None:
            out = self.stylize_tensor(image)[0]
            return finish_pixels(out.float().cpu(), image, strength, preserve_color)
        original = pixels.to(self.device, non_blocking=True).float().div_(255.0)
        result = finish_pixels(self.stylize_tensor(original)[0], original, strength, preserve_color)
        if as_uint8 and bool(torch.isfinite(result).all()):
            from cvtools.io.decode import to_uint8

            return to_uint8(result).cpu()
        return result.cpu()

    # ------------------------------------------------------------------ batches of photos
    def batch_limit(self, height: int, width: int, most: int = 8) -> int:
        """How many ``height``×``width`` images may go through the network in one batch: up to
        ``most``, as the activation budget allows (at least 1). The same rule as a video's
        frames (:func:`cvtools.video.process.stylize_video`), so a folder of 1080p photos runs
        the batch shape ``cvtools bench --warm`` compiles for 1080p video."""
        return images_per_pass(self.bytes_per_pixel(), self.activation_budget(), height, width, most)

    def batchable(self, height: int, width: int, strength: float = 1.0, tile="auto") -> bool:
        """Whether an image of this size goes whole through :meth:`stylize_batch` as
        :meth:`__call__` would take it whole (not tiled, not tiny, some style applied)."""
        return strength > 0.0 and min(height, width) >= MIN_SIDE and self.tile_side(tile, height, width) is None

    def stylize_batch(self, images, strength: float = 1.0, preserve_color: bool = False,
                      on_device: bool = False, queued: bool = False) -> List[torch.Tensor]:
        """Stylize same-size 8-bit photos whole in one forward pass, as :meth:`__call__` with
        ``as_uint8=True`` does each (callers check :meth:`batchable`). ``queued``: on a GPU, return
        :class:`QueuedPicture` objects instead, whose ``get()`` waits for the copy back.

        ``images``: H×W×3 uint8 arrays or tensors: on the CPU (pinned ones are copied to the
        device asynchronously) or already on the device (decoded there: a 3×H×W image's
        ``permute(1, 2, 0)``). The
        batch is converted to floats and back to 8 bits on the device; one device→host copy
        brings the batch back (``on_device``: none, the results stay there). Returns one 3×H×W
        uint8 tensor per image (on the CPU: views of one H×W×3-ordered buffer, what a PIL
        image is made from without a copy); an image whose result has NaN or infinite values
        comes back as floats, so that saving refuses it. A smaller batch than one the compiled
        network already ran for this size is padded to it (the extra results dropped) rather
        than compiled anew."""
        if not 0.0 < checked_strength(strength) <= 1.0:
            raise UsageError(f"strength must be above 0 and at most 1 for a batch, not {strength}", param="strength")
        self.last_tiles = 0
        with torch.inference_mode():
            pixels = upload_batch(images, self.device)  # N×H×W×3 uint8 on the device
            n, h, w, _ = pixels.shape
            full = self._padded_batch(n, h, w)
            if full > n:
                pixels = torch.cat([pixels, pixels[-1:].expand(full - n, h, w, 3)])
            original = pixels.permute(0, 3, 1, 2).float().div_(255.0)  # a channels-last N×3×H×W view
            out = self.stylize_tensor(original)[:n]
            result = finish_pixels(out, original[:n], strength, preserve_color)
            del out
            return batch_results(result, on_device, queued)

    def _padded_batch(self, n: int, h: int, w: int) -> int:
        """``n``, or the larger batch of this size the compiled network already ran in this process."""
        seen = getattr(self, "_batches_seen", None)
        if seen is None:
            seen = self._batches_seen = {}
        full = seen.get((h, w), 0)
        if n >= full:
            seen[(h, w)] = n
            return n
        return full if self._forward.compiled_for((full, 3, h, w)) else n

    def tile_side(self, tile, h, w) -> Optional[int]:
        """The tile side :meth:`__call__` uses for an ``h``×``w`` image with ``tile`` ("auto",
        "off", a side), or None when it runs the image whole (callers such as video pick their
        whole-frame fast path by it)."""
        side = parse_tile(tile, 2 * self.overlap)
        if side is None:
            return None
        if side == "auto":
            return self.auto_tile(h, w)
        return None if side >= max(h, w) else side

    def guide_crops(self, h: int, w: int) -> Optional[List[Tuple[int, int]]]:
        """Where the statistics come from: None for the whole image (when it fits in
        ``guide_pixels``), else the top-left corners of an even grid of full-resolution
        ``crop``² squares, as many as fit."""
        if h * w <= self.guide_pixels:
            return None
        crop = self.guide_crop_side(h, w)
        per_side = max(1, int(math.sqrt(self.guide_pixels) // crop))
        ny = min(per_side, max(1, h // crop))
        nx = min(max(1, self.guide_pixels // (crop * crop) // ny), max(1, w // crop))

        def spread(n, length):  # crops centred in n equal cells
            return [min(length - crop, max(0, int((i + 0.5) * length / n - crop / 2))) // 4 * 4 for i in range(n)]

        return [(y, x) for y in spread(ny, h) for x in spread(nx, w)] if crop >= 8 else None

    def guide_crop_side(self, h: int, w: int) -> int:
        return min(self.guide_crop, h, w) // 4 * 4

    def _tiled(self, image, side, strength, preserve_color, progress) -> torch.Tensor:
        _, h, w = image.shape
        net = self.net
        # 1. one set of instance-norm statistics for every tile: from the whole image when that
        #    fits (exact), else jointly from full-resolution crops spread over it (a downscaled copy
        #    would give statistics of the wrong scale: measured 17-25 dB from untiled, 2x down)
        corners = self.guide_crops(h, w)
        with torch.inference_mode():
            if corners is None:
                with net.norm_mode("record"):
                    net(self._to_input(image))
            else:
                c = self.guide_crop_side(h, w)
                crops = torch.stack([image[:, y:y + c, x:x + c] for y, x in corners])
                with net.norm_mode("joint"):
                    net(self._to_input(crops))
                del crops
        self.last_tiles = tiling.tile_count(h, w, side, self.overlap)
        if progress:
            progress(self.last_tiles)

        # 2. every tile normalised with those statistics, blended into the output
        def one_tile(y0, x0, th, tw):
            crop = image[:, y0:y0 + th, x0:x0 + tw]
            with torch.inference_mode():
                styled = net(self._to_input(crop))[0].float().cpu()
            return finish_pixels(styled, crop, strength, preserve_color)

        out = torch.zeros_like(image)
        with net.norm_mode("reuse"):
            tiling.run_tiled(one_tile, h, w, side, self.overlap, out,
                             progress=(lambda: progress(0)) if progress else None)
        return out.clamp_(0, 1)


def stylize(image, style="mona", strength: float = 1.0, preserve_color: bool = False,
            tile: Union[str, int, None] = "auto", device: str = "auto") -> torch.Tensor:
    """One-shot convenience: ``stylize(pil_or_tensor, "starry_night")`` → 3×H×W tensor."""
    return Stylizer(style, device=device)(image, strength=strength, preserve_color=preserve_color, tile=tile)


def activation_budget(device) -> int:
    """Bytes a style network's activations may take on ``device`` (70 % of a GPU's free memory,
    half the CPU's up to :data:`CPU_ACTIVATION_BUDGET`): the bundled and the any-painting networks'."""
    from cvtools.device import memory_budget

    return memory_budget(device, gpu_fraction=0.7, cpu_fraction=0.5, cpu_cap=CPU_ACTIVATION_BUDGET)


def images_per_pass(bytes_per_pixel: int, budget: int, height: int, width: int, most: int = 8) -> int:
    """How many ``height``×``width`` images fit one pass: up to ``most``, as ``budget`` allows at
    ``bytes_per_pixel`` (at least 1)."""
    per_image = bytes_per_pixel * height * width
    return int(max(1, min(int(most), budget // max(1, per_image))))


def upload_batch(images, device) -> torch.Tensor:
    """Same-size H×W×3 uint8 images (arrays or tensors: on the CPU, pinned ones copied
    asynchronously, or already on ``device``) as one N×H×W×3 uint8 tensor on ``device``: one copy
    per image into it. ValueError for an image of another size or type."""
    import numpy as np

    h, w = images[0].shape[:2]
    batch = torch.empty((len(images), h, w, 3), dtype=torch.uint8, device=device)
    for i, image in enumerate(images):
        t = torch.from_numpy(np.asarray(image)) if not torch.is_tensor(image) else image
        if tuple(t.shape) != (h, w, 3) or t.dtype != torch.uint8:
            raise ValueError(f"a batch takes same-size 8-bit RGB images: {tuple(t.shape)} {t.dtype} beside "
                             f"{h}x{w}x3")
        batch[i].copy_(t, non_blocking=t.device.type == "cpu" and t.is_pinned())
    return batch


def batch_results(result: torch.Tensor, on_device: bool = False, queued: bool = False) -> List[torch.Tensor]:
    """A batch's finished pictures (N×3×H×W float on the device) as ``stylize_batch`` returns
    them: one 3×H×W uint8 tensor each, rounded on the device and brought back in one copy (none
    with ``on_device``); a picture with NaN or infinite values stays float, so saving refuses it.
    ``queued`` (from a GPU): the copy back is queued and not waited for, and each picture is a
    :class:`QueuedPicture` whose ``get()`` waits for it (see there)."""
    from cvtools.io.decode import to_uint8

    if queued and not on_device and result.device.type == "cuda":
        batch = _QueuedBatch(result)
        return [QueuedPicture(batch, i) for i in range(result.shape[0])]
    finite = torch.isfinite(result).flatten(1).all(1).tolist()
    u8 = to_uint8(result).permute(0, 2, 3, 1).contiguous()  # N×H×W×3: one block to copy
    if not on_device:
        u8 = download_batch(u8)
    return [u8[i].permute(2, 0, 1) if ok else (result[i] if on_device else result[i].float().cpu())
            for i, ok in enumerate(finite)]


class _QueuedBatch:
    """A batch's pictures on their way from the GPU: rounded to 8 bits and copied into pinned host
    memory on the device's stream, with an event recorded after the copy. Nothing here waits."""

    def __init__(self, result: torch.Tensor):
        from cvtools.io.decode import to_uint8

        finite = torch.isfinite(result).flatten(1).all(1)
        u8 = to_uint8(result).permute(0, 2, 3, 1).contiguous()  # N×H×W×3: one block to copy
        self.host = torch.empty(u8.shape, dtype=u8.dtype, pin_memory=True)
        self.host.copy_(u8, non_blocking=True)
        self.finite = torch.empty(finite.shape, dtype=torch.bool, pin_memory=True)
        self.finite.copy_(finite, non_blocking=True)
        # (u8 and result may be freed now: the caching allocator reuses their memory only for work
        # queued after this copy on the same stream)
        self.copied = torch.cuda.Event()
        self.copied.record()


class QueuedPicture:
    """One picture of a batch whose copy back from the GPU was queued (``stylize_batch(...,
    queued=True)``). Why: a synchronous copy makes the thread that drives the GPU wait for the whole
    batch's network before it can upload the next batch, so the GPU idles while the host stacks
    pixels and hands results over; with the copy queued, the writer thread that needs the bytes
    waits (``get()``, the GIL released) and the device loop goes on. ``get()`` returns what
    ``stylize_batch`` returns without ``queued``: 3×H×W uint8 on the CPU, or, for a picture with NaN
    or infinite values, a float tensor of NaN that saving refuses."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: _QueuedBatch, index: int):
        self.batch, self.index = batch, index

    def get(self) -> torch.Tensor:
        batch = self.batch
        batch.copied.synchronize()
        if bool(batch.finite[self.index]):
            return batch.host[self.index].permute(2, 0, 1)
        return torch.full((3, *batch.host.shape[1:3]), float("nan"))


def download_batch(u8: torch.Tensor) -> torch.Tensor:
    """A device tensor on the CPU in one copy (into pinned memory from a GPU: faster, and the
    buffer comes back to PyTorch's pinned cache once its images are written)."""
    if u8.device.type != "cuda":
        return u8.cpu()
    host = torch.empty(u8.shape, dtype=u8.dtype, pin_memory=True)
    host.copy_(u8)
    return host
