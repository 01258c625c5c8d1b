"""Image input and output shared by every command.

Reading: EXIF orientation applied; grayscale, palette, CMYK, 16-bit and alpha inputs normalised
to 8-bit RGB (+ optional alpha); a decompression-bomb guard; every failure becomes an
:class:`~cvtools.errors.ImageError` naming the file.

Colour: an embedded ICC profile other than sRGB (Adobe RGB, Display P3, ProPhoto) is converted
to sRGB on load; every output is tagged sRGB.

Writing: atomic (temporary file in the target directory, then rename), never onto an input,
never over an existing file unless asked. Re-running a command does what was meant (see
:func:`output_path_for`): outputs carry a small provenance marker (the command, its options and
a hash of the input) so a finished output is recognised and skipped, one made with other options
is kept and the new result gets the next free name, and a command's own outputs found in a folder
are never taken as its inputs.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re
import struct
import tempfile
import threading
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cvtools.errors import CvtoolsError, ImageError, UsageError, one_line, safe_path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
#: Video files (cvtools/video) that stylize and dream take: found in folders only when a command
#: asks (``expand_inputs(extensions=...)``), named by ``output_path_for(video=True)``.
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}

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


def _sniff(head: bytes) -> Optional[tuple]:
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

    def alpha_tensor(self):
        return None if self.alpha is None else pil_to_tensor(self.alpha)


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
            kind = _sniff(head)
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


# ----------------------------------------------------------------------------- inputs


def expand_inputs(inputs: Iterable[str], recursive: bool = True, found: Optional[set] = None,
                  extensions: Optional[Iterable[str]] = None) -> tuple[list[Path], list[ImageError]]:
    """Files, directories (searched for images) and glob patterns to a list of image paths.

    Returns (paths, problems): a pattern or directory that yields nothing is a problem, reported
    by the caller while the rest of the batch goes on. ``found``, if given, receives the absolute
    paths that came from searching a directory or matching a pattern (not named one by one):
    among those, a command's own earlier outputs are left out (see :func:`output_path_for`).
    """
    paths: list[Path] = []
    problems: list[ImageError] = []
    seen = set()
    extensions = IMAGE_EXTENSIONS if extensions is None else set(extensions)  # searched for in folders

    def add(p: Path, searched: bool):
        key = os.path.abspath(p)
        if searched and found is not None and key not in seen:
            found.add(key)
        if key not in seen:
            seen.add(key)
            paths.append(p)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found_here = sorted(
                q for q in (p.rglob("*") if recursive else p.iterdir())
                if q.is_file() and q.suffix.lower() in extensions and not q.name.startswith(".")
            )
            if not found_here:
                what = "images or videos" if extensions & VIDEO_EXTENSIONS else "images"
                problems.append(ImageError(p, f"directory holds no {what}"))
            for q in found_here:
                add(q, True)
        elif p.exists():
            add(p, False)
        elif any(ch in item for ch in "*?["):
            found_here = sorted(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
            if not found_here:
                problems.append(ImageError(item, "pattern matches no files"))
            for q in found_here:
                add(q, True)
        else:
            problems.append(ImageError(p, "no such file or directory"))
    return paths, problems


# ----------------------------------------------------------------------------- provenance

#: The PNG text key, and the prefix of the JPEG/GIF comment or EXIF ImageDescription, that hold
#: an output's provenance marker.
MARKER_KEY = "cvtools"
_MARKER_PREFIX = MARKER_KEY + ":"


def _shown(value):
    """An option value as stored in a marker (and shown in messages): JSON types only, and a
    path without its folders (an image posted online should not carry your directory names)."""
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    text = str(value)
    return os.path.basename(text.rstrip("/" + os.sep)) if (os.sep in text or "/" in text) else text


def _canonical(value):
    """An option value for the digest: paths to existing files made absolute, so ``./x.jpg``
    and ``x.jpg`` are the same option."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    text = str(value)
    if (os.sep in text or "/" in text or "." in text) and os.path.exists(text):
        return os.path.abspath(text)
    return text


