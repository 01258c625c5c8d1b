#!/usr/bin/env bash
# Issue 28 (2026-12-06e, call 2): fit the WHOLE transformer per painting (benchmarks/arbitrary/fit_network.py)
# on tools/arbitrary_quality.py's four fit photos (BSDS500: evaluation only, carried in .device/fit_photos)
# and its ten paintings; judged afterwards on the CPU. A: weights lr 2e-4, batch 16, snapshots at 150 and
# 500 steps (timed alone); B after it: lr 5e-4, 150 steps. Carry [".device"].
source .device/setup.sh
export CVTOOLS_CACHE_DIR=/tmp/cvcache
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
timeout 380 python3 benchmarks/arbitrary/fit_network.py --shared $CVTOOLS_SHARED --out $OUT/a --photos .device/fit_photos/*.jpg \
  --batch 16 --lr 2e-4 --snapshots 150 500 2>&1 | grep -v Warning | tail -12
mkdir -p /tmp/b
timeout $((570 - SECONDS)) python3 benchmarks/arbitrary/fit_network.py --shared $CVTOOLS_SHARED --out /tmp/b --photos .device/fit_photos/*.jpg \
  --batch 16 --lr 5e-4 --snapshots 150 2>&1 | grep -v Warning | tail -12
mkdir -p $OUT/b && cp /tmp/b/*.safetensors $OUT/b/ 2>/dev/null; cat /tmp/b/fit_network.json | head -c 1500
