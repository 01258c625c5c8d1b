"""The bad-input corpus, generated in code at test time (no odd binaries in the repository).

``make_corpus(directory)`` writes every case into ``directory`` and returns ``{name: Case}``.
Each case says what a correct program does with it:

- ``ok`` cases must decode (``size`` is the expected W×H after EXIF rotation, ``alpha`` whether
  an alpha channel is expected), and every command must either process them or refuse them
  with a one-line error (tiny images may be below what a network accepts);
- ``error`` cases must be refused with a one-line error naming the file and matching ``reason``.

Also: a 65535×1 strip (75 bytes of PNG that used to cost classify 18 GB: refused as a degenerate
shape before decoding), an Adobe-RGB-like photo (an ICC profile built in code by
``adobe_like_icc``: converted to sRGB on load) and a 236-byte file name (its output name is legal,
and so must be the temporary file it is written through).

The decompression-bomb cases are cheap: ``bomb_small`` is a 64×64 image run with a pixel limit
of ``BOMB_LIMIT`` (``--max-pixels`` / ``CVTOOLS_MAX_PIXELS``), and ``bomb_header`` is a 60-byte
PNG whose header claims 100 000 × 100 000 pixels, refused by the default limit before any
decoding.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

#: Pixel limit the tests pass for the ``bomb_small`` case (64×64 = 4096 pixels is over it).
BOMB_LIMIT = 4000


@dataclass
class Case:
    name: str
    path: Path
    outcome: str  # "ok" or "error"
    reason: Optional[str] = None  # regex the one-line error must match (error cases)
    size: Optional[Tuple[int, int]] = None  # expected decoded (W, H) (ok cases)
    alpha: bool = False  # an alpha channel is expected (ok cases)
    needs_limit: bool = False  # only an error under BOMB_LIMIT
    tiny: bool = False  # smaller than a network's minimum input: a clear refusal is also correct

    @property
    def is_error(self):
        return self.outcome == "error"


def photo(w: int = 48, h: int = 40, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB image (gradients plus a little noise): JPEG-friendly and never flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / max(w, 1) * 3.1 + seed)
    g = 128 + 100 * np.cos(y / max(h, 1) * 2.3)
    b = 128 + 80 * np.sin((x + y) / max(w + h, 1) * 5.0)
    arr = np.stack([r, g, b], -1) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _jpeg_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def png_chunks(data: bytes):
    """(offset of the length field, type, payload) for every chunk of a PNG."""
    pos, out = 8, []
    while pos + 8 <= len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        out.append((pos, data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def break_png_crc(data: bytes, chunk: bytes = b"IDAT") -> bytes:
    """Flip the CRC of the first ``chunk`` (the payload stays intact)."""
    out = bytearray(data)
    for pos, ctype, payload in png_chunks(data):
        if ctype == chunk:
            crc_at = pos + 8 + len(payload)
            out[crc_at] ^= 0xFF
            return bytes(out)
    raise ValueError(f"no {chunk!r} chunk")


def png_with_header_size(data: bytes, w: int, h: int) -> bytes:
    """A PNG whose IHDR claims ``w``×``h`` (valid CRC): a decompression bomb's header."""
    out = bytearray(data)
    pos, ctype, payload = png_chunks(data)[0]
    assert ctype == b"IHDR"
    ihdr = struct.pack(">II", w, h) + payload[8:]
    out[pos + 8:pos + 8 + 13] = ihdr
    out[pos + 21:pos + 25] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(out)


#: Adobe RGB (1998)'s colorants adapted to D50 (as in Adobe's own profile) and its gamma.
ADOBE_RGB_COLORANTS = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))
ADOBE_RGB_GAMMA = 563 / 256  # 2.19921875, the u8Fixed8 value in the profile


