#!/usr/bin/env bash
# One short lent-GPU call (issue 29, prepared 2026-12-06 04:05 UTC; carry [".devM"], after /work/aside3.sh-style
# moves so the tree fits 64 MiB): great_wave from scratch with the face term of finetune_faces.py (hand-drawn
# boxes on the nine free photos with faces; tone + colour on face skin; darker faces in half the batches),
# 500 steps x 32 at 256 px, beside a control with nothing added; and three of mona's prepared recipes
# (benchmarks/gpu_2026-12-06a/run_short.sh). Judge on the CPU: tools/people_quality.py --weights-dir, by eye.
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
face() {  # $1 tag, $2 face weight, $3 darker-face share
  DEVICE=cuda FROM_SCRATCH=1 OUTDIR=/tmp/fb python3 benchmarks/plans/issue29_2026-12-06b/finetune_faces.py $1 500 256 32 $2 $3 \
    > $OUT/e/$1.log 2>&1
  mkdir -p $OUT/e/$1 && cp /tmp/fb/$1/great_wave.json /tmp/fb/$1/great_wave.safetensors $OUT/e/$1/ 2>/dev/null
}
(face gw_ctl 0 0) &
(face gw_f60 60 0.5) &
(face gw_f200 200 0.5) &
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
MONA_OBJ() { echo '{"transform": "swag", "extra_backbones": '$L1', "stats_weight": 0.5, "lattice_weight": 2000, '"$1"'}'; }
train() {  # as in benchmarks/gpu_2026-12-06a/run.sh
  local tag=$1 steps=$2 args=() kv; shift 2
  for kv in "$@"; do args+=(--set "mona:$kv"); done
  python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$tag --export $OUT/e/$tag \
    --from-records --only mona --steps $steps --deadline 400 --set mona:steps=$steps "${args[@]}" > $OUT/e/$tag.log 2>&1
  cp /tmp/m/$tag/mona.json /tmp/m/$tag/mona.safetensors $OUT/e/$tag/ 2>/dev/null
}
(train t10 500 "objective=$(MONA_OBJ '"tone_weight": 10, "teacher_weight": 10')") &
(train t10_skc30_os0 500 "objective=$(MONA_OBJ '"tone_weight": 30, "tone_mask": "skin_colour", "teacher_weight": 10, "teacher_on_skin": 0')") &
(train p64 500 "objective=$(MONA_OBJ '"tone_weight": 10, "style_passages": {"count": 64, "size": 0.5}')") &
wait
tail -n 2 $OUT/e/*.log | cut -c1-240
ls -la $OUT/e/*
