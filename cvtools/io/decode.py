"""Decoding image files, and converting between PIL images and tensors.

Reading: EXIF orientation applied; grayscale, palette, CMYK, 16-bit and alpha inputs normalised
to 8-bit RGB (+ optional alpha); a decompression-bomb guard; every failure becomes an
:class:`~cvtools.errors.ImageError` naming the file. Colour: an embedded ICC profile other than
sRGB (Adobe RGB, Display P3, ProPhoto) is converted to sRGB on load; :func:`srgb_icc` is the
profile every output is tagged with.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import threading
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cvtools.errors import ImageError, UsageError, one_line

#: Default limit on decoded pixels (a 100-megapixel image); guards against decompression bombs.
DEFAULT_MAX_PIXELS = 100_000_000

#: Longest side / shortest side beyond which an image is refused as degenerate. Every command
#: scales the short side up to what the network needs (224-256 px; a dream's smallest octave),
#: so a 65535×1 strip became a 16-million-pixel-long one (18 GB for classify). The widest real
#: panoramas are about 12:1.
MAX_ASPECT_RATIO = 50

# Pillow's settings are process-wide and belong to whoever imports cvtools: importing this module
# changes none of them. Where a decode needs another value (see _pillow_settings), it is set for
# that decode only and put back afterwards.
_pillow_lock = threading.Lock()
_pillow_held = {}  # setting name -> [decodes holding it, the value to put back]


@contextmanager
def _pillow_setting(module, name: str, value):
    """``module.name = value`` while this decode runs (and any others holding the same setting,
    which all ask for the same value); the earlier value is put back when the last one ends."""
    key = f"{module.__name__}.{name}"
    with _pillow_lock:
        hold = _pillow_held.setdefault(key, [0, None])
        if hold[0] == 0:
            hold[1] = getattr(module, name)
            setattr(module, name, value)
        hold[0] += 1
    try:
        yield
    finally:
        with _pillow_lock:
            hold[0] -= 1
            if hold[0] == 0:
                setattr(module, name, hold[1])
                del _pillow_held[key]


@contextmanager
def _pillow_settings(lift_pixel_limit: bool = False):
    """What a cvtools decode needs from Pillow's globals, and nothing when they already say it.

    lift_pixel_limit: Pillow's own decompression-bomb threshold (~179 MP raises) is off, for
    images it refuses: cvtools checks the header against its own limit (``CVTOOLS_MAX_PIXELS``,
    ``--max-pixels``) before decoding, and that limit is the one that decides and that names
    the way to allow a large image. Truncated files always fail loudly (never half-grey
    images), even where the importing program told Pillow to accept them.
    """
    with ExitStack() as stack:
        if lift_pixel_limit:
            stack.enter_context(_pillow_setting(Image, "MAX_IMAGE_PIXELS", None))
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            stack.enter_context(_pillow_setting(ImageFile, "LOAD_TRUNCATED_IMAGES", False))
        yield


def max_pixels_from_env() -> Optional[int]:
    """The decoded-pixel limit from ``CVTOOLS_MAX_PIXELS`` (unset: 100 MP; 0 or less: no limit)."""
    value = os.environ.get("CVTOOLS_MAX_PIXELS")
    if value is None or not value.strip():
        return DEFAULT_MAX_PIXELS
    try:
        n = int(value.strip().replace("_", ""))
    except ValueError:
        raise UsageError(f"CVTOOLS_MAX_PIXELS={value!r} is not a whole number of pixels "
                         "(0 disables the limit)") from None
    return None if n <= 0 else n


def checked_size(size, low: int, high: int, param: str = "size") -> Optional[int]:
    """A library call's ``size`` (None, or a whole number of pixels from ``low`` to ``high``, the
    range its command's ``--size`` takes), or a one-line UsageError naming ``param``; checked
    before any file is read (a negative size made 1×1 pictures, a string a raw ValueError)."""
    import numbers

    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise UsageError(f"{param} must be a whole number of pixels from {low} to {high}, not {size!r}", param=param)
    if not low <= size <= high:
        raise UsageError(f"{param} must be from {low} to {high} pixels, not {size}", param=param)
    return int(size)


def _pixels(n: int) -> str:
    """Pixel counts for messages: '4,096 pixels', '12.3 megapixels'."""
    return f"{n / 1e6:.1f} megapixels" if n >= 1_000_000 else f"{n:,} pixels"


#: Formats the loader accepts. Pillow can open many more, some through external programs
#: (EPS runs Ghostscript) or rarely exercised parsers; untrusted input gets only these.
SAFE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "AVIF", "QOI")

# Leading bytes of well-known files, to say what a file is when it cannot be read.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG", True),
    (b"\xff\xd8\xff", "JPEG", True),
    (b"GIF87a", "GIF", True),
    (b"GIF89a", "GIF", True),
    (b"BM", "BMP", True),
    (b"II*\x00", "TIFF", True),
    (b"MM\x00*", "TIFF", True),
    (b"%PDF", "PDF", False),
    (b"%!PS", "PostScript/EPS", False),
    (b"\xc5\xd0\xd3\xc6", "EPS", False),
    (b"8BPS", "Photoshop (PSD)", False),
)


def sniff_image(head: bytes) -> Optional[tuple]:
    """(format name, supported) from a file's first bytes, or None when unknown."""
    for magic, name, ok in _MAGIC:
        if head.startswith(magic):
            return name, ok
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP", True
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC/HEIF", False
        if brand in (b"avif", b"avis"):
            return "AVIF", True
    if head.lstrip()[:5].lower() in (b"<?xml", b"<svg ") or b"<svg" in head[:256].lower():
        return "SVG", False
    return None


