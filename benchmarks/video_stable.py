#!/usr/bin/env python3
"""Stable mode (`cvtools stylize clip.mp4 --stable`): what the stabilizer costs per frame and how
much flicker it removes, for several optical-flow settings.

    python benchmarks/video_stable.py                               # 1920x1080: cost and quality
    python benchmarks/video_stable.py --flows 512:fine,384:fast --cost-only
    python benchmarks/video_stable.py --size 480x270 --frames 6 --clips pan_subpixel   # quick

Rows, per flow setting ``MAX_SIDE:PRESET`` (the DIS flow is computed on frames downscaled to a
longer side of MAX_SIDE and scaled back up; see cvtools.video.flow.FlowEstimator):

- ``cost``: milliseconds per frame of ``prepare`` (gray, downscale, two DIS flows and their
  forward-backward check, the grid phase, reflect padding; the decoder's thread in
  stylize_video) and of ``finish`` (crop, flow and mask scaled up, warp of the previous result,
  blend; the writer's thread) on uint8 frames of the given size, the median over the frames after
  the first; on this machine's CPU (flow is always on the CPU).
- ``quality``: for each synthetic clip (cvtools.video.synthetic, rendered at the given size, true
  motion known), Lai et al.'s warping error with the TRUE flow (so the metric does not share the
  stabilizer's flow) of the frame-by-frame stylized clip and of the stable clip, and their ratio.
  The network is the pipeline's (``stylize_frames_fn``: uint8 in and out); its results on a
  shifted frame are cached by (frame, grid phase), so settings that lock the same phase share them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_flows(text):
    out = []
    for item in text.split(","):
        side, _, preset = item.strip().partition(":")
        out.append((None if side in ("", "full", "none") else int(side), preset or "fine"))
    return out


def cost(frames, max_side, preset, strength):
    """(prepare ms, finish ms): medians over frames 1.. of the stabilizer on uint8 frames."""
    import numpy as np

    from cvtools.video.stability import TemporalStabilizer

    st = TemporalStabilizer(strength, max_side=max_side, preset=preset)
    prep, fin = [], []
    for f in frames:
        t0 = time.perf_counter()
        x = st.prepare(f)
        t1 = time.perf_counter()
        st.finish(np.ascontiguousarray(x[::-1]))  # a stand-in result of the prepared size
        t2 = time.perf_counter()
        prep.append(t1 - t0)
        fin.append(t2 - t1)
    return 1000 * statistics.median(prep[1:]), 1000 * statistics.median(fin[1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080", help="WxH of the clips")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--clips", default="pan,pan_subpixel,zoom,object")
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--flows", default="512:fine,384:auto,384:fast",
                    help="flow settings MAX_SIDE:PRESET, comma-separated (full:fine = no downscaling)")
    ap.add_argument("--strength", type=float, default=0.35, help="the stabilizer's blend strength")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--cost-only", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import torch

    from cvtools.video import synthetic
    from cvtools.video.stability import TemporalStabilizer, warping_error

    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    flows = parse_flows(args.flows)
    env = {"size": f"{w}x{h}", "frames": args.frames, "style": args.style, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "cpu": platform.processor() or "cpu",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    print(f"# {env}", flush=True)
    rows = []
    clips = {}
    for kind in [c.strip() for c in args.clips.split(",") if c.strip()]:
        clips[kind] = synthetic.make_clip(kind, frames=args.frames, size=(h, w))

    first = next(iter(clips.values()))
    frames8 = first.frames_uint8()
    for max_side, preset in flows:
        p, f = cost(frames8, max_side, preset, args.strength)
        rows.append({"row": "cost", "flow": f"{max_side}:{preset}", "prepare_ms": round(p, 1), "finish_ms": round(f, 1)})
        print(f"cost   flow {max_side}:{preset:<6} prepare {p:7.1f} ms  finish {f:7.1f} ms  per {w}x{h} frame "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    if args.cost_only:
        return _write(args, env, rows)

    from cvtools.style import Stylizer
    from cvtools.video.process import stylize_frames_fn

    net = stylize_frames_fn(Stylizer(args.style, device="cpu"))
    for kind, clip in clips.items():
        frames = clip.frames_uint8()
        cache = {}

        def run(t, x, phase):
            key = (t, phase)
            if key not in cache:
                cache[key] = net([x])[0]
            return cache[key]

        fbf = [run(t, x, None) for t, x in enumerate(frames)]
        base = warping_error(frames, fbf, flows=clip.flow, occluded=clip.occluded)
        for max_side, preset in flows:
            st = TemporalStabilizer(args.strength, max_side=max_side, preset=preset)
            outs = []
            for t, x in enumerate(frames):
                y = st.prepare(x)
                outs.append(st.finish(run(t, y, st.last_phase)))
            e = warping_error(frames, outs, flows=clip.flow, occluded=clip.occluded)
            rows.append({"row": "quality", "clip": kind, "flow": f"{max_side}:{preset}", "fbf": base, "stable": e,
                         "ratio": e / base})
            print(f"flicker {kind:<13} flow {max_side}:{preset:<6} frame by frame {base * 1e3:6.2f}e-3  "
                  f"stable {e * 1e3:6.2f}e-3  ratio {e / base:.3f}", flush=True)
    return _write(args, env, rows)


def _write(args, env, rows):
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "rows": rows}, indent=2))
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
