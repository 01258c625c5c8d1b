"""CPU speed of ``stylize --engine onnxruntime`` beside the PyTorch engine (BENCHMARKS.md).

    python benchmarks/onnx_cpu.py [--style starry_night] [--rounds 9] [--sizes 512x512,1920x1080] [--threads N]

Times the network forward alone (``Stylizer.stylize_tensor``: what the engines differ in) on one
random image per size, the engines interleaved round by round (a shared or busy machine slows
them alike), after one warm-up run each; prints per engine and size the median wall time with
its spread (min-max), the median CPU time of the process per call (with ``--threads 1`` the
least disturbed measure on a shared machine: waiting for a core is not counted), and the largest
difference of each engine's output to PyTorch fp32. Engines:

- ``pytorch``: the Stylizer's CPU default (bf16 where the CPU has native bf16, else fp32);
- ``pytorch-fp32``: the Stylizer in fp32 (space-to-depth form, channels-last);
- ``onnxruntime``: the style's ONNX export (fp32) in onnxruntime's CPU provider.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sizes", default="512x512,1920x1080")
    parser.add_argument("--engines", default="pytorch,pytorch-fp32,onnxruntime")
    parser.add_argument("--threads", type=int, default=0, help="threads for both engines (0: their defaults)")
    args = parser.parse_args(argv)

    import onnxruntime
    import torch

    from cvtools.style.onnxruntime_engine import OnnxRuntimeStylizer
    from cvtools.style.stylize import Stylizer

    if args.threads:
        torch.set_num_threads(args.threads)
    makers = {
        "pytorch": lambda: Stylizer(args.style, device="cpu"),
        "pytorch-fp32": lambda: Stylizer(args.style, device="cpu", precision="fp32"),
        "onnxruntime": lambda: OnnxRuntimeStylizer(args.style, device="cpu", on_note=lambda m: None,
                                              threads=args.threads or None),
    }
    engines = {name: makers[name]() for name in args.engines.split(",")}
    reference = engines.get("pytorch-fp32") or Stylizer(args.style, device="cpu", precision="fp32")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime ({args.threads or 'default'} threads) {onnxruntime.__version__}, style {args.style}, "
          f"pytorch default dtype {engines['pytorch'].dtype if 'pytorch' in engines else '-'}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        ref = reference.stylize_tensor(x).float()
        times = {name: [] for name in engines}
        cpu = {name: [] for name in engines}
        diffs = {}
        for name, eng in engines.items():  # warm-up (first-call allocations, ORT's first run)
            diffs[name] = float((eng.stylize_tensor(x).float() - ref).abs().max())
        for _ in range(args.rounds):
            for name, eng in engines.items():
                t, c = time.perf_counter(), time.process_time()
                eng.stylize_tensor(x)
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
        for name in engines:
            ts = sorted(times[name])
            print(f"{w}x{h} {name:<13} median {1000 * statistics.median(ts):8.1f} ms  "
                  f"(min {1000 * ts[0]:.1f}, max {1000 * ts[-1]:.1f}; {len(ts)} runs)  "
                  f"CPU {1000 * statistics.median(cpu[name]):8.1f} ms  "
                  f"max |out - pytorch fp32| {diffs[name]:.1e}", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
