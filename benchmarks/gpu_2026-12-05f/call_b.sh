#!/usr/bin/env bash
# Call B, carry [".device"] (Lite0 wheel, paintings at 512 px): issue 28's A8, prepared in
# benchmarks/gpu_next/train_fine.sh (removed now that it ran here): the shipped network (A5) grown a full-resolution stage
# (fine_channels 8, zero-initialised) and trained alone on the GPU with A5's recipe, on a schedule
# of 11,000 steps meant to span this call and call C (the checkpoint stays in /tmp/A8 on the warm
# machine; call C resumes it).
source .device/setup.sh
export PYTHONPATH=$PYTHONPATH:/tmp/site-lite1 CVTOOLS_SHARED=/tmp/sh
[ -d /tmp/sh/styles ] || { echo "cold machine: call A's staging is gone"; exit 3; }
mkdir -p /tmp/sh/data && ln -sfn $PWD/.device/shared/data/paintings /tmp/sh/data/paintings
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
W=cvtools/style/bundled/weights
python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/A8 --deadline 545 --steps 11000 \
  --set "init_weights=$W/arbitrary.safetensors" --set init_partial=true \
  --set 'architecture={"embedding_dim": 400, "encoder_hidden": 1024, "encoder_long_side": 512, "fine_channels": 8}' \
  --set "extra_backbones=$L1" --set style_weight=30 --set lr=0.0002 > /tmp/A8.log 2>&1
tail -4 /tmp/A8.log | cut -c1-400
cp /tmp/A8.log /tmp/A8/log_call_b.txt
tar cf $OUT/A8.tar -C /tmp --exclude='arbitrary.ckpt*' A8
