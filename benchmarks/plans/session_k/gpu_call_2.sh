#!/usr/bin/env bash
# 2026-12-07 (session k), second call. #29 item 1: scream "draws horizontal smears across the forehead and
# cheeks". objective style_on_skin (the photo's skin-coloured places count this much in the result's Grams)
# was tried on great_wave and mona (2026-12-04: subjects merged), never on scream: the shipped scream recipe
# (style 14, spike term 0.005 over flat tiles) with style_on_skin 0.5 and 0.25, and at 0.5 with style 16.
# Carry [".device"]; the tree cut down as for gpu_call.sh.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
source benchmarks/plans/session_k/train_styles.sh
(train scream scream_skin05 '{"style_on_skin": 0.5}' 14) &
(train scream scream_skin025 '{"style_on_skin": 0.25}' 14) &
(train scream scream_skin05_sw16 '{"style_on_skin": 0.5}' 16) &
wait
cd $OUT && tar cf logs.tar e && rm -r e
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