@dataclass
class Provenance:
    """What makes an output: the command (``"stylize"``, ``"visualize gradcam"``) and the
    options that change the result (``{"--style": "mona", "--strength": 1.0, ...}``; not -o,
    --overwrite, -q, --device and other options that do not change what is written)."""

    command: str
    options: dict

    def __post_init__(self):
        self.options = {str(k): _canonical(v) for k, v in sorted(self.options.items())}
        data = json.dumps([self.command, self.options], sort_keys=True, default=str)
        self.digest = hashlib.sha256(data.encode()).hexdigest()[:16]

    def shown(self) -> dict:
        return {k: _shown(v) for k, v in self.options.items()}

    def marker(self, input_digest: str) -> str:
        """The marker text (ASCII JSON, a few hundred bytes)."""
        from cvtools import __version__

        return json.dumps({"tool": f"cvtools {__version__}", "command": self.command, "options": self.shown(),
                           "digest": self.digest, "input": input_digest}, separators=(",", ":"), ensure_ascii=True)


_digests: dict = {}


def input_digest(path) -> str:
    """A hash of a file's content (BLAKE2b, 128 bits), cached by (path, size, mtime); "" if
    it cannot be read."""
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
        digest = _digests.get(key)
        if digest is None:
            h = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = _digests[key] = h.hexdigest()
        return digest
    except OSError:
        return ""


def _marker_text(path) -> Optional[str]:
    """The marker's raw text from an image's header (PNG text, JPEG comment, WebP/TIFF EXIF)."""
    with open(path, "rb") as f, Image.open(f, formats=SAFE_FORMATS) as im:
        text = im.info.get(MARKER_KEY)
        if isinstance(text, str):
            return text
        comment = im.info.get("comment")
        if isinstance(comment, bytes) and comment.startswith(_MARKER_PREFIX.encode()):
            return comment[len(_MARKER_PREFIX):].decode("ascii", "replace")
        if im.format in ("WEBP", "TIFF"):
            desc = im.getexif().get(0x010E)
            if isinstance(desc, bytes):
                desc = desc.decode("ascii", "replace")
            if isinstance(desc, str) and desc.startswith(_MARKER_PREFIX):
                return desc[len(_MARKER_PREFIX):]
    return None


def read_marker(path) -> Optional[dict]:
    """The provenance marker of an image cvtools wrote ({"command", "options", "digest",
    "input", "tool"}), or None (no marker, not an image, unreadable, malformed). Reads only the
    file's header; the marker is untrusted text and is validated."""
    import stat as _stat

    if os.path.splitext(str(path))[1].lower() in VIDEO_EXTENSIONS:  # the container's comment
        from cvtools.video.io import read_video_marker

        return read_video_marker(path)
    try:
        if not _stat.S_ISREG(os.stat(path).st_mode):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                raw = _marker_text(path)
            except Image.DecompressionBombError:  # a large output (allowed by our limit): headers only
                with _pillow_settings(lift_pixel_limit=True):
                    raw = _marker_text(path)
    except Exception:  # not an image, damaged
        return None
    return parse_marker(raw)


def parse_marker(raw) -> Optional[dict]:
    """A provenance marker's JSON text (as written by :func:`output_metadata`, or a video's
    comment after its "cvtools:" prefix) validated: a dict with string command, digest and
    input, options a dict; None when absent, oversized or malformed."""
    import json

    if not raw or len(raw) > 65536:
        return None
    try:
        marker = json.loads(raw)
    except Exception:  # a deeply nested or malformed marker
        return None
    if not (isinstance(marker, dict) and isinstance(marker.get("command"), str)
            and isinstance(marker.get("digest"), str) and isinstance(marker.get("input"), str)):
        return None
    if not isinstance(marker.get("options"), dict):
        marker["options"] = {}
    return marker


