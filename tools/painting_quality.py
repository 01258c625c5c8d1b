#!/usr/bin/env python3
"""Any-painting stylization (optimisation) against the bundled trained styles, judged on an
independent network.

    python tools/painting_quality.py --photos 8 --judge efficientnet_lite1 --out /tmp/pq
    python tools/painting_quality.py --paintings monet_grand_canal,starry_night --photos 2

For each painting in shared/styles and each held-out photo (BSDS500 research photos, every
25th of the sorted 500, as tools/style_quality.py), at the photo's own size on the CPU:

- ``optimised``: ``PaintingStylizer(painting)`` with the defaults (EfficientNet-Lite0 losses);
- ``trained``: the bundled style of the same painting, where there is one (fp32);
- on the judge network (default EfficientNet-Lite1, not used by either method): the Gram
  distance to the painting (mean over blocks 0, 2, 4, 7 of ‖G − G_painting‖² / ‖G_painting‖²,
  painting at 512 px long side) and the content distance to the photo (block 4), also for the
  unstylized photo.

Writes every result as PNG under --out (to look at) and the table as JSON (--out/results.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--paintings", default="", help="comma-separated stems (default: all in shared/styles)")
    ap.add_argument("--judge", default="efficientnet_lite1")
    ap.add_argument("--out", default="/tmp/painting_quality")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="where the optimisation runs (the judge and the trained "
                                                   "styles run on the CPU in fp32)")
    ap.add_argument("--size", type=int, default=0, help="resize photos to this longer side (default: their own)")
    ap.add_argument("--sample-photos", nargs="*", help="judge these photos instead of the held-out research ones")
    ap.add_argument("--reuse", help="a folder of results already made (STEM_PAINTING.png, e.g. from "
                                    "painting_contact_sheet.py --keep): judge them instead of optimising")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="PaintingSettings overrides, e.g. --set steps=100 --set style_weight=20")
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.imageio import load_image, pil_to_tensor, save_image
    from cvtools.style.losses import content_distance, gram_distances, style_target
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import Stylizer, resize_long_side

    if args.threads:
        torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    files = sorted((shared / "data" / "photos" / "research").glob("*.jpg"))[::25][: args.photos]
    if args.sample_photos:
        files = [Path(p) for p in args.sample_photos]
    paintings = sorted((shared / "styles").glob("*.jpg"))
    if args.paintings:
        keep = set(args.paintings.split(","))
        paintings = [p for p in paintings if p.stem in keep]
    overrides = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    bundled = {r.name: r for r in bundled_records()}
    judge = load_backbone(args.judge, device="cpu", precision="fp32")
    layers = list(judge.defaults.style)
    content = judge.defaults.content
    dev = args.device
    lite0 = load_backbone("efficientnet_lite0", device=dev, precision="bf16" if dev.startswith("cuda") else "fp32")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = [(p.stem, pil_to_tensor(resize_long_side(load_image(p).rgb, args.size or None))) for p in files]
    results = {"judge": args.judge, "photos": [p.name for p in files], "settings": overrides, "paintings": {}}

    def judge_rows(target, photo, outs):
        with torch.no_grad():
            feats = judge.features(torch.stack([photo] + outs), layers + [content])
        d = torch.stack(list(gram_distances(feats, target).values())).mean(0)
        c = content_distance(feats[content][1:], feats[content][:1].expand_as(feats[content][1:]))
        return [float(v) for v in d], [float(v) for v in c]

    for painting in paintings:
        name = painting.stem
        art = pil_to_tensor(resize_long_side(load_image(painting).rgb, 512))
        target = style_target(judge, art, layers)
        ps = PaintingStylizer(painting, backbone=lite0, **overrides)
        trained = Stylizer(bundled[name], device="cpu", precision="fp32") if name in bundled else None
        rows = []
        for stem, photo in photos:
            t0 = time.perf_counter()
            c0 = time.process_time()
            kept = Path(args.reuse or ".") / f"{stem}_{name}.png"
            if args.reuse and kept.exists():
                opt = pil_to_tensor(load_image(kept).rgb)
            else:
                opt = ps(photo)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            outs = [opt]
            save_image(out_dir / f"{stem}_{name}_opt.png", opt)
            if trained is not None:
                net = trained(photo, tile=None)
                outs.append(net)
                save_image(out_dir / f"{stem}_{name}_net.png", net)
            d, c = judge_rows(target, photo, outs)
            row = dict(photo=stem, gram_photo=d[0], gram_opt=d[1], content_opt=c[0], seconds=wall, cpu_seconds=cpu,
                       lite0_loss=ps.last_losses[-1] if ps.last_losses else None)
            if trained is not None:
                row.update(gram_net=d[2], content_net=c[1])
            rows.append(row)
            print(f"{name:<20} {stem:<24} gram photo {d[0]:.3f} opt {d[1]:.3f}"
                  + (f" net {d[2]:.3f}" if trained is not None else "")
                  + f" | content opt {c[0]:.3f}" + (f" net {c[1]:.3f}" if trained is not None else "")
                  + f" | {wall:.1f} s wall, {cpu:.1f} s cpu", flush=True)
        summary = {k: round(statistics.mean(r[k] for r in rows), 4)
                   for k in ("gram_photo", "gram_opt", "content_opt", "seconds")}
        if trained is not None:
            summary.update({k: round(statistics.mean(r[k] for r in rows), 4) for k in ("gram_net", "content_net")})
            summary["opt_lower_on"] = sum(r["gram_opt"] < r["gram_net"] for r in rows)
        results["paintings"][name] = {"summary": summary, "rows": rows}
        print(f"== {name}: {summary}", flush=True)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
