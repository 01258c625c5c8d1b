#!/usr/bin/env bash
# Session u (2026-12-08): issue 28, the plain Grams continued from gram2 (shipped 2026-12-07).
#
# gram2 (G6 + 3,000 steps of style_transform "swag+gram") is the shipped network: a 1.442, b 1.333 (session t:
# 1,500 steps took a 1.462 -> 1.442). Two runs from gram2 (its style tokens stripped), 1,500 steps each,
# sharing the card:
#   gram3: swag+gram again (do the plain Grams keep paying?);
#   plain: style_transform "gram" alone (the plain Gram term at full weight: the independent yardstick reads
#          plain Grams; does dropping the swag term move a/b further, and does the texture hold?).
# Same recipe as gpu_call_gram_more.sh (G6's: Lite0 + Lite1, style weight 30, synthetic paintings 0.5,
# batch 64, paintings at 512 px, peak lr 1e-4). The tree cut carries runs/init/gram2.safetensors (made with
# session_r/strip_tokens.py from the shipped file; never committed). Returns $OUT/gram3.tar, $OUT/plain.tar.
# Then, in the same call (one machine start: starts were being refused), gram3 is shipped into the device's
# copy of the tree (tools/ship_arbitrary.py: weights, record, the bundled paintings re-encoded) and the
# bundled names fitted to it as session t's gpu_call_fit_names.sh does: $OUT/names.tar (the record with the
# fitted embeddings, params.json). Whether gram3 ships is decided on the CPU judge afterwards.
set -u
STEPS=${STEPS:-1500}
DEADLINE=${DEADLINE:-330}
FIELDS='"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512'
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
KINDS='["dots","strokes","flat_print","divisionism","hatching","watercolour","impasto","mosaic","pastel","glaze","contour_strokes"]'
INIT=benchmarks/plans/session_u/runs/init/gram2.safetensors

arguments() {
  local tag=$1; shift
  ARGS=(--shared "${CVTOOLS_SHARED:-../shared}" --out "/tmp/$tag" --deadline "$DEADLINE" --steps "$STEPS"
        --set "init_weights=$INIT" --set "$LITE1" --set style_weight=30 --set lr=1e-4
        --set synthetic_paintings=0.5 --set "synthetic_kinds=$KINDS" --set "architecture={$FIELDS}" "$@")
}

source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
train() {
  local tag=$1
  arguments "$@"
  rm -rf "/tmp/$tag"
  timeout $(( DEADLINE + 60 )) python3 benchmarks/train_arbitrary.py "${ARGS[@]}" > "/tmp/$tag.out" 2>&1
  echo "exit status $?" >> "/tmp/$tag.out"
}
train gram3 --set style_transform=swag+gram &
train plain --set style_transform=gram &
wait
for tag in gram3 plain; do
  mkdir -p "/tmp/pack/$tag"
  cp /tmp/$tag/arbitrary.safetensors /tmp/$tag/arbitrary.json /tmp/$tag/log.txt /tmp/$tag/losses.jsonl \
     /tmp/$tag/sheet.jpg "/tmp/pack/$tag/" 2>/dev/null
  grep -v Warning "/tmp/$tag.out" | tail -n 60 > "/tmp/pack/$tag/stdout.txt"
  tar cf "$OUT/$tag.tar" -C /tmp/pack "$tag"
done
for tag in gram3 plain; do
  echo "== $tag"; grep -E "starting from|ms per step|stopped by|done in" "/tmp/$tag/log.txt" | cut -c1-200
  tail -n 3 "/tmp/$tag.out"
done
ls -la "$OUT"

if [ -s /tmp/gram3/arbitrary.safetensors ]; then
  S=.device/shared
  mkdir -p /tmp/names
  python3 tools/ship_arbitrary.py /tmp/gram3 --shared $S --note "gram3 (device copy; judged on the CPU before shipping)" > /tmp/ship.log 2>&1
  tail -n 3 /tmp/ship.log
  python3 tools/fit_bundled_embeddings.py --shared $S --device cuda --out /tmp/names/embeddings.json --write > /tmp/emb.log 2>&1 &
  python3 tools/fit_bundled_embeddings.py --shared $S --device cuda --space params --out /tmp/names/params.json > /tmp/params.log 2>&1 &
  wait
  grep -v Warning /tmp/emb.log | tail -8; grep -v Warning /tmp/params.log | tail -7
  cp cvtools/style/bundled/arbitrary.json /tmp/ship.log /tmp/emb.log /tmp/params.log /tmp/names/
  tar cf "$OUT/names.tar" -C /tmp names
fi
ls -la "$OUT"
