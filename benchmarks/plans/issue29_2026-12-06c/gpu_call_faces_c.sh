#!/usr/bin/env bash
# Issue 29, 2026-12-06c, third H100 call (carry [".devM"], /work/aside4.sh): great_wave from scratch with the
# face term of finetune_faces.py. The first call's face term 60/200 with darker faces in half the batches
# fixed the dark-skinned man's face (subject kept 0.24 -> 1.16/1.61) but merged light-skinned portraits
# (woman with flowers 0.97 -> 0.30/-0.16). Is it the darker-face augmentation that teaches "darken faces"?
# Face term 60 with no darker faces, with a quarter, and 120 with a quarter. 500 steps x 32 at 256 px.
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
face() {  # $1 tag, $2 face weight, $3 darker-face share
  DEVICE=cuda FROM_SCRATCH=1 OUTDIR=/tmp/fb python3 benchmarks/plans/issue29_2026-12-06b/finetune_faces.py $1 500 256 32 $2 $3 \
    > $OUT/e/$1.log 2>&1
}
(face gw_f60_d0 60 0) &
(face gw_f60_d25 60 0.25) &
(face gw_f120_d25 120 0.25) &
wait
cd /tmp/fb && tar cf $OUT/weights.tar */great_wave.json */great_wave.safetensors
tail -qn 1 $OUT/e/*.log | cut -c1-200
