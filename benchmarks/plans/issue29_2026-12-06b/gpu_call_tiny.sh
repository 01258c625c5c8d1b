#!/usr/bin/env bash
# The smallest useful form of gpu_call.sh for the session's last ~340 s of device time (2026-12-06):
# great_wave from scratch, 300 steps x 32 at 256 px, with the face term (60, darker faces in half the
# batches) and without: a paired comparison at equal steps (not the shipped 500-step recipe).
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
face() {
  DEVICE=cuda FROM_SCRATCH=1 OUTDIR=/tmp/fb python3 benchmarks/plans/issue29_2026-12-06b/finetune_faces.py $1 300 256 32 $2 $3 \
    > $OUT/e/$1.log 2>&1
  mkdir -p $OUT/e/$1 && cp /tmp/fb/$1/great_wave.json /tmp/fb/$1/great_wave.safetensors $OUT/e/$1/ 2>/dev/null
}
(face gw300_ctl 0 0) &
(face gw300_f60 60 0.5) &
wait
tail -n 2 $OUT/e/*.log | cut -c1-240
ls -la $OUT/e/*
