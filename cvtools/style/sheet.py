"""A sheet of one photo in every bundled style: ``cvtools styles --sheet photo.jpg``.

The photo (shrunk to a longer side of ``size``, a small one enlarged to :data:`MIN_TILE` on its
shorter side, a long thin one cut to its middle) and one tile per style, labelled, in a near-square grid: what a user looks at to
choose a style for their own picture.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

#: The shorter side a sheet's tiles have at least (within ``size``): a smaller photo is enlarged
#: for the sheet, or its labels would be cut ("p.." for a 17x16 photo).
MIN_TILE = 128


def crop_box(width: int, height: int, size: int = 384) -> Optional[Tuple[int, int, int, int]]:
    """The middle of a photo too long and thin for tiles of ``size`` with a shorter side of
    :data:`MIN_TILE` (a 100x2000 strip would make 19-px-wide tiles and cut every name): its longer
    side cut to ``size / MIN_TILE`` times the shorter (at least square), as a PIL box; None when
    the whole photo fits."""
    longest = max(1, min(width, height)) * max(1.0, size / MIN_TILE)
    if max(width, height) <= round(longest):
        return None
    keep = round(longest)
    if width > height:
        left = (width - keep) // 2
        return left, 0, left + keep, height
    top = (height - keep) // 2
    return 0, top, width, top + keep


def tile_size(width: int, height: int, size: int = 384) -> Tuple[int, int]:
    """The size a ``width`` x ``height`` photo is drawn at on the sheet (after :func:`crop_box`):
    its longer side shrunk to ``size``; its shorter side enlarged to :data:`MIN_TILE` when under it
    (the longer side kept within ``size``)."""
    box = crop_box(width, height, size)
    if box is not None:
        width, height = box[2] - box[0], box[3] - box[1]
    scale = min(1.0, size / max(width, height))
    if min(width, height) * scale < MIN_TILE:
        scale = max(scale, min(MIN_TILE / min(width, height), size / max(width, height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def style_sheet(photo, records: Sequence, size: int = 384, device: str = "auto",
                progress: Optional[Callable[[str], None]] = None, on_note: Optional[Callable[[str], None]] = None):
    """A PIL grid: ``photo`` (a PIL image) then ``photo`` stylized by each record, labelled by
    name. ``progress(name)`` is called before each style; ``on_note(text)`` when a long thin photo
    is cut to its middle (:func:`crop_box`) and when a small one is enlarged (:func:`tile_size`)."""
    from PIL import Image

    from cvtools.io.decode import pil_to_tensor, tensor_to_pil
    from cvtools.style.stylize import Stylizer
    from cvtools.visualize.render import grid

    photo = photo.convert("RGB")
    box = crop_box(*photo.size, size=size)
    if box is not None:
        if on_note:
            on_note(f"{photo.width}x{photo.height} px is long and thin: its middle {box[2] - box[0]}x"
                    f"{box[3] - box[1]} is shown, so the tiles are wide enough for the style names")
        photo = photo.crop(box)
    w, h = tile_size(*photo.size, size=size)
    small = photo if (w, h) == photo.size else photo.resize((w, h), Image.LANCZOS)
    if w > photo.width and on_note:
        on_note(f"{photo.width}x{photo.height} px, enlarged to {w}x{h} for the sheet (tiles of at least "
                f"{MIN_TILE} px, so the style names fit)")
    x = pil_to_tensor(small)
    tiles, labels = [small], ["photo"]
    for record in records:
        if progress:
            progress(record.name)
        tiles.append(tensor_to_pil(Stylizer(record, device=device)(x).clamp(0, 1)))
        labels.append(record.name)
    return grid(tiles, labels, columns=min(4, len(tiles)))
