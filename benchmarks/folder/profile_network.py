"""Issue 31: where the eager style network's time goes on a GPU (the folder's device stage was the
cap: benchmarks/folder/README.md, "Which stage caps the folder").

    python3 benchmarks/folder/profile_network.py [--batch 8] [--tables] [--json OUT.json]

Times the network alone (no copies) on a batch of 1080p frames, fp16 channels-last, in the
Stylizer's own form, and, in the same process on the same input, the forms before this wave's two
changes: the pads through F.pad (`network.pad2d` replaced) and the convolution biases an instance
norm cancels kept (`network._drop_biases_before_norms` skipped). Prints each median (10 after
warm-up) and the largest difference from the current form; with --tables, torch.profiler's kernel
table (top 15 by GPU time) of the F.pad form and of the channels-last pad forced at every
batch size (pad2d keeps F.pad for one photo: measured slower there)."""
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


def table(net, x):
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            net(x)
        torch.cuda.synchronize()
    for key in ("self_device_time_total", "self_cuda_time_total"):  # the name changed in torch 2.4+
        try:
            return prof.key_averages().table(sort_by=key, row_limit=15)
        except (AttributeError, KeyError, ValueError):
            continue
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--style", default="mona")
    ap.add_argument("--tables", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    from cvtools.style import network
    from cvtools.style.stylize import Stylizer

    current = Stylizer(args.style, device="cuda")
    drop = network._drop_biases_before_norms
    network._drop_biases_before_norms = lambda net: None
    with_biases = Stylizer(args.style, device="cuda")
    network._drop_biases_before_norms = drop
    x = torch.rand(args.batch, 3, 1080, 1920, device="cuda").to(current.dtype)
    if current.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    layout_keeping = network.pad2d

    def f_pad(t, pads, mode):
        return torch.nn.functional.pad(t, pads, mode=mode)

    def forced(t, pads, mode):  # the channels-last pad at any batch size (pad2d uses it for N > 1)
        if t.is_cuda and t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
            return network._pad_channels_last(t, pads, mode)
        return f_pad(t, pads, mode)

    res = {"batch": args.batch, "dtype": str(current.dtype), "channels_last": current.channels_last}
    tables = {}
    with torch.no_grad():
        ref = current.net(x).float()
        for name, net, pad in (("f_pad_biases", with_biases.net, f_pad), ("biases", with_biases.net, layout_keeping),
                               ("f_pad", current.net, f_pad), ("current", current.net, layout_keeping),
                               ("forced_cl_pad", current.net, forced)):
            network.pad2d = pad
            res[f"{name}_ms"] = round(timed(lambda: net(x)), 3)
            res[f"{name}_max_abs_diff"] = float((net(x).float() - ref).abs().max())
            if args.tables and name in ("forced_cl_pad", "f_pad"):
                tables[name] = table(net, x)
        network.pad2d = layout_keeping
    print(json.dumps(res), flush=True)
    for name, text in tables.items():
        print(f"--- {name}, batch {args.batch}\n{text}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
