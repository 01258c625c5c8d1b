#!/usr/bin/env python3
"""Any-painting stylization (optimisation) against the bundled trained styles, judged on an
independent network.

    python tools/painting_quality.py --photos 8                       # the defaults, all paintings
    python tools/painting_quality.py --photos 2 --size 256 --paintings starry_night,mona \\
        --recipe plain='{"stats_weight": 0}' --recipe lite1='{"extra_backbones": \\
        {"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}}'

For each painting in shared/styles and each held-out photo (the BSDS500 research photos of
tools/style_quality.py: every 25th of the sorted 500, the first ``--photos``), on the CPU:

- one column per ``--recipe LABEL=JSON`` (PaintingSettings overrides; without any: the
  defaults as ``default``): ``PaintingStylizer(painting)`` through EfficientNet-Lite0;
- ``trained``: the bundled style of the same painting, where there is one (fp32);
- judged as ``tools/style_quality.py`` judges the bundled styles: the plain Gram distance to the
  painting on **EfficientNet-Lite2** (blocks 0, 3, 6, 10; a network neither method optimises
  through), the painting at its record's style size (512 px long side where there is none), mean
  over layers of ‖G − G_painting‖² / ‖G_painting‖²; edges kept and tone r as there.

Photos are stylized at their own size (576×384 here) unless ``--size`` gives a longer side;
``--from`` judges results made elsewhere (a GPU: see QUALITY.md, "Any painting"). Writes
each result as PNG under --out/LABEL/ (to look at) and every row as JSON (--out/results.json),
and prints a markdown table (mean distance per painting and recipe, seconds per image).
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


def parse_recipe(text: str):
    label, sep, body = text.partition("=")
    if not sep or not label:
        raise SystemExit(f"--recipe wants LABEL=JSON, not {text!r}")
    try:
        overrides = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError as e:
        raise SystemExit(f"--recipe {label}: not JSON ({e})")
    if not isinstance(overrides, dict):
        raise SystemExit(f"--recipe {label}: want a JSON object of PaintingSettings fields")
    return label, overrides


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--paintings", default="", help="comma-separated stems (default: all in shared/styles)")
    ap.add_argument("--recipe", action="append", default=[], metavar="LABEL=JSON",
                    help="PaintingSettings overrides to compare, e.g. plain='{\"stats_weight\": 0}' (repeatable)")
    ap.add_argument("--out", default="/tmp/painting_quality")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="where the optimisation runs (the judge and the trained "
                                                   "styles run on the CPU in fp32)")
    ap.add_argument("--size", type=int, default=0, help="resize photos to this longer side (default: their own)")
    ap.add_argument("--no-trained", action="store_true", help="skip the bundled styles")
    ap.add_argument("--from", dest="source", help="judge results already made (e.g. on a GPU by painting_contact_sheet.py "
                                                  "--keep): SOURCE/LABEL/STEM_PAINTING.png and SOURCE/trained/...; "
                                                  "missing ones are made here")
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import Stylizer, resize_long_side
    from tools.style_quality import (
        INDEPENDENT_BACKBONE,
        INDEPENDENT_LAYERS,
        edge_agreement,
        held_out_photos,
        tone_stats,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    files = held_out_photos(shared, args.photos)
    paintings = sorted((shared / "styles").glob("*.jpg"))
    if args.paintings:
        keep = args.paintings.split(",")
        paintings = [p for p in paintings if p.stem in keep]
        if not paintings:
            raise SystemExit(f"none of {keep} in {shared / 'styles'}")
    recipes = [parse_recipe(r) for r in args.recipe] or [("default", {})]
    bundled = {r.name: r for r in bundled_records()}
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    dev = args.device
    lite0 = load_backbone("efficientnet_lite0", device=dev, precision="bf16" if dev.startswith("cuda") else "fp32")
    out_dir = Path(args.out)
    photos = [(p.stem, pil_to_tensor(resize_long_side(load_image(p).rgb, args.size or None))) for p in files]
    results = {"judge": INDEPENDENT_BACKBONE, "layers": INDEPENDENT_LAYERS, "photos": [p.name for p in files],
               "size": args.size or "own", "recipes": dict(recipes), "paintings": {}}

    def judged(target, photo, out):
        with torch.no_grad():
            feats = judge.features(torch.stack([photo, out.float()]), INDEPENDENT_LAYERS)
        d = torch.stack(list(gram_distances(feats, target).values())).mean(0)
        return dict(style=float(d[1]), style_photo=float(d[0]), edges=edge_agreement(photo, out),
                    tone_r=tone_stats(photo, out)["tone_r"])

    for painting in paintings:
        name = painting.stem
        record = bundled.get(name)
        style_size = int(record.recipe.get("style_size", 512)) if record else 512
        art = pil_to_tensor(resize_long_side(load_image(painting).rgb, style_size))
        target = style_target(judge, art, INDEPENDENT_LAYERS)
        methods = []
        for label, overrides in recipes:
            ps = PaintingStylizer(painting, backbone=lite0, **overrides)
            methods.append((label, lambda photo, ps=ps: ps(photo)))
        if record is not None and not args.no_trained:
            net = Stylizer(record, device="cpu", precision="fp32")
            methods.append(("trained", lambda photo, net=net: net(photo, tile=None)))
        rows = {label: [] for label, _ in methods}
        for stem, photo in photos:
            line = [f"{name:<18} {stem:<22}"]
            for label, fn in methods:
                t0 = time.perf_counter()
                kept = Path(args.source or ".") / label / f"{stem}_{name}.png"
                if args.source and kept.exists():
                    out = pil_to_tensor(load_image(kept).rgb)
                    if out.shape != photo.shape:
                        raise SystemExit(f"{kept}: {tuple(out.shape)}, not the photo's {tuple(photo.shape)} (--size?)")
                else:
                    out = fn(photo)
                wall = time.perf_counter() - t0
                (out_dir / label).mkdir(parents=True, exist_ok=True)
                save_image(out_dir / label / f"{stem}_{name}.png", out)
                row = dict(photo=stem, seconds=wall, **judged(target, photo, out))
                rows[label].append(row)
                line.append(f"{label} {row['style']:.3f} ({wall:.1f} s)")
            print(" | ".join(line), flush=True)
        summary = {label: {k: round(statistics.mean(r[k] for r in rs), 4)
                           for k in ("style", "style_photo", "edges", "tone_r", "seconds")}
                   for label, rs in rows.items()}
        results["paintings"][name] = {"summary": summary, "rows": rows}
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(markdown_table(results))
    return results


def markdown_table(results) -> str:
    """Recipes × paintings: mean Lite2 style distance (photo's own in the header), then the mean
    over paintings, edges kept, tone r and seconds per image."""
    names = list(results["paintings"])
    labels = list(dict.fromkeys(label for p in results["paintings"].values() for label in p["summary"]))
    head = "| recipe | " + " | ".join(
        f"{n} ({results['paintings'][n]['summary'][labels[0]]['style_photo']:.2f})" for n in names)
    lines = [head + " | mean | edges | tone r | s / image |", "|---" * (len(names) + 5) + "|"]
    for label in labels:
        cells, per = [], []
        for n in names:
            s = results["paintings"][n]["summary"].get(label)
            cells.append(f"{s['style']:.3f}" if s else "–")
            if s:
                per.append(s)
        mean = lambda k: statistics.mean(s[k] for s in per)  # noqa: E731
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean('style'):.3f} | {mean('edges'):.2f} | "
                     f"{mean('tone_r'):.2f} | {mean('seconds'):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
