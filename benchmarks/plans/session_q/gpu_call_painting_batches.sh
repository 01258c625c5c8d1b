#!/usr/bin/env bash
# Session q (2026-12-07): folders and video frames with a painting, a batch at a time (new) against
# one photo a pass (the path before), on one lent GPU. Run from the project root after
# `source .device/setup.sh`; writes under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
P=.device/shared/styles/monet_grand_canal.jpg
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, av; print('torch', torch.__version__, 'av', av.__version__)" | tee -a "$OUT/gpu.txt"
# 32 1920x1080 JPEGs (quality 92) from samples/, as benchmarks/folder/decode_pool_rate.py --make does
python3 - <<'PY'
from pathlib import Path
from PIL import Image, ImageOps
src = sorted(Path("samples").glob("*.jpg")); dst = Path("/tmp/f1080"); dst.mkdir(exist_ok=True)
for i in range(32):
    im = Image.open(src[i % len(src)]).convert("RGB")
    im = ImageOps.fit(im.rotate(i * 3, expand=False), (1920, 1080))
    im.save(dst / f"m{i:02d}.jpg", quality=92)
PY
t0=$(date +%s)
# 1. the network alone, and its memory against bytes_per_pixel's estimate
python3 - <<'PY' 2>&1 | tee "$OUT/network.txt"
import statistics, time, torch
from cvtools.style.painting import NetworkPaintingStylizer
st = NetworkPaintingStylizer([".device/shared/styles/monet_grand_canal.jpg"], device="cuda")
x = torch.rand(8, 3, 1080, 1920, device="cuda")
for n in (1, 8):
    for s in (1.0, 0.5):
        for _ in range(3): st.stylize_tensor(x[:n], s)
        torch.cuda.synchronize(); ts = []
        for _ in range(15):
            t = time.perf_counter(); st.stylize_tensor(x[:n], s); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
        print(f"stylize_tensor batch {n} strength {s}: {statistics.median(ts) / n * 1e3:.2f} ms a 1080p frame (median of 15)")
torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
y = st.stylize_tensor(x, 1.0); torch.cuda.synchronize()
peak = torch.cuda.max_memory_allocated() - base
est = st.bytes_per_pixel() * 1080 * 1920 * 8
print(f"peak activation for 8 x 1080p: {peak / 2**20:.0f} MiB; estimate {est / 2**20:.0f} MiB ({st.bytes_per_pixel()} B/px, dtype {st.dtype})")
print("batch_limit 1080p:", st.batch_limit(1080, 1920), "4K:", st.batch_limit(2160, 3840))
PY
# 2. a folder: the staged work in one process (old = one photo a pass), painting, then painting at 0.5, then mona
python3 benchmarks/folder/folder_rate.py --src /tmp/f1080 --n 256 --style $P --json "$OUT/folder_painting.json" 2>&1 | grep -v "^ \|^{\|^}" | tee "$OUT/folder_painting.txt"
python3 benchmarks/folder/folder_rate.py --src /tmp/f1080 --n 256 --style $P --strength 0.5 --json "$OUT/folder_painting_s05.json" 2>&1 | grep -v "^ \|^{\|^}" | tee "$OUT/folder_painting_s05.txt"
python3 benchmarks/folder/folder_rate.py --src /tmp/f1080 --n 256 --style mona --json "$OUT/folder_mona.json" 2>&1 | grep -v "^ \|^{\|^}" | tee "$OUT/folder_mona.txt"
echo "folder parts: $(( $(date +%s) - t0 )) s"
# 3. video: 240 frames of 1080p, compute and end to end, batched against one frame at a time, plain and --stable
python3 benchmarks/video_speed.py --style $P --presets superfast --stable --one-at-a-time --json "$OUT/video_painting.json" 2>&1 | tee "$OUT/video_painting.txt"
echo "video part: $(( $(date +%s) - t0 )) s"
# 4. whole commands, cold: 32 photos with the painting, batched (default) and one at a time
for b in default 1; do
  rm -rf /tmp/o_$b
  s=$(date +%s.%N)
  if [ $b = default ]; then python3 -m cvtools stylize /tmp/f1080 -s $P -o /tmp/o_$b/ -q; else CVTOOLS_STYLIZE_BATCH=1 python3 -m cvtools stylize /tmp/f1080 -s $P -o /tmp/o_$b/ -q; fi
  e=$(date +%s.%N); echo "whole command, 32 photos, batch $b: $(echo "$e - $s" | bc) s, $(ls /tmp/o_$b | wc -l) files" | tee -a "$OUT/cli.txt"
done
python3 - <<'PY' | tee -a "$OUT/cli.txt"
import numpy as np; from PIL import Image; from pathlib import Path
d = [np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(Path("/tmp/o_1") / a.name)).astype(int)).max() for a in sorted(Path("/tmp/o_default").glob("*"))]
print("largest difference batched vs one at a time over", len(d), "JPEGs:", max(d))
PY
echo "total: $(( $(date +%s) - t0 )) s"
