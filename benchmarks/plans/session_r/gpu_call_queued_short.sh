#!/usr/bin/env bash
# Session r, the short form of gpu_call_folder_phases.sh for the device time left (~300 s): mona only, the copy back
# waited for (0) and queued (1), 128 JPEGs of 1920x1080 each; then the queued copy's CUDA test.
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
for q in 0 1 0 1; do
  timeout 60 python3 benchmarks/plans/session_r/folder_phases.py mona --n 128 --queued $q 2>&1 | grep -v Warning | tail -1
done
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_queued_copy_back.py 2>&1 | tail -3
