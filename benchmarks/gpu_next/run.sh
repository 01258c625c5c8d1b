#!/usr/bin/env bash
# Ready for the next lent GPU call (written 2026-12-05 18:25 UTC; not run yet). Carry [".devB"]: the
# PyAV wheel only (stage: `mkdir -p .devB/whl && pip download --no-deps --only-binary=:all:
# --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 -d .devB/whl av`, and a
# setup.sh like .device's with .devB); move docs/, tests/ and most of benchmarks/ aside (keep
# video_speed.py, gpu_2026-12-05e/ and this folder) to fit 64 MiB.
# Issue 29, `--stable` on a GPU after 86abce9/c11d092 (~270 kernel launches a 1080p frame left on
# the compute thread, BENCHMARKS "Where the rest of the cold --stable command went"): which lines
# dispatch them (count_ops.py on CUDA at 1080p, the object and zoom clips), then the in-process
# rate for the record (stable_inproc.py, 240 frames of 1080p).
source .devB/setup.sh
python3 -c "import torch, av, cv2; print(torch.__version__, av.__version__, cv2.__version__, torch.cuda.get_device_name(0))"
for clip in object zoom; do python3 benchmarks/gpu_next/count_ops.py --device cuda --size 1080x1920 --clip $clip; done
python3 - <<'PY'
import sys; from pathlib import Path; sys.path.insert(0, "benchmarks")
from video_speed import make_clip; make_clip(Path("/tmp/clip.mp4"), 1920, 1080, 240)
PY
python3 benchmarks/gpu_2026-12-05e/stable_inproc.py /tmp/clip.mp4 /tmp/s.mp4
