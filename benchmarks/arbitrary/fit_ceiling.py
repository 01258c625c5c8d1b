#!/usr/bin/env python3
"""Where the one-pass network's gap to the trained networks lies (issue #28, target a): in the
conditioning (the 2,496 style parameters the painting's embedding sets) or in the transformer's
shared weights? Both are fitted per painting against the network's own loss, at the same steps.

    python3 benchmarks/arbitrary/fit_ceiling.py --json OUT.json [--steps 100] [--paintings a,b]

For each bundled painting (the six with trained networks), on tools/arbitrary_quality.py's 12
held-out photos and its Lite2 yardstick (plain Grams, blocks 0/3/6/10, the painting at its style
size), the mean distance over the photos of:

- ``one_pass``: the shipped network, the painting's embedding;
- ``fit_params``: the style parameters fitted (what ``stylize --fit`` does: Adam at FIT_LR, crops
  of the first 4 photos, the CPU's batch);
- ``fit_all``: the style parameters and every transformer weight fitted together (weights at
  ``--weights-lr``): the same network made a per-painting network for the same steps;
- ``trained``: the bundled per-painting network.

If ``fit_all`` comes much closer than ``fit_params``, the conditioning is the bottleneck (richer
conditioning, e.g. predicted kernels, is the next architecture); if not, the loss is.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--weights-lr", type=float, default=1e-4)
    ap.add_argument("--paintings", help="comma-separated (default: the six bundled ones)")
    ap.add_argument("--content-weight", type=float, help="the fit's content weight (default: the network's recipe's)")
    ap.add_argument("--transform", choices=["swag", "gram"], help="the fit's Gram transform (default: the recipe's)")
    ap.add_argument("--painting-side", type=int, help="the fit's painting long side (default: arbitrary_fit's)")
    ap.add_argument("--modes", default="fit_params,fit_all", help="which fits (comma-separated)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer
    from cvtools.style.arbitrary_fit import FIT_CROP, FIT_LR, StyleFitter, _crop_pool
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import Stylizer, resize_long_side
    from tools.arbitrary_quality import BUNDLED, painting_file, pick_photos
    from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS

    torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    photos = pick_photos(shared)
    images = {stem: pil_to_tensor(load_image(p).rgb) for stem, p, _ in photos}
    fit_on = [images[s] for s, _, _ in photos[:4]]
    names = args.paintings.split(",") if args.paintings else BUNDLED
    records = {r.name: r for r in bundled_records()}
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    arb = ArbitraryStylizer(device="cpu")
    fitter = StyleFitter(arb, on_note=print)
    if args.content_weight is not None:
        fitter.weights["content_weight"] = args.content_weight
    if args.painting_side:
        import cvtools.style.arbitrary_fit as arbitrary_fit

        arbitrary_fit.PAINTING_LONG_SIDE = args.painting_side
    if args.transform:
        from cvtools.style.arbitrary_loss import ArbitraryStyleDistance

        fitter.distance = ArbitraryStyleDistance(args.transform, fitter.distance.stats_weight)
    net = arb.net

    def distance(target, y):
        with torch.no_grad():
            feats = judge.features(y.float().clamp(0, 1).unsqueeze(0), INDEPENDENT_LAYERS)
            return float(torch.stack(list(gram_distances(feats, target).values())).mean())

    def quantised(y):  # judged as an 8-bit picture, as tools/arbitrary_quality.py judges saved PNGs
        return (y.clamp(0, 1) * 255).round() / 255

    report = {"steps": args.steps, "content_weight": fitter.weights["content_weight"], "transform": args.transform,
              "painting_side": args.painting_side, "weights_lr": args.weights_lr, "fit_lr": FIT_LR, "batch": fitter.batch_size,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "photos": [s for s, _, _ in photos], "paintings": {}}
    for name in names:
        art = pil_to_tensor(load_image(painting_file(shared, name)).rgb)
        size = int(records[name].recipe.get("style_size", 512))
        target = style_target(judge, pil_to_tensor(resize_long_side(load_image(painting_file(shared, name)).rgb, size)),
                              INDEPENDENT_LAYERS)
        embedding = arb.encode(art)
        start = arb.style_params(embedding).detach().clone()
        features = fitter._painting_features(art)
        pool = _crop_pool(fit_on, FIT_CROP)
        fits = {}
        for mode in args.modes.split(","):
            transformer = copy.deepcopy(net.transformer).train()
            transformer.requires_grad_(mode == "fit_all")
            params = start.clone().requires_grad_(True)
            groups = [{"params": [params], "lr": FIT_LR}]
            if mode == "fit_all":
                groups.append({"params": list(transformer.parameters()), "lr": args.weights_lr})
            optimizer = torch.optim.Adam(groups)
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                x = pool[torch.randint(0, pool.shape[0], (fitter.batch_size,), generator=gen)].float().div_(255)
                loss = fitter._loss(x, transformer(x, params.expand(x.shape[0], -1)), features)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            fits[mode] = (transformer.eval(), params.detach(), round(time.perf_counter() - t0, 1), float(loss.detach()))
        trained = Stylizer(records[name], device="cpu", precision="fp32")
        rows = {"one_pass": [], "trained": [], **{mode: [] for mode in fits}}
        with torch.no_grad():
            for stem, _, _ in photos:
                x = images[stem]
                rows["one_pass"].append(distance(target, quantised(arb.stylize(x, embedding))))
                for mode, (transformer, params, _, _) in fits.items():
                    rows[mode].append(distance(target, quantised(transformer(x[None], params)[0])))
                rows["trained"].append(distance(target, quantised(trained(x, tile=None))))
        means = {k: statistics.mean(v) for k, v in rows.items()}
        report["paintings"][name] = {
            "mean_distance": means, "per_photo": rows,
            "x_trained": {k: round(v / means["trained"], 3) for k, v in means.items()},
            "fit_seconds": {m: f[2] for m, f in fits.items()}, "final_loss": {m: f[3] for m, f in fits.items()}}
        print(name, report["paintings"][name]["x_trained"], report["paintings"][name]["fit_seconds"], flush=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    for k in ["one_pass"] + list(fits):
        report[f"mean_x_trained_{k}"] = round(statistics.mean(p["x_trained"][k] for p in report["paintings"].values()), 3)
    print({k: v for k, v in report.items() if k.startswith("mean_x")})
    Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
