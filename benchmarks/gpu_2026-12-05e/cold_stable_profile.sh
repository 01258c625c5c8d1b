#!/usr/bin/env bash
# One lent GPU call (carry [".devB"]: the PyAV wheel; docs/, tests/ and most of benchmarks/ moved
# aside for the call to fit 64 MiB). Issue 29: where the cold `cvtools stylize clip.mp4 --stable`
# spends the seconds the plain command does not (last session: 15.9-18.2 s against 7.7-8.5 s on an
# H100 for 240 frames of 1080p, of which only ~5.5 s is the stabilizer's work in the process).
# The same command as benchmarks/video_speed.py --cli: starry_night, --tune, -q. A discarded plain
# run first (driver, file cache), then plain / stable with CVTOOLS_TIMINGS twice, interleaved, then
# each once under cProfile (the main thread: imports, set-up, and what it waits on; CVTOOLS_SLOW_EXIT
# so that the interpreter exits normally and the profile is written: run so in a second call).
source .devB/setup.sh
python3 -c "import torch, av, cv2; print(torch.__version__, av.__version__, cv2.__version__, torch.cuda.get_device_name(0))"
python3 - <<'PY'
import sys, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
from video_speed import make_clip
t = time.time(); make_clip(Path("/tmp/clip.mp4"), 1920, 1080, 240); print(f"clip made in {time.time() - t:.1f} s")
PY
cmd() { python3 -m cvtools stylize /tmp/clip.mp4 --style starry_night -o /tmp/out_$1.mp4 -q --tune $2; }
timed() {  # $1 tag, $2 extra args
  rm -f /tmp/out_$1.mp4
  local t0; t0=$(python3 -c 'import time; print(repr(time.time()))')
  CVTOOLS_TIMINGS=$OUT/$1.json CVTOOLS_TIMINGS_T0=$t0 cmd $1 "$2"
  python3 -c "import json,time,sys; print(sys.argv[1], f'{time.time()-float(sys.argv[2]):.2f} s', json.load(open(sys.argv[3])))" $1 $t0 $OUT/$1.json
}
timed warm ""
for r in 1 2; do timed plain$r ""; timed stable$r "--stable"; done
for k in plain stable; do
  rm -f /tmp/out_p$k.mp4
  extra=""; [ $k = stable ] && extra="--stable"
  CVTOOLS_SLOW_EXIT=1 python3 -m cProfile -o $OUT/$k.prof -m cvtools stylize /tmp/clip.mp4 --style starry_night -o /tmp/out_p$k.mp4 -q --tune $extra
  python3 -c "import pstats,sys; pstats.Stats(sys.argv[1]).sort_stats('cumulative').print_stats(45)" $OUT/$k.prof | tail -60 | cut -c1-180
done
