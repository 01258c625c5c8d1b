#!/usr/bin/env python3
"""Target b's bar applied to the trained networks: how far is a network trained for ONE painting
from the optimisation at its defaults, on the yardstick of tools/arbitrary_quality.py?

Target b asks the any-painting network to come within 25 % of the optimisation (Lite2 distance)
on paintings it never saw. Whether a feed-forward network of this family reaches that bar at
all is what the six bundled paintings can tell: each has a network trained for it alone (about
14,000 images of that painting's training, the best a network of this size has done on it). On
the same photos (tools/arbitrary_quality.py's optimisation photos: 2 BSDS held-out photos and
chelsea, coffee, each at its own size) and the same judge, this prints, per bundled painting,
the optimisation's distance (``PaintingStylizer(painting)`` at its defaults, CPU, fp32), the
trained network's and the any-painting network's (the painting file encoded in one pass), and
the ratios trained / optimisation and arbitrary / optimisation.

    python benchmarks/arbitrary/trained_vs_optimisation.py --out /tmp/arbq \\
        --json benchmarks/plans/session_r/trained_vs_optimisation.json

Outputs are kept as PNG under --out/METHOD/PHOTO__PAINTING.png (the same layout as
tools/arbitrary_quality.py, so a folder of that tool's outputs is reused). The optimisation is
minutes a photo on a busy 2-core CPU, so it is made on a GPU first and judged here:

    # on the lent GPU (photos copied to .device/opt_photos/STEM.jpg; bf16 Lite0, the GPU default)
    python3 benchmarks/arbitrary/trained_vs_optimisation.py --optimise-only --device cuda \
        --shared .device/shared --photo-dir .device/opt_photos --out /tmp/tvo

The two paintings with no trained network (monet_grand_canal, shipwreck_minotaur) are optimised
too, so that the GPU's optimisation can be set beside the CPU rows target b was judged with.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", required=True, help="folder for the pictures (reused on a re-run)")
    ap.add_argument("--json", help="write the rows and the summary here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--optimise-only", action="store_true", help="only make the optimisation's pictures "
                    "(every photo of --photo-dir x the bundled and the two unseen paintings), no judging")
    ap.add_argument("--photo-dir", help="with --optimise-only: the photos, named by their stems")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.optimise_only:
        return optimise_only(args)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import Stylizer, resize_long_side
    from tools.arbitrary_quality import BUNDLED, OPT_PHOTOS, OPT_SAMPLES, painting_file, pick_photos
    from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    shared, out = Path(args.shared), Path(args.out)
    photos = pick_photos(shared)
    stems = [s for s, _, kind in photos if kind == "bsds"][:OPT_PHOTOS] + OPT_SAMPLES
    images = {s: pil_to_tensor(load_image(p).rgb) for s, p, _ in photos if s in stems}
    records = {r.name: r for r in bundled_records()}
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    lite0 = load_backbone("efficientnet_lite0", device="cpu", precision="fp32")
    arb = ArbitraryStylizer(device="cpu")

    def cached(method, stem, name, make):
        path = out / method / f"{stem}__{name}.png"
        if not path.exists():
            t0 = time.perf_counter()
            y = make().float().clamp(0, 1)
            print(f"{method} {stem} {name} {time.perf_counter() - t0:.1f} s", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_image(path, y)
        return pil_to_tensor(load_image(path).rgb)  # judged as saved (8-bit), like every method

    rows = []
    for name in BUNDLED:
        side = int(records[name].recipe.get("style_size", 512))
        art = load_image(painting_file(shared, name)).rgb
        target = style_target(judge, pil_to_tensor(resize_long_side(art, side)), INDEPENDENT_LAYERS)
        net = Stylizer(records[name], device="cpu", precision="fp32")
        optimiser = PaintingStylizer(painting_file(shared, name), device="cpu", backbone=lite0)
        embedding = arb.encode(pil_to_tensor(art))

        def optimised(stem):
            with torch.enable_grad():  # the optimisation needs gradients (off elsewhere here)
                return optimiser(images[stem])

        makers = {"optimisation": optimised, "trained": lambda stem: net(images[stem], tile=None),
                  "arbitrary": lambda stem: arb.stylize(images[stem], embedding)}
        for stem in stems:
            row = dict(painting=name, photo=stem)
            for method, make in makers.items():
                y = cached(method, stem, name, lambda: make(stem))
                feats = judge.features(y.float().unsqueeze(0), INDEPENDENT_LAYERS)
                row[method] = float(torch.stack(list(gram_distances(feats, target).values())).mean())
            rows.append(row)
    summary = summarise(rows)
    print(json.dumps(summary, indent=1))
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
                "python": platform.python_version(), "device": "cpu, fp32", "photos": stems,
                "judge": f"{INDEPENDENT_BACKBONE} {INDEPENDENT_LAYERS}, painting at its record's style size"}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"summary": summary, "meta": meta, "rows": rows}, indent=1) + "\n")


def optimise_only(args):
    import torch

    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.optimize import PaintingStylizer
    from tools.arbitrary_quality import BUNDLED, UNSEEN_STYLES, painting_file

    shared, out = Path(args.shared), Path(args.out) / "optimisation"
    out.mkdir(parents=True, exist_ok=True)
    photos = {p.stem: pil_to_tensor(load_image(p).rgb) for p in sorted(Path(args.photo_dir).glob("*.jpg"))}
    for name in BUNDLED + UNSEEN_STYLES:
        optimiser = PaintingStylizer(painting_file(shared, name), device=args.device)
        for stem, image in photos.items():
            t0 = time.perf_counter()
            y = optimiser(image).float().clamp(0, 1)
            save_image(out / f"{stem}__{name}.png", y)
            print(f"optimisation {stem} {name} {time.perf_counter() - t0:.2f} s", flush=True)
    print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")


def summarise(rows):
    """Per painting the mean distances and the ratios of the means (as target b reads them),
    then the mean of the per-painting ratios."""
    from statistics import mean

    per = {}
    for name in dict.fromkeys(r["painting"] for r in rows):
        mine = [r for r in rows if r["painting"] == name]
        m = {k: mean(r[k] for r in mine) for k in ("optimisation", "trained", "arbitrary")}
        per[name] = {**{k: round(v, 4) for k, v in m.items()},
                     "trained_over_opt": round(m["trained"] / m["optimisation"], 3),
                     "arbitrary_over_opt": round(m["arbitrary"] / m["optimisation"], 3),
                     "arbitrary_over_trained": round(m["arbitrary"] / m["trained"], 3)}
    keys = ("trained_over_opt", "arbitrary_over_opt", "arbitrary_over_trained")
    return {"per_painting": per,
            "mean": {k: round(statistics.mean(p[k] for p in per.values()), 3) for k in keys},
            "within_25pct_of_opt": {k: sum(p[k] <= 1.25 for p in per.values())
                                    for k in ("trained_over_opt", "arbitrary_over_opt")}}


if __name__ == "__main__":
    main()
