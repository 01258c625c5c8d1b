#!/usr/bin/env python3
"""Fit the WHOLE any-painting transformer to one painting (issue 28), not only its style parameters
(what ``stylize --fit`` does): how close does it come, and how fast on a GPU?

Why: trained on one painting alone (starry_night, A5's recipe, 2,730 steps × 64 on an H200,
benchmarks/arbitrary/PLAN.md "2026-12-06e"), the shipped network went from 2.74× to 1.34× the
trained starry_night network's Lite2 distance; fitting its 2,496 style parameters reaches ~1.6×.
Most of that run's loss fell in its first few hundred steps, so a short fit of every weight could
be a GPU user's high-fidelity path at network speed afterwards.

    python3 benchmarks/arbitrary/fit_network.py --shared DIR --out DIR --photos A.jpg ... \\
        [--batch 16] [--lr 2e-4] [--snapshots 150 500]

For every painting of ``tools/arbitrary_quality.py`` (six bundled, monet, shipwreck, two held-out
training paintings), fitted on the tool's first four photos (``--photos``: give them as files where
the research photos do not travel), starting from the shipped network and the painting's encoding:
Adam on the style parameters (``arbitrary_fit.FIT_LR``) and on every transformer weight (``--lr``),
the network's own loss (``StyleFitter``), fp32. At each snapshot step, the fitted transformers and
parameters of all paintings go into ``fitted_network_STEP_{a,b}.safetensors`` (fp16, five paintings
per file: the lent machine returns files of ≤ 16 MiB), keys ``PAINTING/params`` and
``PAINTING/transformer.NAME``; ``fit_network.json`` has the seconds (CUDA-synchronised).
Judge them on the CPU with ``tools/arbitrary_quality.py --fitted-networks FILE ...``.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--photos", nargs="*", help="the fit's photos as files (default: the tool's first four)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4, help="Adam's rate on the transformer's weights")
    ap.add_argument("--snapshots", type=int, nargs="+", default=[150, 500])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--paintings", help="comma-separated (default: the tool's ten)")
    args = ap.parse_args(argv)

    import torch
    from arbitrary_quality import BUNDLED, UNSEEN_HELD_OUT, UNSEEN_STYLES, painting_file, pick_photos
    from safetensors.torch import save_file

    import cvtools.style.arbitrary_fit as fitting
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer

    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = [Path(p) for p in args.photos] if args.photos else [p for _, p, _ in pick_photos(shared)[:4]]
    fit_on = [pil_to_tensor(load_image(p).rgb) for p in photos]
    names = args.paintings.split(",") if args.paintings else BUNDLED + UNSEEN_STYLES + UNSEEN_HELD_OUT
    arb = ArbitraryStylizer(device=args.device)
    fitter = fitting.StyleFitter(arb, on_note=print)
    dev = arb.device
    print("loss networks:", [arb.backbone.name] + [bb.name for bb, _ in fitter.extra], flush=True)
    pool = fitting._crop_pool(fit_on, fitting.FIT_CROP, per_photo=16).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    snapshots = sorted(set(args.snapshots))
    kept = {s: {} for s in snapshots}
    report = {"device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
              "photos": [p.stem for p in photos], "batch": args.batch, "lr": args.lr, "params_lr": fitting.FIT_LR,
              "snapshots": snapshots, "seconds": {}, "loss": {}}
    for i, name in enumerate(names):
        art = pil_to_tensor(load_image(painting_file(shared, name)).rgb)
        target = fitter._painting_features(art)
        transformer = copy.deepcopy(arb.net.transformer).train().requires_grad_(True)
        params = arb.style_params(arb.encode(art)).to(dev).detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([{"params": [params], "lr": fitting.FIT_LR},
                                      {"params": list(transformer.parameters()), "lr": args.lr}])
        gen = torch.Generator().manual_seed(0)
        sync()
        t0 = time.perf_counter()
        times, losses = {}, {}
        for step in range(1, snapshots[-1] + 1):
            x = pool[torch.randint(0, pool.shape[0], (args.batch,), generator=gen)].float().div_(255)
            with torch.enable_grad():
                loss = fitter._loss(x, transformer(x, params.expand(x.shape[0], -1)), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if step in kept:
                sync()
                times[step] = round(time.perf_counter() - t0, 2)
                losses[step] = round(float(loss.detach()), 4)
                state = {f"{name}/transformer.{k}": v.detach().half().cpu().contiguous()
                         for k, v in transformer.state_dict().items()}
                state[f"{name}/params"] = params.detach().float().cpu()[0].contiguous()
                kept[step].update(state)
        report["seconds"][name], report["loss"][name] = times, losses
        print(name, times, losses, flush=True)
        (out / "fit_network.json").write_text(json.dumps(report, indent=1))
        if i == len(names) - 1 or i == len(names) // 2 - 1:  # write each half as soon as it is whole
            part = "a" if i < len(names) // 2 else "b"
            for step, state in kept.items():
                save_file({k: v for k, v in state.items() if k.split("/")[0] in
                           (names[:len(names) // 2] if part == "a" else names[len(names) // 2:])},
                          str(out / f"fitted_network_{step}_{part}.safetensors"))
    return report


if __name__ == "__main__":
    main()
