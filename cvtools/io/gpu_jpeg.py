"""JPEG decoded and encoded on a CUDA device (nvJPEG, through ``torchvision.io``) for folders whose
network runs there, routed file by file so that what a user gets stays what the host path gives.

- **Decode** (:func:`route_jpeg`, then :func:`decode_on_device`): only plain baseline JPEGs, 8-bit
  YCbCr with 4:4:4, 4:2:2, 4:4:0 or 4:2:0 chroma, no ICC profile (the host path converts other
  profiles to sRGB), no EXIF orientation other than 1 (the host path turns the photo), no Adobe
  or RGB-coded colour, one picture (no MPF), ending in an end-of-image marker (a truncated file
  must fail loudly on the host decoder, never come out half grey). Everything else, and any file
  whose header does not parse, is decoded by Pillow as before.
- **Encode** (:func:`encode_on_device`, then :func:`with_markers`): the device's bytes get the
  segments :func:`cvtools.io.atomic.save_image` writes into a JPEG (the sRGB ICC profile, the
  provenance comment), in the place and form Pillow writes them
  (:func:`cvtools.io.atomic.save_jpeg_bytes`). nvJPEG through torchvision encodes 4:4:4 chroma
  where Pillow encodes 4:2:0 at the same quality: sharper colour edges, larger files.

Both are off unless asked for (``CVTOOLS_GPU_JPEG``, :func:`gpu_jpeg_modes`): their pixels are
not Pillow's bit for bit (nvJPEG's inverse DCT and chroma upsampling differ from libjpeg's by a
few levels; ``benchmarks/folder/gpu_codec_check.py`` measures by how much and how fast on a GPU).
This module imports neither torch nor torchvision until a device call needs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

#: The environment variable that turns the device's JPEG codec on: ``1``/``on`` (decode and
#: encode), ``decode``, ``encode``, ``0``/``off`` (the default).
ENV = "CVTOOLS_GPU_JPEG"

_SOF_OTHER = {0xC1: "extended sequential", 0xC2: "progressive", 0xC3: "lossless", 0xC5: "differential",
              0xC6: "differential progressive", 0xC7: "differential lossless", 0xC9: "arithmetic-coded",
              0xCA: "arithmetic progressive", 0xCB: "arithmetic lossless", 0xCD: "arithmetic differential",
              0xCE: "arithmetic differential progressive", 0xCF: "arithmetic differential lossless"}
#: Luma sampling factors (h << 4 | v) nvJPEG and libjpeg decode alike, chroma at 1×1.
_LUMA_SAMPLING = {0x11: "4:4:4", 0x21: "4:2:2", 0x12: "4:4:0", 0x22: "4:2:0"}


@dataclass(frozen=True)
class JpegRoute:
    """Where one JPEG file is decoded: ``device`` True for nvJPEG, else Pillow; ``reason`` says
    why (for tests and the check script); ``width``/``height`` from the frame header when known."""

    device: bool
    reason: str
    width: int = 0
    height: int = 0


def gpu_jpeg_modes(value: Optional[str] = None) -> Tuple[bool, bool]:
    """(decode, encode) on the device, from ``value`` (None: ``$CVTOOLS_GPU_JPEG``; unset: off)."""
    text = (os.environ.get(ENV, "") if value is None else str(value)).strip().lower()
    if text in ("", "0", "off", "no", "false", "none"):
        return False, False
    if text in ("1", "on", "yes", "true", "both", "all"):
        return True, True
    if text in ("decode", "encode"):
        return text == "decode", text == "encode"
    from cvtools.errors import UsageError

    raise UsageError(f"{ENV}={value if value is not None else os.environ.get(ENV)!r}: use 1 (decode and encode on "
                     "the GPU), decode, encode or 0")


def _exif_orientation(tiff: bytes) -> Optional[int]:
    """The Orientation tag (0x0112) of an EXIF block's first IFD, None when absent; ValueError
    when the block does not parse (the host path then reads it)."""
    if tiff[:4] == b"II*\x00":
        order = "little"
    elif tiff[:4] == b"MM\x00*":
        order = "big"
    else:
        raise ValueError("not a TIFF header")
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    if ifd < 8 or ifd + 2 + 12 * count > len(tiff):
        raise ValueError("IFD out of range")
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
        if int.from_bytes(entry[:2], order) == 0x0112:
            if int.from_bytes(entry[2:4], order) != 3:  # SHORT
                raise ValueError("odd orientation type")
            return int.from_bytes(entry[8:10], order)
    return None


def _segments(data: bytes):
    """(marker, payload) of each header segment up to the first scan (SOS: ``(0xDA, b"")``);
    ValueError where the structure breaks."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"no marker at byte {i}")
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m == 0x01 or 0xD0 <= m <= 0xD8:  # stand-alone markers
            i += 2
            continue
        if m == 0xDA:
            yield m, b""
            return
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > len(data):
            raise ValueError(f"segment 0x{m:02X} overruns the file")
        yield m, data[i + 4:i + 2 + length]
        i += 2 + length
    raise ValueError("no scan")


