#!/usr/bin/env python3
"""Style-transfer speed: stylize per frame/image and train-style images/s, plain vs fast path.

    python benchmarks/style_speed.py                  # GPU if there is one, else CPU
    python benchmarks/style_speed.py --json out.json --widths 1.0,0.5

GPU: one 1920×1080 frame; plain = fp32, eager, NCHW; fast = fp16 + channels_last (+ compile,
+ CUDA graphs), all under inference_mode; medians of CUDA-event timings after warm-up, and
the fast output's max abs difference from the fp32 one. Training at 256 px: plain = fp32,
batch 4, NCHW (the pytorch/examples recipe); fast = bf16 autocast + channels_last, batch 64
(+ compile). CPU: one 512×512 image: the plain width-1.0 network and the Stylizer's paths at width 0.5
(sub-pixel decoder; fp32 NCHW / channels_last; bf16 channels_last where the CPU has it): wall
medians after warm-up, and single-thread CPU time scaled by the plain network's (see
BENCHMARKS.md: on a shared machine the wall clock is not trustworthy).
Network weights are random (speed does not depend on them); FLOPs are counted by hooks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms_cuda(fn, warmup=5, reps=30):
    """Median of CUDA-event timings after warm-up (cvtools' shared benchmark timer)."""
    import torch

    from cvtools.bench.timing import measure

    return measure(fn, torch.device("cuda"), warmup=warmup, repeat=reps).median_ms


def median_ms_cpu(fn, warmup=2, reps=7):
    import torch

    from cvtools.bench.timing import measure

    return measure(fn, torch.device("cpu"), warmup=warmup, repeat=reps).median_ms


def stylize_gpu(widths, results, deadline):
    import torch

    from cvtools.style.network import TransformerNet, count_flops

    h, w = 1080, 1920
    torch.backends.cudnn.benchmark = True
    x32 = torch.rand(1, 3, h, w, device="cuda")
    for width in widths:
        torch.manual_seed(0)
        net = TransformerNet(width).eval().cuda()
        gflop = count_flops(net, h, w) / 1e9
        with torch.inference_mode():
            ref = net(x32)
            plain = median_ms_cuda(lambda: net(x32))
        row = {"width": width, "gflop_per_frame": round(gflop, 1), "plain_fp32_ms": round(plain, 3)}
        print(f"stylize 1920x1080 width {width}: {gflop:.0f} GFLOP; plain fp32 eager {plain:.2f} ms", flush=True)
        cl = torch.channels_last
        net16 = net.half().to(memory_format=cl)
        sub16 = net.for_inference().half().to(memory_format=cl)
        sub16_nchw = net.for_inference().half()
        x16 = x32.half().contiguous(memory_format=cl)
        x16_nchw = x32.half()
        x16_b4 = x16.repeat(4, 1, 1, 1).contiguous(memory_format=cl)
        variants = [("fp16_cl_eager", net16, None, x16), ("fp16_cl_compile", net16, "default", x16),
                    ("fp16_cl_compile_cudagraphs", net16, "reduce-overhead", x16),
                    ("subpixel_fp16_cl_compile_cudagraphs", sub16, "reduce-overhead", x16),
                    ("subpixel_fp16_nchw_compile_cudagraphs", sub16_nchw, "reduce-overhead", x16_nchw),
                    ("subpixel_fp16_cl_compile_cudagraphs_batch4_per_frame", sub16, "reduce-overhead", x16_b4)]
        if width != widths[-1]:
            variants = variants[:3]
        for name, model, mode, inp in variants:
            if time.perf_counter() > deadline:
                break
            torch._dynamo.reset()  # a fresh compile per mode (the cache would mix them)
            fn = model if mode is None else torch.compile(model, mode=mode, dynamic=False)
            n = inp.shape[0]
            with torch.inference_mode():
                t0 = time.perf_counter()
                fn(inp)
                torch.cuda.synchronize()
                first = (time.perf_counter() - t0) * 1000
                ms = median_ms_cuda(lambda: fn(inp)) / n
                diff = float((fn(inp)[:1].float() - ref).abs().max())
            row[f"{name}_ms"] = round(ms, 3)
            row[f"{name}_first_ms"] = round(first, 1)
            row[f"{name}_maxabs_vs_fp32"] = round(diff, 5)
            print(f"  {name}: {ms:.3f} ms/frame ({plain / ms:.1f}x), first call {first:.0f} ms, "
                  f"max |diff| vs fp32 {diff:.4f}", flush=True)
        results.setdefault("stylize_gpu_1080p", []).append(row)


def train_gpu(width, results, deadline, batch=64, size=256):
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.style.losses import LossWeights, PerceptualLoss, StyleTarget, gram_matrix
    from cvtools.style.network import TransformerNet

    def run(batch_size, fast, compile_, steps=20):
        torch.manual_seed(0)
        net = TransformerNet(width).cuda().train()
        bb = load_backbone("efficientnet_lite0", device="cuda", precision="fp32", channels_last=fast)
        layers = list(bb.defaults.style)
        with torch.no_grad():
            feats = bb.features(torch.rand(1, 3, 512, 512, device="cuda"), layers)
        target = StyleTarget({k: gram_matrix(v) for k, v in feats.items()})
        loss_fn = PerceptualLoss(bb, target, layers, bb.defaults.content, LossWeights())
        if fast:
            net = net.to(memory_format=torch.channels_last)
        torch._dynamo.reset()
        fwd = torch.compile(net) if compile_ else net
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.rand(batch_size, 3, size, size, device="cuda")
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=fast):
                loss, _ = loss_fn(fwd(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        ms = median_ms_cuda(step, warmup=3, reps=steps)
        return batch_size * 1000 / ms, first

    rows = {}
    for name, b, fast, comp in [("plain_fp32_b4", 4, False, False), ("fast_bf16_cl_b%d" % batch, batch, True, False),
                                ("fast_bf16_cl_compile_b%d" % batch, batch, True, True)]:
        if time.perf_counter() > deadline:
            break
        ips, first = run(b, fast, comp)
        rows[name] = {"images_per_s": round(ips, 1), "first_step_s": round(first, 1)}
        print(f"train-style {size}px width {width} {name}: {ips:.0f} images/s (first step {first:.1f} s)", flush=True)
    results["train_gpu_256"] = {"width": width, **rows}


def cpu_time_ms(fn, warmup=2, reps=5):
    """Median process CPU time of ``fn`` (meaningful with one thread even when others share
    the cores, where wall-clock medians are not)."""
    import statistics

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) * 1000)
    return statistics.median(times)