def output_metadata(path, fmt: str) -> dict:
    """Keyword arguments for Pillow's ``save`` that tag an output: the sRGB ICC profile, and
    the provenance marker when ``path`` was named by :func:`output_path_for` inside a run that
    knows its command (``run_batch``). For JPEG, PNG, WebP, TIFF (and GIF: the marker only)."""
    kwargs: dict = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = srgb_icc()
    record = _named.get(os.path.realpath(path))
    if record is None or record.provenance is None:
        return kwargs
    marker = record.provenance.marker(input_digest(record.input))
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text(MARKER_KEY, marker)
        kwargs["pnginfo"] = info
    elif fmt in ("JPEG", "GIF"):
        kwargs["comment"] = (_MARKER_PREFIX + marker).encode("ascii")
    elif fmt in ("WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x010E] = _MARKER_PREFIX + marker  # ImageDescription
        kwargs["exif"] = exif.tobytes()
    return kwargs


# ----------------------------------------------------------------------------- outputs


#: Output extensions cvtools writes, and the Pillow format for each.
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF", ".ppm": "PPM"}
# Inputs whose own format would lose the result (GIF: 256 colours; PGM: grey only) or cannot
# carry the provenance marker (BMP, PPM) are saved as PNG when no extension is asked for.
_DEFAULT_OUTPUT_EXT = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}

#: How many numbered names (``photo_dream-2.jpg`` …) to try before giving up.
MAX_NUMBERED = 999


@dataclass
class _Named:
    overwrite: bool
    input: Optional[str] = None
    provenance: Optional[Provenance] = None


@dataclass
class _Policy:
    provenance: Optional[Provenance] = None
    notify: Optional[Callable[[str], None]] = None
    found: frozenset = frozenset()  # absolute paths found by searching folders or matching patterns
    stems: frozenset = frozenset()  # (folder, stem) of every input of the batch
    many: bool = False  # the batch has several inputs
    own: dict = field(default_factory=dict)  # (abspath, suffix) -> why it is an own output, or None
    proven: set = field(default_factory=set)  # abspaths left out because they carry this command's marker


class OutputSkipped(CvtoolsError):
    """An input that needs no work (not a failure): its output is already there, made by the
    same command with the same options from the same input (``kind == "done"``), or the input
    is itself an output of this command found in a folder (``kind == "own_output"``: its marker
    says so; ``"named_like"``: only its name does, so the CLI names it in a note)."""

    def __init__(self, path, reason, kind: str, target=None):
        self.path = str(path)
        self.kind = kind
        self.target = target
        super().__init__(f"{safe_path(path)}: {reason}")


# Outputs named in this process: realpath -> _Named (whether replacing is allowed, and the input
# and provenance its marker records). ``output_path_for`` records them; ``save_image`` refuses
# to replace a file that appeared after naming unless --overwrite was given; within a batch
# (``output_claims``) two inputs never get the same output.
_named: dict = {}
_claims: Optional[dict] = None
_policy: Optional[_Policy] = None


@contextmanager
def output_claims(provenance: Optional[Provenance] = None, notify: Optional[Callable[[str], None]] = None,
                  found: Iterable = (), batch: Iterable = ()):
    """Within this block, ``output_path_for`` never gives two different inputs one output file
    (say ``a/x.jpg`` and ``b/x.jpg`` into one ``-o`` directory: the second gets the next free
    name). ``provenance`` (the command and its options) lets it recognise finished outputs and
    tag new ones; ``notify(message)`` hears about renamed outputs; ``found`` are the inputs that
    came from folders and patterns (see :func:`expand_inputs`), ``batch`` all the inputs.
    ``run_batch`` wraps every batch in it."""
    global _claims, _policy
    previous = (_claims, _policy)
    found = frozenset(os.path.abspath(p) for p in found)
    every = found | frozenset(os.path.abspath(p) for p in batch)
    _claims = {}
    _policy = _Policy(provenance, notify, found,
                      frozenset((os.path.dirname(p), os.path.splitext(os.path.basename(p))[0]) for p in every),
                      len(every) > 1)
    try:
        yield
    finally:
        _claims, _policy = previous


