"""A sheet of one photo in every bundled style: ``cvtools styles --sheet photo.jpg``.

The photo (shrunk to a longer side of ``size``) and one tile per style, labelled, in a
near-square grid: what a user looks at to choose a style for their own picture.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence


def style_sheet(photo, records: Sequence, size: int = 384, device: str = "auto",
                progress: Optional[Callable[[str], None]] = None):
    """A PIL grid: ``photo`` (a PIL image) then ``photo`` stylized by each record, labelled by
    name. ``progress(name)`` is called before each style."""
    from cvtools.io.decode import pil_to_tensor, tensor_to_pil
    from cvtools.ops import resize_long_side
    from cvtools.style.stylize import Stylizer
    from cvtools.visualize.render import grid

    small = resize_long_side(photo.convert("RGB"), size, enlarge=False)
    x = pil_to_tensor(small)
    tiles, labels = [small], ["photo"]
    for record in records:
        if progress:
            progress(record.name)
        tiles.append(tensor_to_pil(Stylizer(record, device=device)(x).clamp(0, 1)))
        labels.append(record.name)
    return grid(tiles, labels, columns=min(4, len(tiles)))