def _check_png_crcs(f) -> None:
    """Raise ValueError if a critical PNG chunk (IHDR, PLTE, IDAT, IEND) fails its CRC.

    libpng refuses such files; Pillow checks only some chunks and decodes IDAT without its CRC,
    so a damaged file could otherwise decode into a silently wrong image. Ancillary chunks
    (text, EXIF, colour profiles) are skipped, as libpng does.
    """
    import zlib

    f.seek(8)
    while True:
        header = f.read(8)
        if len(header) < 8:
            return  # truncated: the decoder reports it
        length = int.from_bytes(header[:4], "big")
        ctype = header[4:]
        if length > 0x7FFFFFFF:
            raise ValueError(f"damaged PNG (chunk length {length} out of range)")
        critical = ctype in (b"IHDR", b"PLTE", b"IDAT", b"IEND")
        if critical:
            crc = zlib.crc32(ctype)
            left = length
            while left:
                block = f.read(min(left, 1 << 20))
                if not block:
                    return  # truncated
                crc = zlib.crc32(block, crc)
                left -= len(block)
            stored = f.read(4)
            if len(stored) < 4:
                return
            if int.from_bytes(stored, "big") != crc & 0xFFFFFFFF:
                raise ValueError(f"damaged PNG: the {ctype.decode('latin-1')} chunk fails its CRC check")
            if ctype == b"IEND":
                return
        else:
            f.seek(length + 4, os.SEEK_CUR)


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


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer or float modes to 8-bit 'L' (Pillow cannot convert them well)."""
    import numpy as np

    arr = np.asarray(im)
    if im.mode.startswith("I;16") or arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round()
    elif im.mode == "I":
        hi = 65535.0 if arr.size and arr.max() > 255 else 255.0
        arr = arr.astype(np.float32) * (255.0 / hi)
    elif im.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        hi = 1.0 if arr.size and arr.max() <= 1.0 else 255.0
        arr = arr * (255.0 / hi)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def normalize_mode(im: Image.Image) -> tuple[Image.Image, Optional[Image.Image]]:
    """Return (RGB image, alpha or None) for any Pillow mode."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        im = _to_8bit(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
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


_SRGB_ICC: Optional[bytes] = None
_transforms: dict = {}  # sha1 of an ICC profile -> an ImageCms transform to sRGB, or None (keep as is)
_transforms_lock = threading.Lock()


