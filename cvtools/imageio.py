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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cvtools.errors import CvtoolsError, ImageError, UsageError, one_line, safe_path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

#: Default limit on decoded pixels (a 100-megapixel image); guards against decompression bombs.
DEFAULT_MAX_PIXELS = 100_000_000

# Pillow's own guard warns or raises at its own thresholds; we apply ours explicitly instead.
Image.MAX_IMAGE_PIXELS = None
# Truncated files must fail loudly, never decode into half-grey images.
ImageFile.LOAD_TRUNCATED_IMAGES = False


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
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageError(
                        path,
                        f"{w}x{h} is {_pixels(w * h)}, over the {_pixels(max_pixels)} safety limit "
                        "(possible decompression bomb); pass --max-pixels 0 or set CVTOOLS_MAX_PIXELS=0 "
                        "to allow it",
                    )
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb, alpha = normalize_mode(im)
                rgb.load()
                if alpha is not None:
                    alpha.load()
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(path, "too large to decode in the memory available") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Image.DecompressionBombError as exc:  # pragma: no cover - our own guard comes first
        raise ImageError(path, one_line(str(exc))) from None
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


#: Output extensions cvtools writes, and the Pillow format for each.
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF", ".ppm": "PPM"}
# Inputs whose own format would lose the result (GIF: 256 colours; PGM: grey only) or that
# cvtools does not write are saved as PNG when no extension is asked for.
_DEFAULT_OUTPUT_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}

# Outputs named in this process: realpath -> (input it belongs to, whether replacing is allowed).
# ``output_path_for`` records them; ``save_image`` refuses to replace a file that appeared after
# naming unless --overwrite was given; within a batch (``output_claims``) two inputs never get
# the same output.
_named: dict = {}
_claims: Optional[dict] = None


@contextmanager
def output_claims():
    """Within this block, ``output_path_for`` refuses to give two different inputs one output
    file (say ``a/x.jpg`` and ``b/x.jpg`` into one ``-o`` directory): the second would silently
    replace the first. ``run_batch`` wraps every batch in it."""
    global _claims
    previous, _claims = _claims, {}
    try:
        yield
    finally:
        _claims = previous


def _same_file(a, b) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


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
    ``ext`` defaults to the input's own (PNG for GIF, PGM and other formats cvtools does not
    write well). Raises ImageError when the target is an input (also through a symbolic or
    hard link), exists (unless ``overwrite``), or, within ``output_claims``, is already the
    output of another input.
    """
    input_path = Path(input_path)
    ext = ext or (input_path.suffix if input_path.suffix.lower() in _DEFAULT_OUTPUT_EXT else ".png")
    name = f"{input_path.stem}_{suffix}{ext}"
    if output is None:
        target = input_path.with_name(name)
    else:
        output = str(output)
        out = Path(output)
        if out.is_dir() or output.endswith(("/", os.sep)) or many:
            target = out / name
        else:
            target = out
    if target.suffix.lower() not in _FORMATS:
        hint = "; to write into a directory, end -o with '/'" if not target.suffix else ""
        raise ImageError(target, f"unknown output format {target.suffix or '(no extension)'!r}; use .png, .jpg, "
                                 f".webp, .tif or .bmp{hint}")
    for p in list(inputs) + [input_path]:
        if _same_file(p, target):
            raise ImageError(target, "output would overwrite an input; choose another -o")
    if target.is_dir():
        raise ImageError(target, "output is a directory; end -o with '/' to write into it")
    if target.exists() and not overwrite:
        raise ImageError(target, "output exists; pass --overwrite to replace it")
    key = os.path.realpath(target)
    if _claims is not None:
        owner = _claims.get(key)
        if owner is not None and owner != os.path.realpath(input_path):
            raise ImageError(target, f"is also the output for {safe_path(owner)} in this run; give the "
                                     "inputs different names or write them to different -o directories")
        _claims[key] = os.path.realpath(input_path)
    _named[key] = bool(overwrite)
    return target


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


def atomic_write(path, write_fn, overwrite: Optional[bool] = None) -> None:
    """Call ``write_fn(tmp_path)`` and move the result into place; nothing partial is left.

    The temporary file is hidden (``.NAME.XXXX.part.EXT``) in the target directory, flushed to
    disk, given the permissions a new file gets (umask), then renamed over ``path``. On any
    error or interruption (Ctrl-C, SIGTERM in a batch) it is removed.
    ``overwrite=False`` never replaces an existing file (even one that appeared while
    ``write_fn`` ran); ``None``: False for outputs named by ``output_path_for`` without
    ``overwrite``, else True.
    """
    path = Path(path)
    if overwrite is None:
        overwrite = _named.get(os.path.realpath(path), True)
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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent)
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
                raise ImageError(path, "output exists (it appeared while this one was made); "
                                       "pass --overwrite to replace it") from None
            except OSError:  # a file system without hard links
                if path.exists():
                    raise ImageError(path, "output exists; pass --overwrite to replace it") from None
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
    become a black or speckled image on disk). Alpha is kept in PNG, WebP and TIFF.
    """
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

    def write(tmp):
        im.save(tmp, format=fmt, **kwargs)

    atomic_write(path, write)
    return path
