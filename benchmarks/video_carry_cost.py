#!/usr/bin/env python3
"""What `--stable`'s two modes cost per frame after the network and the flow (issue 29): the blend
(warp the previous result, mix) against the carry (compose positions, one bicubic gather from the
ring of stored outputs), on one frame size, from the flow at the stabilizer's working size.

    python benchmarks/video_carry_cost.py --size 1080x1920 --device cpu
    python benchmarks/video_carry_cost.py --size 1080x1920 --device cuda

Medians of --repeat steps after --warmup, each mode on the same synthetic output and flow (a
sub-pixel pan: every pixel carried, the dearest case for the carry).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def carry_step(carry: bool, h: int, w: int, device: str):
    """One stabilizer step of the mode as a closure, after a first frame (nothing to carry)."""
    import torch

    from cvtools.video.carry import REPAINT_BLEND
    from cvtools.video.stability import DEFAULT_BLEND, TemporalStabilizer

    # each mode at the blend --stable gives it (stabilizer_for); no phase lock: the step alone
    st = TemporalStabilizer(REPAINT_BLEND if carry else DEFAULT_BLEND, carry=carry, phase_lock=False)
    g = torch.Generator().manual_seed(0)
    out = torch.rand(1, 3, h, w, generator=g).to(device)
    # the flow at the stabilizer's working size (384 px on the long side, as FlowEstimator gives it)
    sh, sw = (round(h * 384 / max(h, w)), round(w * 384 / max(h, w))) if max(h, w) > 384 else (h, w)
    flow = torch.tensor([-1.37 * sw / w, -0.61 * sh / h]).view(2, 1, 1).expand(2, sh, sw).contiguous()
    occluded = torch.zeros(sh, sw, dtype=torch.bool)
    st._blend(out, None, None)  # the first frame: nothing to carry or blend
    return lambda: st._blend(out, flow, occluded)


def time_mode(carry: bool, h: int, w: int, device: str, warmup: int, repeat: int) -> float:
    step = carry_step(carry, h, w, device)
    times = []
    for i in range(warmup + repeat):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_carry(h: int, w: int, device: str, steps: int = 3, top: int = 20) -> str:
    """torch.profiler's table of the carry step (self CPU time and device time per op)."""
    from torch.profiler import ProfilerActivity, profile

    step = carry_step(True, h, w, device)
    for _ in range(3):
        step()
    _sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        _sync(device)
    key = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    return (prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top) + "\n"
            + prof.key_averages().table(sort_by=key, row_limit=top))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1080x1920", help="H x W")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--profile", action="store_true", help="also print torch.profiler's table of the carry step")
    ap.add_argument("--degrees", type=int, nargs="*", default=[],
                    help="also time the carry with these B-spline degrees of its read (3, 5), interleaved")
    ap.add_argument("--contrast-gains", type=float, nargs="*", default=[],
                    help="also time the carry with these carry.CONTRAST_GAIN values (1: the plain blend), "
                         "interleaved, --rounds times each")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    torch.set_grad_enabled(False)
    h, w = (int(v) for v in args.size.lower().split("x"))
    row = {"size": [h, w], "device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(),
           "blend_s": time_mode(False, h, w, args.device, args.warmup, args.repeat),
           "carry_s": time_mode(True, h, w, args.device, args.warmup, args.repeat)}
    row["carry_over_blend"] = row["carry_s"] / row["blend_s"]
    if args.degrees:
        import cvtools.video.carry as carry

        default = carry.SPLINE_DEGREE
        row["spline_degree"] = default
        for degree in args.degrees:
            carry.SPLINE_DEGREE = degree
            row[f"carry_s_degree{degree}"] = time_mode(True, h, w, args.device, args.warmup, args.repeat)
        carry.SPLINE_DEGREE = default
    if args.contrast_gains:
        import cvtools.video.carry as carry

        default = carry.CONTRAST_GAIN
        row["contrast_gain"] = default
        for _ in range(args.rounds):
            for gain in args.contrast_gains:
                carry.CONTRAST_GAIN = gain
                row.setdefault(f"carry_s_gain{gain:g}", []).append(
                    time_mode(True, h, w, args.device, args.warmup, args.repeat))
        carry.CONTRAST_GAIN = default
    print(json.dumps(row, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1))
    if args.profile:
        print(profile_carry(h, w, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
