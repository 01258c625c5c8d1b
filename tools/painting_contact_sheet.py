#!/usr/bin/env python3
"""Contact sheet of any-painting stylization (issue 18): one column per photo (the photos
themselves in the first row), two rows per painting: the picture optimised against the painting
(``PaintingStylizer``, the defaults or ``--recipe``) and, where the painting has one, the bundled
trained style, with the painting beside the pair.

    # the issue's sheet: 8 held-out photos x every painting in shared/styles, at the photos' size
    python tools/painting_contact_sheet.py -o /tmp/any_painting_bsds.jpg --held-out 8 --crops 96
    # from results painting_quality.py already made (its --out folder; LABEL/ and trained/)
    python tools/painting_contact_sheet.py -o /tmp/sheet.jpg --held-out 8 --from /tmp/pq --label default
    # what the repository shows (docs/images/any_painting.jpg): the sample photos, no paintings
    python tools/painting_contact_sheet.py -o docs/images/any_painting.jpg --size 384 --no-paintings

The BSDS500 held-out photos are licensed for research only and the paintings come from
shared/: sheets with them are for looking at, not for committing (``--no-paintings`` and the
sample photos give one that may be committed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--paintings", nargs="+", help="painting files (default: every .jpg in shared/styles)")
    ap.add_argument("--photos", nargs="+", default=[str(ROOT / "samples" / n) for n in
                                                     ("chelsea.jpg", "astronaut.jpg", "coffee.jpg", "rocket.jpg")])
    ap.add_argument("--held-out", type=int, default=0, metavar="N",
                    help="use the first N held-out BSDS500 photos of tools/style_quality.py instead of --photos")
    ap.add_argument("--cell", type=int, default=200)
    ap.add_argument("--size", type=int, default=0, help="stylize at this longer side (default: the photo's own)")
    ap.add_argument("--recipe", default="{}", help="PaintingSettings overrides as JSON (default: the defaults)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--no-paintings", action="store_true", help="leave the paintings out (name the rows only)")
    ap.add_argument("--no-trained", action="store_true", help="leave the bundled styles' rows out")
    ap.add_argument("--crops", type=int, default=0, metavar="N",
                    help="also a sheet of N×N crops from each result's middle, enlarged 2× (OUTPUT_crops.png)")
    ap.add_argument("--from", dest="source", help="take results already made from this folder (LABEL/STEM_PAINTING.png "
                                                  "and trained/STEM_PAINTING.png, as painting_quality.py writes); "
                                                  "missing ones are made")
    ap.add_argument("--label", default="default", help="the recipe's folder name under --from")
    ap.add_argument("--keep", help="save every result made here as PNG into this folder (LABEL/ and trained/)")
    args = ap.parse_args(argv)

    from PIL import Image, ImageDraw

    from cvtools.backbones import load_backbone, resolve_device
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image, tensor_to_pil
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import Stylizer, resize_long_side
    from tools.style_contact_sheet import _font
    from tools.style_quality import held_out_photos

    shared = Path(args.shared)
    photos = held_out_photos(shared, args.held_out) if args.held_out else [Path(p) for p in args.photos]
    paintings = [Path(p) for p in args.paintings] if args.paintings else sorted((shared / "styles").glob("*.jpg"))
    recipe = json.loads(args.recipe)
    dev = resolve_device(args.device)
    bb = None
    bundled = {r.name: r for r in bundled_records()}
    pics = [(p.stem, load_image(p).rgb) for p in photos]
    pics = [(stem, resize_long_side(rgb, args.size) if args.size else rgb) for stem, rgb in pics]

    def result(kind, painting, stem, make):
        for folder in [args.source, args.keep]:
            if folder:
                f = Path(folder) / kind / f"{stem}_{painting.stem}.png"
                if f.exists():
                    return load_image(f).rgb
        out = make()
        if args.keep:
            f = Path(args.keep) / kind / f"{stem}_{painting.stem}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            save_image(f, out)
        print(f"{stem} x {painting.stem} ({kind})", flush=True)
        return out

    rows = [("photos", None, [resize_long_side(rgb, args.cell) for _, rgb in pics])]
    crop_rows = []
    for painting in paintings:
        kinds = [(args.label, None)]
        record = bundled.get(painting.stem)
        if record is not None and not args.no_trained:
            kinds.append(("trained", record))
        stylizer = None
        for kind, rec in kinds:
            outs = []
            for stem, rgb in pics:
                if rec is None:
                    def make(rgb=rgb, painting=painting):
                        nonlocal bb, stylizer
                        if stylizer is None:
                            if bb is None:
                                bb = load_backbone("efficientnet_lite0", device=str(dev),
                                                   precision="bf16" if dev.type == "cuda" else "fp32")
                            stylizer = PaintingStylizer(painting, backbone=bb, **recipe)
                        return tensor_to_pil(stylizer(rgb))
                else:
                    def make(rgb=rgb, rec=rec):
                        return tensor_to_pil(Stylizer(rec, device=str(dev))(rgb, tile=None))
                outs.append(result(kind, painting, stem, make))
            name = f"{painting.stem}: {'optimised' if rec is None else 'trained (bundled)'}"
            rows.append((name, painting, [resize_long_side(o, args.cell) for o in outs]))
            if args.crops:
                c = args.crops
                cells = []
                for o in outs:
                    x0, y0 = max(0, (o.width - c) // 2), max(0, (o.height - c) // 2)
                    cells.append(o.crop((x0, y0, x0 + c, y0 + c)).resize((2 * c, 2 * c), Image.NEAREST))
                crop_rows.append((name, painting, cells))

    def assemble(rows, cw):
        gap, lab = 4, 20
        side = 0 if args.no_paintings else cw
        heights = [max(c.height for c in cells) for _, _, cells in rows]
        width = side + (gap if side else 0) + max(len(r[2]) for r in rows) * (cw + gap) + gap
        sheet = Image.new("RGB", (width, sum(h + gap + lab for h in heights) + gap), (24, 24, 24))
        draw, font = ImageDraw.Draw(sheet), _font(14)
        y = gap
        thumbs = {}
        for (label, painting, cells), h in zip(rows, heights):
            draw.text((gap + 2, y + 2), label, font=font, fill=(255, 255, 255))
            y += lab
            x0 = gap + (side + gap if side else 0)
            if side and painting is not None:
                if painting not in thumbs:
                    thumbs[painting] = load_image(painting).rgb
                t = thumbs[painting].copy()
                t.thumbnail((side, h))
                sheet.paste(t, (gap + (side - t.width) // 2, y + (h - t.height) // 2))
            for c, im in enumerate(cells):
                sheet.paste(im, (x0 + c * (cw + gap) + (cw - im.width) // 2, y + (h - im.height) // 2))
            y += h + gap
        return sheet

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet = assemble(rows, args.cell)
    sheet.save(out, quality=args.quality, optimize=True)
    print(f"wrote {out} ({sheet.width}x{sheet.height}, {out.stat().st_size // 1024} KB)")
    if crop_rows:
        cp = out.with_name(out.stem + "_crops.png")
        crops = assemble(crop_rows, 2 * args.crops)
        crops.save(cp)
        print(f"wrote {cp} ({crops.width}x{crops.height})")


if __name__ == "__main__":
    main()
