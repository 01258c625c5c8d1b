"""Bundled styles on the CPU without PyTorch: the shipped ONNX graphs through onnxruntime.

``cvtools stylize photo.jpg -s mona`` on a laptop spent most of its time importing torch
(1.2-1.7 s of a 2.4 s whole command at 512², BENCHMARKS.md "Bundled styles without torch").
The six bundled styles also ship as ONNX graphs (``bundled/onnx/NAME.onnx``: the checked export
of :func:`cvtools.export.export_style`, fp32 arithmetic with the weights that fp16 holds
exactly stored as fp16 and cast back in the graph: bit-identical outputs, 1.9 MB instead of
3.1 MB), pinned by SHA-256 in ``bundled/onnx/manifest.json`` together with the SHA-256 of the
weights they were exported from. When the work allows it (:func:`torch_free_stylizer` decides,
in one place), a photo is decoded with PIL, run through onnxruntime on numpy arrays and saved by
:mod:`cvtools.io` as usual (marker, sRGB, EXIF policy, atomic writes, naming): no torch.

What the PyTorch path would do differently falls back to it, image by image: tiling (a forced
``tile`` or an image too large for memory), images under 16 px, float (non-8-bit) results.
Differences from the PyTorch CPU path: this runs fp32, where PyTorch picks bf16 on CPUs that
compute it natively (AMX, AVX512-BF16); fp32 is the more exact of the two (8-bit outputs agree
within a few levels: tests/test_torch_free.py measures it). This module imports neither torch
nor onnxruntime at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from cvtools.errors import CvtoolsError, WeightsError

ONNX_DIR = Path(__file__).resolve().parent / "bundled" / "onnx"
MANIFEST = ONNX_DIR / "manifest.json"
#: set to 0 to always take the PyTorch path (comparisons, debugging)
ENV_SWITCH = "CVTOOLS_TORCH_FREE"
#: cvtools.style.stylize.MIN_SIDE and TILE_OVERLAP (not imported: that loads torch; the tests
#: keep them equal)
MIN_SIDE = 16
TILE_OVERLAP = 128
#: cvtools.style.network.BASE_CHANNELS (same reason)
BASE_CHANNELS = (32, 64, 128)
#: cvtools.style.stylize.CPU_ACTIVATION_BUDGET
CPU_ACTIVATION_BUDGET = 1536 * 1024 ** 2
#: inputs the video path handles (GIF and WebP may be animated: not worth reading here)
_VIDEO_LIKE = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".webp"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest() -> dict:
    """The shipped graphs' manifest ({} when the package has none); validated entries only."""
    try:
        data = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    styles = data.get("styles") if isinstance(data, dict) else None
    if not isinstance(styles, dict):
        return {}
    good = {}
    for name, entry in styles.items():
        if (isinstance(entry, dict) and isinstance(entry.get("file"), str) and "/" not in entry["file"]
                and all(isinstance(entry.get(k), str) and len(entry[k]) == 64 for k in ("sha256", "weights_sha256"))):
            good[name] = entry
    return good


def bundled_graph(record) -> Optional[Path]:
    """The shipped ONNX graph of a bundled style's record, or None when there is none for it, it
    was exported from other weights than the record pins, or the file is not the one pinned (a
    damaged install falls back to PyTorch, which checks the weights itself)."""
    entry = read_manifest().get(getattr(record, "name", None))
    pinned = (record.weights or {}).get("sha256") if getattr(record, "weights", None) else None
    if entry is None or not pinned or entry["weights_sha256"] != str(pinned).lower():
        return None
    path = ONNX_DIR / entry["file"]
    try:
        return path if path.is_file() and _sha256(path) == entry["sha256"] else None
    except OSError:
        return None


