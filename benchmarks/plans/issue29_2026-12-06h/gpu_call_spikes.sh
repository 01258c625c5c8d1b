#!/usr/bin/env bash
# PREPARED, NOT RUN (issue 29, 2026-12-06h: this session's GPU time went to #28's G4-G6). The spectral-spike
# term (objective spike_weight, cvtools.style.losses.spectral_spikes) from scratch, each style's recorded recipe
# otherwise (--from-records), 500 steps x 32 at 256 px, six sharing the GPU (five took 249-260 s each on an H100,
# 2026-12-06c). On the CPU, 300-step fine-tunes of the shipped mona took the people set's lattice from 2.02
# (the fine-tune alone) to 1.76 / 1.78 / 1.69 at weights 0.02 / 0.05 / 0.1, for +1.5 / +1.0 / +11 % Lite2
# distance, and to 1.56 for +15 % read over flat tiles only (spike_flat, weight 0.02; QUALITY.md, "The lattice
# that is left"). Carry [".device"] after /work/aside3.sh-style moves that also keep
# benchmarks/train_bundled_styles.py, this folder and styles/ (the six records); judge on the CPU: tools/people_quality.py --weights-dir, tools/style_quality.py, and by
# eye with lattice_crops2.py (5x crops of the flattest tiles).
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
obj() {  # $1 style, $2 spike weight, $3 spike_flat (True/False): the style's recorded objective plus the term
  python3 -c "import json,sys; o=json.load(open('styles/$1.json'))['recipe']['objective']; o['spike_weight']=$2; o['spike_flat']=${3:-False}; print(json.dumps(o))"
}
train() {  # $1 style, $2 tag, $3 spike weight, $4 spike_flat
  timeout 520 python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$2 --export /tmp/x/$2 \
    --from-records --only $1 --steps 500 --deadline 400 --set $1:steps=500 --set "$1:objective=$(obj $1 $3 $4)" \
    > $OUT/e/$2.log 2>&1
  echo "$2 rc $? at $SECONDS s" >> $OUT/e/$2.log
}
(train mona mona_s0 0) &
(train mona mona_s02 0.02) &
(train mona mona_f01 0.01 True) &
(train great_wave gw_s0 0) &
(train great_wave gw_s05 0.05) &
(train starry_night sn_s05 0.05) &
wait
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
tail -qn 2 $OUT/e/*.log | cut -c1-200
