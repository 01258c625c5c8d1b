"""Where a dream's first call goes, per configuration, each in a fresh process (issue #14).

    python benchmarks/cold_start.py [--device cuda] [--sizes 1920x1080,1440x1080]

For each configuration (cuDNN autotuning on/off, depthwise kernels on cuDNN / PyTorch's own,
half and full precision, memory layout) a new Python process loads the embedded backbone and runs the default
dream (4 octaves x 10 steps, CUDA graphs) on each size in turn: the first call at a new size
(plans, autotuning, graph capture) and the median of 5 more calls at the last size (steady).
Prints a table and writes JSON with --json PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import torch
from cvtools.backbones import load_backbone
from cvtools.dream import DreamEngine, DreamSettings
t_import = time.perf_counter() - t0
device, precision, sizes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t = time.perf_counter()
cl = os.environ.get("COLD_CHANNELS_LAST")
bb = load_backbone("efficientnet_lite0", device=device, precision=precision,
                   channels_last=None if cl is None else cl == "1",
                   tune=os.environ.get("COLD_TUNE") == "1")  # the library takes tune= as an argument only
t_load = time.perf_counter() - t
engine = DreamEngine(bb, DreamSettings(tile=None))
# COLD_CAPTURE_FROM=1: capture CUDA graphs at a shape's first sighting (the policy before
# 2026-11-25 afternoon); the default 2 runs a one-off shape eagerly and captures when it comes back
engine._graphs.capture_from = int(os.environ.get("COLD_CAPTURE_FROM", "2"))
def sync():
    if bb.device.type == "cuda":
        torch.cuda.synchronize()
firsts = []
for i, (w, h) in enumerate(sizes):
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, h // 16, w // 16, generator=g), size=(h, w),
                                        mode="bilinear", align_corners=False)[0].to(bb.device)
    profile = os.environ.get("COLD_PROFILE") == "1" and i == len(sizes) - 1
    if profile:  # where the host spends a new size's first call (kernels are loaded by now)
        import cProfile, pstats
        prof = cProfile.Profile(); prof.enable()
    sync(); t = time.perf_counter(); engine(x, seed=0); sync()
    firsts.append(time.perf_counter() - t)
    if profile:
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(18)
sync(); t = time.perf_counter(); engine(x, seed=0); sync()
second = time.perf_counter() - t  # the same size again: where a repeated shape is captured
steady = []
for _ in range(5):
    sync(); t = time.perf_counter(); out = engine(x, seed=0); sync()
    steady.append(time.perf_counter() - t)
steady.sort()
print(json.dumps({"import_s": t_import, "load_s": t_load, "first_s": firsts, "second_s": second, "steady_ms": steady[2] * 1e3,
                  "finite": bool(torch.isfinite(out).all())}))
"""

CONFIGS = [
    # name, environment, precision. Untuned = the default (no cuDNN autotuning, depthwise on
    # PyTorch's kernels, channels-first); --tune = autotuning with cuDNN's depthwise kernels (the old default).
    ("fp16 CL, --tune (the old default)", {"COLD_TUNE": "1"}, "auto"),
    ("fp16 NCHW, untuned (default)", {}, "auto"),
    ("fp16 NCHW, untuned, graphs captured at a shape's first sighting", {"COLD_CAPTURE_FROM": "1"}, "auto"),
    ("fp16 NCHW, untuned, 1x1 convs on cuDNN (before 2026-11-25 afternoon)", {"CVTOOLS_POINTWISE": "cudnn"}, "auto"),
    ("fp16 NCHW, untuned (default), host profile of the last size", {"COLD_PROFILE": "1"}, "auto"),
    ("fp16 CL, untuned", {"COLD_CHANNELS_LAST": "1"}, "auto"),
    ("fp16 CL, untuned but depthwise on cuDNN", {"CVTOOLS_DEPTHWISE": "cudnn", "COLD_CHANNELS_LAST": "1"}, "auto"),
    ("fp32 NCHW, untuned", {}, "fp32"),
    ("fp32 CL, --tune", {"COLD_TUNE": "1"}, "fp32"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sizes", default="1920x1080,1440x1080")
    ap.add_argument("--only", default="", help="comma-separated config numbers (1-based)")
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    pick = {int(i) for i in args.only.split(",") if i}
    results = []
    for i, (name, env, precision) in enumerate(CONFIGS, 1):
        if pick and i not in pick:
            continue
        r = subprocess.run([sys.executable, "-c", CHILD, args.device, precision, json.dumps(sizes)],
                           env=dict(os.environ, **env), capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            print(f"{name}: failed\n{r.stderr[-1500:]}", file=sys.stderr)
            continue
        row = dict(json.loads(r.stdout.strip().splitlines()[-1]), config=name)
        if env.get("COLD_PROFILE") == "1":
            print(r.stderr[-4000:], file=sys.stderr)
        results.append(row)
        firsts = " / ".join(f"{f:.2f}" for f in row["first_s"])
        print(f"{name:55s} import {row['import_s']:.1f}s load {row['load_s']:.1f}s first call per size {firsts} s,"
              f" same size again {row['second_s']:.2f} s, steady {row['steady_ms']:.1f} ms", flush=True)
    if args.json:
        import torch

        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "sizes": sizes, "device": args.device,
                       "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                       "rows": results}, f, indent=2)


if __name__ == "__main__":
    main()
