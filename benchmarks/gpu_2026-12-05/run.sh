#!/usr/bin/env bash
# The training call of 2026-12-05 on one lent H200 (carry [".device"]), after a first call put the
# Lite1 wheel in /tmp/site-lite1 and the paintings (512 px) in /tmp/paint. All jobs share the GPU:
#  issue 29: the four styles whose moving-object rows fail, fine-tuned from their bundled weights
#    (400 steps x 32, lr 3e-4; composition_vii 200 x 64) in three variants:
#      f0: the recorded recipe as it is (the control: what fine-tuning alone does),
#      f1: plus a moving object in half the stability pairs (temporal_local 0.5),
#      f2: f1 with the temporal weight x3;
#  issue 28: the any-painting network from the shipped D with a 4x wider embedding (400 numbers,
#    encoder hidden 1024; the new inputs start at zero, so it starts as D), D's fine-tune recipe;
# then, alone on the GPU, `stylize --fit` timed as a user runs it.
source .device/setup.sh
export PYTHONPATH=$PYTHONPATH:/tmp/site-lite1
mkdir -p $CVTOOLS_SHARED/data && ln -sfn /tmp/paint $CVTOOLS_SHARED/data/paintings
W=cvtools/style/bundled/weights
variant() {  # $1 tag, $2 temporal_local, $3 temporal-weight factor
  local args=() s tw
  for s in mona great_wave starry_night composition_vii; do
    tw=$(python3 -c "import json;print(json.load(open('styles/$s.json'))['recipe']['temporal_weight']*$3)")
    args+=(--set "$s:init_weights=\"$W/$s.safetensors\"" --set "$s:lr=0.0003" --set "$s:temporal_local=$2"
           --set "$s:temporal_weight=$tw")
    if [ $s = composition_vii ]; then args+=(--set "$s:steps=200"); else args+=(--set "$s:steps=400"); fi
  done
  python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/$1 --export /tmp/e/$1 \
    --from-records --deadline 330 --only mona,great_wave,starry_night,composition_vii "${args[@]}" \
    > /tmp/$1.log 2>&1
}
mkdir -p /tmp/e
variant f0 0 1 & variant f1 0.5 1 & variant f2 0.5 3 &
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/A4 --deadline 430 --steps 12000 \
  --set "init_weights=$W/arbitrary.safetensors" --set init_partial=true \
  --set 'architecture={"embedding_dim": 400, "encoder_hidden": 1024}' --set "extra_backbones=$L1" \
  --set style_weight=30 --set lr=0.0002 > /tmp/A4.log 2>&1 &
wait
tail -3 /tmp/f0.log /tmp/f1.log /tmp/f2.log /tmp/A4.log
rm -f /tmp/A4/arbitrary.ckpt*  # 27 MiB: not brought back this time
tar cf $OUT/A4.tar -C /tmp A4
cp /tmp/f0.log /tmp/f1.log /tmp/f2.log /tmp/A4.log /tmp/e/ && tar cf $OUT/finetunes.tar -C /tmp e
# --fit as a user runs it, alone on the GPU (phases from --timings where the CLI has them)
P=$CVTOOLS_SHARED/styles/starry_night.jpg
for n in 100 300; do
  /usr/bin/time -f "fit $n: %e s wall" python3 -m cvtools stylize samples/chelsea.jpg samples/astronaut.jpg \
    samples/coffee.jpg samples/rocket.jpg -s $P --fit $n -o /tmp/fit$n 2>&1 | tail -4
done
python3 benchmarks/video_carry_cost.py --device cuda --json $OUT/carry_cost_cuda.json 2>&1 | tail -6
tar cf $OUT/fit.tar -C /tmp fit100 fit300 2>/dev/null
ls -la $OUT $OUT/*
