"""Where `--stable`'s style cost on the integer pan comes from (issue 29, 2026-12-05 evening).

On QUALITY's integer pan (2, 1 px a frame) the carry reads exact copies, yet composition_vii's and
the any-painting network's rows were +5.2 % and +6.2 % from the painting against frame by frame.
This splits it, per network, on the same 32 frames and the same Lite2 yardstick
(tools/video_flicker.py), frame by frame paired:

- ``lock only``: the phase lock with nothing blended or carried (strength 0): each frame shifted so
  the scene keeps its place on the network's 4-px grid, i.e. painted at frame 0's grid phase
  where frame by frame cycles through the phases;
- ``stable``: what `--stable` runs (lock + carry), as in the table;
- the per-frame paired ratios, and frame by frame's own spread over the clip.

    python benchmarks/video_stable_2026-12-05/integer_pan_split.py composition_vii ../shared/styles/shipwreck_minotaur.jpg --json out.json
    python benchmarks/video_stable_2026-12-05/integer_pan_split.py starry_night --clip zoom    # any of synthetic.KINDS
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import torch  # noqa: E402
import video_flicker as vf  # noqa: E402

from cvtools.style.stylize import Stylizer  # noqa: E402
from cvtools.video.stability import stabilized_effect  # noqa: E402
from cvtools.video.synthetic import make_clip  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("styles", nargs="+", help="bundled style names, style records (.json: other weights of a bundled "
                    "style) or painting files (the any-painting network)")
    ap.add_argument("--clip", default="pan", help="one of synthetic.KINDS (default: pan, the integer pan)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    clip = make_clip(args.clip, 32)
    frames = list(clip.frames[:, None])
    flows = vf.input_flows(frames)
    yard = vf.StyleYardstick(Path(args.shared))
    rows = []
    for style in args.styles:
        path = Path(style)
        is_painting = path.suffix.lower() not in ("", ".json")  # a .json is a style record (other weights of a bundled style)
        net = vf.painting_stylizer(path) if is_painting else Stylizer(style, device="cpu", precision="fp32")
        row, fbf, st = vf.compare(clip, net, 1.0, 0.85, yard, flows, True, True)
        lock = stabilized_effect(frames, lambda x: net(x, strength=1.0, tile=None)[None], strength=0.0, carry=False)
        per = {k: [yard(net.record, [f]) for f in v] for k, v in (("fbf", fbf), ("stable", st), ("lock", lock))}
        mean = {k: statistics.mean(v) for k, v in per.items()}
        out = dict(style=net.name, table=row["style_change"], lock_only=mean["lock"] / mean["fbf"] - 1,
                   stable=mean["stable"] / mean["fbf"] - 1,
                   fbf_spread=statistics.pstdev(per["fbf"]) / mean["fbf"],
                   paired_stable=[s / f - 1 for s, f in zip(per["stable"], per["fbf"])],
                   paired_lock=[s / f - 1 for s, f in zip(per["lock"], per["fbf"])])
        rows.append(out)
        print(f"{net.name}: stable {out['stable']:+.1%} (table {out['table']:+.1%}), lock only {out['lock_only']:+.1%}; "
              f"frame by frame's own per-frame spread {out['fbf_spread']:.1%}; paired stable first/last 8 frames "
              f"{statistics.mean(out['paired_stable'][:8]):+.1%} / {statistics.mean(out['paired_stable'][-8:]):+.1%}",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": clip.name, "frames": 32, "size": [256, 160], "rows": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
