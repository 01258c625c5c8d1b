"""Image input and output shared by every command.

Reading: EXIF orientation applied; grayscale, palette, CMYK, 16-bit and alpha inputs normalised
to 8-bit RGB (+ optional alpha); a decompression-bomb guard; every failure becomes an
:class:`~cvtools.errors.ImageError` naming the file.

Writing: atomic (temporary file in the target directory, then rename), never onto an input,
never over an existing file unless asked.
"""

from __future__ import annotations

import glob
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cvtools.errors import CvtoolsError, ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

#: Default limit on decoded pixels (a 100-megapixel image); guards against decompression bombs.
DEFAULT_MAX_PIXELS = 100_000_000

# Pillow's own guard warns or raises at its own thresholds; we apply ours explicitly instead.
Image.MAX_IMAGE_PIXELS = None
# Truncated files must fail loudly, never decode into half-grey images.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def max_pixels_from_env() -> Optional[int]:
    value = os.environ.get("CVTOOLS_MAX_PIXELS")
    if value is None:
        return DEFAULT_MAX_PIXELS
    n = int(value)
    return None if n <= 0 else n


@dataclass
class LoadedImage:
    """An input image: 8-bit RGB plus alpha if the file had any."""

    path: Path
    rgb: Image.Image
    alpha: Optional[Image.Image] = None

    @property
    def size(self):
        return self.rgb.size

    def tensor(self):
        """RGB as a float tensor 3×H×W in [0, 1]."""
        return pil_to_tensor(self.rgb)

    def alpha_tensor(self):
        return None if self.alpha is None else pil_to_tensor(self.alpha)


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer or float modes to 8-bit 'L' (Pillow cannot convert them well)."""
    import numpy as np

    arr = np.asarray(im)
    if im.mode.startswith("I;16") or arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round()
    elif im.mode == "I":
        hi = 65535.0 if arr.max() > 255 else 255.0
        arr = arr.astype(np.float32) * (255.0 / hi)
    elif im.mode == "F":
        hi = 1.0 if arr.max() <= 1.0 else 255.0
        arr = arr.astype(np.float32) * (255.0 / hi)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def normalize_mode(im: Image.Image) -> tuple[Image.Image, Optional[Image.Image]]:
    """Return (RGB image, alpha or None) for any Pillow mode."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        im = _to_8bit(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "CMYK":
        im = im.convert("RGB")
    elif im.mode in ("1", "L", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif im.mode == "LA" or im.mode == "La":
        im = im.convert("RGBA")
    elif im.mode == "RGBa":
        im = im.convert("RGBA")
    elif im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    if im.mode == "RGBA":
        alpha = im.getchannel("A")
        if alpha.getextrema() == (255, 255):
            return im.convert("RGB"), None
        return im.convert("RGB"), alpha
    return im, None


def load_image(path, max_pixels: Optional[int] = -1) -> LoadedImage:
    """Decode an image file into 8-bit RGB (+ alpha), EXIF orientation applied.

    ``max_pixels=-1`` takes the limit from ``CVTOOLS_MAX_PIXELS`` (default 100 MP); ``None``
    disables the guard. Animated images give their first frame.
    """
    path = Path(path)
    if max_pixels == -1:
        max_pixels = max_pixels_from_env()
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image")
    try:
        if path.stat().st_size == 0:
            raise ImageError(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageError(
                        path,
                        f"{w}x{h} is {w * h / 1e6:.0f} megapixels, over the {max_pixels / 1e6:.0f} MP "
                        "safety limit (possible decompression bomb); set CVTOOLS_MAX_PIXELS=0 "
                        "or --max-pixels 0 to allow it",
                    )
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb, alpha = normalize_mode(im)
                rgb.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not a recognised image file") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated data, bad CRC, broken headers
        reason = str(exc) or type(exc).__name__
        raise ImageError(path, f"cannot decode image ({reason})") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - our own guard comes first
        raise ImageError(path, str(exc)) from None
    if min(rgb.size) < 1:
        raise ImageError(path, "image has no pixels")
    return LoadedImage(path, rgb, alpha)


def pil_to_tensor(im: Image.Image):
    import numpy as np
    import torch

    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def tensor_to_pil(t, mode: Optional[str] = None) -> Image.Image:
    """A float tensor C×H×W (or 1×C×H×W) in [0, 1] to an 8-bit PIL image."""
    import numpy as np

    t = t.detach()
    if t.dim() == 4:
        t = t[0]
    arr = t.float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(np.ascontiguousarray(arr), mode or "RGB")


# ----------------------------------------------------------------------------- inputs


def expand_inputs(inputs: Iterable[str], recursive: bool = True) -> tuple[list[Path], list[ImageError]]:
    """Files, directories (searched for images) and glob patterns to a list of image paths.

    Returns (paths, problems): a pattern or directory that yields nothing is a problem, reported
    by the caller while the rest of the batch goes on.
    """
    paths: list[Path] = []
    problems: list[ImageError] = []
    seen = set()

    def add(p: Path):
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            paths.append(p)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                q for q in (p.rglob("*") if recursive else p.iterdir())
                if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS and not q.name.startswith(".")
            )
            if not found:
                problems.append(ImageError(p, "directory holds no images"))
            for q in found:
                add(q)
        elif p.exists():
            add(p)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
            if not found:
                problems.append(ImageError(item, "pattern matches no files"))
            for q in found:
                add(q)
        else:
            problems.append(ImageError(p, "no such file or directory"))
    return paths, problems


# ----------------------------------------------------------------------------- outputs


def output_path_for(
    input_path: Path,
    output: Optional[str],
    suffix: str,
    ext: Optional[str] = None,
    many: bool = False,
    overwrite: bool = False,
    inputs: Sequence[Path] = (),
) -> Path:
    """Where the result for ``input_path`` goes.

    - no ``-o``: next to the input, ``<stem>_<suffix><ext>``;
    - ``-o`` an existing directory, a path ending in '/', or several inputs: that directory;
    - otherwise ``-o`` is the file itself.
    Raises ImageError when the target is an input or exists (unless ``overwrite``).
    """
    input_path = Path(input_path)
    ext = ext or (input_path.suffix if input_path.suffix.lower() in IMAGE_EXTENSIONS else ".png")
    name = f"{input_path.stem}_{suffix}{ext}"
    if output is None:
        target = input_path.with_name(name)
    else:
        out = Path(output)
        if out.is_dir() or output.endswith(("/", os.sep)) or many:
            target = out / name
        else:
            target = out
    resolved = os.path.abspath(target)
    for p in list(inputs) + [input_path]:
        if os.path.abspath(p) == resolved:
            raise ImageError(target, "output would overwrite an input; choose another -o")
    if target.exists() and not overwrite:
        raise ImageError(target, "output exists; pass --overwrite to replace it")
    return target


def atomic_write(path, write_fn) -> None:
    """Call ``write_fn(tmp_path)`` and move the result into place; nothing partial is left."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(path, f"cannot create output directory ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise ImageError(path, "output directory is not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (CvtoolsError, KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, OSError):
            raise ImageError(path, f"cannot write ({exc.strerror or exc})") from None
        raise


_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF", ".ppm": "PPM"}


def save_image(path, image, alpha=None, quality: int = 95) -> Path:
    """Atomically save a PIL image or a [0, 1] tensor (C×H×W), with optional alpha."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(path, f"unknown output format {path.suffix!r}; use .png, .jpg or .webp")
    im = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    if alpha is not None:
        a = alpha if isinstance(alpha, Image.Image) else tensor_to_pil(alpha)
        if a.size != im.size:
            a = a.resize(im.size, Image.BILINEAR)
        if fmt in ("PNG", "WEBP", "TIFF"):
            im = im.convert("RGB")
            im.putalpha(a.convert("L"))
    if fmt == "JPEG" and im.mode != "RGB":
        im = im.convert("RGB")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}

    def write(tmp):
        im.save(tmp, format=fmt, **kwargs)

    atomic_write(path, write)
    return path
