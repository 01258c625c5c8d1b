# Issue 31: a 1080p folder on the GPU, everything in one call of the lent machine, from the
# repository root (.device carried: its setup.sh and shared photos):
#   bash benchmarks/folder/profile_folder.sh
# The code measured: /tmp/src when it holds a `git archive` of HEAD, else this checkout. JSON
# results go to $OUT (the device tool brings them back), else /tmp.
source .device/setup.sh
ROOT=$PWD
SRC=/tmp/src; [ -d $SRC/cvtools ] || SRC=$ROOT
RES=${OUT:-/tmp}
TIMEFORMAT="whole %R s"
export PYTHONPATH=/tmp/site:/tmp/site-lite1:$SRC
cd $SRC
# 1. per-image phases, steady medians (makes /tmp/f1080: 32 x 1920x1080 JPEG, quality 92)
python3 $ROOT/benchmarks/folder/profile_folder.py
# 2. nvJPEG against Pillow on the files the router sends it: pixels, bytes, speed
python3 $ROOT/benchmarks/folder/gpu_codec_check.py --json $RES/gpu_codec_check.json | tail -40
# 3. the staged work's steady rate in one process, 512 photos: old path, new defaults, nvJPEG, compiled
python3 $ROOT/benchmarks/folder/folder_rate.py --n 512 --compile --json $RES/folder_rate.json | tail -60
# 4. whole commands, 32 and 512 photos: old path (4+4 threads, one photo per pass), the new
#    defaults, and the new defaults with nvJPEG decode and encode; phase marks after each
mkdir -p /tmp/f512; i=0
for r in $(seq 16); do for f in /tmp/f1080/*.jpg; do ln -f $f /tmp/f512/$(printf i%04d $i).jpg; i=$((i+1)); done; done
for D in /tmp/f1080 /tmp/f512; do for MODE in old new codec; do
  case $MODE in
    old) E="CVTOOLS_IO_THREADS=4 CVTOOLS_STYLIZE_BATCH=1";;
    new) E="CVTOOLS_GPU_JPEG=0";;
    codec) E="CVTOOLS_GPU_JPEG=1";;
  esac
  rm -rf /tmp/o; echo "$D $MODE: $E"
  time (env $E CVTOOLS_TIMINGS=/tmp/marks.json python3 -m cvtools stylize $D -s mona -o /tmp/o 2>&1 | tail -1)
  cat /tmp/marks.json; echo
done; done
echo classify; time (python3 -m cvtools classify /tmp/f1080 2>&1 | tail -1)
rm -rf /tmp/o; echo gradcam; time (python3 -m cvtools visualize gradcam /tmp/f1080 -o /tmp/o 2>&1 | tail -1)
nproc