def _onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def cpu_work_allows(device, precision, compile: bool, engine: str, inputs: Sequence) -> bool:
    """What every torch-free route asks of the work (the bundled styles' here, the paintings' in
    :mod:`cvtools.style.fast_cpu_painting`): the CPU (device auto on a machine without a GPU
    driver or MPS, or cpu); precision auto or fp32; no compile; engine pytorch or onnxruntime (the
    same runtime); no video or possibly animated inputs; onnxruntime installed; and
    $CVTOOLS_TORCH_FREE not 0."""
    from cvtools.device import expects_gpu

    if os.environ.get(ENV_SWITCH, "1") == "0" or compile:
        return False
    if device not in (None, "auto", "cpu") or expects_gpu(device if device else "auto"):
        return False
    if precision not in (None, "auto", "fp32") or engine not in ("pytorch", "onnxruntime"):
        return False
    if any(Path(str(p)).suffix.lower() in _VIDEO_LIKE for p in inputs):
        return False
    return _onnxruntime_available()


def is_pil(value) -> bool:
    """A PIL image (a tensor has ``.mode`` and ``.size`` too: methods, so duck typing misleads)."""
    from PIL import Image

    return isinstance(value, Image.Image)


def shipped_session(path: Path, threads: Optional[int] = None):
    """:func:`cvtools.export.cpu_session` for a shipped graph: one it cannot load is a one-line
    WeightsError naming the file and saying to reinstall (the package is damaged)."""
    from cvtools.export import cpu_session

    try:
        return cpu_session(path, threads)
    except CvtoolsError as exc:
        raise WeightsError(f"{exc}; reinstall cvtools") from None


