#!/usr/bin/env bash
# 2026-12-07 (session k), second call. #29 item 1: scream "draws horizontal smears across the forehead and
# cheeks". objective style_on_skin (the photo's skin-coloured places count this much in the result's Grams)
# was tried on great_wave and mona (2026-12-04: subjects merged), never on scream: the shipped scream recipe
# (style 14, spike term 0.005 over flat tiles) with style_on_skin 0.5 and 0.25, and at 0.5 with style 16.
# Carry [".device"]; the tree cut down as for gpu_call.sh.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
obj() { python3 -c "import json; o=json.load(open('styles/$1.json'))['recipe']['objective']; o['style_on_skin']=$2; print(json.dumps(o))"; }
train() {  # $1 style, $2 tag, $3 style_on_skin, $4 style weight
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $2 "* ]] && return
  timeout ${TRAIN_LIMIT:-480} python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$2 --export /tmp/x/$2 \
    --from-records --only $1 --steps 500 --set $1:steps=500 --set "$1:objective=$(obj $1 $3)" --set "$1:style_weight=$4" \
    > $OUT/e/$2.log 2>&1
  echo "$2 rc $? at $SECONDS s" >> $OUT/e/$2.log
}
(train scream scream_skin05 0.5 14) &
(train scream scream_skin025 0.25 14) &
(train scream scream_skin05_sw16 0.5 16) &
wait
cd $OUT && tar cf logs.tar e && rm -r e
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
