#!/usr/bin/env bash
# Second try of gpu_call_a.sh (issue 29, 2026-12-06d): call a's four jobs sharing the card on a cold machine
# ran out the 600-s limit with nothing written (the last session's six took 477 s on a warm one). Two jobs,
# weights 200 and 600, each under its own timeout so the weights that finish come back.
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
face() {  # $1 tag, $2 face weight, $3 darker-face share
  FACE_MODE=contrast DEVICE=cuda FROM_SCRATCH=1 OUTDIR=/tmp/fb timeout 470 python3 \
    benchmarks/plans/issue29_2026-12-06b/finetune_faces.py $1 500 256 32 $2 $3 > $OUT/e/$1.log 2>&1
  echo "$1 rc $? at $SECONDS s" >> $OUT/e/$1.log
}
(face gw_c200 200 0.5) &
(face gw_c600 600 0.5) &
wait
cd /tmp/fb && tar cf $OUT/weights.tar */great_wave.json */great_wave.safetensors
tail -qn 2 $OUT/e/*.log | cut -c1-200
