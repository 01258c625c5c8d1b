#!/usr/bin/env bash
# PREPARED FOR THE NEXT SESSION (issue 29, written 2026-12-06 09:10 UTC; not run). Carry [".devM"] after
# /work/aside5.sh-style moves (this folder in the tree). ~5 minutes on a warm H100.
# 1. What carry.HISTOGRAM_BLEND costs on a GPU (the default decision waits for it; CPU: +84-204 ms a 1080p frame).
# 2. starry_night from scratch (its recipe: 500 x 32 at 256 px, lr 1e-3) with the ripple (temporal_deform 1.5 px)
#    at its own stability weight 50 and at 100: does a network trained on talking-face motion from the start keep
#    its style where the fine-tune at 200 lost 7-8 %? Judge on this CPU: tools/video_flicker.py --footage (the three
#    clips, TV-L1, 48 frames) with the weights' .json as --style, and tools/style_quality.py.
source .devM/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
python3 benchmarks/plans/issue29_2026-12-06d/histogram_cost.py --device cuda --rounds 21 > $OUT/e/histogram_cost_fp32.txt 2>&1
python3 benchmarks/plans/issue29_2026-12-06d/histogram_cost.py --device cuda --rounds 21 --half > $OUT/e/histogram_cost_fp16.txt 2>&1
cat $OUT/e/histogram_cost_*.txt
job() {  # $1 tag, $2 stability weight, $3 ripple px
  FROM_SCRATCH=1 OUTDIR=/tmp/fs timeout 400 python3 benchmarks/plans/issue29_2026-12-06d/finetune_steady.py $1 0 $2 $3 > $OUT/e/$1.log 2>&1
  echo "$1 rc $? at $SECONDS s" >> $OUT/e/$1.log
  mkdir -p $OUT/e/$1 && cp /tmp/fs/$1/starry_night.json /tmp/fs/$1/starry_night.safetensors $OUT/e/$1/ 2>/dev/null
}
(job sn_s50_r15 50 1.5) &
(job sn_s100_r15 100 1.5) &
wait
tail -qn 2 $OUT/e/*.log | cut -c1-220
