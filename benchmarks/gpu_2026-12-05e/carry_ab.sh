#!/usr/bin/env bash
# One lent GPU call (carry [".devB"]: the PyAV wheel; _old/ = cvtools/ of ca048f5, _mid/ = of
# 86abce9, both made for the call). Issue 29: `--stable`'s compute thread was launch-bound (~570
# kernels and ~11 ms of GPU work in ~37 ms a 1080p frame; stable_torch_profile.sh) and its writer
# thread converted RGB to YUV on the CPU (~8 ms a frame; cold_stable_profile.sh).
#   old: ca048f5; mid: + the stacked read on CUDA (86abce9); new: + planes out (this tree).
# stable_inproc.py (240 frames of 1080p made in code, starry_night, 60 frames to warm up, then the
# whole clip timed) in the order old, new, mid, new, old (device time was short); the whole cold command with
# --stable for new and old; the old and new outputs decoded and compared.
source .devB/setup.sh
python3 -c "import torch, av, cv2; print(torch.__version__, av.__version__, cv2.__version__, torch.cuda.get_device_name(0))"
root=$PWD
python3 - <<'PY'
import sys; from pathlib import Path; sys.path.insert(0, "benchmarks")
from video_speed import make_clip; make_clip(Path("/tmp/clip.mp4"), 1920, 1080, 240)
PY
dir_of() { case $1 in old) echo $root/_old;; mid) echo $root/_mid;; new) echo $root;; esac; }
for v in old new mid new old; do
  d=$(dir_of $v)
  echo "$v $(cd $d && PYTHONPATH=/tmp/site:$d timeout 120 python3 $root/benchmarks/gpu_2026-12-05e/stable_inproc.py /tmp/clip.mp4 /tmp/in_$v.mp4 2>&1 | tail -1)"
done
for v in new old; do
  d=$(dir_of $v)
  rm -f /tmp/cli_$v.mp4
  t0=$(date +%s.%N)
  (cd $d && PYTHONPATH=/tmp/site:$d python3 -m cvtools stylize /tmp/clip.mp4 --style starry_night -o /tmp/cli_$v.mp4 -q --tune --stable)
  echo "cold whole command --stable $v: $(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')") s"
done
python3 - <<'PY'
import numpy as np
from cvtools.video.io import read_frames
a = [f.rgb.astype(np.int16) for f in read_frames("/tmp/cli_old.mp4")]
b = [f.rgb.astype(np.int16) for f in read_frames("/tmp/cli_new.mp4")]
d = np.stack([x - y for x, y in zip(a, b)])
print(f"frames {len(a)} {len(b)}; decoded old vs new: mean |diff| {np.abs(d).mean():.3f} levels, signed per channel "
      f"{np.round(d.mean(axis=(0, 1, 2)), 3).tolist()}, 99.9th pct {np.percentile(np.abs(d), 99.9):.0f}")
PY
