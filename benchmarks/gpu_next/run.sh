#!/usr/bin/env bash
# Ready for the next lent GPU call (written 2026-12-05 18:20 UTC; not run yet). Carry [".devB"]: the
# PyAV wheel only (stage: `mkdir -p .devB/whl && pip download --no-deps --only-binary=:all:
# --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 -d .devB/whl av`, and a
# setup.sh like .device's with .devB); move docs/, tests/ and most of benchmarks/ aside (keep
# video_speed.py, gpu_2026-12-05e/ and this folder) to fit 64 MiB.
# Issue 29, `--stable` on a GPU after 86abce9/c11d092 (~350 kernel launches a 1080p frame left on
# the compute thread, BENCHMARKS "Where the rest of the cold --stable command went"): which Python
# lines launch them. torch.profiler with stacks over 60 frames in the process, launches grouped by
# the calling line; then the in-process rate for the record (stable_inproc.py).
source .devB/setup.sh
python3 -c "import torch, av, cv2; print(torch.__version__, av.__version__, cv2.__version__, torch.cuda.get_device_name(0))"
python3 - <<'PY'
import collections, sys, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
from video_speed import make_clip
make_clip(Path("/tmp/clip.mp4"), 1920, 1080, 60)
import torch
from torch.profiler import ProfilerActivity, profile
from cvtools.style.stylize import Stylizer
from cvtools.video.process import stylize_video
from cvtools.video.stability import stabilizer_for
net = Stylizer("starry_night", device="cuda")
stylize_video(net, "/tmp/clip.mp4", "/tmp/w.mp4", stable=stabilizer_for(net), tune=True, overwrite=True, duration=1.0)
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=True) as prof:
    r = stylize_video(net, "/tmp/clip.mp4", "/tmp/p.mp4", stable=stabilizer_for(net), tune=True, overwrite=True)
launches = collections.Counter()
for e in prof.events():
    if e.name != "cudaLaunchKernel":
        continue
    ev = e
    while ev is not None and not ev.stack:  # runtime calls carry no stack: their aten op's
        ev = ev.cpu_parent
    stack = ev.stack if ev is not None else []
    where = next((f for f in stack if "/cvtools/" in f), stack[0] if stack else "?")
    launches[where.split("/cvtools/")[-1]] += 1
total = sum(launches.values())
print(f"{r.frames} frames, {total} launches, {total / r.frames:.0f} a frame")
for where, n in launches.most_common(40):
    print(f"{n / r.frames:7.1f}  {where}")
PY
python3 benchmarks/gpu_2026-12-05e/stable_inproc.py /tmp/clip.mp4 /tmp/s.mp4
