#!/usr/bin/env bash
# Session r: where a folder's time goes on a GPU (folder_phases.py), mona's network against the any-painting
# network, 256 JPEGs of 1920x1080 made as session q's call made them, the copy back waited for and queued
# (job.QUEUED_COPY_BACK); then the queued copy's CUDA test. ~5 min on an H100.
set -uo pipefail
source .device/setup.sh
python3 - <<'PY'
from pathlib import Path
from PIL import Image, ImageOps
src = sorted(Path("samples").glob("*.jpg")); dst = Path("/tmp/f1080"); dst.mkdir(exist_ok=True)
for i in range(32):
    im = Image.open(src[i % len(src)]).convert("RGB")
    im = ImageOps.fit(im.rotate(i * 3, expand=False), (1920, 1080))
    im.save(dst / f"m{i:02d}.jpg", quality=92)
PY
# the copy back waited for (0, before) and queued (1), interleaved (one round: the device time left)
for round in 1; do
  for style in mona .device/shared/styles/monet_grand_canal.jpg; do
    for q in 0 1; do
      timeout 110 python3 benchmarks/plans/session_r/folder_phases.py "$style" --n 192 --queued $q 2>&1 | grep -v Warning | tail -1
    done
  done
done
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_queued_copy_back.py 2>&1 | tail -3
nproc
