#!/usr/bin/env python3
"""Why two Lite2 style yardsticks disagree (issue 29, item 3), factor by factor.

    python tools/yardsticks.py --a OLD_DIR --b NEW_DIR [--styles starry_night,mona,scream] [--json out.json]

QUALITY.md's yardstick (tools/style_quality.py): EfficientNet-Lite2 blocks 0/3/6/10, the photo
stylized and judged at its own size (BSDS: 481×321), the painting at its record's style size
(512 px), mean over photos of the per-layer mean of ‖G(x) − G(painting)‖² / ‖G(painting)‖².
The issue's: Lite2 blocks 1/4/8/12 at 384 px, the median over photos of the cut
1 − d(stylized) / d(photo). This tool stylizes the same held-out photos with two sets of weights
(A and B: NAME.json records with their safetensors beside them) and reports the cut of each
per layer (blocks 0, 1, 3, 4, 6, 8, 10, 12), per scale (own size / 384 px, painting at its style
size or at 384 px) and per aggregate (mean of distances, median of cuts), so that the factor that
flips the verdict shows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAYERS = ["blocks.0", "blocks.1", "blocks.3", "blocks.4", "blocks.6", "blocks.8", "blocks.10", "blocks.12"]
QUALITY_LAYERS = ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]
ISSUE_LAYERS = ["blocks.1", "blocks.4", "blocks.8", "blocks.12"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="folder of NAME.json + NAME.safetensors (e.g. the older weights)")
    ap.add_argument("--b", required=True, help="the same for the other weights")
    ap.add_argument("--styles", default="starry_night,mona,scream")
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.stylize import Stylizer, resize_long_side
    from tools.style_quality import held_out_photos

    torch.set_grad_enabled(False)
    shared = Path(args.shared)
    judge = load_backbone("efficientnet_lite2", device="cpu", precision="fp32")
    photos = [load_image(p).rgb for p in held_out_photos(shared, args.photos)]
    rows = {}
    for name in args.styles.split(","):
        rec = json.loads((Path(args.a) / f"{name}.json").read_text())
        style_size = int(rec["recipe"].get("style_size", 512))
        painting = load_image(shared / "styles" / f"{name}.jpg").rgb
        targets = {
            "style size": style_target(judge, pil_to_tensor(resize_long_side(painting, style_size)), LAYERS),
            "384": style_target(judge, pil_to_tensor(resize_long_side(painting, 384)), LAYERS),
        }
        nets = {label: Stylizer(str(Path(d) / f"{name}.json"), device="cpu", precision="fp32")
                for label, d in (("A", args.a), ("B", args.b))}
        for scale in ("own", "384"):
            for tname, target in targets.items():
                per = {"photo": [], "A": [], "B": []}
                for photo in photos:
                    img = photo if scale == "own" else resize_long_side(photo, 384)
                    x = pil_to_tensor(img)
                    outs = {"photo": x, **{k: net(x, tile=None).float() for k, net in nets.items()}}
                    for k, y in outs.items():
                        d = gram_distances(judge.features(y.unsqueeze(0), LAYERS), target)
                        per[k].append({layer: float(v[0]) for layer, v in d.items()})
                rows[(name, scale, tname)] = per
                print(name, scale, tname, "done", flush=True)

    def summary(per, layers, agg):
        def dist(rec):
            return statistics.fmean(rec[layer] for layer in layers)
        out = {}
        for k in ("A", "B"):
            if agg == "mean":
                out[k] = 1 - statistics.fmean(dist(r) for r in per[k]) / statistics.fmean(dist(r) for r in per["photo"])
            else:
                out[k] = statistics.median(1 - dist(r) / dist(p) for r, p in zip(per[k], per["photo"]))
        return out

    report = []
    print("\n| style | scale (photo / painting) | layers | aggregate | cut A | cut B | B − A |")
    print("|---|---|---|---|---|---|---|")
    for (name, scale, tname), per in rows.items():
        for lname, layers in [("0/3/6/10 (QUALITY)", QUALITY_LAYERS), ("1/4/8/12 (issue)", ISSUE_LAYERS)] + \
                [(layer, [layer]) for layer in LAYERS]:
            for agg in ("mean", "median"):
                s = summary(per, layers, agg)
                report.append({"style": name, "scale": scale, "painting": tname, "layers": lname, "aggregate": agg, **s})
                if agg == "mean" or lname.startswith(("0/3", "1/4")):
                    print(f"| {name} | {scale} / {tname} | {lname} | {agg} | {s['A']:.3f} | {s['B']:.3f} | {s['B'] - s['A']:+.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"a": args.a, "b": args.b, "photos": args.photos, "rows": report}, indent=1))


if __name__ == "__main__":
    main()
