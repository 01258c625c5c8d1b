"""HiResCAM, XGrad-CAM, Eigen-CAM, Score-CAM and Ablation-CAM against float64 recomputations of
pytorch-grad-cam's formulas (written out here, one image and one channel at a time, as it does
them) on tiny random-weight networks; the Ablation-CAM shortcut and its fallback; the CAM base
class (a method that overrides only its weights) and the registry's option checks; the CLI."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SAMPLES
from torch import nn

from cvtools.backbones.base import Backbone, LayerDefaults, Preprocessing
from cvtools.errors import UsageError
from cvtools.visualize.cam import gradcam_weights
from cvtools.visualize.cams import CAM, GradCAM
from cvtools.visualize.catalog import METHOD_INFO, parse_methods
from cvtools.visualize.methods import METHODS, make_method, make_methods

NEW = ["hirescam", "xgradcam", "eigencam", "scorecam", "ablationcam"]


class TinyNet(nn.Module):
    """conv-ReLU-conv-ReLU ("act", the CAM layer: 6 channels at 1/4 size) - [conv-ReLU] - mean - linear.

    With ``gap_head`` the layer feeds the pooling directly: its gradient is then the same at every
    position, and HiResCAM, XGrad-CAM and Grad-CAM coincide; the conv head makes them differ."""

    def __init__(self, skip=False, gap_head=False):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 6, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.c3 = None if gap_head else nn.Conv2d(6, 6, 3, padding=1)
        self.skip = skip
        self.fc = nn.Linear(6 + (8 if skip else 0), 5)

    def forward(self, x):
        h = F.relu(self.c1(x))
        a = self.act(self.c2(h))
        if self.c3 is not None:
            a = F.relu(self.c3(a))
        if self.skip:  # a tensor from below the CAM layer joins it: not broadcastable over copies
            a = torch.cat([a, F.avg_pool2d(h, 2)], dim=1)
        return self.fc(a.mean(dim=(2, 3)))


def tiny(seed=0, skip=False, dtype=torch.float32, gap_head=False):
    torch.manual_seed(seed)
    model = TinyNet(skip, gap_head).to(dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Backbone(name="tiny", model=model, preprocessing=Preprocessing(mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3]),
                    layer_paths={"act": "act"}, defaults=LayerDefaults(style=[], content="", dream=[], cam="act"),
                    categories=[f"class{i}" for i in range(5)], min_size=1, dtype=dtype)


def inputs(n=3, h=20, w=28, seed=1):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- float64 references


def ref_forward(bb, z, replace=None):
    """float64 logits of normalised inputs ``z``, the CAM layer's output, optionally replaced."""
    seen = []

    def hook(m, i, o):
        seen.append(o)
        return replace(o) if replace else o

    h = bb.model.act.register_forward_hook(hook)
    try:
        return bb.model(z), seen[0]
    finally:
        h.remove()


def ref_layer(bb, x, target):
    """float64 activations, gradients of the target logit, logits and normalised input."""
    z = bb.normalize(x.double())
    a_holder = []

    def hook(m, i, o):
        o = o.detach().requires_grad_(True)
        a_holder.append(o)
        return o

    h = bb.model.act.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = bb.model(z)
            (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), a_holder[0])
    finally:
        h.remove()
    return a_holder[0].detach(), g, logits.detach(), z


def ref_scale(cam, size):
    """pytorch-grad-cam's relu + scale_cam_image (min-max with 1e-7, bilinear resize) twice."""
    cam = cam.clamp_min(0)
    cam = cam - cam.amin((1, 2), keepdim=True)
    cam = cam / (1e-7 + cam.amax((1, 2), keepdim=True))
    cam = F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    cam = cam - cam.amin((1, 2), keepdim=True)
    return cam / (1e-7 + cam.amax((1, 2), keepdim=True))


