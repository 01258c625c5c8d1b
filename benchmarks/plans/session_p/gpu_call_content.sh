#!/usr/bin/env bash
# 2026-12-07 (session p), issue 29 item 1. The faces and animals at 2x (face_crops.py): great_wave loses the
# lioness altogether (beige with blue blotches), mona's faces are dark and murky, starry_night's lioness head is
# black. Every recipe so far kept the content term at Lite0 blocks.4 (stride 8, 40 channels); here it moves one
# stage up, blocks.2 (stride 4, 24 channels), where a subject's outline and features live. Each from scratch with
# the shipped record's recipe otherwise. Carry [".device"] (staged with efficientnet-lite1); the tree cut down
# keeping session_k/ (train_styles.sh) and this folder.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
source benchmarks/plans/session_k/train_styles.sh
# trainc STYLE TAG CONTENT_WEIGHT: train()'s run with the content term at blocks.2 and this weight
trainc() {
  timeout ${TRAIN_LIMIT:-480} python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$2 --export /tmp/x/$2 \
    --from-records --only $1 --steps 500 --set $1:steps=500 --set "$1:content_layer=\"blocks.2\"" \
    --set "$1:content_weight=$3" > $OUT/e/$2.log 2>&1
  echo "$2 rc $? at $SECONDS s" >> $OUT/e/$2.log
}
(trainc great_wave great_wave_c2_w1 1.0) &
(trainc great_wave great_wave_c2_w05 0.5) &
(trainc mona mona_c2_w05 0.5) &
(trainc starry_night starry_night_c2_w05 0.5) &
(trainc scream scream_c2_w05 0.5) &
(trainc composition_vii composition_vii_c2_w05 0.5) &
wait
cd $OUT && tar cf logs.tar e && rm -r e
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
