cd /work/cpu
export PYTHONPATH=/work/cpu:/work/cpu/tools
P=/work/venv/bin/python
run() { tag=$1; shift; $P tools/video_flicker.py --synthetic zoom --style starry_night --frames 32 --carry --shared /work/shared --json /tmp/zoom/$tag.json "$@" > /tmp/zoom/$tag.log 2>&1; }
run base --stable 0.85
run rb0 --stable 0.0
run ms003 --stable 0.85 --max-scale-change 0.03
run ms0 --stable 0.85 --max-scale-change 0
run rb045 --stable 0.45
