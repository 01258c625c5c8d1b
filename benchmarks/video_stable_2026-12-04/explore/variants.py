import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from exp import *
from cvtools.video.stability import _soft_keep

def gauss(x, sigma):
    if sigma <= 0: return x
    r = int(3 * sigma + 0.5); k = torch.exp(-torch.arange(-r, r + 1).float() ** 2 / (2 * sigma ** 2)); k /= k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)

def recursive(N, flows, alpha, mode="bilinear", tau=None, low=0.0, feather=2, hp_keep=0.0):
    outs, prev = [], None
    for t, n in enumerate(N):
        if prev is None:
            out = n
        else:
            flow, occ = flows[t]
            keep = _soft_keep(occ, feather)
            w = warp(prev, flow, mode=mode).clamp(0, 1)
            a = alpha * keep
            if tau is not None:
                d = gauss((n - w).abs().mean(1, keepdim=True), 2.0)
                a = a * torch.exp(-(d / tau) ** 2)
            if low > 0:
                out = n + a * gauss(w - n, low)
            else:
                out = n + a * (w - n)
                if hp_keep:
                    # give back the high-pass the blend took away, from the network's own output
                    out = out + hp_keep * a * ((n - gauss(n, 1.0)) - (w - gauss(w, 1.0)))
        outs.append(out.clamp(0, 1)); prev = outs[-1]
    return outs

def fir(N, flows, K, mode="bilinear"):
    outs = []
    for t in range(len(N)):
        acc, wsum = N[t].clone(), torch.ones_like(N[t][:, :1])
        flow = None; occ = None
        for k in range(1, K):
            if t - k < 0: break
            f, o = flows[t - k + 1]
            if flow is None:
                flow, occm = f, o.float()[None, None]
            else:
                occm = torch.maximum(occm, warp(o.float()[None, None], flow))
                flow = flow + warp(f, flow)
            keep = _soft_keep(occm[0, 0] > 0.01, 2)
            acc = acc + keep * warp(N[t - k], flow, mode=mode); wsum = wsum + keep
        outs.append((acc / wsum).clamp(0, 1))
    return outs

VARIANTS = {
    "locked": lambda N, fl: N,
    "rec.35": lambda N, fl: recursive(N, fl, 0.35),
    "rec.35cub": lambda N, fl: recursive(N, fl, 0.35, "bicubic"),
    "rec.5cub": lambda N, fl: recursive(N, fl, 0.5, "bicubic"),
    "rec.5low2": lambda N, fl: recursive(N, fl, 0.5, low=2.0),
    "rec.5tau": lambda N, fl: recursive(N, fl, 0.5, tau=0.08),
    "rec.5hp": lambda N, fl: recursive(N, fl, 0.5, hp_keep=1.0),
    "fir2": lambda N, fl: fir(N, fl, 2),
    "fir3": lambda N, fl: fir(N, fl, 3),
    "fir3cub": lambda N, fl: fir(N, fl, 3, "bicubic"),
}
if __name__ == "__main__":
    from video_flicker import StyleYardstick
    from pathlib import Path
    yard = StyleYardstick(Path(os.environ.get("CVTOOLS_SHARED", "../shared") + ""))
    names = sys.argv[2].split(","); want = sys.argv[3].split(",") if len(sys.argv) > 3 else list(VARIANTS)
    for kind in sys.argv[1].split(","):
        fl = metric_flows(kind)
        for name in names:
            d = run_net(kind, name); rec = stylizer_for(name).record
            sub = lambda outs: outs[2::3]
            e0 = metric(d["frames"], d["fbf"], fl); s0 = yard(rec, sub(d["fbf"]))
            print(f"{kind} {name} fbf err {e0*1e3:.3f} style {s0:.4f}", flush=True)
            for v in want:
                outs = VARIANTS[v](d["locked"], d["flows"])
                e = metric(d["frames"], outs, fl); s = yard(rec, sub(outs))
                print(f"   {v:10s} ratio {e/e0:.3f} style {s/s0-1:+.1%}", flush=True)
