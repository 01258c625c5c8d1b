#!/usr/bin/env bash
# 2026-12-07 (session o), issue 29: mona with the light-ratio term (ratio 3, style 11: the polar bear 0.13 -> 0.30,
# -3.3 % style distance) was shipped and reverted for green and red fringes along dark edges (the README cat's
# eyelids). Here the same recipe with the output's chroma total variation as a guard (objective chroma_tv_weight;
# ~0.013 on mona's outputs, so 10 / 30 / 100 add ~6 / 19 / 60 % of a total of ~2.1).
# Carry [".device"] staged with efficientnet-lite1; the tree cut keeping session_k/ (train_styles.sh) and this folder.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p $OUT/e
source benchmarks/plans/session_k/train_styles.sh
(train mona mona_ratio3_ct10 '{"tone_ratio_weight": 3, "chroma_tv_weight": 10}' 11) &
(train mona mona_ratio3_ct30 '{"tone_ratio_weight": 3, "chroma_tv_weight": 30}' 11) &
(train mona mona_ratio3_ct100 '{"tone_ratio_weight": 3, "chroma_tv_weight": 100}' 11) &
wait
cd $OUT && tar cf logs.tar e && rm -r e
cd /tmp/m && tar cf $OUT/weights.tar */*.json */*.safetensors
ls -la $OUT; tail -qn 2 /tmp/x/*/log.txt 2>/dev/null | cut -c1-200
