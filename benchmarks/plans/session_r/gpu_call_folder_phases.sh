#!/usr/bin/env bash
# Session r: where a folder's time goes on a GPU (folder_phases.py), mona's network against the any-painting
# network, 256 JPEGs of 1920x1080 made as session q's call made them. ~3 min on an H100.
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
for style in mona .device/shared/styles/monet_grand_canal.jpg mona; do
  timeout 200 python3 benchmarks/plans/session_r/folder_phases.py "$style" --n 256 2>&1 | grep -v Warning | tail -2
done
nproc
