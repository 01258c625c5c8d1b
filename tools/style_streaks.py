#!/usr/bin/env python3
"""Where mona's vertical streaks came from (issue 17): the CPU half of the reproduction.

    python tools/style_streaks.py --styles old=path/old_mona.json mona        # orientation + streak counts
    python tools/style_streaks.py --styles old=path/old_mona.json --terms     # which loss term pays for them

The GPU half trains short runs of the same recipe (benchmarks/plans/issue17_pilot.json:
``mona__base`` = the shipped recipe, ``mona__rot90`` = the same with the painting turned 90°,
``mona__swag`` = softmax-transformed Grams, ...) with benchmarks/train_bundled_styles.py; this
script scores what comes back.

1. **Streak counts**, vertical and horizontal separately (tools/style_quality.py's detector), on
   the ram photo of the issue (bsds500_test_168084) and 4 held-out photos.
2. **Orientation test**: the photo turned 90° before stylizing and turned back after. Streaks
   that stay vertical in the *network's* frame (so horizontal after turning back) are made by
   the network regardless of the content.
3. **Which loss term** (``--terms``): the detected streak pixels are replaced by a horizontal
   median of their neighbours, and the Gram distance to the painting of each Lite0 style layer
   is compared before and after: a layer whose distance *rises* when the streaks go is the
   term that rewards them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

RAM = "bsds500_test_168084.jpg"


def counts(stylizer, photo, turn=False):
    import style_quality as sq

    x = photo.rot90(1, (1, 2)) if turn else photo
    out = stylizer(x, tile=None).float()
    if turn:
        out = out.rot90(-1, (1, 2))
    yp, yo = sq.luma(photo), sq.luma(out)
    v = float(sq.streak_map(yo, yp).float().mean()) * 1e4
    h = float(sq.streak_map(yo.transpose(-1, -2), yp.transpose(-1, -2)).float().mean()) * 1e4
    return v, h, out


def remove_streaks(photo, out):
    """``out`` with its (vertical) streak pixels, dilated, replaced by a 7-px horizontal median."""
    import style_quality as sq
    import torch.nn.functional as F

    m = sq.streak_map(sq.luma(out), sq.luma(photo)).float()
    m = F.max_pool2d(m, (9, 5), 1, (4, 2))[0]
    med = F.pad(out[None], (3, 3, 0, 0), mode="replicate")[0].unfold(2, 7, 1).median(-1).values
    return out * (1 - m) + med * m, float(m.mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", nargs="+", required=True, help="names or record paths, optionally LABEL=PATH")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--terms", action="store_true", help="which style layer's Gram term rewards the streaks")
    ap.add_argument("--save", help="folder for the ram photo's results (PNG)")
    args = ap.parse_args(argv)

    import style_quality as sq
    import torch

    from cvtools.io.decode import load_image, pil_to_tensor, tensor_to_pil
    from cvtools.style.records import resolve_style
    from cvtools.style.stylize import Stylizer

    torch.set_grad_enabled(False)
    shared = Path(args.shared)
    files = [shared / "data" / "photos" / "research" / RAM] + sq.held_out_photos(shared, 4)
    photos = [pil_to_tensor(load_image(p).rgb) for p in files]
    print("photos:", ", ".join(p.stem for p in files))
    bb = None
    for item in args.styles:
        label, _, path = item.rpartition("=")
        label = label or Path(path).stem
        rec = resolve_style(path)
        st = Stylizer(rec, device="cpu", precision="fp32")
        rows = [counts(st, x) for x in photos]
        turned = [counts(st, x, turn=True) for x in photos[:3]]
        print(f"{label}: vertical {' '.join(f'{v:5.1f}' for v, _, _ in rows)} | horizontal "
              f"{' '.join(f'{h:5.1f}' for _, h, _ in rows)} streak px/10k")
        print(f"{'':{len(label)}}  photo turned 90° and back: vertical {' '.join(f'{v:5.1f}' for v, _, _ in turned)}"
              f" | horizontal {' '.join(f'{h:5.1f}' for _, h, _ in turned)}")
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            tensor_to_pil(rows[0][2]).save(Path(args.save) / f"{label}_{Path(RAM).stem}.png")
        if args.terms:
            from cvtools.backbones import load_backbone
            from cvtools.style.losses import gram_distances, style_target

            if bb is None:
                bb = load_backbone("efficientnet_lite0", device="cpu", precision="fp32")
            layers = rec.recipe.get("style_layers") or bb.defaults.style
            target = style_target(bb, pil_to_tensor(sq.painting_for(rec, shared)), layers)
            for x, (_, _, out), f in zip(photos, rows, files):
                clean, share = remove_streaks(x, out)
                d = gram_distances(bb.features(torch.stack([out, clean]), layers), target)
                print(f"  {f.stem}: {share:.2%} of pixels repaired; Gram distance with → without streaks: " +
                      ", ".join(f"{k} {float(v[0]):.4f} → {float(v[1]):.4f}" for k, v in d.items()))


if __name__ == "__main__":
    main()
