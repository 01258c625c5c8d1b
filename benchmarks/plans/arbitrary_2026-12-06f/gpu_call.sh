#!/usr/bin/env bash
# Issue 28 (2026-12-06f): new *kinds* of painting for the encoder. A5 (shipped) continued with
# synthetic_paintings 0.3 (a third of the painting crops repainted as dabs, strokes along a random
# flow or flat prints: cvtools.style.synthetic_paintings), A5's recipe otherwise (Lite0 + Lite1, style
# weight 30, lr 2e-4, batch 64, paintings at a 512-px long side), alone on the GPU, to a 440-s
# deadline: A9's setting (painting_augment 0.5: a 1.93 -> 1.88, b 1.66 -> 1.66) and A7's (the same
# steps without either: a 1.94 -> 1.91, b 1.66 -> 1.67). Carry [".device"] (staged with
# efficientnet-lite1 and PAINTINGS=512).
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
ARCH='architecture={"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512}'
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
timeout 500 python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/syn --deadline ${DEADLINE:-440} \
  --set init_weights=cvtools/style/bundled/weights/arbitrary.safetensors --set "$ARCH" --set "$LITE1" \
  --set style_weight=30 --set lr=2e-4 --set synthetic_paintings=${FRACTION:-0.3} 2>&1 | grep -v Warning | tail -5
mkdir -p $OUT/syn && cp /tmp/syn/arbitrary.safetensors /tmp/syn/arbitrary.json /tmp/syn/log.txt /tmp/syn/losses.jsonl /tmp/syn/sheet.jpg $OUT/syn/ 2>/dev/null
ls -la $OUT/syn
