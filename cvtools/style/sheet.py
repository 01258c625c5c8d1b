"""A sheet of one photo in every bundled style: ``cvtools styles --sheet photo.jpg``.

The photo (shrunk to a longer side of ``size``, a small one enlarged to :data:`MIN_TILE` on its
shorter side) and one tile per style, labelled, in a near-square grid: what a user looks at to
choose a style for their own picture.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

#: The shorter side a sheet's tiles have at least (within ``size``): a smaller photo is enlarged
#: for the sheet, or its labels would be cut ("p.." for a 17x16 photo).
MIN_TILE = 128


def tile_size(width: int, height: int, size: int = 384) -> Tuple[int, int]:
    """The size a ``width`` x ``height`` photo is drawn at on the sheet: its longer side shrunk
    to ``size``; its shorter side enlarged to :data:`MIN_TILE` when under it (the longer side kept
    within ``size``)."""
    scale = min(1.0, size / max(width, height))
    if min(width, height) * scale < MIN_TILE:
        scale = max(scale, min(MIN_TILE / min(width, height), size / max(width, height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def style_sheet(photo, records: Sequence, size: int = 384, device: str = "auto",
                progress: Optional[Callable[[str], None]] = None, on_note: Optional[Callable[[str], None]] = None):
    """A PIL grid: ``photo`` (a PIL image) then ``photo`` stylized by each record, labelled by
    name. ``progress(name)`` is called before each style; ``on_note(text)`` once when a small
    photo is enlarged for the sheet (:func:`tile_size`)."""
    from PIL import Image

    from cvtools.io.decode import pil_to_tensor, tensor_to_pil
    from cvtools.style.stylize import Stylizer
    from cvtools.visualize.render import grid

    photo = photo.convert("RGB")
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
