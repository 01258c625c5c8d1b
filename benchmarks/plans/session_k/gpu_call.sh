#!/usr/bin/env bash
# 2026-12-06 (session k), one call, everything sharing the card:
#  #29: session j's flat-tile spike term cost scream +4.8 % Lite2 on the 20 photos (lattice 2.04 -> 1.43):
#       scream at style weight 14 (its record's) and 16 with the term at 0.005, and 18 with 0.01;
#       starry_night (0.01: +4.7 % / +10 % on the people set) at style weight 24 (its record's) and 28
#       with 0.005; the shipped mona's recipe again with seed 1 (how much of its 14 % is the seed's).
#       (session j's gpu_call_2.sh without its anneal, whose starting weights were not kept)
#  #28: run B (painting crops of 20-60 % of a painting's area) was worse on every row than 10-100 %;
#       the bundled networks, 1.5x closer on Lite2, take their Gram targets from the whole painting.
#       So the other direction: crops of 50-100 % of the area, from the shipped G6 at a peak lr of 1e-4.
#       Target d (strokes at half strength >= 1.5x the pixel blend's): a third of the samples at a strength
#       in 0.2-0.8 trained as that share of the style weight (strength_target "weight"), from G6 too.
# Carry [".device"]; the tree is cut down first (DEVELOPING.md, "A GPU call's tree").
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
obj() { python3 -c "import json; o=json.load(open('styles/$1.json'))['recipe']['objective']; o['spike_weight']=$2; o['spike_flat']=True; print(json.dumps(o))"; }
train() {  # $1 style, $2 tag, $3 spike weight, $4 style weight, $5 seed (default 0); ONLY="tag ..." runs those alone
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $2 "* ]] && return
  timeout ${TRAIN_LIMIT:-480} python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$2 --export /tmp/x/$2 \
    --from-records --only $1 --steps 500 --set $1:steps=500 --set "$1:objective=$(obj $1 $3)" --set "$1:style_weight=$4" --set "$1:seed=${5:-0}" \
    > $OUT/e/$2.log 2>&1
  echo "$2 rc $? at $SECONDS s" >> $OUT/e/$2.log
}
strip() { grep -v '^source .device/setup.sh' "$1"; }
arbitrary() {  # $1 tag, $2 the extra --set arguments (from the shipped G6, peak lr 1e-4)
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $1 "* ]] && return
  LR=1e-4 DEADLINE=${ARB_DEADLINE:-400} bash <(strip benchmarks/plans/arbitrary_2026-12-06g/gpu_call.sh \
    | sed "s|--set style_weight=30|--set style_weight=30 $2|; s|/tmp/syn|/tmp/$1|g; s|\$OUT/syn|\$OUT/$1|g") > $OUT/e/$1.out 2>&1
}
(arbitrary crops50 '--set painting_scale=[0.5,1.0]') &
# #28 target d: half strength as half the style weight (strength_target weight), a third of the samples
(arbitrary strength_w '--set strength_fraction=0.3 --set strength_target=weight') &
sleep 10
(train scream scream_f005_sw16 0.005 16) &
(train scream scream_f01_sw18 0.01 18) &
(train starry_night sn_f005_sw28 0.005 28) &
(train scream scream_f005_sw14 0.005 14) &
(train starry_night sn_f005_sw24 0.005 24) &
(train mona mona_f005_sw8_seed1 0.005 8 1) &
wait
cd $OUT && tar cf logs.tar e && rm -r e && for d in crops50 strength_w; do [ -d $d ] && tar cf $d.tar $d && rm -r $d; done
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
