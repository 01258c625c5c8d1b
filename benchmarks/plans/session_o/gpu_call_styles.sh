#!/usr/bin/env bash
# 2026-12-07 (session o), issue 29. session_m/gpu_call_2.sh's runs shipped (mona ratio 3 at style 11: -3.3 % style
# distance, bear/snow 0.13 -> 0.30; great_wave ratio 20 at style 22: +3.7 %, subjects kept min 0.49 -> 0.89). Here:
# the same term pushed further where the distance left room (mona), great_wave's dark faces at a stronger term,
# and the two styles session m did not try (grande_jatte bear/snow 0.40, composition_vii 0.45; photo 0.51).
# Each from scratch with the shipped record's recipe (which now holds the shipped tone_ratio_weight).
# Carry [".device"] staged with efficientnet-lite1; the tree cut down keeping session_k/ (train_styles.sh) and this folder.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
source benchmarks/plans/session_k/train_styles.sh
(train mona mona_ratio5_sw14 '{"tone_ratio_weight": 5}' 14) &
(train great_wave great_wave_ratio30_sw26 '{"tone_ratio_weight": 30}' 26) &
(train grande_jatte grande_jatte_ratio3 '{"tone_ratio_weight": 3}' 10) &
(train composition_vii composition_vii_ratio3_sw8 '{"tone_ratio_weight": 3}' 8) &
wait
cd $OUT && tar cf logs.tar e && rm -r e
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