def reference(name, bb64, x, target):
    a, g, logits, z = ref_layer(bb64, x, target)
    n, c = a.shape[:2]
    if name == "hirescam":
        cam = (g * a).sum(1)
    elif name == "xgradcam":
        weights = (g * a / (a.sum((2, 3), keepdim=True) + 1e-7)).sum((2, 3))
        cam = (weights[:, :, None, None] * a).sum(1)
    elif name == "eigencam":
        cams = []
        for i in range(n):  # get_2d_projection, numpy's SVD, then this module's sign convention
            r = a[i].reshape(c, -1).T.numpy()
            r = r - r.mean(axis=0)
            _, _, vt = np.linalg.svd(r, full_matrices=True)
            p = r @ vt[0]
            p = p if (p * r.sum(axis=1)).sum() >= 0 else -p
            cams.append(torch.from_numpy(p.reshape(a.shape[2:])))
        cam = torch.stack(cams)
    elif name == "scorecam":
        up = F.interpolate(a, size=x.shape[-2:], mode="bilinear", align_corners=True)
        lo, hi = up.amin((2, 3), keepdim=True), up.amax((2, 3), keepdim=True)
        up = (up - lo) / (hi - lo + 1e-8)
        scores = torch.tensor([[float(bb64.model(z[i:i + 1] * up[i:i + 1, k:k + 1])[0, target[i]]) for k in range(c)]
                               for i in range(n)], dtype=torch.float64)
        cam = (scores.softmax(-1)[:, :, None, None] * a).sum(1)
    elif name == "ablationcam":  # the whole network once per channel, the channel set to 0
        assert a.min() == 0  # a ReLU layer: pytorch-grad-cam ablates to 0 here too

        def ablated(i, k):
            def zero(o):
                o = o.clone()
                o[:, k] = 0
                return o
            return float(ref_forward(bb64, z[i:i + 1], zero)[0][0, target[i]])

        y = logits.gather(1, target[:, None])
        scores = torch.tensor([[ablated(i, k) for k in range(c)] for i in range(n)], dtype=torch.float64)
        cam = (((y - scores) / y)[:, :, None, None] * a).sum(1)
    return ref_scale(cam, tuple(x.shape[-2:]))


# fp32 against float64: the map is a sum over <= 6 channels of products of values that went
# through two convolutions of <= 72 terms and a 6- to 14-term linear layer; each fp32 value carries
# a relative error of at most ~100 * 2^-24 ≈ 6e-6, and min-max scaling by a range of order one
# keeps it absolute. Softmax (Score-CAM) and the ablation ratio do not amplify it here (logit
# gaps and ratios of order one on this network).
TOL = 2e-5


@pytest.mark.parametrize("name", NEW)
def test_new_cams_equal_float64_references(name):
    bb, bb64 = tiny(), tiny(dtype=torch.float64)
    x = inputs()
    target = torch.tensor([1, 2, 1])  # logits of class 1 are positive, of class 2 negative
    ours = make_method(name, bb, internal_batch_size=4)(x, target)  # 4 < 6 channels: two passes per image
    ref = reference(name, bb64, x, target).float()
    assert ours.shape == (3, 20, 28) and ours.amin() == 0
    assert (ours.amax(dim=(1, 2)) == 1).sum() >= 2  # real maps (one may be all zero after the ReLU)
    assert (ours - ref).abs().max().item() < TOL, name


def test_new_cams_differ_from_each_other_and_from_gradcam():
    """The formulas are not secretly one: every pair of maps differs somewhere by > 0.01."""
    bb = tiny()
    x = inputs()
    target = torch.tensor([0, 3, 4])
    maps = {n: make_method(n, bb)(x, target) for n in NEW + ["gradcam"]}
    names = list(maps)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert (maps[a] - maps[b]).abs().max() > 0.01, (a, b)


def test_hirescam_and_xgradcam_are_gradcam_on_a_pooling_head():
    """Where the layer feeds global average pooling and a linear layer, the gradient is the same
    at every position, so HiResCAM and XGrad-CAM reduce to Grad-CAM (a check of both formulas)."""
    bb = tiny(gap_head=True)
    x = inputs()
    grad = make_method("gradcam", bb)(x, 2)
    for name in ("hirescam", "xgradcam"):
        assert (make_method(name, bb)(x, 2) - grad).abs().max() < 1e-5, name


def test_ablation_shortcut_falls_back_when_the_layer_is_joined_by_earlier_tensors():
    """With a concatenation of a tensor from below the layer, feeding one image for many ablated
    copies cannot work: the whole network runs per copy, and the map still equals the reference."""
    bb, bb64 = tiny(skip=True), tiny(skip=True, dtype=torch.float64)
    x = inputs(2)
    target = torch.tensor([1, 2])
    ours = make_method("ablationcam", bb, internal_batch_size=4)(x, target)
    ref = reference("ablationcam", bb64, x, target).float()
    assert (ours - ref).abs().max().item() < TOL


def test_ablation_shortcut_runs_only_the_layers_above(monkeypatch):
    """The shortcut feeds the network one image per pass: the convolutions below the layer see
    batch 1 while the linear layer sees the ablated copies."""
    bb = tiny()
    batches = {"c1": [], "fc": []}
    hooks = [getattr(bb.model, k).register_forward_pre_hook(lambda m, i, k=k: batches[k].append(i[0].shape[0]))
             for k in batches]
    try:
        make_method("ablationcam", bb, internal_batch_size=4).attribute(inputs(2), torch.tensor([1, 2]))
    finally:
        for h in hooks:
            h.remove()
    assert batches["c1"] == [2] + [1] * 4  # the first pass, then two chunks (4 + 2 channels) per image
    assert batches["fc"] == [2, 5, 3, 5, 3]  # chunk + the untouched copy


