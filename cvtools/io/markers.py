"""Provenance markers: what every output records about how it was made (the command, the
options that change the result, a hash of the input), written into the image header (PNG text,
JPEG/GIF comment, WebP/TIFF EXIF) or a video container's comment, and read back to recognise a
finished output on a re-run (:mod:`cvtools.io.naming`)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from typing import Optional

from PIL import Image

from cvtools.io.container import read_video_comment
from cvtools.io.decode import SAFE_FORMATS, _pillow_settings, srgb_icc
from cvtools.io.discover import VIDEO_EXTENSIONS

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
    head, sep, weight = text.rpartition(":")  # a blend's "painting.jpg:0.3"
    if sep and head and os.path.isfile(head):
        return f"{os.path.abspath(head)}:{weight}"
    return text


#: option files up to this size are hashed whole for the digest; larger ones (a model checkpoint
#: of gigabytes) by size and modification time, as hashing them would cost seconds a command
OPTION_FILE_HASH_LIMIT = 256 * 1024 ** 2


def _option_files(options: dict) -> dict:
    """{absolute path: content id} of the existing files the options' values name, also as
    ``path:weight`` (a style blend's entry)."""
    found = {}

    def visit(value):
        if isinstance(value, list):
            for v in value:
                visit(v)
            return
        if not isinstance(value, str):
            return
        for path in {value, value.rpartition(":")[0]}:
            if path and os.path.isabs(path) and os.path.isfile(path):
                size = os.path.getsize(path)
                found[path] = input_digest(path) if size <= OPTION_FILE_HASH_LIMIT else \
                    f"{size}:{os.stat(path).st_mtime_ns}"
    for v in options.values():
        visit(v)
    return found


@dataclass
class Provenance:
    """What makes an output: the command (``"stylize"``, ``"visualize gradcam"``) and the
    options that change the result (``{"--style": "mona", "--strength": 1.0, ...}``; not -o,
    --overwrite, -q, --device and other options that do not change what is written)."""

    command: str
    options: dict

    def __post_init__(self):
        self.options = {str(k): _canonical(v) for k, v in sorted(self.options.items())}
        # the content of the files the options name (a painting, a guide, a model) is part of
        # the result: a file replaced under the same name makes the output stale. Only added
        # when there are such files, so the digests of other outputs stay what they were.
        files = _option_files(self.options)
        data = json.dumps([self.command, self.options] + ([files] if files else []), sort_keys=True, default=str)
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


def read_video_marker(path) -> Optional[dict]:
    """The provenance marker of a video cvtools wrote (its container's comment, "cvtools:{...}"),
    validated like :func:`read_marker`'s; None when absent or malformed."""
    text = read_video_comment(path)
    if not text or not text.startswith(_MARKER_PREFIX):
        return None
    return parse_marker(text[len(_MARKER_PREFIX):])


def output_metadata(path, fmt: str, outputs=None) -> dict:
    """Keyword arguments for Pillow's ``save`` that tag an output: the sRGB ICC profile, and
    the provenance marker when ``path`` was named by ``outputs`` (the run's
    :class:`~cvtools.io.naming.Outputs`, which knows the command and its options). For JPEG,
    PNG, WebP, TIFF (and GIF: the marker only)."""
    kwargs: dict = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = srgb_icc()
    record = outputs.record(path) if outputs is not None else None
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
