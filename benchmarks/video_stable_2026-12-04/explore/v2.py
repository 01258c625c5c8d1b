import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from exp import *
from variants import gauss
from cvtools.video.stability import _soft_keep
from video_flicker import StyleYardstick
from pathlib import Path

def sharp_warp(prev, flow, k, sigma=0.7, adaptive=False):
    w = warp(prev, flow)
    if k == 0: return w
    hp = w - gauss(w, sigma)
    if adaptive:
        fr = flow - flow.floor()
        v = (fr * (1 - fr)).sum(0)[None, None] / 0.25  # 0 at integer flow, 2 at (0.5, 0.5)
        return (w + k * v * hp).clamp(0, 1)
    return (w + k * hp).clamp(0, 1)

def rec(N, flows, alpha, k=0.0, adaptive=False, tau=None):
    outs, prev = [], None
    for t, n in enumerate(N):
        if prev is None: out = n
        else:
            flow, occ = flows[t]
            a = alpha * _soft_keep(occ, 2)
            w = sharp_warp(prev, flow, k, adaptive=adaptive)
            if tau is not None:
                dd = gauss((n - w).abs().mean(1, keepdim=True), 2.0)
                a = a * torch.exp(-(dd / tau) ** 2)
            out = n + a * (w - n)
        outs.append(out.clamp(0, 1)); prev = outs[-1]
    return outs

V = {
 "rec.35": lambda N, f: rec(N, f, .35),
 "rec.35k.5": lambda N, f: rec(N, f, .35, .5),
 "rec.35ad.5": lambda N, f: rec(N, f, .35, .5, True),
 "rec.35ad.35": lambda N, f: rec(N, f, .35, .35, True),
 "rec.5ad.5": lambda N, f: rec(N, f, .5, .5, True),
 "rec.25ad.5": lambda N, f: rec(N, f, .25, .5, True),
}
V2 = {
 "a.8t.03": lambda N, f: rec(N, f, .8, tau=.03),
 "a.6t.05": lambda N, f: rec(N, f, .6, tau=.05),
 "a.3t.1": lambda N, f: rec(N, f, .3, tau=.1),
}
V.update(V2)

def _main():
    yard = StyleYardstick(Path(os.environ.get("CVTOOLS_SHARED", "../shared") + ""))
    want = sys.argv[3].split(",") if len(sys.argv) > 3 else list(V)
    for kind in sys.argv[1].split(","):
        fl = metric_flows(kind)
        for name in sys.argv[2].split(","):
            d = run_net(kind, name); r = stylizer_for(name).record
            sub = lambda o: o[2::3]
            e0 = metric(d["frames"], d["fbf"], fl); s0 = yard(r, sub(d["fbf"]))
            print(f"{kind} {name} fbf {e0*1e3:.3f} style {s0:.4f} | locked {metric(d['frames'], d['locked'], fl)/e0:.3f}", flush=True)
            for v in want:
                o = V[v](d["locked"], d["flows"])
                print(f"   {v:12s} ratio {metric(d['frames'], o, fl)/e0:.3f} style {yard(r, sub(o))/s0-1:+.1%}", flush=True)
if __name__ == "__main__":
    _main()