def srgb_icc() -> bytes:
    """The ICC profile every output is tagged with (LittleCMS's built-in sRGB, 588 bytes)."""
    global _SRGB_ICC
    if _SRGB_ICC is None:
        from PIL import ImageCms

        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        # LittleCMS stamps the creation time into the header: a fixed date keeps outputs
        # byte-for-byte reproducible (the profile has no MD5 ID that would cover it).
        _SRGB_ICC = icc[:24] + struct.pack(">6H", 2000, 1, 1, 0, 0, 0) + icc[36:]
    return _SRGB_ICC


def _srgb_transform(icc: bytes):
    """An RGB->sRGB transform for an embedded profile, or None when the profile is sRGB already,
    not an RGB profile, or unreadable (then the pixels are taken as sRGB, as before)."""
    key = hashlib.sha1(icc).digest()
    with _transforms_lock:
        if key in _transforms:
            return _transforms[key]
    transform = None
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = (src.profile.xcolor_space or "").strip().upper()
        desc = (src.profile.profile_description or "").lower()
        if space == "RGB" and "srgb" not in desc:
            transform = ImageCms.buildTransform(src, ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc())), "RGB", "RGB",
                                                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except Exception:  # a damaged or exotic profile: keep the pixels as they are
        transform = None
    with _transforms_lock:
        if len(_transforms) > 64:
            _transforms.clear()
        _transforms[key] = transform
    return transform


def to_srgb(rgb: Image.Image, icc: Optional[bytes]) -> Image.Image:
    """An RGB image described by the ICC profile ``icc`` converted to sRGB (relative
    colorimetric, as LittleCMS does for matrix profiles). sRGB, non-RGB (grey, CMYK) and
    unreadable profiles leave the image unchanged."""
    if not icc or rgb.mode != "RGB":
        return rgb
    transform = _srgb_transform(bytes(icc))
    if transform is None:
        return rgb
    from PIL import ImageCms

    return ImageCms.applyTransform(rgb, transform)


def _decode(f, path: Path, kind: Optional[tuple], max_pixels: Optional[int]):
    """(RGB, alpha or None) from the open file ``f``, after the header's size is checked against
    ``max_pixels`` and the shape limits; Pillow's exceptions pass through."""
    f.seek(0)
    try:
        im = Image.open(f, formats=SAFE_FORMATS)
    except UnidentifiedImageError:
        if kind is not None:
            raise ImageError(path, f"damaged {kind[0]} file (its header cannot be read)") from None
        raise ImageError(path, "not a recognised image file (cvtools reads JPEG, PNG, GIF, BMP, "
                               "TIFF, WebP, PPM, TGA, AVIF and QOI)") from None
    with im:
        w, h = im.size
        if w < 1 or h < 1:
            raise ImageError(path, f"image has no pixels ({w}x{h})")
        if max(w, h) > MAX_ASPECT_RATIO * min(w, h):
            raise ImageError(path, f"{w}x{h} is a degenerate shape (aspect ratio {max(w, h) / min(w, h):.0f}:1, "
                                   f"over the {MAX_ASPECT_RATIO}:1 limit); crop or pad it first")
        if max_pixels is not None and w * h > max_pixels:
            raise ImageError(
                path,
                f"{w}x{h} is {_pixels(w * h)}, over the {_pixels(max_pixels)} safety limit "
                "(possible decompression bomb); pass max_pixels=0 or set CVTOOLS_MAX_PIXELS=0 "
                "to allow it",
                param="max_pixels",
            )
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()
        icc = im.info.get("icc_profile")
        im = ImageOps.exif_transpose(im)
        rgb, alpha = normalize_mode(im)
        if icc:
            rgb = to_srgb(rgb, icc)
        rgb.load()
        if alpha is not None:
            alpha.load()
    return rgb, alpha


