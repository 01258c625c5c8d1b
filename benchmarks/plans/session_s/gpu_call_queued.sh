#!/usr/bin/env bash
# Session s: session r's prepared measurement (gpu_call_queued_short.sh, a little longer): mona's folder of
# 1080p JPEGs with the copy back waited for (0) and queued behind an event (1, job.QUEUED_COPY_BACK),
# interleaved twice, 160 photos each; the any-painting network once each way; then the queued copy's CUDA test.
set -uo pipefail
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
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
  timeout 70 python3 benchmarks/plans/session_r/folder_phases.py mona --n 160 --queued $q 2>&1 | grep -v Warning | tail -1
done
for q in 0 1; do
  timeout 70 python3 benchmarks/plans/session_r/folder_phases.py .device/shared/styles/monet_grand_canal.jpg --n 160 --queued $q 2>&1 | grep -v Warning | tail -1
done
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_queued_copy_back.py 2>&1 | tail -3
nproc