def _same_file(a, b) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _file_id(path):
    try:
        st = os.stat(path)  # follows symbolic links; hard links share the inode
        return (st.st_dev, st.st_ino)
    except OSError:
        return None


_input_ids: dict = {}  # id(inputs) -> (inputs, {(dev, inode): path}); one batch's list is reused


def _inputs_by_id(inputs) -> dict:
    """{(device, inode): path} of a list of inputs, computed once per list (a folder of N
    inputs would otherwise cost N² path resolutions)."""
    if not inputs:
        return {}
    cached = _input_ids.get(id(inputs))
    if cached is not None and cached[0] is inputs and len(cached[1][1]) == len(inputs):
        return cached[1][0]
    ids = {}
    for p in inputs:
        fid = _file_id(p)
        if fid is not None:
            ids.setdefault(fid, p)
    if len(_input_ids) > 8:
        _input_ids.clear()
    _input_ids[id(inputs)] = (inputs, (ids, list(inputs)))
    return ids


def _numbered(path: Path, k: int) -> Path:
    return path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")


def _option_text(key, value) -> str:
    if value is True:
        return key
    if value is False:
        return f"no {key}"
    if value is None or value == []:
        return f"{key} (default)"
    if isinstance(value, list):
        return f"{key} {','.join(map(str, value))}"
    return f"{key} {value}"


def _differs(marker: Optional[dict], provenance: Optional[Provenance], input_path) -> Optional[str]:
    """None when ``marker`` records this very result (same command, options and input); else
    why not, for messages."""
    if marker is None:
        return "without a cvtools marker" if provenance is None else f"not made by `cvtools {provenance.command}`"
    if provenance is None:
        return f"made by `cvtools {safe_path(marker['command'])}`"
    if marker["command"] != provenance.command:
        return f"made by `cvtools {safe_path(marker['command'])}`"
    if marker["digest"] != provenance.digest:
        old, new = marker.get("options", {}), provenance.shown()
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if not keys:
            return "made with other options"
        was = ", ".join(safe_path(_option_text(k, old.get(k))) for k in keys[:4])
        now = ", ".join(safe_path(_option_text(k, new.get(k))) for k in keys[:4])
        more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
        return f"made with {was}{more} (this run: {now})"
    if marker["input"] != input_digest(input_path):
        return "made from another input (or from this one before it changed)"
    return None


def _own_output(input_path: Path, suffix: str, policy: _Policy) -> Optional[str]:
    """Why an input is an output of the running command, or None (memoised per batch).

    - Found in a folder or by a pattern: it carries this command's marker, or it is named
      ``STEM_SUFFIX[-N][_SIDE]`` next to a ``STEM.*`` input (and carries no other command's
      marker).
    - Named explicitly, with other inputs (a shell glob, ``photos/*.png``): only the name rule,
      with ``STEM.*`` among the inputs. A single explicit input is always an input.
    """
    key = (os.path.abspath(input_path), suffix)
    if key not in policy.own:
        found = key[0] in policy.found
        why, proven = _own_output_uncached(Path(input_path), suffix, policy, found) \
            if found or policy.many else (None, False)
        policy.own[key] = why
        if proven:
            policy.proven.add(key[0])
    return policy.own[key]


def _own_output_uncached(input_path: Path, suffix: str, policy: _Policy, found: bool) -> tuple:
    m = re.fullmatch(rf"(.+)_{re.escape(suffix)}(?:-\d+)?(?:_[A-Za-z0-9-]+)?", input_path.stem)
    named_like = bool(m) and (os.path.dirname(os.path.abspath(input_path)), m.group(1)) in policy.stems
    if not (found or named_like):
        return None, False
    marker = read_marker(input_path)
    mine = marker is not None and policy.provenance is not None and marker["command"] == policy.provenance.command
    if (found or named_like) and mine:
        return f"an output of `cvtools {safe_path(marker['command'])}`, not taken as an input", True
    if named_like and marker is None:
        # Only the name says so: left out, but still protected like an input (never replaced,
        # even with --overwrite), in case it is someone's photo after all.
        return f"named like this command's output for {safe_path(m.group(1))}.*, not taken as an input", False
    return None, False