def load_image(path, max_pixels: Optional[int] = -1) -> LoadedImage:
    """Decode an image file into 8-bit RGB (+ alpha), EXIF orientation applied.

    ``max_pixels=-1`` takes the limit from ``CVTOOLS_MAX_PIXELS`` (default 100 MP); ``None``
    (or 0) disables the guard. Animated images give their first frame. Only the formats in
    :data:`SAFE_FORMATS` are decoded. Every failure is an :class:`ImageError` naming the file.
    """
    path = Path(path)
    if max_pixels == -1:
        max_pixels = max_pixels_from_env()
    if max_pixels is not None and max_pixels <= 0:
        max_pixels = None
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(path, "no such file" if not path.is_symlink() else "broken symbolic link") from None
    except NotADirectoryError:
        raise ImageError(path, "no such file (a parent is not a directory)") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read ({exc.strerror or exc})") from None
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode):
        raise ImageError(path, "is a directory, not an image")
    if not _stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end
        raise ImageError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ImageError(path, f"cannot read ({exc.strerror or exc})") from None
    try:
        with f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = f.read(64)
            f.seek(0)
            kind = sniff_image(head)
            if kind is not None and not kind[1]:
                raise ImageError(path, f"{kind[0]} files are not supported; convert it to PNG or JPEG")
            if kind is not None and kind[0] == "PNG":
                _check_png_crcs(f)
            try:
                with _pillow_settings():
                    rgb, alpha = _decode(f, path, kind, max_pixels)
            except Image.DecompressionBombError:
                # over Pillow's own threshold: read the header again without it, so that our
                # limit decides (and its message says how to allow the image)
                with _pillow_settings(lift_pixel_limit=True):
                    rgb, alpha = _decode(f, path, kind, max_pixels)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(path, "too large to decode in the memory available") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # truncated data, bad CRC, broken headers, plugin parse errors
        reason = one_line(str(exc), 200) or type(exc).__name__
        raise ImageError(path, f"cannot decode image ({reason})") from None
    if min(rgb.size) < 1:
        raise ImageError(path, "image has no pixels")
    return LoadedImage(path, rgb, alpha)


#: How far outside [0, 1] a float image tensor's values may stray (rounding in the caller's own
#: arithmetic) before they are refused rather than clamped.
FLOAT_IMAGE_SLACK = 1e-3


def one_image(image, what: str = "image"):
    """What the one-image calls of the stylizers take, checked: a 3×H×W tensor (a 1×3×H×W one
    unwrapped) or a PIL image converted to RGB; an H×W×3 numpy array becomes a PIL image
    (uint8) or a tensor (uint16). Float tensors must be finite and in [0, 1] (values within
    :data:`FLOAT_IMAGE_SLACK` of it are clamped); uint8 and uint16 tensors are scaled by their
    range (what ``torchvision.io.read_image`` returns); 16-bit and 32-bit PIL modes are
    brought to 8 bits as files are on load. A batch of several, another shape, type or dtype,
    an empty image, NaN or values off the range: a one-line UsageError (a batch would
    otherwise lose every image but the first; 0-255 floats a wrong picture)."""
    import numpy as np
    import torch

    if isinstance(image, np.ndarray):
        return _array_image(image, what)
    if torch.is_tensor(image):
        return _tensor_image(image, what)
    if hasattr(image, "convert") and hasattr(image, "mode"):
        if min(image.size) < 1:
            raise UsageError(f"the {what} is empty ({image.size[0]}x{image.size[1]} pixels)", param=what)
        return image if image.mode == "RGB" else normalize_mode(image)[0]
    raise UsageError(f"a {what} must be a 3×H×W tensor, a PIL image or an H×W×3 uint8 array, not "
                     f"{type(image).__name__}", param=what)


def _array_image(image, what: str):
    """An H×W×3 uint8 array as a PIL image; a uint16 one as a 3×H×W tensor in [0, 1]."""
    import numpy as np
    import torch

    if image.dtype not in (np.uint8, np.uint16) or image.ndim != 3 or image.shape[2] != 3:
        raise UsageError(f"a numpy {what} must be H×W×3 uint8 (or uint16) RGB, not {image.shape} {image.dtype}",
                         param=what)
    if image.size == 0:
        raise UsageError(f"the {what} is empty ({image.shape[1]}x{image.shape[0]} pixels)", param=what)
    if image.dtype == np.uint8:
        return Image.fromarray(image, "RGB")
    return torch.from_numpy(image.astype(np.float32) / 65535.0).permute(2, 0, 1)