def route_jpeg(data: bytes) -> JpegRoute:
    """Whether nvJPEG may decode ``data`` (a whole JPEG file) with what the host decoder gives
    (see the module docstring): a :class:`JpegRoute`. Reads the header segments only."""
    if data[:3] != b"\xff\xd8\xff":
        return JpegRoute(False, "not a JPEG file")
    if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return JpegRoute(False, "no end-of-image marker (truncated?): the host decoder reports it")
    frame = None
    try:
        for m, seg in _segments(data):
            if m == 0xE1 and seg.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(seg[6:])
                if orientation not in (None, 1):
                    return JpegRoute(False, f"EXIF orientation {orientation}: the host path turns it")
            elif m == 0xE2 and seg.startswith(b"ICC_PROFILE\x00"):
                return JpegRoute(False, "ICC profile: the host path converts its colours to sRGB")
            elif m == 0xE2 and seg.startswith(b"MPF\x00"):
                return JpegRoute(False, "multi-picture file")
            elif m == 0xEE and seg.startswith(b"Adobe"):
                return JpegRoute(False, "Adobe colour transform marker")
            elif m in _SOF_OTHER:
                return JpegRoute(False, f"{_SOF_OTHER[m]} JPEG")
            elif m == 0xC0:
                frame = seg
    except (ValueError, IndexError) as exc:
        return JpegRoute(False, f"header does not parse ({exc}): the host decoder reports it")
    if frame is None or len(frame) < 6:
        return JpegRoute(False, "no baseline frame header")
    precision, height, width, n = frame[0], int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big"), frame[5]
    if precision != 8:
        return JpegRoute(False, f"{precision}-bit samples")
    if n != 3 or len(frame) < 6 + 3 * n:
        return JpegRoute(False, f"{n} components (grey or CMYK)", width, height)
    ids = bytes(frame[6 + 3 * k] for k in range(3))
    sampling = [frame[7 + 3 * k] for k in range(3)]
    if ids == b"RGB":
        return JpegRoute(False, "RGB-coded components", width, height)
    if sampling[0] not in _LUMA_SAMPLING or sampling[1] != 0x11 or sampling[2] != 0x11:
        return JpegRoute(False, "unusual chroma sampling " + ",".join(f"{s >> 4}x{s & 15}" for s in sampling),
                         width, height)
    if not width or not height:
        return JpegRoute(False, "no size in the frame header")
    return JpegRoute(True, f"baseline YCbCr {_LUMA_SAMPLING[sampling[0]]}", width, height)


def decode_on_device(datas: Sequence, device) -> list:
    """Decode whole JPEG files (bytes, or 1-D uint8 CPU tensors) on ``device`` with nvJPEG, in one
    batched call: a list of 3×H×W uint8 tensors there (RGB)."""
    import warnings

    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    tensors = [d if torch.is_tensor(d) else torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29+ says its codecs are deprecated
        out = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)
    return list(out)


def encode_on_device(images: Sequence, quality: int) -> List[bytes]:
    """Encode 3×H×W uint8 tensors on their (CUDA) device with nvJPEG: one JPEG file's bytes each,
    without the segments :func:`with_markers` adds.

    torchvision encodes on a stream of its own that does not wait for the caller's: the images
    are made contiguous (the copy nvJPEG needs) and the caller's stream finished first, so the
    encoder never reads pixels still being written."""
    import warnings

    import torch
    from torchvision.io import encode_jpeg

    images = [t.contiguous() for t in images]
    if images and images[0].is_cuda:
        torch.cuda.current_stream(images[0].device).synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = encode_jpeg(images, quality=int(quality))
    return [t.cpu().numpy().tobytes() for t in out]


def available(device) -> bool:
    """Whether this process can decode and encode JPEG on ``device``: a CUDA device and a
    torchvision built with nvJPEG (its CUDA codec is tried lazily: a failure later falls back)."""
    if getattr(device, "type", str(device).split(":")[0]) != "cuda":
        return False
    try:
        from torchvision.io import decode_jpeg, encode_jpeg  # noqa: F401
    except Exception:  # not installed, or built without the image extension
        return False
    return True


#: Pillow's limit on an ICC chunk's data (65535 - 2 length bytes - 14 bytes "ICC_PROFILE\0" n m).
_ICC_CHUNK = 65519


def with_markers(jpeg: bytes, icc_profile: Optional[bytes] = None, comment: Optional[bytes] = None) -> bytes:
    """``jpeg`` (a whole file as an encoder wrote it, without ICC profile or comment) with the ICC
    profile (APP2 ``ICC_PROFILE`` chunks) and the comment (COM) inserted after the JFIF header, as
    Pillow writes them for ``save(..., icc_profile=..., comment=...)``: a file Pillow encoded bare
    comes out byte for byte as Pillow would have written it with them."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    at = 2
    while jpeg[at:at + 2] == b"\xff\xe0":  # keep the JFIF (and JFXX) header first
        at += 2 + int.from_bytes(jpeg[at + 2:at + 4], "big")
    for m, seg in _segments(jpeg):
        if (m == 0xE2 and seg.startswith(b"ICC_PROFILE\x00") and icc_profile) or (m == 0xFE and comment):
            raise ValueError("the JPEG carries its own ICC profile or comment already")
    extra = b""
    if icc_profile:
        chunks = [icc_profile[k:k + _ICC_CHUNK] for k in range(0, len(icc_profile), _ICC_CHUNK)]
        for n, chunk in enumerate(chunks, 1):
            body = b"ICC_PROFILE\x00" + bytes([n, len(chunks)]) + chunk
            extra += b"\xff\xe2" + (len(body) + 2).to_bytes(2, "big") + body
    if comment:
        if len(comment) > 65533:
            raise ValueError("a JPEG comment holds at most 65533 bytes")
        extra += b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return jpeg[:at] + extra + jpeg[at:]
