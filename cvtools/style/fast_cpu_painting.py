"""Paintings and blends on the CPU without PyTorch: the any-painting network's shipped ONNX graphs
through onnxruntime.

``cvtools stylize photo.jpg -s painting.jpg`` on a laptop spent most of its ~2 s importing torch
(BENCHMARKS.md, "Any painting in one pass on the CPU"); the network itself takes a quarter of a
second. The any-painting network also ships as two ONNX graphs (``bundled/onnx/arbitrary_*.onnx``,
made by ``tools/export_bundled_onnx.py`` from :func:`cvtools.export.export_arbitrary`'s checked
export and pinned in ``bundled/onnx/manifest.json`` with the SHA-256 of the weights they hold):

- the **encoder** (Lite0's trunk and the style MLP): its weights are stored as fp16, rounded
  (Lite0's folded weights are not fp16 values; 9.7 MB instead of 18.8). fp32 arithmetic; the
  embeddings move by under 1e-3 of their largest value and the pictures by under one 8-bit
  level (the manifest records the measured difference; tests/test_torch_free_painting.py checks);
- the **transformer**: the weights fp16 holds exactly stored as fp16, bit-identical to its fp32
  export.

A painting is read and checked with PIL (:func:`cvtools.style.records.load_painting`, as the
command always did), resized as :func:`cvtools.ops.resize` does (PIL's bilinear filter on float
channels when shrinking, which is what PyTorch's antialiased resize was made to match; numpy's
bilinear when enlarging), encoded once; blends and ``strength`` are weighted means of embeddings,
as in :class:`cvtools.style.painting.NetworkPaintingStylizer`, whose call this class answers.

When (:func:`torch_free_painting_stylizer` decides, in one place): paintings and bundled styles
(names), the CPU, precision auto or fp32, no compile, no fitting, no refining, no video, and at
most :data:`MAX_PHOTOS` photos (per 1024-px photo onnxruntime is slower than PyTorch on this
network, so a large folder amortises torch's import). Images under :data:`MIN_SIDE` px and float
results go to PyTorch.
This module imports neither torch nor onnxruntime at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from cvtools.errors import CvtoolsError, WeightsError, safe_path
from cvtools.style.fast_cpu import MANIFEST, ONNX_DIR, _sha256, cpu_work_allows, finish_pixels, is_pil, shipped_session

#: cvtools.style.painting.MIN_SIDE (not imported: that loads torch; the tests keep them equal):
#: smaller photos are painted larger and brought back, which the PyTorch path does
MIN_SIDE = 32
#: cvtools.style.arbitrary.MIN_ENCODER_SHORT_SIDE (same reason)
MIN_ENCODER_SHORT_SIDE = 64
#: cvtools.style.painting.HUGE_PAINTING_SIDE (same reason): larger paintings are box-filtered to a
#: 1024-px short side first
HUGE_PAINTING_SIDE = 2048
#: the most photos a run takes this path for. Measured on 2 CPU cores (BENCHMARKS.md, "Paintings
#: without torch"): the whole command saves ~1.3 s (torch's import and load), and a 1024×683
#: photo costs 0.08 s more in onnxruntime (0.31 s against PyTorch's 0.23 s: its instance norms
#: are several reductions where PyTorch's are one pass), so a folder of ~15 such photos breaks
#: even; at 4000×3000 onnxruntime is the faster (7.2 s against 7.7 s). Larger folders import torch.
MAX_PHOTOS = 16
#: the any-painting network's record (cvtools.style.arbitrary.BUNDLED_RECORD)
BUNDLED_RECORD = Path(__file__).resolve().parent / "bundled" / "arbitrary.json"


def read_arbitrary_entry() -> Optional[Dict]:
    """The manifest's entry for the any-painting network's graphs, or None when it has none or
    it is malformed."""
    try:
        entry = json.loads(MANIFEST.read_text()).get("arbitrary")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("weights_sha256"), str):
        return None
    for part in ("encoder", "transformer"):
        item = entry.get(part)
        if not (isinstance(item, dict) and isinstance(item.get("file"), str) and "/" not in item["file"]
                and isinstance(item.get("sha256"), str) and len(item["sha256"]) == 64):
            return None
    return entry


def read_record() -> Optional[Dict]:
    """The shipped network's record (its weights' SHA-256, the bundled styles' embeddings), or None."""
    try:
        record = json.loads(BUNDLED_RECORD.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else None


def shipped_graphs() -> Optional[tuple]:
    """(encoder, transformer) paths of the shipped graphs, or None when the manifest has none,
    they were exported from other weights than the record pins, or a file is not the pinned one
    (a damaged install falls back to PyTorch, which checks the weights itself)."""
    entry, record = read_arbitrary_entry(), read_record()
    if entry is None or record is None or entry["weights_sha256"] != record["sha256"].lower():
        return None
    paths = []
    for part in ("encoder", "transformer"):
        path = ONNX_DIR / entry[part]["file"]
        try:
            if not path.is_file() or _sha256(path) != entry[part]["sha256"]:
                return None
        except OSError:
            return None
        paths.append(path)
    return tuple(paths)


def torch_free_painting_stylizer(sources, device: str = "auto", precision: str = "auto", compile: bool = False,
                                 engine: str = "pytorch", inputs: Sequence = (), painting_size: Optional[int] = None,
                                 fitting: bool = False, refining: bool = False,
                                 on_note: Optional[Callable[[str], None]] = None,
                                 name: Optional[str] = None) -> Optional["OnnxPaintingStylizer"]:
    """The routing decision for the any-painting network: an :class:`OnnxPaintingStylizer` when
    the work runs the same without torch, else None (the caller builds the PyTorch one).

    sources: [(source, weight)], a source being a painting (PIL image, as ``--style`` reads it)
    or a bundled style's name. Yes only for those; the CPU (device auto on a machine without a
    GPU driver or MPS, or cpu); precision auto or fp32; no compile, fitting or refining; engine
    pytorch or onnxruntime; at most :data:`MAX_PHOTOS` inputs, none a video or possibly animated;
    onnxruntime installed; the shipped graphs pinned; and $CVTOOLS_TORCH_FREE not 0."""
    inputs = list(inputs)
    if fitting or refining or len(inputs) > MAX_PHOTOS or not cpu_work_allows(device, precision, compile, engine,
                                                                                inputs):
        return None
    if not all(isinstance(s, str) or is_pil(s) for s, _ in sources):
        return None  # tensors and embeddings: the library's PyTorch class takes them
    graphs = shipped_graphs()
    record = read_record()
    if graphs is None or record is None:
        return None
    known = record.get("style_embeddings") or {}
    if any(isinstance(s, str) and s not in known for s, _ in sources):
        return None
    return OnnxPaintingStylizer(sources, graphs, record, painting_size=painting_size, on_note=on_note, name=name)


# ---------------------------------------------------------------------------- resizing as PyTorch does


def resize_like_torch(rgb, size):
    """H×W×3 float32 → ``size`` (h, w) as :func:`cvtools.ops.resize` (PyTorch's bilinear,
    antialiased when either side shrinks) computes it: PIL's bilinear filter on each float
    channel when shrinking (PyTorch's antialiased kernel is a port of it: equal within fp32
    rounding), the half-pixel bilinear formula in numpy when enlarging both sides (PIL's
    differs from PyTorch's at the borders)."""
    import numpy as np
    from PIL import Image

    h, w = size
    big_h, big_w = rgb.shape[:2]
    if (h, w) == (big_h, big_w):
        return rgb
    if h < big_h or w < big_w:
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), "F").resize((w, h), Image.BILINEAR))
                         for c in range(3)], axis=-1)

    def taps(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return low, np.minimum(low + 1, n_in - 1), (src - low).astype(np.float32)

    y0, y1, fy = taps(big_h, h)
    x0, x1, fx = taps(big_w, w)
    rows = rgb[y0] * (1 - fy)[:, None, None] + rgb[y1] * fy[:, None, None]
    return (rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]).astype(np.float32)


