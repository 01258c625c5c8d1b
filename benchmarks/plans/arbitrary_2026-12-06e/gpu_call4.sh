#!/usr/bin/env bash
# Issue 28 (2026-12-06e, call 4): new kinds of painting for the encoder. A5 continued with
# painting_augment 0.5 (half the painting crops turned by 90-degree steps, hue rotated by up to
# +-90 degrees, saturation x0.7-1.4), A5's recipe otherwise (Lite0 + Lite1, style weight 30, lr 2e-4,
# batch 64, paintings at a 512-px long side, JPEG q85 here), alone on the GPU, to a 430-s deadline.
# Compare with A7 (A5 + 5,126 steps without it: Lite2 a 1.94 -> 1.91, b 1.66 -> 1.67): more than
# +-3 % on b is the augmentation's. Carry [".device"] (staged with efficientnet-lite1 and PAINTINGS).
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
ARCH='architecture={"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512}'
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
timeout 480 python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/aug --deadline 440 \
  --set init_weights=cvtools/style/bundled/weights/arbitrary.safetensors --set "$ARCH" --set "$LITE1" \
  --set style_weight=30 --set lr=2e-4 --set painting_augment=0.5 2>&1 | grep -v Warning | tail -5
mkdir -p $OUT/aug && cp /tmp/aug/arbitrary.safetensors /tmp/aug/arbitrary.json /tmp/aug/log.txt /tmp/aug/losses.jsonl /tmp/aug/sheet.jpg $OUT/aug/ 2>/dev/null
ls -la $OUT/aug
