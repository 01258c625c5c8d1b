#!/usr/bin/env bash
# Issue 29, mona from scratch, second call of 2026-12-06c (carry [".devM"], /work/aside3.sh moves): the
# first call's teacher run (t10: teacher 10, global tone 10) came out 18 % closer to the painting on the
# 12 people photos (Lite2 0.201 -> 0.165) with olive faces and the bear merged (subject kept min -0.14).
# Here the same teacher with the tone held harder, or the teacher lighter: the tone-for-distance line
# from scratch. 500 steps x 32, five sharing the GPU; judged on the CPU (tools/people_quality.py, by eye).
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
MONA_OBJ() { echo '{"transform": "swag", "extra_backbones": '$L1', "stats_weight": 0.5, "lattice_weight": 2000, '"$1"'}'; }
mkdir -p $OUT/e
train() {
  local tag=$1 steps=$2 args=() kv; shift 2
  for kv in "$@"; do args+=(--set "mona:$kv"); done
  python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$tag --export /tmp/x/$tag \
    --from-records --only mona --steps $steps --deadline 400 --set mona:steps=$steps "${args[@]}" > $OUT/e/$tag.log 2>&1
}
(train t10_tone20 500 "objective=$(MONA_OBJ '"tone_weight": 20, "teacher_weight": 10')") &
(train t10_tone30 500 "objective=$(MONA_OBJ '"tone_weight": 30, "teacher_weight": 10')") &
(train t5_tone15 500 "objective=$(MONA_OBJ '"tone_weight": 15, "teacher_weight": 5')") &
(train t20_tone20 500 "objective=$(MONA_OBJ '"tone_weight": 20, "teacher_weight": 20')") &
(train t10_skc_os03 500 "objective=$(MONA_OBJ '"tone_weight": 10, "tone_mask": "skin_colour", "teacher_weight": 10, "teacher_on_skin": 0.3')") &
wait
cd /tmp/m && tar cf $OUT/weights.tar */mona.json */mona.safetensors
tail -qn 2 $OUT/e/*.log | cut -c1-200
