#!/usr/bin/env python3
"""README figure: strength 0.5 as a pixel blend against strength 0.5 in style space.

    python tools/strength_figure.py -o docs/images/strength.jpg                  # chelsea, starry_night
    python tools/strength_figure.py --photo samples/coffee.jpg --style scream --crop 0.5,0.4

Columns: the photo, the pixel blend ``photo + 0.5·(full − photo)`` (what ``--strength 0.5``
used to do), the arbitrary-style network at strength 0.5 (style space: half the photo's own
embedding, half the painting's) and the full style. The bottom row repeats a crop of each at
2× (pixel for pixel), where strokes and double exposures show. The style is a bundled painting's
stored embedding (``bundled_style_embedding``), so no painting file is needed. CPU, fp32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", default=str(ROOT / "samples" / "chelsea.jpg"))
    ap.add_argument("--style", default="starry_night", help="a bundled painting's name")
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--crop", default="0.5,0.45", help="the 2× crop's centre as fractions of width,height")
    ap.add_argument("-o", "--output", default="strength.jpg")
    ap.add_argument("--quality", type=int, default=82, help="JPEG quality")
    args = ap.parse_args(argv)

    import torch
    from PIL import Image, ImageDraw

    from cvtools.io.decode import load_image, pil_to_tensor, tensor_to_pil
    from cvtools.style.arbitrary import ArbitraryStylizer, bundled_style_embedding
    from tools.style_contact_sheet import _font, _label

    torch.set_grad_enabled(False)
    s = args.strength
    photo = pil_to_tensor(load_image(args.photo).rgb)
    arb = ArbitraryStylizer(device="cpu")
    emb = bundled_style_embedding(args.style)
    full = arb.stylize(photo, emb)
    half = arb.stylize(photo, emb, strength=s)
    blend = (photo + s * (full - photo)).clamp(0, 1)
    cells = [(tensor_to_pil(photo), "photo"), (tensor_to_pil(blend), f"pixel blend {s:g}"),
             (tensor_to_pil(half), f"strength {s:g} (style space)"), (tensor_to_pil(full), f"full {args.style}")]
    w, h = cells[0][0].size
    cw, ch = w // 2, h // 2  # the crop, shown at 2× = one cell
    fx, fy = (float(v) for v in args.crop.split(","))
    x0 = min(max(0, round(fx * w - cw / 2)), w - cw)
    y0 = min(max(0, round(fy * h - ch / 2)), h - ch)
    gap = 4
    sheet = Image.new("RGB", (4 * w + 3 * gap, 2 * h + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(15)
    for i, (im, label) in enumerate(cells):
        x = i * (w + gap)
        sheet.paste(im, (x, 0))
        crop = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((cw * 2, ch * 2), Image.NEAREST)
        sheet.paste(crop, (x, h + gap))
        draw.rectangle((x + x0, y0, x + x0 + cw - 1, y0 + ch - 1), outline=(255, 255, 255))
        _label(draw, (x + 6, 4), label, font)
        _label(draw, (x + 6, h + gap + 4), "2× crop", font)
    sheet.save(args.output, quality=args.quality, optimize=True)
    print(f"{args.output}: {sheet.width}×{sheet.height}, {Path(args.output).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
