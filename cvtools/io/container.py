"""Opening a video container's file: the checks every input gets, the FFmpeg demuxer from the
first bytes, PyAV imported on first use, tags read leniently, and the container's comment (where
a video output's provenance marker lives). Shared by :mod:`cvtools.io.markers` (reading markers)
and :mod:`cvtools.video.io` (decoding), so neither imports the other's module."""

from __future__ import annotations

import functools
import inspect
import stat as _stat
from pathlib import Path
from typing import Optional

from cvtools.errors import CvtoolsError, ImageError


def av_module():
    """PyAV, imported on first use; a one-line error saying how to install it when missing."""
    try:
        import av
    except ImportError:
        raise CvtoolsError("video needs PyAV (FFmpeg for Python): pip install av") from None
    return av


def open_input(path, demuxer: Optional[str]):
    """``av.open`` of a file to read with the demuxer named (never FFmpeg's guess), its tags read
    leniently: a title that is not UTF-8 must not make a file unreadable."""
    return av_module().open(str(path), format=demuxer, **_lenient_tags())


@functools.lru_cache(maxsize=None)
def _lenient_tags() -> dict:
    """The keywords that make the installed PyAV's ``av.open`` read tags leniently, decided once.
    PyAV 18 and older decode tags strictly unless told ``metadata_errors="ignore"``; PyAV 19
    removed the keyword (passing it is a TypeError) and decodes with ``surrogateescape``, which
    never fails (:func:`_tag_text` drops what it could not decode)."""
    av = av_module()
    try:
        takes = "metadata_errors" in inspect.signature(av.open).parameters
    except (TypeError, ValueError):  # compiled without a signature (PyAV's wheels): its version says
        takes = _major_version(getattr(av, "__version__", "")) < 19
    return {"metadata_errors": "ignore"} if takes else {}


def _major_version(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 1_000  # unknown: assume a new PyAV (leaving the keyword out only loses the leniency)


def _tag_text(value) -> Optional[str]:
    """A tag as text without the bytes that are not UTF-8 (PyAV 19 hands them over as lone
    surrogates, which cannot be printed or encoded; PyAV 18 dropped them), or None."""
    if not isinstance(value, str):
        return None
    return "".join(c for c in value if not "\ud800" <= c <= "\udfff")


def sniff_container(head: bytes) -> Optional[str]:
    """The FFmpeg demuxer for a file's first bytes, or None (not a container cvtools reads)."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mov"  # FFmpeg's one demuxer for mov, mp4, m4v, 3gp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # mkv and webm
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    return None


def check_file(path: Path) -> bytes:
    """The file's first 64 bytes, after the checks every input gets (exists, regular, not empty)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(path, "no such file" if not path.is_symlink() else "broken symbolic link") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read ({exc.strerror or exc})") from None
    if _stat.S_ISDIR(st.st_mode):
        raise ImageError(path, "is a directory, not a video")
    if not _stat.S_ISREG(st.st_mode):
        raise ImageError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except OSError as exc:
        raise ImageError(path, f"cannot read ({exc.strerror or exc})") from None


def read_video_comment(path) -> Optional[str]:
    """The container's ``comment`` metadata of a video cvtools can read (None when absent or
    unreadable); GIF/WebP markers are read by :func:`cvtools.io.markers.read_marker` itself."""
    try:
        p = Path(path)
        head = check_file(p)
        demuxer = sniff_container(head)
        if demuxer is None:
            return None
        with open_input(p, demuxer) as c:
            text = c.metadata.get("comment") or c.metadata.get("COMMENT")
            if not text and c.streams.video:
                text = c.streams.video[0].metadata.get("comment")
            return _tag_text(text)
    except Exception:
        return None