def test_eigencam_ignores_the_target_and_scorecam_follows_it():
    bb = tiny()
    x = inputs(2)
    eigen = make_method("eigencam", bb)
    assert torch.equal(eigen(x, torch.tensor([0, 0])), eigen(x, torch.tensor([4, 2])))
    score = make_method("scorecam", bb)
    assert not torch.allclose(score(x, torch.tensor([0, 0])), score(x, torch.tensor([4, 2])))


def test_registered_with_aliases_and_help():
    assert set(NEW) <= set(METHODS) and set(NEW) <= set(METHOD_INFO)
    assert parse_methods("score-cam,HiResCAM,x-gradcam") == ["scorecam", "hirescam", "xgradcam"]
    assert set(NEW) <= set(parse_methods("all"))
    assert all(METHOD_INFO[n].uses_layer and not METHOD_INFO[n].pixel_level for n in NEW)


def test_a_cam_defined_by_its_weights_alone():
    """A new CAM overrides only get_cam_weights: with Grad-CAM's weights it gives Grad-CAM's map
    exactly; with the mean of the activations instead (gradient-free) it is its own map."""

    class MyGradCAM(CAM):
        name = "gradcam"  # borrows Grad-CAM's catalog entry (title, display) for the test

        def get_cam_weights(self, x, lg):
            return gradcam_weights(lg.activation, lg.gradient)

    class MeanCAM(CAM):
        name = "gradcam"
        needs_gradients = False

        def get_cam_weights(self, x, lg):
            assert lg.gradient is None and lg.target.tolist() == [0, 3, 4]
            return lg.activation.float().mean(dim=(2, 3), keepdim=True)

    bb = tiny()
    x = inputs()
    target = torch.tensor([0, 3, 4])
    assert torch.equal(MyGradCAM(bb)(x, target), GradCAM(bb)(x, target))
    assert torch.equal(MyGradCAM(bb, layer="act").attribute(x, target), make_method("gradcam", bb).attribute(x, target))
    mean = MeanCAM(bb)(x, target)
    assert mean.shape == (3, 20, 28) and 0 <= mean.min() and mean.max() == 1
    assert (mean - GradCAM(bb)(x, target)).abs().max() > 0.01


def test_unknown_options_are_refused_in_one_line():
    bb = tiny()
    with pytest.raises(UsageError) as err:
        make_method("gradcam", bb, stpes=8)
    assert "'stpes'" in str(err.value) and "gradcam" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UsageError, match="scorecam takes no option 'samples'"):
        make_method("scorecam", bb, samples=8)
    make_method("scorecam", bb, samples=None, internal_batch_size=4, layer="act")  # None: the default
    # A panel (the command line's one set of options): each method gets the options it takes ...
    panel = make_methods(["gradcam", "smoothgrad"], bb, layer="act", samples=4, internal_batch_size=4)
    assert panel[0].layer == "act" and panel[1].samples == 4
    # ... and an option no method takes at all is refused.
    with pytest.raises(UsageError, match="no attribution method takes the option 'stpes'.*gradcam, smoothgrad"):
        make_methods(["gradcam", "smoothgrad"], bb, stpes=8)


def test_the_registry_is_one_explicit_table():
    """Every CAM class is registered by the table in methods.py, importing nothing else."""
    import cvtools.visualize.cams as cams
    from cvtools.visualize.attribution import METHODS as old_name

    assert old_name is METHODS  # the old import path still works
    assert all(METHODS[cls.name] is cls for cls in cams.CAMS)
    assert {n for n, c in METHODS.items() if issubclass(c, CAM)} == {c.name for c in cams.CAMS}


def test_cli_hirescam_and_ablationcam(run_cli, tmp_path):
    r = run_cli("visualize", "hirescam", SAMPLES / "chelsea.jpg", "-m", "ablationcam", "--size", "64", "--raw",
                "-o", f"{tmp_path}/", "--device", "cpu", "--internal-batch-size", "640")
    assert r.exit_code == 0, r.output
    raw = np.load(tmp_path / "chelsea_hirescam_ablationcam_ablationcam.npy")
    assert raw.shape[0] == 1 and raw.min() >= 0 and 0.5 < raw.max() <= 1
    r = run_cli("visualize", "--help")
    assert "hirescam" in r.stdout and "scorecam" in r.stdout and "ablationcam" in r.stdout
