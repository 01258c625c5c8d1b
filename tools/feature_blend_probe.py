#!/usr/bin/env python3
"""Probes (issue 29) for a steadier `--stable`, each against frame by frame and the pixel blend
(what ``--stable`` does), on the synthetic clips: warping error (Farnebäck, the metric's flow) and
the Lite2 style distance change. Modes: ``--blend`` the transformer's bottleneck features blended
along the flow, then decoded; ``--select`` each pixel carried from the previous result (warped)
where the network agrees, else repainted; ``--position`` the same, carrying each pixel's source
frame and position so that its colour is interpolated once (benchmarks/plans/issue29_people.md).

    python tools/feature_blend_probe.py --style mona composition_vii --blend 0.45 0.7 --frames 16
    python tools/feature_blend_probe.py --style mona --blend --position 0.2 --frames 12
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: how a carried stroke is read from the output that painted it (once: see position_select)
SAMPLE_MODE = "bicubic"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def feature_blend(net, frames, blend, flows, feather=2):
    """Frames (1×3×H×W) through ``net`` with the bottleneck (after the residual blocks, 1/4 size)
    blended with the previous frame's blended bottleneck warped along the stabilizer's flow."""
    import torch
    import torch.nn.functional as F

    from cvtools.video.flow import warp
    from cvtools.video.stability import _soft_keep

    outs, prev = [], None
    with torch.no_grad():
        for t, x in enumerate(frames):
            f = net.residuals(net.encoder(x))
            if prev is not None and blend > 0:
                flow, occ = flows[t]
                h, w = f.shape[-2:]
                keep = _soft_keep(occ, feather)
                keep = F.interpolate(keep, size=(h, w), mode="area")
                fl = F.interpolate(flow[None].float(), size=(h, w), mode="area")[0]
                fl = fl * torch.tensor([w / flow.shape[-1], h / flow.shape[-2]]).view(2, 1, 1)
                f = torch.lerp(f, warp(prev, fl), keep * blend)
            prev = f
            outs.append(torch.sigmoid(net.output(net.decoder(f))))
    return outs


def pixel_select(frames, outputs, flows, tau, feather=2):
    """Selection instead of blending: each pixel is the previous result warped along the flow
    where the network agrees with it (the stabilizer's agreement test at ``tau``) and the warp is
    trusted, else the network's new output. Strokes are never averaged, only carried or replaced."""
    import torch

    from cvtools.video.flow import warp
    from cvtools.video.stability import _agreement, _soft_keep

    outs, prev = [], None
    for t, out in enumerate(outputs):
        if prev is not None:
            flow, occ = flows[t]
            warped = warp(prev, flow)
            keep = (_soft_keep(occ, feather) * _agreement(out, warped, tau)) > 0.5
            out = torch.where(keep, warped, out)
        prev = out
        outs.append(out)
    return outs


def _agreement_window(out, warped, tau, window):
    """The stabilizer's agreement test (exp(−(d/τ)²), d the mean |difference| over RGB) with the
    difference averaged over a ``window``-px square instead of 5 px."""
    import torch
    import torch.nn.functional as F

    d = F.avg_pool2d((out - warped).abs().mean(1, keepdim=True), window, 1, window // 2, count_include_pad=False)
    return torch.exp(-(d / tau).pow(2))


def position_select(frames, outputs, flows, tau, max_age=8, feather=2, repaint_blend=0.0, window=5, stagger=False,
                    rebase=0):
    """Selection as :func:`pixel_select`, but each carried pixel keeps the frame and position it
    was painted at (the flows composed back to it) and its colour is sampled from that frame's
    output once: a stroke is interpolated once however long it is carried, not once per frame.
    Pixels older than ``max_age`` frames are repainted (``stagger``: each pixel's limit is
    ``max_age`` plus a fixed per-pixel phase in [0, max_age), so the refresh is spread over
    frames instead of repainting everything at once); ``repaint_blend``: a repainted pixel is
    the new output blended with the carried colour at this weight (where the flow is trusted).
    ``rebase`` K > 0 (instead of the age limit): only the last K outputs are kept; a pixel whose
    source would fall out is re-based on the current frame (its carried colour, already sampled
    once, becomes its new source), so it is resampled once per K frames and never repainted at
    once with all its neighbours (the age limit's flicker spike)."""
    import torch

    from cvtools.video.flow import warp
    from cvtools.video.stability import _soft_keep

    outs, src, px, py, kept = [], None, None, None, {}
    for t, out in enumerate(outputs):
        o = out[0].float()
        h, w = o.shape[-2:]
        gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        kept[t] = o
        if src is None:
            src, px, py = torch.full((h, w), t), gx.clone(), gy.clone()
        else:
            flow, occ = flows[t]
            fx, fy = gx + flow[0].float(), gy + flow[1].float()  # where each pixel was in frame t-1
            rx, ry = fx.round().clamp(0, w - 1), fy.round().clamp(0, h - 1)
            ix, iy = rx.long(), ry.long()
            c_src = src[iy, ix]
            c_px, c_py = px[iy, ix] + (fx - rx), py[iy, ix] + (fy - ry)
            carried = torch.zeros_like(o)
            for k in c_src.unique().tolist():
                sel = c_src == k
                carried = torch.where(sel, warp(kept[k], torch.stack([c_px - gx, c_py - gy]), mode=SAMPLE_MODE), carried)
            keep = (_soft_keep(occ, feather)[0, 0] * _agreement_window(o[None], carried[None], tau, window)[0, 0]) > 0.5
            limit = max_age + ((gx.long() * 7 + gy.long() * 13) % max_age if stagger else 0)
            if not rebase:
                keep &= (t - c_src) < limit
            if repaint_blend:  # where repainted, blended with the carried colour (if the flow is trusted)
                o = torch.lerp(o, carried, _soft_keep(occ, feather)[0, 0] * repaint_blend)
            o = torch.where(keep, carried, o)
            kept[t] = o
            src = torch.where(keep, c_src, torch.full_like(c_src, t))
            px, py = torch.where(keep, c_px, gx), torch.where(keep, c_py, gy)
            if rebase:
                old = src <= t - rebase
                src, px, py = torch.where(old, t, src), torch.where(old, gx, px), torch.where(old, gy, py)
        horizon = rebase if rebase else (2 * max_age if stagger else max_age)
        for k in [k for k in kept if k <= t - horizon]:
            del kept[k]
        outs.append(o[None])
    return outs


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", nargs="+", default=["mona"])
    ap.add_argument("--clips", nargs="+", default=["pan", "pan_subpixel", "zoom", "object", "parallax"])
    ap.add_argument("--blend", nargs="*", type=float, default=[0.45, 0.7])
    ap.add_argument("--pixel", type=float, default=0.45, help="the pixel blend to compare (0: skip)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--select", nargs="*", type=float, default=[], help="agreement thresholds for pixel_select")
    ap.add_argument("--position", nargs="*", type=float, default=[], help="agreement thresholds for position_select")
    ap.add_argument("--repaint-blend", type=float, default=0.0, help="position_select's blend where it repaints")
    ap.add_argument("--window", type=int, default=5, help="position_select's agreement window (px, odd)")
    ap.add_argument("--max-age", type=int, default=8, help="position_select: frames a pixel may be carried")
    ap.add_argument("--stagger", action="store_true", help="position_select: per-pixel phases for the age limit")
    ap.add_argument("--rebase", type=int, default=0,
                    help="position_select: keep the last K outputs, re-base older pixels (no age limit)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import torch
    from video_flicker import StyleYardstick, input_flows, metric, stylize_frames

    from cvtools.style.stylize import Stylizer
    from cvtools.video.flow import FlowEstimator, flow_and_occlusion
    from cvtools.video.stability import stabilize
    from cvtools.video.synthetic import make_clip

    torch.set_grad_enabled(False)
    yard = StyleYardstick(Path(args.shared))
    rows = []
    for kind in args.clips:
        clip = make_clip(kind, args.frames, (160, 256))
        frames = list(clip.frames[:, None])
        grade = input_flows(frames)
        est = FlowEstimator()
        own = [None] + [flow_and_occlusion(frames[t], frames[t - 1], est) for t in range(1, len(frames))]
        for style in args.style:
            st = Stylizer(style, device="cpu", precision="fp32")
            net = st.record.load_network(device="cpu").eval()
            fbf = stylize_frames(st, frames)
            e0, d0 = metric(frames, fbf, grade), yard(st.record, fbf)
            row = {"clip": kind, "style": style, "fbf": e0, "style_fbf": d0}
            if args.pixel:
                px = stabilize(frames, fbf, strength=args.pixel)
                row["pixel"] = (metric(frames, px, grade) / e0, yard(st.record, px) / d0 - 1)
            for tau in args.select:
                sel = pixel_select(frames, fbf, own, tau)
                row[f"select{tau}"] = (metric(frames, sel, grade) / e0, yard(st.record, sel) / d0 - 1)
            for tau in args.position:
                sel = position_select(frames, fbf, own, tau, repaint_blend=args.repaint_blend, window=args.window,
                                      max_age=args.max_age, stagger=args.stagger, rebase=args.rebase)
                row[f"position{tau}"] = (metric(frames, sel, grade) / e0, yard(st.record, sel) / d0 - 1)
            for b in args.blend:
                fb = feature_blend(net, frames, b, own)
                row[f"feat{b}"] = (metric(frames, fb, grade) / e0, yard(st.record, fb) / d0 - 1)
            rows.append(row)
            print(json.dumps({k: (v if not isinstance(v, tuple) else f"{v[0]:.2f} / {v[1]:+.1%}")
                              for k, v in row.items() if k not in ("fbf", "style_fbf")}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
