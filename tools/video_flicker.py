#!/usr/bin/env python3
"""Flicker of processed video: Lai et al.'s warping error (cvtools.video.stability).

    python tools/video_flicker.py clip.mp4 clip_starry_night.mp4     # a processed clip vs its input
    python tools/video_flicker.py --synthetic pan --style starry_night  # frame-by-frame vs stable
    python tools/video_flicker.py --table --markdown                  # every clip x every bundled style
    python tools/video_flicker.py --synthetic object --style mona --side-by-side docs/images/x.webp
    python tools/video_flicker.py --table --painting ../shared/styles/shipwreck_minotaur.jpg   # any-painting network
    python tools/video_flicker.py --footage carphone.mp4 --stable 0.85 --carry     # real clips, every style

The metric: the mean over consecutive pairs of the squared difference (pixel values in [0, 1],
mean over RGB and the unoccluded pixels) between output frame t and output frame t-1 warped
onto it with the optical flow of the INPUT frames (OpenCV Farnebäck by default, a flow the
stabilizer does not use; ``--flow tvl1`` for OpenCV contrib's TV-L1, also not the stabilizer's and
closer to real footage's motion; ``--flow dis`` for the stabilizer's own; occlusions by the
forward-backward check; a pair occluded over half its frame is a scene cut and left out, counted
in each row's ``cuts``). Lower is steadier; 0 means the output moves exactly as the input does.

Synthetic clips (cvtools.video.synthetic: pans, a zoom, a moving object over samples/, with
known motion) are stylized frame by frame and through the stable mode
(:class:`~cvtools.video.stability.TemporalStabilizer`); ``--table`` also measures each result's
style distance with the project's independent yardstick (tools/style_quality.py: plain Gram
distance to the painting through EfficientNet-Lite2, mean over frames; needs ../shared/styles
for the paintings, else the column is left out).

Real footage has no true flow, and where the grader's flow is wrong (fast motion, a cut) even a
perfectly steady picture scores above zero: each ``--footage`` row also gives the **steady
floor**, the warping error of :func:`steady_reference` (the input through one fixed tone curve
matched to the style's output, a picture with the style's tones that cannot flicker) over frame
by frame's. A stable/fbf ratio near its floor is as steady as this grader can tell.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_clip(path, size=None, max_frames=None, start: float = 0.0):
    """Frames of a video or animated GIF/WebP file as H×W×3 uint8 arrays (V1's reader), from
    ``start`` seconds."""
    from cvtools.video.io import read_frames

    frames = []
    for f in read_frames(path, start=start, size=size):
        frames.append(f.rgb)
        if max_frames and len(frames) >= max_frames:
            break
    return frames


def stylize_frames(stylizer, frames, strength=1.0):
    """Frame-by-frame stylization: a list of 1×3×H×W float tensors."""
    return [stylizer(f, strength=strength, tile=None)[None] for f in frames]


class StyleYardstick:
    """tools/style_quality.py's independent style distance, for frames of one style at a time."""

    def __init__(self, shared: Path):
        from style_quality import INDEPENDENT_BACKBONE

        from cvtools.backbones import load_backbone

        self.shared = shared
        self.backbone = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
        self._targets = {}

    def target(self, record):
        from style_quality import INDEPENDENT_LAYERS, painting_for

        from cvtools.io.decode import pil_to_tensor
        from cvtools.style.losses import style_target

        if record.name not in self._targets:
            self._targets[record.name] = style_target(self.backbone, pil_to_tensor(painting_for(record, self.shared)),
                                                      INDEPENDENT_LAYERS)
        return self._targets[record.name]

    #: crop offsets (y, x): the distance is averaged over crops of each frame at 16 offsets that
    #: cover every residue mod 4 in both axes (and spread over 0-15). Lite2 is itself not
    #: shift-invariant, and a style network's output carries a faint 4-px grid: at a single
    #: offset the same stylized frame scored 20-34 % apart depending on where that grid fell
    #: (grande_jatte, great_wave; 16 grid phases of one frame), with 8 offsets (even y only)
    #: still 12 %; with these 16, -1 … +5 %.
    OFFSETS = tuple((a + 4 * ((a + b) % 4), b + 4 * ((a + 2 * b) % 4)) for a in range(4) for b in range(4))
    MARGIN = 16

    def __call__(self, record, frames) -> float:
        """Mean over frames and crop offsets of the mean over layers of
        ‖G − G_painting‖² / ‖G_painting‖²."""
        import torch
        from style_quality import INDEPENDENT_LAYERS

        from cvtools.style.losses import gram_distances

        target = self.target(record)
        vals = []
        m = self.MARGIN
        with torch.no_grad():
            for f in frames:
                f = f.float()
                h, w = f.shape[-2] - m, f.shape[-1] - m
                for i in range(0, len(self.OFFSETS), 8):
                    batch = torch.cat([f[..., y:y + h, x:x + w] for y, x in self.OFFSETS[i:i + 8]])
                    feats = self.backbone.features(batch, INDEPENDENT_LAYERS)
                    vals.append(torch.stack(list(gram_distances(feats, target).values())).mean(0))
        return float(torch.cat(vals).mean())


def input_flows(frames, flow="farneback"):
    """Per frame t ≥ 1: (flow, occluded) of the inputs, computed once and shared by the metrics.

    flow: "farneback" (default: OpenCV's Farnebäck, a flow the stabilizer does NOT use, so the
    stabilizer is not graded by its own tracker; issue 29), "tvl1" (OpenCV contrib's Dual TV-L1,
    also not the stabilizer's, and the closest of the three to real footage's motion: needs
    opencv-contrib-python-headless) or "dis" (the stabilizer's own, as the tables before
    2026-12-04 were measured)."""
    from cvtools.video.flow import FarnebackEstimator, FlowEstimator, TVL1Estimator, flow_and_occlusion

    est = {"farneback": FarnebackEstimator, "tvl1": TVL1Estimator, "dis": FlowEstimator}[flow]()
    return [None] + [flow_and_occlusion(frames[t], frames[t - 1], est) for t in range(1, len(frames))]


#: a pair of frames whose inputs' flow is occluded over more than this share is a scene cut,
#: left out of the warping error (bikes has one: that single pair carried ~23 % of starry_night's
#: frame-by-frame error over 48 frames and, stable or not, scores the same; the stabilizer treats
#: the same share as a cut and repaints)
CUT_FRACTION = 0.5


def metric(frames_in, frames_out, flows) -> float:
    from cvtools.video.stability import FlickerMeter

    meter = FlickerMeter(cut_fraction=CUT_FRACTION)
    for t, (a, b) in enumerate(zip(frames_in, frames_out)):
        if t == 0:
            meter.add(a, b)
        else:
            meter.add(a, b, flow=flows[t][0], occluded=flows[t][1])
    return meter.value


def _compare_frames(name, frames, stylizer, strength_style, stable, yardstick, flows, phase_lock, carry,
                    scored=None, **stabilizer):
    """What both comparisons share: ``frames`` (1×3×H×W each) stylized frame by frame and through
    the stable mode (phase lock + ``carry`` or the blend; without ``phase_lock``, the finished
    outputs blended), the warping errors through ``flows``, the speeds, and the style distance on
    the frames ``scored`` (indices; None: all). A dict of numbers and the two frame lists."""
    from cvtools.video.stability import stabilize, stabilized_effect

    t0 = time.perf_counter()
    fbf = stylize_frames(stylizer, frames, strength_style)
    t1 = time.perf_counter()
    if phase_lock:
        st = stabilized_effect(frames, lambda x: stylizer(x, strength=strength_style, tile=None)[None], strength=stable,
                               carry=carry, **stabilizer)
    else:
        st = stabilize(frames, fbf, strength=stable, carry=carry, **stabilizer)
    t2 = time.perf_counter()
    row = dict(clip=name, style=stylizer.name, frames=len(frames), input=metric(frames, frames, flows),
               fbf=metric(frames, fbf, flows), stable=metric(frames, st, flows),
               cuts=sum(1 for f in flows[1:] if float(f[1].float().mean()) > CUT_FRACTION))
    row["ratio"] = row["stable"] / row["fbf"]
    row["fps_fbf"], row["fps_stable"] = len(frames) / (t1 - t0), len(frames) / (t2 - t1)
    if yardstick is not None:
        picked = range(len(frames)) if scored is None else scored
        row["style_fbf"] = yardstick(stylizer.record, [fbf[i] for i in picked])
        row["style_stable"] = yardstick(stylizer.record, [st[i] for i in picked])
        row["style_change"] = row["style_stable"] / row["style_fbf"] - 1
    return row, fbf, st


def compare(clip, stylizer, strength_style=1.0, stable=0.35, yardstick=None, flows=None, phase_lock=True, carry=False,
            **stabilizer):
    """Frame-by-frame vs stable on one synthetic clip: a dict of numbers (with the warping errors
    through the clip's true flow too) and the two frame lists."""
    frames = list(clip.frames[:, None])  # 1×3×H×W each
    row, fbf, st = _compare_frames(clip.name, frames, stylizer, strength_style, stable, yardstick,
                                   flows or input_flows(frames), phase_lock, carry, **stabilizer)
    true = [None] + [(clip.flow[t], clip.occluded[t]) for t in range(1, len(clip))]
    row["fbf_true"], row["stable_true"] = metric(frames, fbf, true), metric(frames, st, true)
    return row, fbf, st


def footage_frames(path, size=None, max_frames=None, start: float = 0.0):
    """A real clip's frames as 1×3×H×W float tensors in [0, 1], read as ``cvtools stylize`` reads
    videos (upright, the longer side resized to ``size``), from ``start`` seconds."""
    import torch

    return [torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            for rgb in read_clip(path, size, max_frames, start)]


def compare_footage(name, frames, stylizer, strength_style=1.0, stable=0.35, yardstick=None, flows=None, carry=False,
                    score_frames=8, **stabilizer):
    """Frame by frame vs stable on real footage (no true flow: the warping error through
    ``flows``, the inputs' Farnebäck flow by default); the style distance on ``score_frames``
    frames spread evenly over the clip (the same frames for both); ``floor``: the warping error of
    :func:`steady_reference` over frame by frame's (how low the grader lets this style go here)."""
    flows = flows or input_flows(frames)
    n = max(1, min(score_frames, len(frames)))
    picked = sorted({round(i * (len(frames) - 1) / max(1, n - 1)) for i in range(n)})
    row, fbf, st = _compare_frames(name, frames, stylizer, strength_style, stable, yardstick,
                                   flows, True, carry, scored=picked, **stabilizer)
    if yardstick is not None:
        row["style_frames"] = picked
    reference, row["floor_blur"] = steady_reference(frames, fbf)
    row["floor"] = metric(frames, reference, flows) / row["fbf"] if row["fbf"] > 0 else float("nan")
    return row, fbf, st


#: the blurs (σ, px) tried on the inputs to match a soft style's fine detail (steady_reference)
REFERENCE_BLURS = (0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def steady_reference(frames, outputs, blurs=REFERENCE_BLURS, sample_every=7):
    """A perfectly steady picture in the outputs' tones, to grade the grader (issue 29): each
    input pixel through one fixed curve per channel, quantile-matched (257 quantiles) to
    ``outputs`` over the whole clip, the inputs first blurred by the σ of ``blurs`` whose fine
    detail (RMS of the Laplacian) comes closest to the outputs' (a soft style draws less detail
    than its input has, and the grader's flow errors cost in proportion to detail). Nothing in it
    changes from frame to frame but the input itself, so its warping error is what the grader
    charges any style with these tones for the grader's own flow errors: the floor a stabilizer
    cannot go under on that clip (an estimate, not a bound). Real footage's Farnebäck flow fails
    on fast motion and cuts (bikes), and there the floor can lie above the issue's 0.6.

    Returns (frames, 1×3×H×W each, and the σ used)."""
    import numpy as np
    import torch

    from cvtools.ops import gaussian_blur

    q = torch.linspace(0, 1, 257)

    def quantiles(clip):  # per channel, over every ``sample_every``-th pixel of the whole clip
        x = torch.cat(clip).float().permute(1, 0, 2, 3).reshape(3, -1)[:, ::sample_every]
        return [torch.quantile(x[c], q).numpy() for c in range(3)]

    out_q = quantiles([o.clamp(0, 1) for o in outputs])  # the same for every blur: once
    # a strictly rising input side, so flat stretches of the input's histogram map to one value
    ramp = np.arange(257) * 1e-7

    def mapped(src):
        cs = [(a + ramp, b) for a, b in zip(quantiles(src), out_q)]
        return [torch.stack([torch.from_numpy(np.interp(f[0, c].numpy(), *cs[c])).float() for c in range(3)])[None]
                for f in src]

    target = _detail(outputs[::6])
    best = None
    for sigma in blurs:
        ref = mapped([gaussian_blur(f.float(), sigma) for f in frames])
        gap = abs(_detail(ref[::6]) - target)
        if best is None or gap < best[0]:
            best = (gap, ref, sigma)
    return best[1], best[2]


def _detail(frames) -> float:
    """RMS of the Laplacian (3×3, per channel) over ``frames``: how much fine detail they carry."""
    import torch
    import torch.nn.functional as F

    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    return float(torch.stack([F.conv2d(f.float().clamp(0, 1), k, groups=3).pow(2).mean() for f in frames]).mean().sqrt())


#: exploration knobs that set a module's constant, not a stabilizer keyword: option -> (module, name)
MODULE_KNOBS = {
    "local_blend": ("cvtools.video.carry", "LOCAL_BLEND"),
    "whole_blend": ("cvtools.video.carry", "WHOLE_LAYER_BLEND"),
    "contrast_gain": ("cvtools.video.carry", "CONTRAST_GAIN"),  # 1: blends as they are
    "contrast_low": ("cvtools.video.carry", "CONTRAST_LOW"),  # the detail's box, odd
    "histogram_blend": ("cvtools.video.carry", "HISTOGRAM_BLEND"),  # blends take the network's detail values
    "spline_degree": ("cvtools.video.carry", "SPLINE_DEGREE"),  # the read's B-spline
    "flow_preset": ("cvtools.video.stability", "STABLE_PRESET"),  # the stabilizer's DIS preset
    "local_deform": ("cvtools.video.stability", "LOCAL_DEFORM"),  # the deform test's bound (px)
    "carry_edges": ("cvtools.video.stability", "LOCAL_EDGES_BLENDED"),  # False: sliding edges carried
    "zoom_blend": ("cvtools.video.carry", "ZOOM_REPAINT_BLEND"),  # the repaint blend on zooms (-1: off)
}


def stabilizer_options(args) -> dict:
    """TemporalStabilizer keywords given on the command line (the rest stay its defaults); the
    exploration knobs (:data:`MODULE_KNOBS`, ``--local-edge-window``) set their modules' constants."""
    import importlib

    options = {"disagreement": args.disagreement, "max_scale_change": args.max_scale_change}
    options = {k: v for k, v in options.items() if v is not None}
    if args.local_motion is not None:  # 0: off (moving objects carried like the rest)
        options["local_motion"] = args.local_motion or None
    for option, (module, name) in MODULE_KNOBS.items():
        if getattr(args, option) is not None:
            setattr(importlib.import_module(module), name, getattr(args, option))
    if args.zoom_blend is not None and args.zoom_blend < 0:  # carry.ZOOM_REPAINT_BLEND off
        import cvtools.video.carry as carry

        carry.ZOOM_REPAINT_BLEND = None
    if args.local_edge_window is not None:  # stability.LOCAL_EDGE_WINDOW (-1: whole moving layers)
        import cvtools.video.stability as stability

        stability.LOCAL_EDGE_WINDOW = None if args.local_edge_window < 0 else args.local_edge_window
    return options


def make_stylizer(style):
    """A bundled style's network (CPU, fp32), or the any-painting network on a painting (a Path)."""
    from cvtools.style.stylize import Stylizer

    return painting_stylizer(style) if isinstance(style, Path) else Stylizer(style, device="cpu", precision="fp32")


def painting_stylizer(path):
    """The any-painting network on ``path`` (what ``cvtools stylize -s painting.jpg`` runs), with a
    record the style yardstick can read (the painting's file, scored at 512 px like the bundled
    paintings' records)."""
    from types import SimpleNamespace

    from cvtools.style.painting import NetworkPaintingStylizer

    st = NetworkPaintingStylizer(str(path), device="cpu", precision="fp32")
    st.record = SimpleNamespace(name=f"any:{Path(path).stem}", provenance={"file": Path(path).name},
                                recipe={"style_size": 512})
    st.name = st.record.name
    return st


def side_by_side(path, fbf, st, fps=12, label=True, scale=1.0, labels=("frame by frame", "stable")):
    """An animated WebP/GIF: frame-by-frame on the left, stable on the right."""
    import numpy as np
    from PIL import Image, ImageDraw

    frames = []
    for a, b in zip(fbf, st):
        pa = (a[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        pb = (b[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        h, w, _ = pa.shape
        sheet = np.full((h, 2 * w + 4, 3), 255, np.uint8)
        sheet[:, :w], sheet[:, w + 4:] = pa, pb
        im = Image.fromarray(sheet)
        if scale != 1.0:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        if label:
            d = ImageDraw.Draw(im)
            for x, text in ((4, labels[0]), (im.width // 2 + 4, labels[1])):
                for dx in (-1, 0, 1):
                    for dy in (-1, 0, 1):
                        d.text((x + dx, 3 + dy), text, fill=(0, 0, 0))
                d.text((x, 3), text, fill=(255, 255, 255))
        frames.append(im)
    path = Path(path)
    kw = dict(save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    if path.suffix.lower() == ".webp":
        frames[0].save(path, quality=80, method=6, **kw)
    else:
        frames[0].save(path, optimize=True, **kw)
    return path


HEADER = ("| clip | style | warping error ×10³: input | frame by frame | stable | stable / fbf | "
          "(true flow: fbf → stable) | style distance: fbf | stable | change | steady floor / fbf |")


def table_line(r) -> str:
    sd = (f"{r['style_fbf']:.4f} | {r['style_stable']:.4f} | {r['style_change']:+.1%}" if "style_fbf" in r
          else "– | – | –")
    true = f"{r['fbf_true'] * 1e3:.3f} → {r['stable_true'] * 1e3:.3f}" if "fbf_true" in r else "–"  # footage: none
    floor = f"{r['floor']:.2f}" if "floor" in r else "–"  # footage only (synthetic clips have their true flow)
    return (f"| {r['clip']} | {r['style']} | {r['input'] * 1e3:.3f} | {r['fbf'] * 1e3:.3f} | {r['stable'] * 1e3:.3f} | "
            f"{r['ratio']:.2f} | {true} | {sd} | {floor} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", help="INPUT OUTPUT: a clip and its processed version")
    ap.add_argument("--size", type=int, help="read the files at this longer side")
    ap.add_argument("--max-frames", type=int, help="only the first N frames")
    ap.add_argument("--synthetic", nargs="*", help="synthetic clips (pan, pan_subpixel, zoom, object)")
    ap.add_argument("--style", nargs="*", help="styles for --synthetic / --table (default: every bundled one)")
    ap.add_argument("--table", action="store_true", help="every synthetic clip x every style")
    ap.add_argument("--footage", nargs="*", default=[], metavar="VIDEO",
                    help="real clips: each x every style, frame by frame vs stable (read at --size, default 384 px "
                         "on the longer side; --max-frames, default 48; from --start seconds)")
    ap.add_argument("--start", type=float, default=0.0, help="--footage: read from this second")
    ap.add_argument("--score-frames", type=int, default=8,
                    help="--footage: frames (spread evenly) whose style distance is measured")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--stable", type=float, default=0.35, help="TemporalStabilizer strength (blend)")
    ap.add_argument("--no-phase-lock", action="store_true", help="blend only")
    ap.add_argument("--carry", action="store_true",
                    help="the stabilizer's carry mode (strokes carried from the output that painted them; "
                         "--stable is then the blend where a pixel is repainted)")
    ap.add_argument("--disagreement", type=float, help="the stabilizer's agreement τ (default: its own)")
    ap.add_argument("--max-scale-change", type=float,
                    help="carry mode: repaint a stroke magnified by more than this (0: never; default: its own)")
    ap.add_argument("--local-motion", type=float,
                    help="carry mode: blend, not carry, what moves this many px off the camera's motion "
                         "(0: off; default: its own)")
    ap.add_argument("--local-blend", type=float,
                    help="carry mode: the blend on what moves on its own (default: carry.LOCAL_BLEND)")
    ap.add_argument("--local-edge-window", type=int,
                    help="carry: blend only the edges of local motion, this many working px wide (-1: whole layers)")
    ap.add_argument("--spline-degree", type=int, choices=(3, 5),
                    help="carry mode: the read's B-spline degree (default: carry.SPLINE_DEGREE)")
    ap.add_argument("--contrast-gain", type=float,
                    help="carry.CONTRAST_GAIN: the most a repainted pixel's stroke detail is amplified (1: off)")
    ap.add_argument("--flow-preset", choices=("ultrafast", "fast", "medium", "fine", "auto", "smooth"),
                    help="the stabilizer's DIS preset (default: stability.STABLE_PRESET)")
    ap.add_argument("--local-deform", type=float,
                    help="carry: a moving layer whose departure's RMS residual from one affine fit is over this "
                         "many px is blended whole (default: stability.LOCAL_DEFORM)")
    ap.add_argument("--carry-edges", action="store_const", const=False, default=None,
                    help="carry: sliding layers' edges carried, not blended (turning or deforming layers still are)")
    ap.add_argument("--zoom-blend", type=float,
                    help="carry.ZOOM_REPAINT_BLEND: the repaint blend where the camera zooms (-1: off, the repaint blend everywhere)")
    ap.add_argument("--whole-blend", type=float, help="carry.WHOLE_LAYER_BLEND: the blend over turning/deforming layers")
    ap.add_argument("--contrast-low", type=int, help="carry.CONTRAST_LOW: the detail's box size (odd)")
    ap.add_argument("--histogram-blend", action="store_true", default=None,
                    help="carry.HISTOGRAM_BLEND: blended pixels take the network's own detail values, rank for rank")
    ap.add_argument("--strength", type=float, default=1.0, help="style strength (the same for both)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"), help="for the paintings (style distance)")
    ap.add_argument("--side-by-side", metavar="WEBP", help="write the last clip's fbf | stable animation here")
    ap.add_argument("--gif-scale", type=float, default=1.0)
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--painting", nargs="*", default=[],
                    help="paintings for the any-painting network (NetworkPaintingStylizer), measured like styles")
    ap.add_argument("--flow", choices=("farneback", "tvl1", "dis"), default="farneback",
                    help="the metric's flow (default farneback: not the stabilizer's DIS; tvl1: closer on real "
                         "footage, needs opencv-contrib-python-headless)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)

    import torch

    torch.set_grad_enabled(False)
    from cvtools.errors import CvtoolsError

    try:
        if args.clips:
            if len(args.clips) != 2:
                ap.error("give INPUT and OUTPUT (two files)")
            a = read_clip(args.clips[0], args.size, args.max_frames)
            b = read_clip(args.clips[1], args.size, args.max_frames)
            n = min(len(a), len(b))
            if len(a) != len(b):
                print(f"note: {len(a)} input and {len(b)} output frames; comparing the first {n}", file=sys.stderr)
            if a[0].shape != b[0].shape:
                raise CvtoolsError(f"frame sizes differ: {a[0].shape[1]}x{a[0].shape[0]} and {b[0].shape[1]}x{b[0].shape[0]}"
                                   " (use --size)")
            flows = input_flows(a[:n], args.flow)
            print(f"warping error x1e3 ({n} frames): input {metric(a[:n], a[:n], flows) * 1e3:.3f}, "
                  f"output {metric(a[:n], b[:n], flows) * 1e3:.3f}")
            return 0
        from cvtools.style.records import bundled_names
        from cvtools.video.synthetic import KINDS, make_clip

        kinds = (args.synthetic or list(KINDS)) if (args.table or args.synthetic is not None) else []
        if not kinds and not args.footage:
            ap.error("give INPUT OUTPUT, --synthetic, --table or --footage")
        styles = (args.style if args.style is not None else ([] if args.painting else bundled_names()))
        styles = list(styles) + [Path(p) for p in args.painting]
        yard = None
        shared = Path(args.shared)
        if (shared / "styles").is_dir():
            yard = StyleYardstick(shared)
        rows = []
        last = None
        if args.markdown:
            print(HEADER)
            print("|---|---|---|---|---|---|---|---|---|---|---|")
        for kind in kinds:
            clip = make_clip(kind, args.frames, (args.height, args.width))
            flows = input_flows(list(clip.frames[:, None]), args.flow)
            for s in styles:
                stylizer = make_stylizer(s)
                t0 = time.time()
                row, fbf, st = compare(clip, stylizer, args.strength, args.stable, yard, flows, not args.no_phase_lock,
                                       args.carry, **stabilizer_options(args))
                rows.append(row)
                last = (fbf, st)
                if args.markdown:
                    print(table_line(row), flush=True)
                else:
                    extra = (f", style distance {row['style_fbf']:.4f} -> {row['style_stable']:.4f} "
                             f"({row['style_change']:+.1%})" if "style_fbf" in row else "")
                    print(f"{row['clip']} / {row['style']}: warping error x1e3 input {row['input'] * 1e3:.3f}, "
                          f"frame-by-frame {row['fbf'] * 1e3:.3f}, stable {row['stable'] * 1e3:.3f} "
                          f"(ratio {row['ratio']:.2f}){extra} [{time.time() - t0:.0f} s]", flush=True)
        for path in args.footage:
            frames = footage_frames(path, args.size or 384, args.max_frames or 48, args.start)
            flows = input_flows(frames, args.flow)
            h, w = frames[0].shape[-2:]
            name = f"{Path(path).stem} {w}x{h} from {args.start:g} s"
            for s in styles:
                stylizer = make_stylizer(s)
                t0 = time.time()
                row, fbf, st = compare_footage(name, frames, stylizer, args.strength, args.stable, yard, flows,
                                               args.carry, args.score_frames, **stabilizer_options(args))
                rows.append(row)
                last = (fbf, st)
                print(table_line(row) + ("" if args.markdown else f" [{time.time() - t0:.0f} s]"), flush=True)
        if len(rows) > 1:
            import statistics

            ratios = [r["ratio"] for r in rows]
            line = f"ratio stable/fbf: mean {statistics.mean(ratios):.2f}, max {max(ratios):.2f}"
            if yard is not None:
                ch = [r["style_change"] for r in rows]
                line += f"; style distance change: mean {statistics.mean(ch):+.1%}, max |.| {max(map(abs, ch)):.1%}"
            print(line)
        if args.json:
            import json

            Path(args.json).write_text(json.dumps({"rows": rows, "flow": args.flow, "frames": args.frames,
                                                   "size": [args.width, args.height]}, indent=1))
        if args.side_by_side and last:
            p = side_by_side(args.side_by_side, *last, scale=args.gif_scale)
            print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")
    except CvtoolsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
