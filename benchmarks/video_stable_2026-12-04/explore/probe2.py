import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from exp import *
from variants import gauss
from video_flicker import StyleYardstick
from pathlib import Path
yard = StyleYardstick(Path(os.environ.get("CVTOOLS_SHARED", "../shared") + ""))
kind, name = "zoom", sys.argv[1]
d = run_net(kind, name); rec = stylizer_for(name).record
N, fl = d["locked"], d["flows"]; frames = d["frames"]; mfl = metric_flows(kind)
idx = list(range(2, T, 3))
s0 = yard(rec, [N[t] for t in idx]); e0 = metric(frames, d["fbf"], mfl)
clip = get_clip(kind)
h, w = 160, 256
ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
cx, cy = (w-1)/2, (h-1)/2
def attached(mode):
    outs = []
    for t in range(T):
        s = 1.012 ** t
        flow = torch.stack([(xs-cx)*(1/s-1), (ys-cy)*(1/s-1)])
        outs.append(warp(N[0], flow, mode=mode).clamp(0,1))
    return outs
for mode in ("bilinear", "bicubic", "nearest"):
    outs = attached(mode)
    print(f"attached-to-scene {mode:9s} ratio {metric(frames, outs, mfl)/e0:.3f} style(vs N) {yard(rec,[outs[t] for t in idx])/s0-1:+.1%}", flush=True)
def unsharp(x, k, s=0.7): return (x + k*(x-gauss(x,s))).clamp(0,1)
for k in (0.5, 1.0):
    print(f"warp1 bilinear + unsharp {k}: {yard(rec,[unsharp(warp(N[t-1], fl[t][0]),k) for t in idx])/s0-1:+.1%}", flush=True)
    print(f"warp1 bicubic + unsharp {k}: {yard(rec,[unsharp(warp(N[t-1], fl[t][0], mode='bicubic'),k) for t in idx])/s0-1:+.1%}", flush=True)
