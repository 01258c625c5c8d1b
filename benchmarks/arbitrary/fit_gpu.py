#!/usr/bin/env python3
"""`stylize --fit` on a GPU (issue 28), or on the CPU with ``--device cpu``: how fast a painting's
style parameters are fitted there and how close more steps or other batches bring the network,
judged afterwards on the CPU with ``tools/arbitrary_quality.py --fitted FILE`` (the Lite2 judge
does not travel). A setting's batch applies on either device (FIT_BATCH and CPU_FIT_BATCH).

    python3 benchmarks/arbitrary/fit_gpu.py --shared DIR --out DIR [--settings 4x100 16x400 ...]

For every painting of ``tools/arbitrary_quality.py`` (the six bundled, monet, shipwreck and the two
held-out training paintings), fitted on the tool's first four photos (what its ``--fit`` does),
starting from the painting's encoding: one safetensors file per setting (BATCHxSTEPS, optionally
xLR) with each painting's parameters, and ``fit_gpu.json`` with the seconds each fit took (CUDA
synchronised; the first fit of a run includes the loss networks' warm-up and is reported apart).
Settings run in the order given and the files are written after each, so a deadline loses only the
setting under way.
"""
from __future__ import annotations

import argparse
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
    ap.add_argument("--settings", nargs="+", default=["4x100", "16x400", "4x400", "16x1200"])
    ap.add_argument("--deadline", type=float, default=1e9, help="seconds from the start: no new setting after it")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--photos", nargs="*", help="the fit's photos as files (default: the tool's first four "
                    "from --shared; give them where the research photos do not travel)")
    args = ap.parse_args(argv)
    start_time = time.perf_counter()

    import torch
    from arbitrary_quality import BUNDLED, UNSEEN_HELD_OUT, UNSEEN_STYLES, painting_file, pick_photos
    from safetensors.torch import save_file

    import cvtools.style.arbitrary_fit as fitting
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer

    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = ([(Path(p).stem, Path(p), "given") for p in args.photos] if args.photos
              else pick_photos(shared)[:4])
    fit_on = [pil_to_tensor(load_image(p).rgb) for _, p, _ in photos]
    names = BUNDLED + UNSEEN_STYLES + UNSEEN_HELD_OUT
    arts = {n: pil_to_tensor(load_image(painting_file(shared, n)).rgb) for n in names}
    arb = ArbitraryStylizer(device=args.device)
    fitter = fitting.StyleFitter(arb, on_note=print)
    print("loss networks:", [arb.backbone.name] + [bb.name for bb, _ in fitter.extra], flush=True)
    starts = {n: arb.encode(arts[n]) for n in names}

    def sync():
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize()

    report = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "photos": [s for s, _, _ in photos], "settings": {}}
    first = True
    for setting in args.settings:
        if time.perf_counter() - start_time > args.deadline:
            print(f"deadline: {setting} and later not run", flush=True)
            break
        parts = setting.split("x")
        batch, steps = int(parts[0]), int(parts[1])
        lr = float(parts[2]) if len(parts) > 2 else fitting.FIT_LR
        fitting.FIT_BATCH = fitting.CPU_FIT_BATCH = batch
        fitting.FIT_LR = lr
        params, seconds = {}, {}
        for n in names:
            sync()
            t0 = time.perf_counter()
            with torch.enable_grad():
                params[n] = fitter.fit(arts[n], fit_on, steps=steps, start=starts[n])
            sync()
            seconds[n] = round(time.perf_counter() - t0, 3)
            if first:
                report["first_fit_seconds_with_warmup"] = seconds[n]
                first = False
        save_file({n: p.contiguous() for n, p in params.items()}, str(out / f"fitted_{setting}.safetensors"))
        report["settings"][setting] = {"batch": batch, "steps": steps, "lr": lr, "seconds": seconds,
                                       "ms_per_step": round(1000 * sorted(seconds.values())[len(seconds) // 2] / steps, 2)}
        (out / "fit_gpu.json").write_text(json.dumps(report, indent=1))
        print(setting, report["settings"][setting]["ms_per_step"], "ms/step (median painting)", flush=True)
    return report


if __name__ == "__main__":
    main()
