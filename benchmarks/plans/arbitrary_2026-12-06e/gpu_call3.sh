#!/usr/bin/env bash
# Issue 28 (2026-12-06e, call 3): `stylize --fit-network` as a user runs it on a GPU, beside `--fit` and the
# one pass: four sample photos and starry_night's painting, whole commands, a fresh fit cache each run,
# two interleaved rounds; the outputs come back as one tar to look at. Carry [".device"].
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
P=$CVTOOLS_SHARED/styles/starry_night.jpg
S="samples/chelsea.jpg samples/astronaut.jpg samples/coffee.jpg samples/rocket.jpg"
for round in 1 2; do
  for mode in plain fit fitnet; do
    case $mode in plain) extra="";; fit) extra="--fit";; fitnet) extra="--fit-network";; esac
    rm -rf /tmp/cache_$mode /tmp/o_${mode}_$round
    s=$(date +%s.%N)
    CVTOOLS_CACHE_DIR=/tmp/cache_$mode CVTOOLS_TIMINGS=/tmp/t_${mode}_$round.json python3 -m cvtools stylize $S -s $P $extra \
      -o /tmp/o_${mode}_$round/ -q 2>&1 | grep -v Warning | tail -3
    e=$(date +%s.%N)
    echo "round $round $mode: $(python3 -c "print(round($e - $s, 2))") s whole command; phases $(cat /tmp/t_${mode}_$round.json 2>/dev/null | head -c 400)"
  done
done
tar cf $OUT/outputs.tar -C /tmp o_plain_2 o_fit_2 o_fitnet_2
