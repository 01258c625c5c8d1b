#!/usr/bin/env bash
# PREPARED, NOT RUN (issue 29, 2026-12-06c; the session's GPU time was spent): great_wave from scratch with
# the face-against-its-surroundings term (finetune_faces.py, FACE_MODE=contrast), which in a CPU fine-tune
# kept the light-skinned women (woman with flowers 0.96 where the face-tone term gave 0.30) while lifting the
# dark-skinned man (0.14 -> 0.49/0.78), +3/+6 % distance; by eye still pale at fine-tune scale. Carry
# [".devM"] after /work/aside4.sh-style moves (this folder and benchmarks/plans/issue29_2026-12-06b in the
# tree). Judge on the CPU: tools/people_quality.py --weights-dir, by eye at 1x and 2x.
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
face() {  # $1 tag, $2 face weight, $3 darker-face share
  FACE_MODE=contrast DEVICE=cuda FROM_SCRATCH=1 OUTDIR=/tmp/fb python3 benchmarks/plans/issue29_2026-12-06b/finetune_faces.py \
    $1 500 256 32 $2 $3 > $OUT/e/$1.log 2>&1
}
(face gw_c60 60 0.5) &
(face gw_c200 200 0.5) &
(face gw_c600 600 0.5) &
wait
cd /tmp/fb && tar cf $OUT/weights.tar */great_wave.json */great_wave.safetensors
tail -qn 1 $OUT/e/*.log | cut -c1-200
