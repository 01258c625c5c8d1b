"""Which moving layers does the stabilizer's deform/turn test flag, per tracking preset and bound?
(issue 29, 2026-12-06c). The share of each synthetic clip's frames marked "turns or deforms: blend
whole" (stability._non_sliding_layers), mean over 16 frames: the 2-px ripple should be marked, the
1-px ripple, rigid discs and parallax should not (QUALITY "Video: temporal stability")."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, ROOT)
import torch

torch.set_num_threads(2)
from cvtools.video import stability as S
from cvtools.video import synthetic
from cvtools.video.flow import FlowEstimator

CLIPS = {"ripple 2 px": lambda: synthetic.deforming_object(frames=16, amplitude=2.0),
         "ripple 1 px": lambda: synthetic.deforming_object(frames=16, amplitude=1.0),
         "rigid disc": lambda: synthetic.moving_object(frames=16),
         "parallax": lambda: synthetic.parallax(frames=16)}
for name, make in CLIPS.items():
    clip = make()
    frames = list(clip.frames[:, None]) if clip.frames.dim() == 4 else list(clip.frames)
    for preset in os.environ.get("PRESETS", "auto,smooth").split(","):
        est = FlowEstimator(384, preset)
        flows = [est.pair_small(frames[t], frames[t - 1]) for t in range(1, len(frames))]
        for bound in [float(b) for b in os.environ.get("BOUNDS", "0.35,0.5,0.7").split(",")]:
            shares = []
            for f, occ, (h, w) in flows:
                m = S._non_sliding_layers(f, occ, w, S.LOCAL_MOTION, S.LOCAL_TURN, bound)
                shares.append(float(m.float().mean()))
            print(f"{name:12s} {preset:6s} deform bound {bound}: marked {sum(shares) / len(shares):.3f} of the frame", flush=True)