def torch_free_stylizer(record, device: str = "auto", precision: str = "auto", compile: bool = False,
                        engine: str = "pytorch", inputs: Sequence = (),
                        on_note: Optional[Callable[[str], None]] = None) -> Optional["OnnxBundledStylizer"]:
    """The routing decision: an :class:`OnnxBundledStylizer` when the work runs the same
    without torch, else None (the caller builds the PyTorch Stylizer). Yes only for a bundled
    style (record) with a shipped, pinned graph; the CPU (device auto on a machine without a GPU
    driver or MPS, or cpu); precision auto or fp32; no compile; the default engine (or
    onnxruntime: the same runtime); no video or possibly animated inputs; onnxruntime
    installed; and $CVTOOLS_TORCH_FREE not 0."""
    if record is None or not cpu_work_allows(device, precision, compile, engine, inputs):
        return None
    graph = bundled_graph(record)
    if graph is None:
        return None
    return OnnxBundledStylizer(record, graph, precision=precision, on_note=on_note)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic (Intel AMX or AVX512-BF16): there bf16 convolutions run
    much faster than fp32; elsewhere PyTorch emulates bf16 and it is slower. (Here, not in
    stylize.py, so that the torch-free path can ask too; stylize.py imports it.)"""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class OnnxBundledStylizer:
    """A bundled style's shipped ONNX graph in onnxruntime on the CPU, on PIL images and numpy
    arrays: the :class:`~cvtools.style.stylize.Stylizer` call (``image, strength,
    preserve_color, tile, progress, as_uint8``) for what it can do without torch, which is a whole
    8-bit image of at least 16 px (then the result is an RGB PIL image, what ``save_image``
    takes); anything else (tiles, tiny images, tensors, float results) goes to a PyTorch Stylizer
    built at the first such image. ``name``, ``last_tiles`` and ``on_note`` as the Stylizer's."""

    engine = "onnxruntime"

    def __init__(self, record, graph: Path, precision: str = "auto", threads: Optional[int] = None,
                 on_note: Optional[Callable[[str], None]] = None):
        import onnxruntime  # noqa: F401  (timed as an import, before the model)

        from cvtools.timings import mark

        mark("imports")
        self.record = record
        self.graph = Path(graph)
        self.precision = precision
        self.on_note = on_note
        self.last_tiles = 0
        self._torch = None
        self.session = shipped_session(self.graph, threads)
        self.input_name = self.session.get_inputs()[0].name
        mark("model")

    @property
    def name(self) -> str:
        return self.record.name

    # ------------------------------------------------------------------ the PyTorch fallback
    def torch_stylizer(self):
        """The PyTorch Stylizer of the same record (built once, at the first image that needs it)."""
        if self._torch is None:
            from cvtools.style.stylize import Stylizer

            self._torch = Stylizer(self.record, device="cpu", precision=self.precision, on_note=self.on_note)
        self._torch.on_note = self.on_note
        return self._torch

    def _whole_fits(self, h: int, w: int) -> bool:
        """Stylizer.auto_tile(h, w) is None, computed as the PyTorch CPU path would (its dtype's
        bytes per pixel against the same memory budget)."""
        from cvtools.device import available_cpu_memory

        width = float((self.record.network or {}).get("width", 0.5))
        c1, c2, _ = (max(8, int(round(c * width / 8)) * 8) for c in BASE_CHANNELS)
        elem = 2 if self.precision in (None, "auto") and cpu_has_native_bf16() else 4
        per_pixel = int((4 * c1 + c2 // 2 + 12) * elem * 1.1)
        budget = int(min(available_cpu_memory() * 0.5, CPU_ACTIVATION_BUDGET))
        return h * w * per_pixel <= budget

    def needs_torch(self, image, tile="auto", as_uint8: bool = True) -> bool:
        """Whether this image goes to the PyTorch Stylizer (see the class)."""
        from cvtools.specs import parse_tile

        if not as_uint8 or not is_pil(image):
            return True
        w, h = image.size
        if min(w, h) < MIN_SIDE:
            return True
        side = parse_tile(tile, 2 * TILE_OVERLAP)
        if side is None:
            return False
        if side == "auto":
            return not self._whole_fits(h, w)
        return side < max(h, w)

    # ------------------------------------------------------------------ stylizing
    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False, tile="auto",
                 progress: Optional[Callable[[int], None]] = None, as_uint8: bool = False):

        from cvtools.style.limits import checked_strength

        strength = checked_strength(strength)
        self.last_tiles = 0
        if self.needs_torch(image, tile, as_uint8):
            torch_stylizer = self.torch_stylizer()
            out = torch_stylizer(image, strength=strength, preserve_color=preserve_color, tile=tile,
                                 progress=progress, as_uint8=as_uint8)
            self.last_tiles = torch_stylizer.last_tiles
            return out
        return self.stylize_pil(image, strength, preserve_color)

    def stylize_pil(self, image, strength: float = 1.0, preserve_color: bool = False):
        """A whole PIL image (≥ 16 px) → the stylized RGB PIL image, as the Stylizer's whole-image
        path computes it (finish_pixels, then to_uint8's rounding), in numpy."""
        import numpy as np
        from PIL import Image

        from cvtools.io.decode import normalize_mode

        # as the PyTorch path's one_image: 16-bit modes scaled to 8 bits (a plain convert clips them
        # near-white), palettes, CMYK and alpha to RGB (torch-free: decode imports torch lazily)
        rgb = image if image.mode == "RGB" else normalize_mode(image)[0]
        original = np.asarray(rgb, dtype=np.uint8).astype(np.float32) / np.float32(255.0)  # H×W×3
        if strength == 0.0:
            return rgb.copy()
        x = np.ascontiguousarray(original.transpose(2, 0, 1)[None])
        y = self.session.run(None, {self.input_name: x})[0][0].transpose(1, 2, 0)  # H×W×3
        out = finish_pixels(y, original, strength, preserve_color)
        if not np.isfinite(out).all():
            raise CvtoolsError(f"{self.name}: the result has NaN or infinite values (a numerical failure)")
        return Image.fromarray(np.rint(out * np.float32(255.0)).astype(np.uint8), "RGB")


def luminance(rgb):
    """BT.601 luma of H×W×3 float32 (cvtools.style.stylize.luminance, channels last)."""
    return 0.299 * rgb[..., 0:1] + 0.587 * rgb[..., 1:2] + 0.114 * rgb[..., 2:3]


def finish_pixels(stylized, original, strength: float, preserve_color: bool):
    """cvtools.style.stylize.finish_pixels on H×W×3 float32 numpy arrays."""
    import numpy as np

    stylized = np.clip(stylized.astype(np.float32, copy=False), 0, 1)
    if preserve_color:
        stylized = np.clip(original + (luminance(stylized) - luminance(original)), 0, 1)
    if strength < 1.0:
        stylized = original + np.float32(strength) * (stylized - original)
    return np.clip(stylized, 0, 1)
