#!/usr/bin/env bash
# One lent GPU call (carry [".devB"]: PyAV and captum wheels): `cvtools stylize clip.mp4 --stable`
# on a 240-frame 1080p clip, end to end in the process and as the whole cold command, the carry's
# layer labelling in the flow threads (this tree) against it between the network and the carry
# (_baseline/: 4120dac, a copy made for the call), interleaved old, new, old, new.
source .devB/setup.sh
python3 -c "import torch, av, cv2; print(torch.__version__, av.__version__, cv2.__version__, torch.cuda.get_device_name(0))"
root=$PWD
for round in 1 2; do
  (cd _baseline && PYTHONPATH=/tmp/site:$PWD timeout 200 python3 benchmarks/video_speed.py --stable --cli --json $OUT/old$round.json 2>&1 | grep -v "^#" | grep "stable\|end to end veryfast \|cli whole command (cold) ")
  (cd $root && timeout 200 python3 benchmarks/video_speed.py --stable --cli --json $OUT/new$round.json 2>&1 | grep -v "^#" | grep "stable\|end to end veryfast \|cli whole command (cold) ")
done
