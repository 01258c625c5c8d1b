"""issue 29: what carry.HISTOGRAM_BLEND adds to keep_contrast on one 1080p frame, on a device.
    python histogram_cost.py [--device cuda] [--rounds 9]
Medians of interleaved rounds (off, on), a quarter and all of the frame blended; synchronised on CUDA."""
import argparse
import time

import torch

import cvtools.video.carry as carry

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cpu")
ap.add_argument("--rounds", type=int, default=9)
ap.add_argument("--half", action="store_true", help="half-precision frames (what a GPU's --stable carries)")
args = ap.parse_args()
dev = torch.device(args.device)
if dev.type == "cpu":
    torch.set_num_threads(2)
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
dtype = torch.float16 if args.half else torch.float32
h, w = 1080, 1920
g = torch.Generator().manual_seed(0)
a, b = (torch.rand(1, 3, h, w, generator=g).to(dev, dtype) for _ in range(2))
print(torch.__version__, torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", dtype)
for share in (0.25, 1.0):
    weight = torch.zeros(1, 1, h, w, device=dev, dtype=dtype)
    weight[..., :, :int(w * share)] = 0.6
    times = {False: [], True: []}
    for flag in (False, True):
        carry.HISTOGRAM_BLEND = flag
        carry.keep_contrast(a, b, weight)
    sync()
    for _ in range(args.rounds):
        for flag in (False, True):
            carry.HISTOGRAM_BLEND = flag
            sync()
            t = time.perf_counter()
            carry.keep_contrast(a, b, weight)
            sync()
            times[flag].append(time.perf_counter() - t)
    m = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
    print(f"1080p, blended share {share}: keep_contrast {m[False]:.2f} ms, with the histogram step {m[True]:.2f} ms "
          f"(+{m[True] - m[False]:.2f} ms), medians of {args.rounds} interleaved rounds")
