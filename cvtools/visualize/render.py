"""Pictures: heat-map overlays, captioned tiles, side-by-side panels and labelled grids.

Everything returns PIL images (8-bit RGB); inputs are [0, 1] tensors (C×H×W images, H×W maps).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from cvtools.ops import gaussian_blur  # noqa: F401  (re-exported: the heat-map blur)
from cvtools.visualize.colormaps import apply_colormap

BACKGROUND = (24, 24, 28)  # panels and grids sit on near-black, so heat colours stand out
TEXT = (235, 235, 235)
SUBTLE = (160, 160, 168)


@lru_cache(maxsize=8)
def font(size: int):
    """Pillow's bundled scalable font (no system fonts needed); the bitmap one on old Pillow."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or without FreeType
        return ImageFont.load_default()


def _text_width(draw, text, fnt):
    box = draw.textbbox((0, 0), text, font=fnt)
    return box[2] - box[0]


def fit_text(text: str, width: int, fnt) -> str:
    """Shorten ``text`` with an ellipsis so it fits ``width`` pixels."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    if _text_width(draw, text, fnt) <= width:
        return text
    while len(text) > 1 and _text_width(draw, text + "…", fnt) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def to_pil(t: torch.Tensor) -> Image.Image:
    from cvtools.io.decode import tensor_to_pil

    return tensor_to_pil(t.detach().float().cpu())


def resize_map(heat: torch.Tensor, size) -> torch.Tensor:
    """H×W map -> the given (H, W), bilinear (maps are smooth or are being enlarged for display)."""
    if tuple(heat.shape[-2:]) == tuple(size):
        return heat
    return F.interpolate(heat[None, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[0, 0]


def resize_maps(maps: torch.Tensor, size) -> torch.Tensor:
    """C×H×W maps (float) -> C×size, bilinear, values kept as they are (a map per pixel, resampled:
    not the gradient with respect to a differently sized image, which would also scale them)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[None].float(), size=tuple(size), mode="bilinear", align_corners=False)[0]


def overlay(image: torch.Tensor, heat: torch.Tensor, colormap: str = "jet", alpha: float = 0.6,
            gamma: float = 0.5) -> torch.Tensor:
    """Colour ``heat`` (H×W in [0, 1]) over ``image`` (3×H×W in [0, 1]).

    The colour's opacity grows with the heat (``alpha * heat ** gamma``) and the photo underneath
    is slightly dimmed and desaturated: hot regions read at a glance while cold ones still show the
    photo, instead of the uniform blue wash of a constant-opacity blend. gamma 0.5 suits smooth
    region maps; 1 keeps sparse pixel maps from fogging the photo.
    """
    image = image.detach().float().cpu()
    heat = resize_map(heat.detach().float().cpu(), image.shape[-2:]).clamp(0, 1)
    gray = image.mean(dim=0, keepdim=True)
    base = 0.75 * (0.55 * image + 0.45 * gray)
    colour = apply_colormap(heat, colormap)
    a = alpha * heat.pow(gamma)[None]
    return (1 - a) * base + a * colour


def captioned(tile: Image.Image, lines: Sequence[str], font_size: int = 0) -> Image.Image:
    """``tile`` with a dark caption bar below it: first line bright, the others dimmer."""
    w, h = tile.size
    font_size = font_size or max(11, min(18, round(min(w, h) / 22)))  # same for portrait and landscape
    fnt = font(font_size)
    line_h = round(font_size * 1.35)
    pad = max(4, font_size // 2)
    bar = pad * 2 + line_h * len(lines) if lines else 0
    out = Image.new("RGB", (w, h + bar), BACKGROUND)
    out.paste(tile.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((pad, h + pad + i * line_h), fit_text(line, w - 2 * pad, fnt), font=fnt,
                  fill=TEXT if i == 0 else SUBTLE)
    return out


def side_by_side(tiles: Sequence[Image.Image], gap: int = 6, columns: int = 4) -> Image.Image:
    """Tiles in rows of at most ``columns`` on the dark background (a wide panel of seven methods
    would be unreadable), top-aligned."""
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    w = max(sum(t.width for t in row) + gap * (len(row) + 1) for row in rows)
    heights = [max(t.height for t in row) for row in rows]
    out = Image.new("RGB", (w, sum(heights) + gap * (len(rows) + 1)), BACKGROUND)
    y = gap
    for row, h in zip(rows, heights):
        x = gap
        for t in row:
            out.paste(t, (x, y))
            x += t.width + gap
        y += h + gap
    return out


def stack_rows(pictures: Sequence[Image.Image]) -> Image.Image:
    """Pictures one above the other on the dark background (a misclassified photo's panel for
    its predicted class above the one for its true class)."""
    return side_by_side(pictures, gap=0, columns=1)


def grid(tiles: Sequence[Image.Image], labels: Sequence[str] = (), columns: Optional[int] = None,
         title: Optional[str] = None, gap: int = 4) -> Image.Image:
    """Equal-sized tiles in a near-square grid, each labelled below, with an optional title bar."""
    n = len(tiles)
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    tw, th = tiles[0].size
    font_size = max(10, min(16, round(tw / 9)))
    labelled = [captioned(t, [labels[i]] if i < len(labels) and labels[i] else [], font_size) for i, t in enumerate(tiles)]
    cw, ch = max(t.width for t in labelled), max(t.height for t in labelled)
    title_h = 0
    if title:
        title_size = max(12, min(22, round(columns * cw / 40)))
        title_h = round(title_size * 1.35) + 2 * gap + 4
    out = Image.new("RGB", (columns * cw + (columns + 1) * gap, title_h + rows * ch + (rows + 1) * gap), BACKGROUND)
    draw = ImageDraw.Draw(out)
    if title:
        fnt = font(title_size)
        draw.text((gap + 2, gap + 2), fit_text(title, out.width - 2 * gap, fnt), font=fnt, fill=TEXT)
    for i, t in enumerate(labelled):
        r, c = divmod(i, columns)
        out.paste(t, (gap + c * (cw + gap), title_h + gap + r * (ch + gap)))
    return out


def display_size(width: int, height: int, short_side: int = 384, long_max: int = 768):
    """The size a panel tile is drawn at: big enough to read, small enough to put side by side."""
    scale = short_side / min(width, height)
    scale = min(scale, long_max / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
