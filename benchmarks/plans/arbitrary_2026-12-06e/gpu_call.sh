#!/usr/bin/env bash
# Issue 28 (2026-12-06e): is the one-pass network's gap to the trained networks the SHARED training
# (176 paintings in one set of weights) or this architecture + loss? The shipped A5 trained on ONE
# painting (starry_night, held out of A5's training) with A5's recipe (Lite0 + Lite1, style weight 30,
# lr 2e-4): if it reaches the trained starry_night network on the Lite2 yardstick, sharing is the
# limit; if it stays ~1.5x+, the architecture/loss is. Two variants at once: the default painting
# crops (area 0.1-1 at 256 px) and the whole painting at 512 px as the target (the bundled trainer's).
# Plus issue 29's pending measurement: carry.HISTOGRAM_BLEND's cost on the GPU (run first, alone).
# Carry [".device"] (staged with efficientnet-lite1; .device/one_paintings/starry_night.jpg at 512 px).
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/h
timeout 90 python3 benchmarks/plans/issue29_2026-12-06d/histogram_cost.py --device cuda --rounds 21 > $OUT/h/histogram_cost_fp32.txt 2>&1
timeout 90 python3 benchmarks/plans/issue29_2026-12-06d/histogram_cost.py --device cuda --rounds 21 --half > $OUT/h/histogram_cost_fp16.txt 2>&1
cat $OUT/h/histogram_cost_*.txt | tail -20
mkdir -p /tmp/one/data/photos /tmp/one/data/paintings
ln -sfn $CVTOOLS_SHARED/data/photos/free /tmp/one/data/photos/free
ln -sfn $CVTOOLS_SHARED/styles /tmp/one/styles
cp .device/one_paintings/starry_night.jpg /tmp/one/data/paintings/
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
ARCH='architecture={"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512}'
A5=cvtools/style/bundled/weights/arbitrary.safetensors
job() {  # $1 tag, then extra --set arguments
  tag=$1; shift
  timeout 470 python3 benchmarks/train_arbitrary.py --shared /tmp/one --out /tmp/r/$tag --deadline $((440 - SECONDS)) \
    --set holdout=[] --set init_weights=$A5 --set "$LITE1" --set "$ARCH" --set style_weight=30 --set lr=2e-4 --set photo_style_fraction=0 "$@" \
    > /tmp/r/$tag.out 2>&1
  echo "$tag rc $? at $SECONDS s" >> /tmp/r/$tag.out
  mkdir -p $OUT/$tag && cp /tmp/r/$tag/arbitrary.safetensors /tmp/r/$tag/arbitrary.json /tmp/r/$tag/log.txt $OUT/$tag/ 2>/dev/null
}
mkdir -p /tmp/r
(job one_crops) &
(job one_whole --set painting_scale=[1.0,1.0] --set painting_size=512) &
wait
tail -qn 3 /tmp/r/*.out | cut -c1-300