def adobe_like_icc(colorants=ADOBE_RGB_COLORANTS, gamma: float = ADOBE_RGB_GAMMA,
                   description: str = "Adobe-like RGB (cvtools test)") -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma curves), built byte by byte: what an
    Adobe RGB camera JPEG embeds, without shipping anyone's profile file."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", int(round(v * 65536)))

    def xyz(v) -> bytes:
        return b"XYZ " + b"\0" * 4 + b"".join(s15(c) for c in v)

    def curv(g: float) -> bytes:
        return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(round(g * 256))) + b"\0\0"

    text = description.encode("ascii") + b"\0"
    desc = (b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + struct.pack(">II", 0, 0)
            + struct.pack(">HB", 0, 0) + b"\0" * 67)
    d50 = (0.9642, 1.0, 0.8249)
    tags = [(b"desc", desc), (b"wtpt", xyz(d50)), (b"rXYZ", xyz(colorants[0])), (b"gXYZ", xyz(colorants[1])),
            (b"bXYZ", xyz(colorants[2])), (b"rTRC", curv(gamma)), (b"gTRC", curv(gamma)), (b"bTRC", curv(gamma)),
            (b"cprt", b"text" + b"\0" * 4 + b"no copyright, test data\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 28 + s15(d50[0]) + s15(d50[1])
              + s15(d50[2]) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def make_corpus(d, w: int = 48, h: int = 40) -> Dict[str, Case]:
    """Write the corpus into directory ``d``; returns {name: Case}."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    base = photo(w, h)
    cases: Dict[str, Case] = {}

    def add(name, filename, outcome, data=None, **kw):
        p = d / filename
        if data is not None:
            p.write_bytes(data)
        cases[name] = Case(name, p, outcome, **kw)

    add("good", "good.png", "ok", _png_bytes(base), size=(w, h))
    full = _jpeg_bytes(photo(60, 60, seed=1))  # under BOMB_LIMIT: refused as truncated, not as a bomb
    add("truncated_jpeg", "truncated.jpg", "error", full[: len(full) // 2], reason=r"truncated|cannot decode|damaged")
    add("empty_file", "empty.jpg", "error", b"", reason=r"empty file")
    add("text_as_jpg", "notes.jpg", "error", b"These are my notes, not a photo.\n" * 4,
        reason=r"not a recognised image")
    png = _png_bytes(base)
    add("png_bad_crc_idat", "badcrc_idat.png", "error", break_png_crc(png, b"IDAT"), reason=r"CRC|checksum|damaged")
    add("png_bad_crc_ihdr", "badcrc_ihdr.png", "error", break_png_crc(png, b"IHDR"), reason=r"CRC|checksum|damaged")
    add("cmyk_jpeg", "cmyk.jpg", "ok", _jpeg_bytes(base.convert("CMYK")), size=(w, h))
    deep = (np.linspace(0, 65535, w * h).reshape(h, w)).astype(np.uint16)
    add("png_16bit", "deep16.png", "ok", _png_bytes(Image.fromarray(deep)), size=(w, h))
    pal = base.quantize(16)
    add("palette_transparency", "palette_t.png", "ok", _png_bytes(pal, transparency=0), size=(w, h), alpha=True)
    la = Image.merge("LA", [base.convert("L"), Image.linear_gradient("L").resize((w, h))])
    add("gray_alpha", "gray_alpha.png", "ok", _png_bytes(la), size=(w, h), alpha=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: W×H becomes H×W
    add("exif_rotated", "exif_rot.jpg", "ok", _jpeg_bytes(base, exif=exif), size=(h, w))
    frames = [photo(w, h, seed=s) for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    add("animated_gif", "anim.gif", "ok", buf.getvalue(), size=(w, h))
    add("one_pixel", "one.png", "ok", _png_bytes(Image.new("RGB", (1, 1), (200, 30, 40))), size=(1, 1), tiny=True)
    add("bomb_small", "bomb_small.png", "error", _png_bytes(photo(64, 64, seed=2)),
        reason=r"safety limit|decompression bomb", needs_limit=True)
    add("bomb_header", "bomb_header.png", "error", png_with_header_size(_png_bytes(Image.new("L", (4, 4))), 100_000, 100_000),
        reason=r"safety limit|decompression bomb")
    add("degenerate_strip", "strip.png", "error", _png_bytes(Image.new("L", (65535, 1))),
        reason=r"degenerate shape \(aspect ratio 65535:1")
    add("adobe_rgb", "adobe.png", "ok", _png_bytes(base, icc_profile=adobe_like_icc()), size=(w, h))
    add("long_name", "n" * 232 + "_long.png", "ok", _png_bytes(base), size=(w, h))
    add("missing", "does_not_exist.jpg", "error", None, reason=r"no such file")
    (d / "empty_dir").mkdir(exist_ok=True)
    (d / "empty_dir" / "readme.txt").write_text("no images in here\n")
    cases["empty_dir"] = Case("empty_dir", d / "empty_dir", "error", reason=r"holds no images")
    return cases


def unwritable_output(d) -> Path:
    """An output directory that cannot be created, even by root: a path under a regular file."""
    d = Path(d)
    blocker = d / "a_regular_file"
    blocker.write_text("this is a file, so nothing can be created under it\n")
    return blocker / "out"


#: Case names, in a stable order, for parametrisation without building the corpus first.
CASE_NAMES = [
    "good", "truncated_jpeg", "empty_file", "text_as_jpg", "png_bad_crc_idat", "png_bad_crc_ihdr",
    "cmyk_jpeg", "png_16bit", "palette_transparency", "gray_alpha", "exif_rotated", "animated_gif",
    "one_pixel", "bomb_small", "bomb_header", "degenerate_strip", "adobe_rgb", "long_name", "missing", "empty_dir",
]
