"""Writing files atomically (a hidden temporary file in the target directory, flushed, then
renamed), never onto an input, never over an existing file unless asked; :func:`save_image`
writes an image that way with the sRGB tag and its provenance marker."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

from PIL import Image

from cvtools.errors import CvtoolsError, ImageError, one_line
from cvtools.io.decode import tensor_to_pil
from cvtools.io.markers import output_metadata, read_marker
from cvtools.io.naming import FORMATS, Outputs, OutputSkipped, unknown_image_format

#: Temporary files of the writes under way (any thread), for :func:`settle_writes`.
_in_flight: set = set()
_in_flight_changed = threading.Condition()


def settle_writes(timeout: float = 60.0) -> List[str]:
    """Before the process ends without the interpreter's teardown (``cvtools.cli._exit_now``,
    which does not wait for worker threads): wait up to ``timeout`` seconds for the atomic
    writes under way on other threads, then remove the temporary files of any still going (the
    output is never made from them, so the process can end with nothing partial left). Returns
    those removed."""
    deadline = time.monotonic() + max(0.0, float(timeout))
    with _in_flight_changed:
        while _in_flight and time.monotonic() < deadline:
            _in_flight_changed.wait(deadline - time.monotonic())
        left = sorted(_in_flight)
    for tmp in left:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return left


def _track(tmp: Optional[str], start: bool) -> None:
    with _in_flight_changed:
        if start:
            _in_flight.add(tmp)
        else:
            _in_flight.discard(tmp)
            _in_flight_changed.notify_all()


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


def atomic_write(path, write_fn, overwrite: Optional[bool] = None, outputs: Optional[Outputs] = None) -> None:
    """Call ``write_fn(tmp_path)`` and move the result into place; nothing partial is left.

    The temporary file is hidden, with a short fixed-length random name
    (``.cvtools-XXXXXXXX.part.EXT``, so an output whose name is near the file system's limit
    can still be written) in the target directory, flushed to disk, given the permissions a new file gets (umask), then renamed over ``path``. On any
    error or interruption (Ctrl-C, SIGTERM in a batch) it is removed.
    ``overwrite=False`` never replaces an existing file (even one that appeared while
    ``write_fn`` ran); ``None``: False for outputs that ``outputs`` (the run's
    :class:`~cvtools.io.naming.Outputs`) named without ``overwrite``, else True.
    """
    path = Path(path)
    if overwrite is None:
        record = outputs.record(path) if outputs is not None else None
        overwrite = True if record is None else record.overwrite
    parent = _output_dir(path)
    tmp = tracked = None
    try:
        ext = path.suffix if len(path.suffix) <= 8 else ""
        fd, tmp = tempfile.mkstemp(prefix=".cvtools-", suffix=".part" + ext, dir=parent)
        tracked = tmp
        _track(tracked, True)
        os.close(fd)
        write_fn(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _move_into_place(tmp, path, overwrite)
        tmp = None
        _fsync_dir(parent)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        error = _write_error(path, exc)
        if error is None:
            raise
        raise error from None
    finally:
        if tracked is not None:
            _track(tracked, False)


def _output_dir(path: Path) -> Path:
    """The directory ``path`` goes into, created if missing; an :class:`ImageError` when it
    cannot be, is not writable, or ``path`` is a directory."""
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
    return parent


def _move_into_place(tmp, path: Path, overwrite: bool) -> None:
    """Give the written ``tmp`` the permissions of the file it replaces (or a new file's) and
    rename it to ``path``; without ``overwrite``, only where no file is (a hard link, which
    fails if one appeared meanwhile), and ``tmp`` is removed once linked."""
    try:
        mode = os.stat(path).st_mode & 0o7777 if overwrite else None
    except OSError:
        mode = None
    os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
    if overwrite:
        os.replace(tmp, path)
        return
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


def _write_error(path, exc: BaseException) -> Optional[ImageError]:
    """The :class:`ImageError` that ``exc``, raised while writing ``path``, becomes; None when it
    goes on as it is (cvtools' own errors, interrupts, anything not an Exception)."""
    if isinstance(exc, (CvtoolsError, KeyboardInterrupt, SystemExit, GeneratorExit)):
        return None
    if isinstance(exc, MemoryError):
        return ImageError(path, "out of memory while writing")
    if isinstance(exc, OSError):
        return ImageError(path, f"cannot write ({exc.strerror or one_line(exc)})")
    if isinstance(exc, Exception):  # e.g. an encoder refusing the size (WebP: 16383 px)
        return ImageError(path, f"cannot write ({one_line(exc, 200) or type(exc).__name__})")
    return None


def save_image(path, image, alpha=None, quality: int = 95, outputs: Optional[Outputs] = None) -> Path:
    """Atomically save a PIL image or a [0, 1] tensor (C×H×W), with optional alpha.

    A tensor with NaN or infinite values is refused (a numerical failure upstream must not
    become a black or speckled image on disk). Alpha is kept in PNG, WebP and TIFF. The file is
    tagged sRGB and, when named by :func:`~cvtools.io.naming.output_path_for` with ``outputs`` (the
    run's :class:`~cvtools.io.naming.Outputs`), carries its provenance marker
    (:func:`~cvtools.io.markers.output_metadata`) and follows the overwrite decision made then.
    """
    from cvtools.timings import mark

    mark("first_write")
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise unknown_image_format(path, folder_hint=False)
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
    kwargs.update(output_metadata(path, fmt, outputs))

    def write(tmp):
        im.save(tmp, format=fmt, **kwargs)

    atomic_write(path, write, outputs=outputs)
    mark("first_written")
    return path


def save_jpeg_bytes(path, data: bytes, outputs: Optional[Outputs] = None) -> Path:
    """Atomically write ``data``, a JPEG file another encoder made (the GPU's: see
    :mod:`cvtools.io.gpu_jpeg`), as :func:`save_image` writes a JPEG: tagged sRGB and, when
    named by ``outputs``, carrying its provenance marker, both in the segments and the place
    Pillow writes them, and following the overwrite decision made when it was named."""
    from cvtools.io.gpu_jpeg import with_markers
    from cvtools.timings import mark

    mark("first_write")
    path = Path(path)
    if FORMATS.get(path.suffix.lower()) != "JPEG":
        raise ImageError(path, f"JPEG bytes cannot be written as {path.suffix or '(no extension)'!r}")
    meta = output_metadata(path, "JPEG", outputs)
    body = with_markers(bytes(data), meta.get("icc_profile"), meta.get("comment"))

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(body)

    atomic_write(path, write, outputs=outputs)
    mark("first_written")
    return path