def encoder_shape(h: int, w: int, config: Dict, long_side: Optional[int] = None):
    """cvtools.style.arbitrary.encoder_shape on the config's dict (the tests keep them equal)."""
    long_side = long_side or config.get("encoder_long_side")
    if long_side:
        scale = max(long_side / max(h, w), MIN_ENCODER_SHORT_SIDE / min(h, w))
    else:
        scale = config["encoder_size"] / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


class OnnxPaintingStylizer:
    """Paintings and bundled styles (names) blended and painted by the shipped graphs in
    onnxruntime, on PIL images and numpy arrays: the
    :class:`~cvtools.style.painting.NetworkPaintingStylizer` call (``image, strength,
    preserve_color, tile, progress, as_uint8``; ``strength`` in style space) for whole 8-bit
    images of at least :data:`MIN_SIDE` px (the result is then an RGB PIL image); anything else
    goes to a NetworkPaintingStylizer built at the first such image. Attributes ``name``,
    ``embedding`` (the blend, numpy), ``last_tiles`` (0: images go whole), ``on_note``."""

    engine = "onnxruntime"

    def __init__(self, sources, graphs, record: Dict, painting_size: Optional[int] = None,
                 threads: Optional[int] = None, on_note: Optional[Callable[[str], None]] = None,
                 name: Optional[str] = None):
        import numpy as np
        import onnxruntime  # noqa: F401  (timed as an import, before the model)

        from cvtools.style.records import normalized_weights
        from cvtools.timings import mark

        mark("imports")
        self.sources = list(sources)
        weights = normalized_weights([w for _, w in self.sources])
        self.painting_size = painting_size
        self.on_note = on_note
        self.last_tiles = 0
        self._torch = None
        self.encoder, self.transformer = (shipped_session(path, threads) for path in graphs)
        meta = self.transformer.get_modelmeta().custom_metadata_map
        try:
            self.config = json.loads(meta["config"])
        except (KeyError, ValueError):
            raise WeightsError(f"{safe_path(graphs[1])}: the graph's metadata has no network config; "
                               "reinstall cvtools") from None
        mark("model")
        stored = record.get("style_embeddings") or {}
        embeddings = [np.asarray(stored[s], dtype=np.float32) if isinstance(s, str) else self.encode(s, painting_size)
                      for s, _ in self.sources]
        self.embedding = sum(e * np.float32(w) for e, w in zip(embeddings, weights)).astype(np.float32)
        self.name = name or "+".join(dict.fromkeys(s if isinstance(s, str) else "painting" for s, _ in self.sources))

    # ------------------------------------------------------------------ styles
    def encode(self, image, long_side: Optional[int] = None):
        """A PIL image (a painting, or a photo for its own style) → its embedding (1-D float32),
        read as :meth:`cvtools.style.arbitrary.ArbitraryStylizer.encode` reads it."""
        import numpy as np
        from PIL import Image

        from cvtools.io.decode import normalize_mode

        rgb = image if image.mode == "RGB" else normalize_mode(image)[0]  # 16-bit scaled, not clipped
        if min(rgb.size) > HUGE_PAINTING_SIDE:  # as cvtools.style.painting._painting_tensor
            w, h = rgb.size
            f = 1024 / min(w, h)
            rgb = rgb.resize((max(1, round(w * f)), max(1, round(h * f))), Image.BOX)
        pixels = np.asarray(rgb, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
        x = np.clip(resize_like_torch(pixels, encoder_shape(*pixels.shape[:2], self.config, long_side)), 0, 1)
        feed = {self.encoder.get_inputs()[0].name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])}
        return self.encoder.run(None, feed)[0][0].astype(np.float32)

    # ------------------------------------------------------------------ the PyTorch fallback
    def torch_stylizer(self):
        """The PyTorch NetworkPaintingStylizer of the same styles (built once, at the first image
        that needs it)."""
        if self._torch is None:
            from cvtools.style.painting import NetworkPaintingStylizer

            self._torch = NetworkPaintingStylizer(self.sources, device="cpu", precision="fp32", on_note=self.on_note,
                                                  name=self.name, painting_size=self.painting_size)
        self._torch.on_note = self.on_note
        return self._torch

    def needs_torch(self, image, as_uint8: bool = True) -> bool:
        """Whether this image goes to the PyTorch stylizer (see the class)."""
        return not as_uint8 or not is_pil(image) or min(image.size) < MIN_SIDE

    # ------------------------------------------------------------------ stylizing
    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False, tile=None,
                 progress=None, as_uint8: bool = False):
        from cvtools.style.limits import checked_strength

        strength = checked_strength(strength)
        if self.needs_torch(image, as_uint8):
            return self.torch_stylizer()(image, strength=strength, preserve_color=preserve_color, tile=tile,
                                         progress=progress, as_uint8=as_uint8)
        return self.stylize_pil(image, float(strength), preserve_color)

    def stylize_pil(self, image, strength: float = 1.0, preserve_color: bool = False):
        """A whole PIL image (≥ MIN_SIDE px) → the painted RGB PIL image, as the PyTorch
        stylizer computes it (the style mixed with the photo's own at ``strength``, then
        finish_pixels and to_uint8's rounding), in numpy."""
        import numpy as np
        from PIL import Image

        from cvtools.io.decode import normalize_mode

        rgb = image if image.mode == "RGB" else normalize_mode(image)[0]  # 16-bit scaled, not clipped
        if strength == 0.0:
            return rgb.copy()
        original = np.asarray(rgb, dtype=np.uint8).astype(np.float32) / np.float32(255.0)  # H×W×3
        style = self.embedding
        if strength < 1.0:
            style = ((1 - strength) * self.encode(rgb) + strength * style).astype(np.float32)
        feed = {"image": np.ascontiguousarray(original.transpose(2, 0, 1)[None]), "embedding": style[None]}
        painted = self.transformer.run(None, feed)[0][0].transpose(1, 2, 0)
        out = finish_pixels(painted, original, 1.0, preserve_color)
        if not np.isfinite(out).all():
            raise CvtoolsError(f"{self.name}: the result has NaN or infinite values (a numerical failure)")
        return Image.fromarray(np.rint(out * np.float32(255.0)).astype(np.uint8), "RGB")
