#!/usr/bin/env python3
"""Contact sheet of any-painting stylization: one row per photo, one column per painting (the
original first), columns labelled by the painting's file name. The paintings themselves are not
shown (the sheet is committed; the paintings in shared/styles are not).

    python tools/painting_contact_sheet.py -o docs/images/any_painting.jpg --cell 200 \\
        --paintings ../shared/styles/*.jpg --photos samples/chelsea.jpg samples/astronaut.jpg

Photos are optimised at ``--size`` (longer side) with the defaults, then shrunk to the cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--paintings", nargs="+", required=True)
    ap.add_argument("--photos", nargs="+", default=[str(ROOT / "samples" / n) for n in
                                                     ("chelsea.jpg", "astronaut.jpg", "coffee.jpg", "rocket.jpg")])
    ap.add_argument("--cell", type=int, default=200)
    ap.add_argument("--size", type=int, default=384, help="optimise at this longer side")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--keep", help="also save each full-size result into this folder (to look at)")
    ap.add_argument("--reuse", action="store_true", help="take results already in --keep instead of optimising")
    args = ap.parse_args(argv)

    from PIL import Image, ImageDraw

    from cvtools.backbones import load_backbone, resolve_device
    from cvtools.imageio import load_image, save_image, tensor_to_pil
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.stylize import resize_long_side
    from tools.style_contact_sheet import _font, _label

    dev = resolve_device(args.device)
    bb = load_backbone("efficientnet_lite0", device=str(dev), precision="bf16" if dev.type == "cuda" else "fp32")
    stylizers = [PaintingStylizer(p, backbone=bb) for p in args.paintings]
    names = ["photo"] + [s.name for s in stylizers]
    rows = []
    for p in args.photos:
        rgb = load_image(p).rgb
        work = resize_long_side(rgb, args.size)
        cells = [resize_long_side(rgb, args.cell)]
        for st in stylizers:
            kept = Path(args.keep or ".") / f"{Path(p).stem}_{st.name}.png"
            if args.reuse and kept.exists():  # assembling from results made earlier (e.g. in parallel)
                out = load_image(kept).rgb
            else:
                out = tensor_to_pil(st(work))
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                save_image(kept, out)
            cells.append(resize_long_side(out, args.cell))
            print(f"{Path(p).name} x {st.name}", flush=True)
        rows.append(cells)
    cw, gap, lab = args.cell, 4, 18
    heights = [max(c.height for c in r) for r in rows]
    sheet = Image.new("RGB", (len(names) * (cw + gap) + gap, lab + sum(h + gap for h in heights) + gap), (24, 24, 24))
    draw, font = ImageDraw.Draw(sheet), _font(max(10, args.cell // 16))
    for c, name in enumerate(names):
        _label(draw, (gap + c * (cw + gap) + 4, 2), name, font)
    y = lab + gap
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            sheet.paste(im, (gap + c * (cw + gap) + (cw - im.width) // 2, y + (heights[r] - im.height) // 2))
        y += heights[r] + gap
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=args.quality, optimize=True)
    print(f"wrote {out} ({sheet.width}x{sheet.height}, {out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
