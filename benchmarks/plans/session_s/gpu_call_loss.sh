#!/usr/bin/env bash
# Session s (2026-12-07): issue 28, the training loss against the independent yardstick.
#
# Why: a painting file encoded in one pass paints at 1.56x its trained network's Lite2 distance
# (target a <= 1.10). Collages (session r), a deeper decoder (o), crop scales and synthetic kinds
# moved it by a few per cent at most, and embeddings fitted on the training loss close only part
# of the gap (h): the rest lies between the training loss (swag Grams through Lite0 blocks
# 0/2/4/7 and Lite1 blocks 0/3/6/10) and the yardstick (plain Grams through Lite2 blocks
# 0/3/6/10). Two single-lever runs, never Lite2 itself in the loss:
#   gram: style_transform "swag+gram" (the mean of swag and plain relative Gram distances);
#   deep: Lite0's style layers 0/2/4/7 + blocks.10 (a stage the yardstick reads, the loss did not).
# The control is session r's, the same recipe from the same start for the same 1,500 steps
# (benchmarks/plans/session_r/runs/control; judged 1.558 / 1.473 / 0.230).
#
# Recipe as session r's gpu_call.sh (G6's: Lite0 + Lite1, style weight 30, synthetic paintings
# 0.5 over the eleven kinds, batch 64, paintings at 512 px) at a peak lr of 1e-4, from G6 (the
# shipped file without its six style tokens, session_r/strip_tokens.py).
# Needs .device staged with the Lite1 wheel and the tree cut (session r's notes). Returns
# $OUT/gram.tar, $OUT/deep.tar.
set -u
STEPS=${STEPS:-1500}
DEADLINE=${DEADLINE:-470}
FIELDS='"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512'
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
KINDS='["dots","strokes","flat_print","divisionism","hatching","watercolour","impasto","mosaic","pastel","glaze","contour_strokes"]'
INIT=/tmp/g6.safetensors

arguments() {
  local tag=$1; shift
  ARGS=(--shared "${CVTOOLS_SHARED:-../shared}" --out "/tmp/$tag" --deadline "$DEADLINE" --steps "$STEPS"
        --set "init_weights=$INIT" --set "$LITE1" --set style_weight=30 --set lr=1e-4
        --set synthetic_paintings=0.5 --set "synthetic_kinds=$KINDS" --set "architecture={$FIELDS}" "$@")
}

source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
python3 benchmarks/plans/session_r/strip_tokens.py cvtools/style/bundled/weights/arbitrary.safetensors $INIT
train() {
  local tag=$1
  arguments "$@"
  rm -rf "/tmp/$tag"
  timeout $(( DEADLINE + 60 )) python3 benchmarks/train_arbitrary.py "${ARGS[@]}" > "/tmp/$tag.out" 2>&1
  echo "exit status $?" >> "/tmp/$tag.out"
}
train gram --set style_transform=swag+gram &
train deep --set 'style_layers=["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10"]' &
wait
for tag in gram deep; do
  mkdir -p "/tmp/pack/$tag"
  cp /tmp/$tag/arbitrary.safetensors /tmp/$tag/arbitrary.json /tmp/$tag/log.txt /tmp/$tag/losses.jsonl \
     /tmp/$tag/sheet.jpg "/tmp/pack/$tag/" 2>/dev/null
  grep -v Warning "/tmp/$tag.out" | tail -n 60 > "/tmp/pack/$tag/stdout.txt"
  tar cf "$OUT/$tag.tar" -C /tmp/pack "$tag"
done
for tag in gram deep; do
  echo "== $tag"; grep -E "starting from|ms per step|stopped by|done in" "/tmp/$tag/log.txt" | cut -c1-200
  tail -n 3 "/tmp/$tag.out"
done
ls -la "$OUT"
