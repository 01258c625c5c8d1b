#!/usr/bin/env bash
# issue 29, 2026-12-06d (carry [".devM"] after /work/aside5.sh): starry_night, the flickeriest network on the
# talking face (frame by frame 4.2e-3 against mona's 0.17e-3), fine-tuned from its shipped weights with the
# stability term at 200 (shipped 50), without and with the new ripple (temporal_deform 1.5 px); 400 steps x 32
# at 256 px, lr 3e-4. Each job copies its weights to $OUT as soon as it ends.
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
job() {  # $1 tag, $2 temporal weight, $3 ripple px
  OUTDIR=/tmp/fs timeout 230 python3 benchmarks/plans/issue29_2026-12-06d/finetune_steady.py $1 400 $2 $3 > $OUT/e/$1.log 2>&1
  echo "$1 rc $? at $SECONDS s" >> $OUT/e/$1.log
  mkdir -p $OUT/e/$1 && cp /tmp/fs/$1/starry_night.json /tmp/fs/$1/starry_night.safetensors $OUT/e/$1/ 2>/dev/null
}
(job sn_t200 200 0) &
(job sn_t200_r15 200 1.5) &
wait
tail -qn 2 $OUT/e/*.log | cut -c1-220
