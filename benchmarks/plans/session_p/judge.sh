#!/usr/bin/env bash
# Judge session p's runs on this CPU: W holds TAG/STYLE.json + .safetensors (gpu_call_content.sh's weights.tar).
#   bash benchmarks/plans/session_p/judge.sh W OUTDIR STYLE TAG ...
set -u
W=$1; J=$2; style=$3; shift 3
mkdir -p $J
recs=(); labels=()
for tag in "$@"; do recs+=("$W/$tag/$style.json"); labels+=("$tag=$W/$tag/$style.json"); done
S=${CVTOOLS_SHARED:-../shared}
python tools/style_quality.py --shared $S --styles $style "${labels[@]}" --json $J/sq_$style.json > $J/sq_$style.log 2>&1
python benchmarks/plans/session_o/paired.py $J/sq_$style.json >> $J/sq_$style.log
dirs=(); for tag in "$@"; do dirs+=(--weights-dir "$W/$tag"); done
python tools/people_quality.py --shared $S --styles $style "${dirs[@]}" --json $J/people_$style.json > $J/people_$style.log 2>&1
python benchmarks/plans/session_l/bear_ratio.py $S $J/bear_$style.png $style "${recs[@]}" > $J/bear_$style.txt 2>&1
python benchmarks/plans/session_o/face_crops.py $S $J/faces_$style.png $style "${recs[@]}" > /dev/null 2>&1
tail -n 4 $J/sq_$style.log; tail -n 6 $J/people_$style.log; cat $J/bear_$style.txt
