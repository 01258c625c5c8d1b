#!/usr/bin/env python3
"""Contact sheet of styles: one row per photo, one column per style (the original first).

    python tools/style_contact_sheet.py -o docs/images/styles.jpg \\
        --photos samples/chelsea.jpg samples/astronaut.jpg samples/coffee.jpg samples/rocket.jpg

Styles default to every bundled one; ``--styles`` takes names or .json/.safetensors paths.
Each photo is resized (longer side ``--cell``) and stylized whole; labels name the columns.

``--by-style`` turns it round for judging styles: one row per style, its painting first (named
on the row), then each photo stylized; ``--crops N`` adds a second sheet (``*_crops.png``) of
N×N-pixel crops from the middle of each result at their own size, shown 2× enlarged (pixel
for pixel: streaks, halos and stippling show there).

    python tools/style_contact_sheet.py --by-style --crops 96 -o sheet.jpg --photos a.jpg b.jpg ...
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

    from cvtools.io.decode import load_image, tensor_to_pil
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


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default()


def style_rows_sheet(photos: Sequence, styles: Sequence, cell: int = 240, device: str = "auto",
                     labels: Optional[List[str]] = None, crop: int = 0, shared=None):
    """Rows = styles (the painting first, named), columns = photos. Photos are stylized at their
    own size. Returns (sheet, crops sheet or None): the crops are ``crop``² pixels from the middle
    of each result, enlarged 2× with nearest-neighbour."""
    from PIL import Image, ImageDraw

    from cvtools.io.decode import load_image, tensor_to_pil
    from cvtools.style.records import resolve_style
    from cvtools.style.stylize import Stylizer, resize_long_side

    shared = Path(shared) if shared else ROOT.parent / "shared"
    pics = [load_image(p).rgb for p in photos]
    rows, crow = [], []
    for i, s in enumerate(styles):
        rec = resolve_style(s)
        name = (labels[i] if labels else None) or rec.name
        painting = Path(rec.provenance.get("file", rec.provenance.get("style_image", ""))).name
        try:
            thumb = resize_long_side(load_image(shared / "styles" / painting).rgb, cell)
        except Exception:  # no painting at hand: an empty cell
            thumb = Image.new("RGB", (cell, cell), (40, 40, 40))
        st = Stylizer(rec, device=device)
        outs = [tensor_to_pil(st(p, tile=None)) for p in pics]
        rows.append((f"{name} ({rec.title or painting})" if rec.title else name, [thumb] + [resize_long_side(o, cell) for o in outs]))
        if crop:
            cs = []
            for o in outs:
                x0, y0 = max(0, (o.width - crop) // 2), max(0, (o.height - crop) // 2)
                cs.append(o.crop((x0, y0, x0 + crop, y0 + crop)).resize((2 * crop, 2 * crop), Image.NEAREST))
            pc = crop * 2
            crow.append((name, [resize_long_side(thumb, pc)] + cs))

    def assemble(rows, cw):
        gap, lab = 4, 22
        width = max(len(r[1]) for r in rows) * (cw + gap) + gap
        heights = [max(c.height for c in r[1]) for r in rows]
        sheet = Image.new("RGB", (width, sum(h + gap + lab for h in heights) + gap), (24, 24, 24))
        draw, font = ImageDraw.Draw(sheet), _font(15)
        y = gap
        for (label, cells), h in zip(rows, heights):
            draw.text((gap + 2, y + 2), label, font=font, fill=(255, 255, 255))
            y += lab
            for c, im in enumerate(cells):
                sheet.paste(im, (gap + c * (cw + gap) + (cw - im.width) // 2, y + (h - im.height) // 2))
            y += h + gap
        return sheet

    sheet = assemble(rows, cell)
    return sheet, (assemble(crow, 2 * crop) if crop else None)


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
    ap.add_argument("--by-style", action="store_true", help="one row per style, its painting first")
    ap.add_argument("--crops", type=int, default=0, metavar="N", help="with --by-style: also N×N crops at 2×")
    ap.add_argument("--labels", nargs="*", help="row labels for --by-style (default: the style names)")
    ap.add_argument("--shared", help="where the paintings are (default: ../shared)")
    args = ap.parse_args(argv)
    from cvtools.style.records import bundled_names

    styles = args.styles or bundled_names()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.by_style:
        sheet, crops = style_rows_sheet(args.photos, styles, cell=args.cell, device=args.device, labels=args.labels,
                                        crop=args.crops, shared=args.shared)
        sheet.save(out, quality=args.quality)
        print(f"wrote {out} ({sheet.width}x{sheet.height})")
        if crops is not None:
            cp = out.with_name(out.stem + "_crops.png")
            crops.save(cp)
            print(f"wrote {cp} ({crops.width}x{crops.height})")
        return
    sheet = contact_sheet(args.photos, styles, cell=args.cell, device=args.device, stylize_size=args.stylize_size)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=args.quality, optimize=True)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
