"""Animated WebP whose colours are lossy and whose transparency is kept.

Measured with Pillow 13.0 and libwebp 1.6 (3 to 12 frames of 64×48 to 128×96, quality 80-90):
libwebp's animation encoder writes each frame as the rectangle where it differs from the
canvas, and in lossy mode a fully transparent pixel counts as equal to the transparent canvas,
so a frame whose transparent areas touch its edges is cropped to an opaque rectangle with no
alpha plane (no ALPH chunk). Where no frame of the file keeps one, its VP8X alpha flag stays
unset and the canvas outside the rectangles reads back opaque: Pillow opens the file as RGB,
a transparent right half comes back with alpha 255. A transparent hole inside the frame, or
any partial opacity at the crop's edge, keeps the plane, so the loss depends on the picture.
``alpha_quality`` (90, 100), ``method`` (0, 4, 6), ``minimize_size``, ``exact``, ``background``
and key frames every 3-5 frames (Pillow's default) change none of it; ``allow_mixed`` helps
only where it picks lossless frames (flat colours). ``kmax=1`` makes every frame after the
first a key frame over the whole canvas, which carries its alpha plane and so sets the flag:
the alpha survives whenever a frame after the first is transparent, and the file stays about
the size of the plain lossy one (4-6× smaller than lossless on photo-like frames). Where only
the first frame is transparent, the written file is checked and, lacking the flag, written
again lossless (lossless compares exact colours, so transparent areas are not cropped away).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union


def save_animated_webp(path: Union[str, Path], frames: Sequence, **kwargs) -> None:
    """Write PIL ``frames`` (one mode, at least one) as an animated WebP at ``path``; ``kwargs``
    as Pillow's (``duration``, ``loop``, ``quality``, ``method``, ``exif``...). RGBA frames are
    lossy with their alpha kept (see the module's note), lossless only where that would lose it
    or ``lossless=True`` asks."""
    first, rest = frames[0], list(frames[1:])
    if first.mode == "RGBA" and not kwargs.get("lossless"):
        first.save(path, format="WEBP", save_all=True, append_images=rest, **dict(kwargs, kmin=0, kmax=1))
        if has_alpha_flag(path) or all(f.getchannel("A").getextrema()[0] == 255 for f in frames):
            return
        kwargs = dict(kwargs, lossless=True, quality=80)  # only the first frame transparent: its alpha kept
    first.save(path, format="WEBP", save_all=True, append_images=rest, **kwargs)


def has_alpha_flag(path: Union[str, Path]) -> bool:
    """Whether the WebP file says it has transparency (its VP8X header's alpha flag): without
    it, readers show every pixel opaque."""
    with open(path, "rb") as f:
        head = f.read(21)
    return len(head) == 21 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x10)
