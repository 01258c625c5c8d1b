#!/usr/bin/env bash
# 2026-12-07 (session q), issue 29: the lioness's head near-black in scream and starry_night, the bear dark in
# starry_night (0.33). Session o shipped the light-ratio term at 2.5 (starry_night) and 3 (scream); great_wave
# took 20 with its style weight raised to keep its distance. Here the term at 6 / 8, with and without a higher
# style weight, from scratch with the shipped records' recipe (500 steps x 32), four runs sharing the card.
# Carry [".device"] staged with efficientnet-lite1; the tree cut keeping session_k/ (train_styles.sh) and session_q/.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
source benchmarks/plans/session_k/train_styles.sh
(train starry_night starry_night_ratio6 '{"tone_ratio_weight": 6}' 28) &
(train starry_night starry_night_ratio6_sw32 '{"tone_ratio_weight": 6}' 32) &
(train scream scream_ratio8 '{"tone_ratio_weight": 8}' 16) &
(train scream scream_ratio8_sw19 '{"tone_ratio_weight": 8}' 19) &
wait
cd $OUT && tar cf logs.tar e && rm -r e
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