def _tensor_image(image, what: str):
    """A checked 3×H×W float tensor in [0, 1] from an image tensor (see :func:`one_image`)."""
    import torch

    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() == 4:
        raise UsageError(f"one {what} at a time: this call takes 3×H×W, not a batch of {image.shape[0]} "
                         "(loop over them, or use stylize_batch)", param=what)
    if image.dim() != 3 or image.shape[0] != 3:
        raise UsageError(f"a {what} tensor must be 3×H×W RGB in [0, 1], not {list(image.shape)}", param=what)
    if image.numel() == 0:
        raise UsageError(f"the {what} is empty ({image.shape[2]}x{image.shape[1]} pixels)", param=what)
    ranges = {torch.uint8: 255.0, torch.uint16: 65535.0}
    if image.dtype in ranges:
        return image.float().div_(ranges[image.dtype])
    if not image.is_floating_point():
        raise UsageError(f"a {what} tensor must be float in [0, 1], uint8 or uint16, not {image.dtype}", param=what)
    image = image.float()
    lo, hi = (float(v) for v in torch.aminmax(image))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UsageError(f"the {what} tensor has NaN or infinite values", param=what)
    if lo < -FLOAT_IMAGE_SLACK or hi > 1.0 + FLOAT_IMAGE_SLACK:
        hint = "divide 8-bit values by 255" if hi > 1.0 + FLOAT_IMAGE_SLACK else "undo any mean/std normalisation"
        raise UsageError(f"a float {what} tensor must be in [0, 1], this one runs from {lo:.4g} to {hi:.4g} "
                         f"({hint})", param=what)
    return image.clamp(0.0, 1.0) if lo < 0.0 or hi > 1.0 else image


def pil_to_tensor(im: Image.Image):
    import numpy as np
    import torch

    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def to_uint8(t):
    """[0, 1] floats -> 8-bit values, rounded, on the tensor's own device (NaN -> 0, inf -> 255)."""
    import torch

    return t.float().nan_to_num(0.0, 1.0, 0.0).clamp_(0, 1).mul_(255).round_().to(torch.uint8)


def tensor_to_pil(t, mode: Optional[str] = None) -> Image.Image:
    """A float tensor C×H×W (or 1×C×H×W) in [0, 1] (or uint8) to an 8-bit PIL image."""
    import numpy as np
    import torch

    t = t.detach()
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.is_cuda:  # a quarter of the bytes cross the bus, and the GPU does the arithmetic
        t = to_uint8(t)
    if t.dtype == torch.uint8:
        arr = t.permute(1, 2, 0).cpu().numpy()
    else:
        # One new buffer, in height×width×channel order, then in place: a 1080p frame used to
        # take ~55 ms here in five fresh whole-frame allocations (the largest host cost of a
        # GPU folder run).
        c, h, w = t.shape
        y = torch.empty((h, w, c), dtype=torch.float32)
        torch.mul(t.permute(1, 2, 0), 255.0, out=y)
        torch.nan_to_num(y, nan=0.0, posinf=255.0, neginf=0.0, out=y)
        arr = y.clamp_(0, 255).round_().to(torch.uint8).numpy()
    channels = arr.shape[2]
    if channels == 1:
        return Image.fromarray(np.ascontiguousarray(arr[:, :, 0]), "L")
    if channels == 2:
        return Image.fromarray(np.ascontiguousarray(arr), "LA")
    if channels == 4:
        return Image.fromarray(np.ascontiguousarray(arr), mode or "RGBA")
    if channels != 3:
        raise ValueError(f"cannot make an image from {channels} channels")
    return Image.fromarray(np.ascontiguousarray(arr), mode or "RGB")
