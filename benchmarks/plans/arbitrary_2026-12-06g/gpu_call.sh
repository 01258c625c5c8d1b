#!/usr/bin/env bash
# Issue 28 (2026-12-06g): four more kinds of painting for the encoder (divisionist dabs at 1-3 px,
# ink hatching, watercolour washes, impasto relief: cvtools.style.synthetic_paintings), drawn among
# all seven with synthetic_paintings ${FRACTION:-0.5}. From INIT (default the shipped S3), S3's recipe
# otherwise (A5's: Lite0 + Lite1, style weight 30, lr 2e-4, batch 64, paintings at a 512-px long
# side), alone on the GPU, to a ${DEADLINE:-520}-s deadline. S3 (3 kinds, 0.5): a 1.76 -> 1.74,
# b 1.63 -> 1.62 in 2,673 steps. LR (default 2e-4) sets the peak learning rate (2026-12-06i: an annealing call). Carry [".device"] (staged with efficientnet-lite1 and PAINTINGS=512).
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
ARCH='architecture={"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512}'
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
# G1-G3 ran with the first seven kinds; mosaic, pastel, glaze and contour_strokes were added after
# them (not yet trained on)
KINDS=${KINDS:-'["dots","strokes","flat_print","divisionism","hatching","watercolour","impasto","mosaic","pastel","glaze","contour_strokes"]'}
timeout $(( ${DEADLINE:-520} + 50 )) python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/syn \
  --deadline ${DEADLINE:-520} --set init_weights=${INIT:-cvtools/style/bundled/weights/arbitrary.safetensors} \
  --set "$ARCH" --set "$LITE1" --set style_weight=30 --set lr=${LR:-2e-4} \
  --set synthetic_paintings=${FRACTION:-0.5} --set "synthetic_kinds=$KINDS" 2>&1 | grep -v Warning | tail -5
mkdir -p $OUT/syn && cp /tmp/syn/arbitrary.safetensors /tmp/syn/arbitrary.json /tmp/syn/log.txt /tmp/syn/losses.jsonl /tmp/syn/sheet.jpg $OUT/syn/ 2>/dev/null
ls -la $OUT/syn