def output_path_for(
    input_path: Path,
    output: Optional[str],
    suffix: str,
    ext: Optional[str] = None,
    many: bool = False,
    overwrite: bool = False,
    inputs: Sequence[Path] = (),
    video: bool = False,
) -> Path:
    """Where the result for ``input_path`` goes, under one re-run policy.

    Naming: no ``-o``: next to the input, ``<stem>_<suffix><ext>``; ``-o`` an existing
    directory, a path ending in '/', or several inputs: that directory; otherwise ``-o`` is
    the file itself. ``ext`` defaults to the input's own (PNG for GIF, PGM, BMP and other
    formats that would lose the result or cannot carry the marker).

    Re-running (inside ``output_claims``, which ``run_batch`` sets up with the command and its
    options):

    - the output is already there, made by the same command and options from the same input
      (its marker says so): :class:`OutputSkipped` (``kind="done"``), so an interrupted folder
      run continues where it stopped;
    - the name is taken (another command, other options, another input, a file cvtools did not
      write, an input, another input's output in this run): the next free name,
      ``<stem>_<suffix>-2<ext>``, ``-3`` …, and ``notify`` says why;
    - ``overwrite``: the first name that is not an input nor another input's output is replaced;
    - an input found in a folder or by a pattern that is itself an output of this command (its
      marker, or its name ``<stem>_<suffix>[-N][_side]`` next to ``<stem>.*``):
      :class:`OutputSkipped` (``kind="own_output"``).

    ``video``: the output may also be a video container (.mp4, .mov, .mkv, .webm: ``cvtools.video``).

    An explicit ``-o FILE`` is never renamed: an input there, a directory, or an existing file
    made otherwise raises ImageError (``--overwrite`` replaces the file).
    """
    input_path = Path(input_path)
    policy = _policy
    provenance = policy.provenance if policy is not None else None
    ext = ext or (input_path.suffix if input_path.suffix.lower() in _DEFAULT_OUTPUT_EXT else ".png")
    name = f"{input_path.stem}_{suffix}{ext}"
    explicit = False
    if output is None:
        base = input_path.with_name(name)
    else:
        output = str(output)
        out = Path(output)
        if out.is_dir() or output.endswith(("/", os.sep)) or many:
            base = out / name
        else:
            base = out
            explicit = True
    if video and base.suffix.lower() in VIDEO_EXTENSIONS - {".avi"}:  # a video output (cvtools/video)
        pass
    elif base.suffix.lower() not in _FORMATS:
        hint = "; to write into a directory, end the output path with '/'" if not base.suffix else ""
        if video:
            raise ImageError(base, f"unknown video format {base.suffix or '(no extension)'!r}; use .mp4, .mov, "
                                   f".mkv, .webm, .gif or .webp{hint}")
        raise ImageError(base, f"unknown output format {base.suffix or '(no extension)'!r}; use .png, .jpg, "
                               f".webp, .tif or .bmp{hint}")
    if policy is not None:
        why = _own_output(input_path, suffix, policy)
        if why:
            proven = os.path.abspath(input_path) in policy.proven
            raise OutputSkipped(input_path, why, "own_output" if proven else "named_like")

    def is_input(target) -> bool:
        # An earlier output of this command found in the folder was left out of the inputs:
        # its name is free to be recognised as done (or passed over as made otherwise).
        if _same_file(input_path, target):
            return True
        p = _inputs_by_id(inputs).get(_file_id(target))
        if p is None:
            return False
        if policy is not None:
            _own_output(Path(p), suffix, policy)
            return os.path.abspath(p) not in policy.proven
        return True


    me = os.path.realpath(input_path)
    passed_over = None  # (name, why) of the first name passed over
    for k in range(1, (1 if explicit else MAX_NUMBERED) + 1):
        target = _numbered(base, k)
        key = os.path.realpath(target)
        owner = _claims.get(key) if _claims is not None else None
        why = None
        if is_input(target):
            if explicit:
                raise ImageError(target, "output would overwrite an input; choose another output path")
            why = "is an input"
        elif target.is_dir():
            if explicit:
                raise ImageError(target, "output is a directory; end the output path with '/' to write into it")
            why = "is a directory"
        elif owner is not None and owner != me:
            if explicit:
                raise ImageError(target, f"is also the output for {safe_path(owner)} in this run; give the "
                                         "inputs different names or write them to different output directories")
            why = f"is the output for {safe_path(owner)} in this run"
        elif os.path.lexists(target) and not overwrite and owner != me:
            why = _differs(read_marker(target), provenance, input_path)
            if why is None:
                raise OutputSkipped(input_path, f"already done: {safe_path(target)} holds this command's result "
                                                "for it with the same options (--overwrite redoes it)",
                                    "done", target)
            why = f"exists, {why}"
            if explicit:
                raise ImageError(target, f"output {why}; pass overwrite=True to replace it, or choose another output path",
                                 param="overwrite")
        if why is not None:
            passed_over = passed_over or (target, why)
            continue
        if _claims is not None:
            _claims[key] = me
        _named[key] = _Named(bool(overwrite), str(input_path), provenance)
        if passed_over is not None and policy is not None and policy.notify is not None:
            policy.notify(f"{safe_path(passed_over[0])} {passed_over[1]}; writing {safe_path(target)}")
        return target
    raise ImageError(base, f"no free output name ({base.name} to {_numbered(base, MAX_NUMBERED).name} are all "
                           "taken); clean up or choose another output path")


