"""`cvtools stylize clip.mp4 --stable` in the process, as the command runs it (stylize_video with
stabilizer_for's carry, --tune): its first 2 s to warm up (kernels, cuDNN plans), then the whole
clip timed, with its phases. Run from the
tree to be measured (PYTHONPATH picks the version).

    python3 stable_inproc.py clip.mp4 out.mp4 [style]
"""
import json
import sys
import time

import torch

from cvtools.style.stylize import Stylizer
from cvtools.video.process import stylize_video
from cvtools.video.stability import stabilizer_for

clip, out = sys.argv[1], sys.argv[2]
style = sys.argv[3] if len(sys.argv) > 3 else "starry_night"
net = Stylizer(style, device="cuda")
stylize_video(net, clip, out, stable=stabilizer_for(net), tune=True, overwrite=True, duration=2.0)
torch.cuda.synchronize()
t = time.perf_counter()
result = stylize_video(net, clip, out, stable=stabilizer_for(net), tune=True, overwrite=True)
seconds = time.perf_counter() - t
print(json.dumps(dict(frames=result.frames, seconds=round(seconds, 3), fps=round(result.frames / seconds, 1),
                      phases={p: round(v, 2) for p, v in result.phases.items()})))
