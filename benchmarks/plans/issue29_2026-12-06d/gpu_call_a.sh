#!/usr/bin/env bash
# Lent-GPU call (issue 29, 2026-12-06d; carry [".devM"] after /work/aside4.sh-style moves): great_wave from
# scratch with the face-against-its-surroundings term (finetune_faces.py, FACE_MODE=contrast; the call
# prepared last session as ../issue29_2026-12-06c/gpu_call_contrast_next.sh) at weights 60/200/600 with
# darker faces in half the batches, and 200 without them (is the augmentation needed?). 500 steps x 32 at
# 256 px, the shipped recipe. Judge on the CPU: tools/people_quality.py --weights-dir, by eye at 1x and 2x.
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
(face gw_c200_d0 200 0) &
wait
cd /tmp/fb && tar cf $OUT/weights.tar */great_wave.json */great_wave.safetensors
tail -qn 1 $OUT/e/*.log | cut -c1-200