def side_output_for(path, input_path, overwrite: bool = False, inputs: Sequence[Path] = ()) -> Path:
    """Claim a file written beside an output named by :func:`output_path_for` (visualize's
    ``NAME_sanity.jpg``, raw ``.npy`` maps) like a main output: never an input (even with
    ``overwrite``), never another input's output in this run, never an existing file without
    ``overwrite`` unless it is this command's own result for the same input and options.
    Returns ``path``; raises ImageError otherwise."""
    path = Path(path)
    input_path = Path(input_path)
    policy = _policy
    provenance = policy.provenance if policy is not None else None
    proven = policy.proven if policy is not None else set()
    for p in list(inputs) + [input_path]:
        if _same_file(p, path) and os.path.abspath(p) not in proven:
            raise ImageError(path, "side output would overwrite an input; rename the input or choose another output path")
    if path.is_dir():
        raise ImageError(path, "side output is a directory")
    key = os.path.realpath(path)
    me = os.path.realpath(input_path)
    owner = _claims.get(key) if _claims is not None else None
    if owner is not None and owner != me:
        raise ImageError(path, f"is also an output for {safe_path(owner)} in this run")
    replace = bool(overwrite)
    if os.path.lexists(path) and not overwrite and owner != me:
        why = _differs(read_marker(path), provenance, input_path)
        if why is not None:
            raise ImageError(path, f"output exists, {why}; pass overwrite=True to replace it", param="overwrite")
        replace = True  # this very result, from an interrupted run
    if _claims is not None:
        _claims[key] = me
    _named[key] = _Named(replace, str(input_path), provenance)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _same_result(written, existing) -> bool:
    """Whether ``existing`` carries the very marker ``written`` does (same command, options and
    input): two identical runs racing on one output made the same file."""
    mine = read_marker(written)
    return mine is not None and mine == read_marker(existing)


