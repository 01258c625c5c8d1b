"""`--stable` on an object that turns as it moves (issue 29, 2026-12-05): a check of the edge-only
local blend on motion that is not a translation. Since LOCAL_EDGE_WINDOW, the inside of a moving
layer is carried like the camera's pixels; QUALITY's object and parallax clips move rigid discs, so
this clip turns its disc (of chelsea, 3°/frame: 2.5 px/frame at its rim) while it glides (1.5, 0.4
px/frame) over coffee panning 0.5 px/frame. Flow inside the disc varies smoothly, with no jump but
at the rim. Prints, per network, frame-by-frame vs stable (Farnebäck grader, as
tools/video_flicker.py) and the Lite2 style change, for the shipped mode and whole moving layers
blended (the mode before), and writes 3x crops of frames 20-23 (frame by frame | whole layers |
shipped mode) with --crops DIR. ``--deform PX``: a disc whose picture ripples by PX px instead
(synthetic.deforming_object: a face that talks, fur in the wind; not affine, so a per-layer affine
fit sees little turn).

    python benchmarks/video_stable_2026-12-05/spinning_object.py --json spinning.json --crops /tmp/crops
    python benchmarks/video_stable_2026-12-05/spinning_object.py --deform 2 --json deforming.json --crops /tmp/crops
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import video_flicker as vf  # noqa: E402

from cvtools.style.records import bundled_names  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402
from cvtools.video.synthetic import deforming_object, spinning_object  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", nargs="*", help="bundled styles (default: all)")
    ap.add_argument("--spin", type=float, default=3.0, help="degrees a frame")
    ap.add_argument("--deform", type=float, default=None, metavar="PX",
                    help="a disc whose picture ripples by PX px instead of one that turns (synthetic.deforming_object)")
    ap.add_argument("--json")
    ap.add_argument("--crops", help="write 3x crops of frames 20-23 per style here")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    import cvtools.video.stability as stability

    clip = spinning_object(spin_deg=args.spin) if args.deform is None else deforming_object(amplitude=args.deform)
    tag = f"spinning_{args.spin:g}" if args.deform is None else f"deforming_{args.deform:g}"
    frames = list(clip.frames[:, None])
    flows = vf.input_flows(frames)
    yard = vf.StyleYardstick(Path(args.shared))
    shipped = stability.LOCAL_EDGE_WINDOW
    rows = []
    for style in args.style or bundled_names():
        net = Stylizer(style, device="cpu", precision="fp32")
        outputs = {}
        for mode, window in (("whole layers", None), ("shipped", shipped)):
            stability.LOCAL_EDGE_WINDOW = window
            row, fbf, st = vf.compare(clip, net, 1.0, 0.85, yard, flows, True, True)
            stability.LOCAL_EDGE_WINDOW = shipped
            row["mode"] = mode
            rows.append(row)
            outputs[mode] = st
            outputs["fbf"] = fbf
            print(f"{clip.name} / {style} / {mode}: stable / fbf {row['ratio']:.2f}, "
                  f"style change {row['style_change']:+.1%}", flush=True)
        if args.crops:
            from PIL import Image

            cx = int((256 - 1.5 * 31) / 2 + 1.5 * 21)
            crop = torch.cat([torch.cat([outputs[k][t][0][:, 30:130, cx - 60:cx + 60] for t in (20, 21, 22, 23)], -1)
                              for k in ("fbf", "whole layers", "shipped")], -2)
            crop = F.interpolate(crop[None], scale_factor=3, mode="nearest")[0]
            Path(args.crops).mkdir(parents=True, exist_ok=True)
            Image.fromarray((crop.clamp(0, 1).permute(1, 2, 0) * 255).round().byte().numpy()).save(
                Path(args.crops) / f"{tag}_{style}.png")
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": clip.name, "rows": rows, "flow": "farneback", "frames": 32, "size": [256, 160]},
                                              indent=1))


if __name__ == "__main__":
    main()
