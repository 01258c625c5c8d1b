source .device/setup.sh
TIMEFORMAT="whole %R s"
export PYTHONPATH=/tmp/site:/tmp/site-lite1:/tmp/src
cd /tmp/src
python3 $OLDPWD/benchmarks/folder/profile_folder.py
for T in "" 12; do for C in "" "--compile"; do
  rm -rf /tmp/o; echo "threads=${T:-default} $C"
  time (CVTOOLS_IO_THREADS=$T python3 -m cvtools stylize /tmp/f1080 -s mona -o /tmp/o $C 2>&1 | tail -2)
done; done
echo classify; time (python3 -m cvtools classify /tmp/f1080 2>&1 | tail -1)
rm -rf /tmp/o; echo gradcam; time (python3 -m cvtools visualize gradcam /tmp/f1080 -o /tmp/o 2>&1 | tail -1)
nproc
