import sys, time, torch, torch.nn.functional as F, pickle, os
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3] / "tools")); sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
torch.set_grad_enabled(False)
from types import SimpleNamespace
from cvtools.video import synthetic
from cvtools.video.flow import FlowEstimator, FarnebackEstimator, warp
from cvtools.video.stability import TemporalStabilizer, _soft_keep, FlickerMeter

T = int(os.environ.get("T", 16))
def get_clip(kind):
    return synthetic.make_clip(kind, T, (160, 256))

def stylizer_for(name):
    if name == "any":
        from cvtools.style.painting import NetworkPaintingStylizer
        s = NetworkPaintingStylizer(os.environ.get("CVTOOLS_SHARED", "../shared") + "/styles/shipwreck_minotaur.jpg", device="cpu", precision="fp32")
        s.record = SimpleNamespace(name="any_shipwreck", provenance={"file": "shipwreck_minotaur.jpg"}, recipe={"style_size": 512})
        return s
    from cvtools.style.stylize import Stylizer
    return Stylizer(name, device="cpu", precision="fp32")

def run_net(kind, name):
    path = f"/tmp/cvtools_stable_explore_cache_{kind}_{name}_{T}.pt"
    if os.path.exists(path):
        return torch.load(path)
    clip = get_clip(kind); st = stylizer_for(name)
    frames = list(clip.frames)
    fbf = [st(f, tile=None)[None] for f in frames]
    lock = TemporalStabilizer(0.35)  # DIS flows + phase
    locked, flows = [], []
    for f in frames:
        x = lock.prepare(f)
        flow, occ, (px, py), (h, w) = lock._pending.popleft()
        y = st(x, tile=None)[None][..., py:py + h, px:px + w]
        locked.append(y); flows.append((flow, occ))
    d = dict(frames=frames, fbf=fbf, locked=locked, flows=flows)
    torch.save(d, path)
    return d

def metric_flows(kind):
    path = f"/tmp/cvtools_stable_explore_fb_{kind}_{T}.pt"
    if os.path.exists(path):
        return torch.load(path)
    clip = get_clip(kind); est = FarnebackEstimator()
    fr = list(clip.frames)
    fl = [None] + [est.pair(fr[t], fr[t - 1]) for t in range(1, len(fr))]
    torch.save(fl, path)
    return fl

def metric(frames, outs, fl):
    m = FlickerMeter()
    for t, (a, b) in enumerate(zip(frames, outs)):
        if t == 0: m.add(a, b)
        else: m.add(a, b, flow=fl[t][0], occluded=fl[t][1])
    return m.value
