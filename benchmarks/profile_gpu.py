#!/usr/bin/env python3
"""Where the GPU time goes (issue 9): per-variant timings and the top kernels of the
stylize (1920x1080) and dream (1920x1080, 4 octaves x 10 steps) fast paths.

    python3 benchmarks/profile_gpu.py [--only stylize|dream] [--rows 15]
"""

import argparse
import copy

import torch
from torch.profiler import ProfilerActivity, profile

from cvtools.bench.timing import measure


def top_kernels(fn, rows, title):
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        fn()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.self_device_time_total for e in events) / 1e3
    print(f"\n--- {title}: GPU kernel time {total:.2f} ms in {sum(e.count for e in events)} kernels")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:rows]:
        print(f"{e.self_device_time_total / 1e3:8.3f} ms {e.count:5d}x  {e.key[:110]}")


def stylize(rows, quick_compile=False):
    from cvtools.style.records import resolve_style

    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    g = torch.Generator().manual_seed(7)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 64, 64, generator=g), size=(1080, 1920), mode="bilinear").to(dev)
    net = resolve_style("mona").load_network(device="cpu").eval()
    variants = {}
    for name, sub, dtype, cl in [("plain fp32 NCHW", False, torch.float32, False),
                                 ("subpixel fp32 NCHW", True, torch.float32, False),
                                 ("subpixel fp32 CL", True, torch.float32, True),
                                 ("subpixel fp16 NCHW", True, torch.float16, False),
                                 ("subpixel fp16 CL", True, torch.float16, True),
                                 ("subpixel bf16 CL", True, torch.bfloat16, True),
                                 ("s2d fp16 CL", "s2d", torch.float16, True),
                                 ("s2d fp16 NCHW", "s2d", torch.float16, False),
                                 ("s2d fp32 NCHW", "s2d", torch.float32, False),
                                 ("plain fp16 NCHW", False, torch.float16, False),
                                 ("plain fp16 CL", False, torch.float16, True)]:
        m = (net.for_inference(space_to_depth=sub == "s2d") if sub else copy.deepcopy(net)).to(dev, dtype)
        xi = x.to(dtype)
        if cl:
            m = m.to(memory_format=torch.channels_last)
            xi = xi.contiguous(memory_format=torch.channels_last)
        f = (lambda m=m, xi=xi: m(xi))
        with torch.inference_mode():
            t = measure(f, dev, warmup=3, repeat=30)
        variants[name] = (m, xi)
        print(f"stylize {name:32s} {t.median_ms:7.2f} ms (first {t.first_ms:.0f} ms)", flush=True)
    with torch.inference_mode():
        ref = variants["plain fp32 NCHW"][0](x).float()
        for name, (m, xi) in variants.items():
            print(f"  {name}: max|d| vs plain fp32 {float((m(xi).float() - ref).abs().max()):.4f}")
        for name in ("s2d fp16 CL",):
            m, xi = variants[name]
            top_kernels(lambda: m(xi), rows, f"stylize {name}")
        for name in ("s2d fp16 CL",) if quick_compile else ("s2d fp16 CL", "s2d fp32 NCHW", "subpixel fp16 CL"):
            m, xi = variants[name]
            cm = torch.compile(m, dynamic=False)
            t = measure(lambda: cm(xi), dev, warmup=3, repeat=30)
            print(f"stylize {name + ' compile':32s} {t.median_ms:7.2f} ms (first {t.first_ms:.0f} ms)", flush=True)
            top_kernels(lambda: cm(xi), rows, f"stylize {name} compiled")


def dream(rows):
    from cvtools.backbones import load_backbone
    from cvtools.dream import DreamEngine, DreamSettings

    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(3)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 67, 120, generator=g), size=(1080, 1920),
                                            mode="bilinear")[0].to(dev)
    bb = load_backbone("efficientnet_lite0", device="cuda")
    print("dream layers:", bb.defaults.dream)
    engine = DreamEngine(bb, DreamSettings(octaves=4, steps=10, jitter=32, tile=None))
    t = measure(lambda: engine(image, seed=0), dev, warmup=2, repeat=10)
    print(f"dream fast {t.median_ms:.1f} ms", flush=True)
    top_kernels(lambda: engine(image, seed=0), rows, "dream fast (CUDA graphs)")


def train(rows, style, batch=64):
    """The real Trainer.step at 256 px, batch 64: eager, style network compiled, and style
    network + loss compiled."""
    import tempfile

    from cvtools.style.train import TrainConfig
    from cvtools.style.trainer import Trainer

    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    batch_u8 = (torch.rand(batch, 3, 256, 256, generator=g) * 255).to(torch.uint8).pin_memory()
    tmp = tempfile.mkdtemp()
    for desc, comp, comp_loss in [("eager", False, False), ("compile style net", True, False)]:
        tr = Trainer(TrainConfig(style_image=style, photos=tmp, name="p", output=tmp, steps=100000,
                                 batch_size=batch, compile=comp))
        if comp_loss:
            tr.loss_fn = torch.compile(tr.loss_fn)
        try:
            t = measure(lambda: tr.step(batch_u8), dev, warmup=5, repeat=20)
        except Exception as exc:
            print(f"train {desc}: failed: {str(exc).splitlines()[0][:200]}")
            continue
        print(f"train {desc:28s} {t.median_ms:7.2f} ms/step = {batch / t.median_ms * 1e3:6.0f} img/s "
              f"(first {t.first_ms:.0f} ms)", flush=True)
        if desc == "eager":
            top_kernels(lambda: tr.step(batch_u8), rows, "train step eager")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["stylize", "dream", "train"])
    ap.add_argument("--style", default=".device/shared/styles/mona.jpg")
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--quick-compile", action="store_true", help="compile only the default stylize variant")
    a = ap.parse_args()
    print(torch.__version__, torch.cuda.get_device_name())
    if a.only in (None, "stylize"):
        stylize(a.rows, a.quick_compile)
    if a.only in (None, "dream"):
        dream(a.rows)
    if a.only in (None, "train"):
        train(a.rows, a.style)


if __name__ == "__main__":
    main()
