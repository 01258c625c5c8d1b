#!/usr/bin/env python3
"""Contact sheet of styles: one row per photo, one column per style (the original first).

    python tools/style_contact_sheet.py -o docs/images/styles.jpg \\
        --photos samples/chelsea.jpg samples/astronaut.jpg samples/coffee.jpg samples/rocket.jpg

Styles default to every bundled one; ``--styles`` takes names or .json/.safetensors paths.
Each photo is resized (longer side ``--cell``) and stylized whole; labels name the columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _label(draw, xy, text, font):
    x, y = xy
    # dark outline so the label reads on any image
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            draw.text((x + dx, y + dy), text, font=font, fill=(0, 0, 0))
    draw.text((x, y), text, font=font, fill=(255, 255, 255))


def contact_sheet(photos: Sequence, styles: Sequence, cell: int = 320, device: str = "auto",
                  labels: Optional[List[str]] = None, stylize_size: Optional[int] = None):
    """A PIL image: rows = photos, columns = original + each style. ``styles`` are names, paths
    or ready Stylizer objects. ``stylize_size``: stylize at this longer side, then shrink to the
    cell (shows the brush strokes as they look on a larger image)."""
    from PIL import Image, ImageDraw, ImageFont

    from cvtools.imageio import load_image, tensor_to_pil
    from cvtools.style.stylize import Stylizer, resize_long_side

    stylizers = [s if isinstance(s, Stylizer) else Stylizer(s, device=device) for s in styles]
    names = labels or ["original"] + [s.name for s in stylizers]
    rows = []
    for p in photos:
        rgb = load_image(p).rgb
        work = resize_long_side(rgb, stylize_size or cell)
        cells = [resize_long_side(rgb, cell)]
        for st in stylizers:
            out = tensor_to_pil(st(work, tile=None))
            cells.append(resize_long_side(out, cell))
        rows.append(cells)
    cw = max(c.width for r in rows for c in r)
    gap = 4
    heights = [max(c.height for c in r) for r in rows]
    sheet = Image.new("RGB", (len(rows[0]) * (cw + gap) + gap, sum(h + gap for h in heights) + gap), (24, 24, 24))
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", max(12, cell // 18))
    except OSError:
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(sheet)
    y = gap
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            x = gap + c * (cw + gap) + (cw - im.width) // 2
            sheet.paste(im, (x, y + (heights[r] - im.height) // 2))
            if r == 0:
                _label(draw, (gap + c * (cw + gap) + 6, y + 4), names[c], font)
        y += heights[r] + gap
    return sheet


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--photos", nargs="+", default=[str(ROOT / "samples" / n) for n in
                                                     ("chelsea.jpg", "astronaut.jpg", "coffee.jpg", "rocket.jpg")])
    ap.add_argument("--styles", nargs="*", help="names or paths (default: every bundled style)")
    ap.add_argument("--cell", type=int, default=320)
    ap.add_argument("--stylize-size", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quality", type=int, default=90)
    args = ap.parse_args(argv)
    from cvtools.style.records import bundled_names

    styles = args.styles or bundled_names()
    sheet = contact_sheet(args.photos, styles, cell=args.cell, device=args.device, stylize_size=args.stylize_size)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=args.quality, optimize=True)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