def atomic_write(path, write_fn, overwrite: Optional[bool] = None) -> None:
    """Call ``write_fn(tmp_path)`` and move the result into place; nothing partial is left.

    The temporary file is hidden, with a short fixed-length random name
    (``.cvtools-XXXXXXXX.part.EXT``, so an output whose name is near the file system's limit
    can still be written) in the target directory, flushed to disk, given the permissions a new file gets (umask), then renamed over ``path``. On any
    error or interruption (Ctrl-C, SIGTERM in a batch) it is removed.
    ``overwrite=False`` never replaces an existing file (even one that appeared while
    ``write_fn`` ran); ``None``: False for outputs named by ``output_path_for`` without
    ``overwrite``, else True.
    """
    path = Path(path)
    if overwrite is None:
        record = _named.get(os.path.realpath(path))
        overwrite = True if record is None else record.overwrite
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ImageError(path, "cannot create the output directory: a file is in the way") from None
    except OSError as exc:
        raise ImageError(path, f"cannot create the output directory ({exc.strerror or exc})") from None
    if not parent.is_dir():
        raise ImageError(path, "cannot create the output directory: a file is in the way")
    if not os.access(parent, os.W_OK):
        raise ImageError(path, "output directory is not writable")
    if path.is_dir():
        raise ImageError(path, "output is a directory")
    tmp = None
    try:
        ext = path.suffix if len(path.suffix) <= 8 else ""
        fd, tmp = tempfile.mkstemp(prefix=".cvtools-", suffix=".part" + ext, dir=parent)
        os.close(fd)
        write_fn(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        try:
            mode = os.stat(path).st_mode & 0o7777 if overwrite else None
        except OSError:
            mode = None
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path exists: no window for a race
            except FileExistsError:
                if _same_result(tmp, path):  # an identical run raced us to it: its file is ours
                    raise OutputSkipped(path, "already done: another run of the same command and options wrote "
                                              "it meanwhile", "done", target=path) from None
                raise ImageError(path, "output exists (it appeared while this one was made); "
                                       "pass overwrite=True to replace it", param="overwrite") from None
            except OSError:  # a file system without hard links
                if path.exists():
                    raise ImageError(path, "output exists; pass overwrite=True to replace it", param="overwrite") from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
        tmp = None
        _fsync_dir(parent)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, (CvtoolsError, KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        if isinstance(exc, MemoryError):
            raise ImageError(path, "out of memory while writing") from None
        if isinstance(exc, OSError):
            raise ImageError(path, f"cannot write ({exc.strerror or one_line(exc)})") from None
        if isinstance(exc, Exception):  # e.g. an encoder refusing the size (WebP: 16383 px)
            raise ImageError(path, f"cannot write ({one_line(exc, 200) or type(exc).__name__})") from None
        raise


def save_image(path, image, alpha=None, quality: int = 95) -> Path:
    """Atomically save a PIL image or a [0, 1] tensor (C×H×W), with optional alpha.

    A tensor with NaN or infinite values is refused (a numerical failure upstream must not
    become a black or speckled image on disk). Alpha is kept in PNG, WebP and TIFF. The file is
    tagged sRGB and, when named by :func:`output_path_for` in a run, carries its provenance
    marker (:func:`output_metadata`).
    """
    from cvtools.timings import mark

    mark("first_write")
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(path, f"unknown output format {path.suffix or '(no extension)'!r}; "
                               "use .png, .jpg, .webp, .tif or .bmp")
    if isinstance(image, Image.Image):
        im = image
    else:
        import torch

        if image.is_floating_point() and not bool(torch.isfinite(image).all()):
            raise ImageError(path, "the result has NaN or infinite values (a numerical failure); nothing written")
        im = tensor_to_pil(image)
    if alpha is not None:
        a = alpha if isinstance(alpha, Image.Image) else tensor_to_pil(alpha)
        if a.size != im.size:
            a = a.resize(im.size, Image.BILINEAR)
        if fmt in ("PNG", "WEBP", "TIFF"):
            im = im.convert("RGB")
            im.putalpha(a.convert("L"))
    if fmt in ("JPEG", "PPM") and im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    elif fmt == "BMP" and im.mode not in ("RGB", "L", "RGBA", "1", "P"):
        im = im.convert("RGB")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    kwargs.update(output_metadata(path, fmt))

    def write(tmp):
        im.save(tmp, format=fmt, **kwargs)

    atomic_write(path, write)
    mark("first_written")
    return path
