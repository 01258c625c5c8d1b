#!/usr/bin/env bash
# One lent GPU call (carry [".devB"]): torch.profiler over `cvtools stylize clip.mp4 --stable` in
# the process (120 frames of 1080p, starry_night, --tune): where the compute thread's ~27 ms a
# frame of `finish` (the carry) goes, GPU kernels against host time.
source .devB/setup.sh
python3 - <<'PY'
import sys, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
from video_speed import make_clip
make_clip(Path("/tmp/clip.mp4"), 1920, 1080, 120)
import torch
from torch.profiler import profile, ProfilerActivity
from cvtools.cli import main
def run(out, extra):
    try:
        main(["stylize", "/tmp/clip.mp4", "--style", "starry_night", "-o", out, "-q", "--tune"] + extra)
    except SystemExit as e:
        assert not e.code, e.code
run("/tmp/w.mp4", ["--stable"])  # warm: kernels, cuDNN plans, file cache
for extra in ([], ["--stable"]):
    t = time.perf_counter(); run(f"/tmp/t{len(extra)}.mp4", extra); print(extra, f"{time.perf_counter() - t:.2f} s unprofiled", flush=True)
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    t = time.perf_counter(); run("/tmp/p.mp4", ["--stable"]); print(f"profiled {time.perf_counter() - t:.2f} s", flush=True)
ka = prof.key_averages()
print(ka.table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70))
print(ka.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=70))
n = sum(e.count for e in ka if e.device_type == torch.autograd.DeviceType.CUDA) if hasattr(torch.autograd, "DeviceType") else None
print("kernel launches", n)
PY
