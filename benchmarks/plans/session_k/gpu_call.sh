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
source benchmarks/plans/session_k/train_styles.sh
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
(train scream scream_f005_sw16 '{"spike_weight": 0.005, "spike_flat": true}' 16) &
(train scream scream_f01_sw18 '{"spike_weight": 0.01, "spike_flat": true}' 18) &
(train starry_night sn_f005_sw28 '{"spike_weight": 0.005, "spike_flat": true}' 28) &
(train scream scream_f005_sw14 '{"spike_weight": 0.005, "spike_flat": true}' 14) &
(train starry_night sn_f005_sw24 '{"spike_weight": 0.005, "spike_flat": true}' 24) &
(train mona mona_f005_sw8_seed1 '{"spike_weight": 0.005, "spike_flat": true}' 8 1) &
wait
cd $OUT && tar cf logs.tar e && rm -r e && for d in crops50 strength_w; do [ -d $d ] && tar cf $d.tar $d && rm -r $d; done
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
