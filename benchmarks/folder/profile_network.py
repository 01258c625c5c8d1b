"""Issue 31: where the eager style network's 6 ms per 1080p photo goes on a GPU (the folder's
device stage is the cap: benchmarks/folder/README.md, "Which stage caps the folder").

    python3 benchmarks/folder/profile_network.py [--batch 8] [--json OUT.json]

Times the network alone (no copies) on a batch of 1080p frames, fp16, in the Stylizer's own
form, untuned and with cuDNN autotuning, then prints torch.profiler's kernel table (top 25 by
GPU time) of the untuned form, so the next change is aimed at what costs."""
import argparse
import json
import statistics
import time
from pathlib import Path


def timed(fn, n=10):
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--style", default="mona")
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from cvtools.style.stylize import Stylizer

    st = Stylizer(args.style, device="cuda")
    x = torch.rand(args.batch, 3, 1080, 1920, device="cuda").to(st.dtype)
    if st.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    net = st.net
    res = {"batch": args.batch, "dtype": str(st.dtype), "channels_last": st.channels_last}
    from cvtools.style import network

    layout_keeping = network.pad2d
    with torch.no_grad():
        # before (the pads through F.pad, as until 2026-12-04) and after, same run, same input
        network.pad2d = lambda t, pads, mode: torch.nn.functional.pad(t, pads, mode=mode)
        res["eager_f_pad_ms"] = timed(lambda: net(x))
        before = net(x)
        network.pad2d = layout_keeping
        res["eager_ms"] = timed(lambda: net(x))
        res["max_abs_diff_vs_f_pad"] = float((net(x).float() - before.float()).abs().max())
        torch.backends.cudnn.benchmark = True
        res["eager_tuned_ms"] = timed(lambda: net(x))
        torch.backends.cudnn.benchmark = False
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                net(x)
            torch.cuda.synchronize()
    res["per_photo_ms"] = res["eager_ms"] / args.batch
    print(json.dumps(res), flush=True)
    for key in ("self_device_time_total", "self_cuda_time_total"):  # the name changed in torch 2.4+
        try:
            print(prof.key_averages().table(sort_by=key, row_limit=25))
            break
        except (AttributeError, KeyError, ValueError):
            continue
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
