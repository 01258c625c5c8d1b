import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from exp import *
from variants import gauss
from video_flicker import StyleYardstick
from pathlib import Path
yard = StyleYardstick(Path(os.environ.get("CVTOOLS_SHARED", "../shared") + ""))
kind, name = sys.argv[1], sys.argv[2]
d = run_net(kind, name); rec = stylizer_for(name).record
N, fl = d["locked"], d["flows"]
idx = list(range(2, T, 3))
s0 = yard(rec, [N[t] for t in idx])
def rep(label, outs):
    print(f"{label:24s} {yard(rec, outs)/s0-1:+.1%}", flush=True)
for mode in ("bilinear", "bicubic", "nearest"):
    rep("warp1 " + mode, [warp(N[t-1], fl[t][0], mode=mode).clamp(0,1) for t in idx])
rep("avg N_t,N_t (same)", [N[t] for t in idx])
rep("blur 0.5", [gauss(N[t], 0.5) for t in idx])
rep("contrast 0.95", [(gauss(N[t],2)+0.95*(N[t]-gauss(N[t],2))) for t in idx])
rep("avg N_t, N_t-1 unwarped", [(N[t]+N[t-1])/2 for t in idx])
rep("fir2 nearest", [(N[t]+warp(N[t-1], fl[t][0], mode="nearest"))/2 for t in idx])
# correlation of HP parts
for t in idx[:3]:
    a = N[t]-gauss(N[t],2); b = warp(N[t-1], fl[t][0]); b = b-gauss(b,2)
    print("hp var %.4f %.4f corr %.3f" % (a.var(), b.var(), float((a*b).mean()/ (a.pow(2).mean()*b.pow(2).mean()).sqrt())))