def stylize_cpu(results, size=512, reference_s=1.03):
    """The plain width-1.0 network against the Stylizer's CPU paths at width 0.5: wall medians
    with all threads, and single-thread CPU time scaled so that the plain network takes
    ``reference_s`` (its time on a quiet 2-core machine, issue 9)."""
    import torch

    from cvtools.style.network import TransformerNet, count_flops
    from cvtools.style.stylize import cpu_has_native_bf16

    torch.set_grad_enabled(False)
    threads = torch.get_num_threads()
    x = torch.rand(1, 3, size, size)
    xc = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    plain = TransformerNet(1.0).eval()
    sub = TransformerNet(0.5).eval().for_inference()
    sub_cl = TransformerNet(0.5).eval().for_inference().to(memory_format=torch.channels_last)
    sub_cl.load_state_dict(sub.state_dict())
    variants = [("plain width 1.0 fp32 NCHW (reference)", plain, x),
                ("width 0.5 sub-pixel fp32 NCHW", sub, x),
                ("width 0.5 sub-pixel fp32 channels_last", sub_cl, xc)]
    if cpu_has_native_bf16():
        import copy

        variants.append(("width 0.5 sub-pixel bf16 channels_last", copy.deepcopy(sub_cl).to(torch.bfloat16),
                         xc.to(torch.bfloat16)))
    rows, ref_cpu = [], None
    ref_out = sub(x)
    for name, net, inp in variants:
        with torch.inference_mode():
            torch.set_num_threads(threads)
            wall = median_ms_cpu(lambda: net(inp))
            torch.set_num_threads(1)
            cpu1 = cpu_time_ms(lambda: net(inp))
            torch.set_num_threads(threads)
            out = net(inp).float()
        ref_cpu = ref_cpu or cpu1
        row = {"variant": name, "wall_ms": round(wall, 1), "cpu_ms_1thread": round(cpu1, 1),
               "estimate_s": round(reference_s * cpu1 / ref_cpu, 3),
               "gflop": round(count_flops(TransformerNet(1.0 if "1.0" in name else 0.5), size, size) / 1e9, 1)}
        if "0.5" in name:
            row["psnr_vs_fp32_db"] = round(float(10 * torch.log10(1 / ((out - ref_out) ** 2).mean().clamp_min(1e-20))), 1)
        rows.append(row)
        print(f"{name}: wall {wall:.0f} ms ({threads} threads), 1-thread CPU {cpu1:.0f} ms "
              f"-> ~{row['estimate_s']:.3f} s on a quiet 2-core machine", flush=True)
    import os

    results[f"stylize_cpu_{size}"] = {"threads": threads, "loadavg": os.getloadavg(), "rows": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="1.0,0.5")
    ap.add_argument("--train-width", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--budget-seconds", type=float, default=1e9, help="skip remaining variants after this")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args(argv)
    import torch

    deadline = time.perf_counter() + args.budget_seconds
    widths = [float(w) for w in args.widths.split(",")]
    results = {"torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        results["device"] = torch.cuda.get_device_name(0)
        stylize_gpu(widths, results, deadline)
        if not args.skip_train:
            train_gpu(args.train_width, results, deadline, batch=args.batch_size)
    else:
        import platform

        results["device"] = f"CPU {platform.processor() or platform.machine()}"
        stylize_cpu(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
