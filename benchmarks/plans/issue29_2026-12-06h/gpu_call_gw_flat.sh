#!/usr/bin/env bash
# 2026-12-06i, with the 274 s of device time left: great_wave from scratch with the spectral-spike term over
# flat tiles at 0.01 (the term that worked for mona from scratch and for great_wave as a CPU fine-tune), alone
# on the card, 500 steps x 32 at 256 px, its recorded from-scratch recipe otherwise. Carry [".device"] after
# /work/aside4.sh-style moves; judge as gpu_call_spikes.sh's runs.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
O=$(python3 -c "import json; r=json.load(open('styles/great_wave.json'))['recipe']; o=r['objective']; o['spike_weight']=0.01; o['spike_flat']=True; print(json.dumps(o))")
timeout ${LIMIT:-190} python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/gw_f01 --export /tmp/x/gw_f01 \
  --from-records --only great_wave --steps 500 --deadline ${DEADLINE:-170} --set great_wave:steps=500 --set "great_wave:objective=$O" \
  > $OUT/gw_f01.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/gw_f01.log
cp /tmp/m/gw_f01/great_wave.json /tmp/m/gw_f01/great_wave.safetensors $OUT/ 2>/dev/null
tail -n 3 $OUT/gw_f01.log | cut -c1-300
