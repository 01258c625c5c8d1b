"""Where `--stable`'s flicker and style cost sit on a synthetic clip (issue 29, 2026-12-05).

Splits each frame by the clip's TRUE flow into the inside of the layers that move on their own,
a band of 3 px either side of their edges, and the background; prints per region its share of
pixels, of the frame-by-frame and stable warping error (Farnebäck grader, as tools/video_flicker.py),
the stable / frame-by-frame ratio there and the share of pixels carried; with --style-split, the
Lite2 style change when only that region of the stable output is pasted into the frame-by-frame
frames.

    python benchmarks/video_stable_2026-12-05/region_split.py parallax great_wave --mode off
    python benchmarks/video_stable_2026-12-05/region_split.py object composition_vii --style-split

--mode: shipped (the stabilizer's defaults), off (no local blend: moving layers carried like the
rest), layers (whole moving layers blended: LOCAL_EDGE_WINDOW = None, the mode before 2026-12-05).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import video_flicker as vf  # noqa: E402

from cvtools.style.stylize import Stylizer  # noqa: E402
from cvtools.video.flow import warp  # noqa: E402
from cvtools.video.synthetic import make_clip  # noqa: E402


def regions(flow: torch.Tensor, band: int = 3) -> dict:
    """inner / edge / back masks (H×W bool) from a true flow (2×H×W): moving = more than 0.3 px from
    the median flow (the background's)."""
    med = flow.reshape(2, -1).median(1).values[:, None, None]
    moving = ((flow - med).norm(dim=0) > 0.3).float()[None, None]
    k = 2 * band + 1
    edge = (F.max_pool2d(moving, k, 1, band) + F.max_pool2d(-moving, k, 1, band)) > 0
    return {"inner": ((moving > 0) & ~edge)[0, 0], "edge": edge[0, 0], "back": ((moving == 0) & ~edge)[0, 0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", help="a synthetic clip (object, parallax, ...)")
    ap.add_argument("style")
    ap.add_argument("--mode", choices=("shipped", "off", "layers"), default="shipped")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--style-split", action="store_true")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    import cvtools.video.carry as carry
    import cvtools.video.stability as stability

    if args.mode == "layers":
        stability.LOCAL_EDGE_WINDOW = None
    options = {"local_motion": None} if args.mode == "off" else {}
    keeps = []
    advance = carry.StrokeCarrier._advance

    def spy(self, keep, src, x, y):  # the carried mask of each frame
        keeps.append(keep.clone())
        return advance(self, keep, src, x, y)

    carry.StrokeCarrier._advance = spy
    clip = make_clip(args.clip, args.frames, (160, 256))
    frames = list(clip.frames[:, None])
    flows = vf.input_flows(frames)
    net = Stylizer(args.style, device="cpu", precision="fp32")
    yard = vf.StyleYardstick(Path(args.shared)) if args.style_split else None
    row, fbf, st = vf.compare(clip, net, 1.0, 0.85, yard, flows, True, True, **options)
    acc = {k: [0.0, 0.0, 0.0, 0.0] for k in ("inner", "edge", "back")}  # fbf err, stable err, px, carried
    for t in range(1, len(frames)):
        flow, occluded = flows[t]
        valid = ~occluded.bool().reshape(frames[t].shape[-2:])
        masks = regions(clip.flow[t])
        errors = [((out[t] - warp(out[t - 1], flow)) ** 2).mean(1)[0] for out in (fbf, st)]
        for k, m in masks.items():
            mv = m & valid
            acc[k][0] += float(errors[0][mv].sum())
            acc[k][1] += float(errors[1][mv].sum())
            acc[k][2] += float(mv.sum())
            acc[k][3] += float(keeps[t - 1][m].float().sum())
    total_f, total_s = sum(a[0] for a in acc.values()), sum(a[1] for a in acc.values())
    total_px = sum(a[2] for a in acc.values())
    print(f"{args.clip} / {args.style} ({args.mode}): stable / fbf {row['ratio']:.2f}")
    for k, a in acc.items():
        print(f"  {k:6s} pixels {a[2] / total_px:.2f}  fbf error {a[0] / total_f:.2f}  stable error {a[1] / total_s:.2f}"
              f"  stable / fbf there {a[1] / max(a[0], 1e-12):.2f}  carried {a[3] / max(a[2], 1):.2f}")
    if yard is not None:
        base = yard(net.record, fbf)
        print(f"  style change, whole stable output: {row['style_change']:+.1%}")
        for k in acc:
            mixed = [fbf[0]] + [torch.where(regions(clip.flow[t])[k], st[t], fbf[t]) for t in range(1, len(frames))]
            print(f"  style change, only its {k} pasted into frame by frame: {yard(net.record, mixed) / base - 1:+.1%}")


if __name__ == "__main__":
    main()
