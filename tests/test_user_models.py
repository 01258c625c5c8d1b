"""Networks users bring (issue #27, cvtools.backbones.user_model): every format loads as a Backbone
whose logits are the original model's, whose layers are N×C×h×w maps (token sequences and
channels-last maps reshaped, gradients flowing through), and every bad file is one line naming it.

All tiny and on the CPU: a 10-class CNN (state dict, TorchScript, .pt2, pickled module), resnet18
with a 12-class head at 64 px, a 2-block ViT at 32 px, Swin and ConvNeXt at 64 px.

Tolerances: where the same operators run on the same numbers (no folding, the same layout) the
logits are compared exactly. BatchNorm folding rescales each convolution's weights before the
sum instead of after it, so each output moves by float32 rounding (2^-24 relative) of its K
products, at most ~K·2^-24 of the sum of their magnitudes (K <= 576 here); compounded over a
few layers, rtol 1e-4 with atol 1e-4·max|logit| bounds it (measured differences ~1e-6).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import pytest
import torch
from torch import nn

from cvtools.backbones import load_user_model
from cvtools.errors import CvtoolsError, UsageError, WeightsError

CPU = dict(device="cpu", precision="fp32")
EXACT = dict(CPU, fuse=False, channels_last=False)


class SmallNet(nn.Module):
    """10 classes, three resolutions (32, 16, 8 px at a 32-px input), BatchNorm after two convs."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def small_net() -> SmallNet:
    torch.manual_seed(0)
    net = SmallNet().eval()
    for bn in (net.features[1], net.features[4]):  # statistics that make folding do something
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return net


def tiny_vit(classes: int = 5):
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=classes).eval()
    nn.init.normal_(vit.heads.head.weight)  # torchvision starts the head at zero: every gradient would be 0
    return vit


def reference_logits(net: nn.Module, bb, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(bb.normalize(x)).float()


def one_line_naming(exc: CvtoolsError, name: str) -> str:
    text = str(exc)
    assert "\n" not in text and name in text, text
    return text


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The small CNN saved every way a user might have it."""
    d = tmp_path_factory.mktemp("user_models")
    net = small_net()
    x = torch.rand(2, 3, 32, 32)
    torch.save(net.state_dict(), d / "net.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
                "class_names": [f"kind {i}" for i in range(10)], "epoch": 3}, d / "checkpoint.pth")
    torch.save(net, d / "pickled.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(net), d / "net.ts",
                       _extra_files={"class_names": "\n".join(f"ts {i}" for i in range(10))})
    dynamic = {"x": {0: torch.export.Dim.DYNAMIC}}
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=dynamic), d / "net.pt2")
    torch.export.save(torch.export.export(net, (x[:1],)), d / "static_batch.pt2")
    return d, net


# ---------------------------------------------------------------------- the formats

def test_state_dict_with_a_callable_architecture(files):
    d, net = files
    x = torch.rand(3, 3, 32, 32)
    bb = load_user_model(d / "net.pth", SmallNet, input_size=32, **EXACT)
    assert torch.equal(bb(x), reference_logits(net, bb, x))
    fused = load_user_model(d / "net.pth", SmallNet, input_size=32, **CPU)
    ref = reference_logits(net, bb, x)
    torch.testing.assert_close(fused(x), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert fused.fast_path == "BatchNorm folded into 2 convolutions" and bb.fast_path == "BatchNorm folding off"
    assert bb.categories == [f"class {i}" for i in range(10)]
    assert bb.defaults.cam == "features"  # the last map before pooling (the Sequential: its last ReLU's output)
    assert bb.defaults.style == ["features.2", "features.5"] and bb.defaults.dream == ["features.5"]
    feats = bb.features(x, [bb.defaults.cam, "features.2"])
    assert feats["features"].shape == (3, 16, 8, 8) and feats["features.2"].shape == (3, 8, 32, 32)
    layers = {info.name: info for info in bb.layers}
    assert layers["features.5"].shape == (16, 16, 16) and layers["features.5"].stride == 2
    assert layers["fc"].shape == (10,) and layers["fc"].stride == 0


def test_training_checkpoint_with_class_names_and_a_wrapper_prefix(files):
    d, net = files
    bb = load_user_model(d / "checkpoint.pth", SmallNet, input_size=32, **EXACT)
    assert bb.categories[:2] == ["kind 0", "kind 1"]
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(net, bb, x))


def test_torchscript_runs_without_layers(files):
    d, net = files
    bb = load_user_model(d / "net.ts", input_size=32, **CPU)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(net, bb, x))
    assert bb.categories[3] == "ts 3" and bb.layers == [] and not bb.channels_last
    with pytest.raises(UsageError, match="TorchScript runs its submodules") as exc:
        bb.check_layers([bb.defaults.cam])
    one_line_naming(exc.value, "net.ts")
    # Input gradients still flow: saliency-type methods work.
    x.requires_grad_(True)
    bb(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_torchscript_input_size_is_found(files):
    d, _ = files
    bb = load_user_model(d / "net.ts", **CPU)
    assert bb.preprocessing.crop_size == 224  # the first size tried that runs (a pooling CNN takes any)


def test_exported_program_is_unflattened_and_tapped(files):
    d, net = files
    bb = load_user_model(d / "net.pt2", **CPU)
    assert bb.preprocessing.crop_size == 32 and "fixed-size" in bb.fast_path  # exported at 32x32
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(net, bb, x))
    assert bb.defaults.cam == "features"
    assert bb.features(x, [bb.defaults.cam])["features"].shape == (2, 16, 8, 8)
    # Other sizes are resized to the program's: a CAM over a 48x40 photo still runs.
    from cvtools.visualize.cam import gradcam

    assert gradcam(bb, torch.rand(1, 3, 48, 40)).shape == (1, 48, 40)


def test_pickled_module_is_refused_unless_trusted(files):
    d, net = files
    with pytest.raises(WeightsError, match="pickled whole module") as exc:
        load_user_model(d / "pickled.pth", **CPU)
    text = one_line_naming(exc.value, "pickled.pth")
    assert "state_dict" in text and "torch.export" in text and "trust_pickle=True" in text
    bb = load_user_model(d / "pickled.pth", trust_pickle=True, input_size=32, **EXACT)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(net, bb, x))


def test_a_module_object(files):
    _, net = files
    bb = load_user_model(net, input_size=32, **CPU)
    assert bb.name == "SmallNet" and bb.defaults.cam == "features"
    assert net.features[1].__class__ is nn.BatchNorm2d  # the caller's module is not folded in place


# ---------------------------------------------------------------------- torchvision and timm architectures

@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=12).eval()
    path = tmp_path_factory.mktemp("resnet") / "finetuned.safetensors"
    from safetensors.torch import save_file

    save_file(net.state_dict(), str(path))
    return path, net


@pytest.mark.slow
def test_torchvision_architecture_with_a_12_class_head(resnet_file, tmp_path):
    path, net = resnet_file
    bb = load_user_model(path, "resnet18", input_size=64, **EXACT)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(bb(x), reference_logits(net, bb, x))
    assert "12-class head" in bb.weights_desc and len(bb.categories) == 12
    pre = bb.preprocessing
    assert (pre.crop_size, pre.resize_size, pre.interpolation) == (64, 73, "bilinear")  # torchvision's 256/224
    from cvtools.backbones import get_spec

    spec = get_spec("resnet18")  # the automatic defaults are the registry's choices (as module paths)
    path_of = spec.layers.__getitem__
    assert (bb.defaults.style, bb.defaults.content, bb.defaults.dream, bb.defaults.cam) == \
        ([path_of(n) for n in spec.defaults.style], path_of(spec.defaults.content),
         [path_of(n) for n in spec.defaults.dream], path_of(spec.defaults.cam))
    assert bb.features(x, ["layer4"])["layer4"].shape == (2, 512, 2, 2)
    names = tmp_path / "labels.json"
    names.write_text(json.dumps({str(i): f"label {i}" for i in range(12)}))
    assert load_user_model(path, "resnet18", input_size=64, classes=names, **EXACT).categories[11] == "label 11"


@pytest.mark.slow
def test_class_names_must_match_the_head(resnet_file, tmp_path):
    path, _ = resnet_file
    txt = tmp_path / "labels.txt"
    txt.write_text("cat\ndog\n")
    with pytest.raises(UsageError, match="2 class names for a model with 12 outputs") as exc:
        load_user_model(path, "resnet18", input_size=64, classes=txt, **EXACT)
    one_line_naming(exc.value, "labels.txt")


def test_state_dict_of_another_architecture(resnet_file):
    path, _ = resnet_file
    with pytest.raises(WeightsError, match="not a resnet34 \\(torchvision\\) state dict: .*missing") as exc:
        load_user_model(path, "resnet34", input_size=64, **CPU)
    one_line_naming(exc.value, "finetuned.safetensors")
    with pytest.raises(UsageError, match="did you mean .*'resnet18'"):
        load_user_model(path, "resnet1", **CPU)
    with pytest.raises(UsageError, match="architecture=NAME") as exc:
        load_user_model(path, **CPU)
    one_line_naming(exc.value, "finetuned.safetensors")


def test_timm_vit_from_a_state_dict(tmp_path):
    timm = pytest.importorskip("timm", reason="timm is optional; its architectures load only where it is installed")
    kwargs = dict(img_size=32, patch_size=8, depth=2)
    torch.manual_seed(0)
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5, **kwargs).eval()
    torch.save(net.state_dict(), tmp_path / "vit.pth")
    bb = load_user_model(tmp_path / "vit.pth", "timm:vit_tiny_patch16_224", architecture_kwargs=kwargs, **EXACT)
    assert bb.preprocessing.crop_size == 32 and list(bb.preprocessing.mean) == [0.5, 0.5, 0.5]  # timm's data config
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(net, bb, x))
    assert bb.defaults.cam == "blocks.1.norm1" and bb.defaults.dream == ["blocks.1"]
    assert bb.features(x, ["blocks.1"])["blocks.1"].shape == (2, 192, 4, 4)


# ---------------------------------------------------------------------- transformers

def test_vit_tokens_become_maps_and_gradients_flow():
    vit = tiny_vit()
    bb = load_user_model(vit, **EXACT)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(vit, bb, x))
    # The class token is all the head reads: after the last attention, patch tokens reach nothing.
    assert bb.defaults.cam == "encoder.layers.encoder_layer_1.ln_1"
    assert bb.defaults.dream == ["encoder.layers.encoder_layer_1"]
    info = {i.name: i for i in bb.layers}[bb.defaults.cam]
    assert info.shape == (32, 4, 4) and "1 leading token dropped" in info.view
    x.requires_grad_(True)
    feats = bb.features(x, [bb.defaults.cam, "encoder.ln"])
    assert feats[bb.defaults.cam].shape == (2, 32, 4, 4)
    feats[bb.defaults.cam][:, :, 1:3, 1:3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The map is the tokens laid out row by row: token 1 + 4*i + j is position (i, j).
    with bb.tap(["encoder.ln"], stop_early=False) as store:
        tokens = []
        h = bb.model.net.encoder.ln.register_forward_hook(lambda m, i, o: tokens.append(o))
        try:
            bb.model(bb.prepare(x.detach()))
        finally:
            h.remove()
    assert torch.equal(store["encoder.ln"][:, :, 2, 3], tokens[0][:, 1 + 4 * 2 + 3])


def test_vit_any_input_size_is_resized():
    bb = load_user_model(tiny_vit(), **CPU)
    assert bb(torch.rand(1, 3, 48, 40)).shape == (1, 5)
    assert bb.features(torch.rand(1, 3, 48, 40), [bb.defaults.cam])[bb.defaults.cam].shape == (1, 32, 4, 4)


def test_vit_gradcam_matches_a_float64_recomputation():
    """Grad-CAM through the token view equals the formula on the reshaped activations in float64."""
    from cvtools.visualize.attribution import make_method
    from cvtools.visualize.cam import upsample_cam

    vit = tiny_vit()
    bb = load_user_model(vit, **CPU)
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    maps = make_method("gradcam", bb).attribute(x)
    assert maps.shape == (2, 1, 32, 32)

    ref = tiny_vit().double()
    tokens = []
    layer = ref.encoder.layers.encoder_layer_1.ln_1
    h = layer.register_forward_hook(lambda m, i, o: tokens.append(o))
    try:
        logits = ref(bb.normalize(x).double())
    finally:
        h.remove()
    target = logits.argmax(dim=1)
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), tokens[0])
    grid = lambda t: t[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4)  # noqa: E731  (class token dropped)
    a, g = grid(tokens[0]), grid(grad)
    cam = (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True).clamp_min(0)
    expected = upsample_cam(cam, (32, 32))
    torch.testing.assert_close(maps.double(), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", ["gradcam++", "layercam", "hirescam", "xgradcam", "eigencam", "scorecam",
                                    "ablationcam"])
def test_every_cam_method_runs_on_a_vit(method):
    from cvtools.visualize.attribution import make_method

    bb = load_user_model(tiny_vit(), **CPU)
    maps = make_method(method, bb).attribute(torch.rand(2, 3, 32, 32))
    assert maps.shape == (2, 1, 32, 32) and bool(torch.isfinite(maps).all())


def test_mean_std_and_size_can_be_set(files):
    d, _ = files
    bb = load_user_model(d / "net.pth", SmallNet, input_size=48, mean=[0.5, 0.5, 0.5], std=(0.25, 0.25, 0.25), **CPU)
    assert (bb.preprocessing.crop_size, list(bb.preprocessing.mean), list(bb.preprocessing.std)) == \
        (48, [0.5] * 3, [0.25] * 3)
    with pytest.raises(UsageError, match="^std must be three numbers"):
        load_user_model(d / "net.pth", SmallNet, std=[1, 0, 1], **CPU)


def test_vit_from_a_state_dict_with_a_callable(tmp_path):
    vit = tiny_vit()
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    bb = load_user_model(tmp_path / "vit.pth", lambda: tiny_vit(), **EXACT)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(vit, bb, x))


def test_swin_channels_last_stages_are_permuted():
    from torchvision.models.swin_transformer import SwinTransformer

    torch.manual_seed(0)
    # embed_dim 16 at 64 px: the first stage is 16×16×16, where only a second size tells the layout
    swin = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                           window_size=[2, 2], num_classes=5).eval()
    bb = load_user_model(swin, input_size=64, **EXACT)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(bb(x), reference_logits(swin, bb, x))
    views = {i.name: i.view for i in bb.layers}
    assert "permuted" in views["features.1"] and "permuted" in views["features.3"]
    assert bb.defaults.cam == "permute" and bb.defaults.style == ["features.1", "features.3", "features.5"]
    feats = bb.features(x, ["features.1", "features.5", "permute"])
    assert [tuple(f.shape) for f in feats.values()] == [(1, 16, 16, 16), (1, 64, 4, 4), (1, 128, 2, 2)]
    from cvtools.visualize.cam import gradcam

    assert gradcam(bb, x, layer="features.5").shape == (1, 64, 64)  # a hook on a permuted layer


def test_convnext_maps():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    torch.manual_seed(0)
    net = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1),
                    CNBlockConfig(64, None, 1)], num_classes=5).eval()
    bb = load_user_model(net, input_size=64, **CPU)
    assert bb.fast_path == "no convolution followed by BatchNorm to fold"  # LayerNorm network: nothing folded
    assert bb.defaults.cam == "features" and bb.defaults.dream == ["features.5"]
    assert bb.features(torch.rand(1, 3, 64, 64), ["features"])["features"].shape == (1, 64, 2, 2)


def test_dream_runs_on_a_vit():
    from cvtools.dream.engine import dream

    bb = load_user_model(tiny_vit(), **CPU)
    x = torch.rand(1, 3, 40, 40)
    out = dream(x, bb, octaves=1, steps=2, tile=None, fast=False)
    assert out.shape == x.shape and not torch.equal(out, x)


# ---------------------------------------------------------------------- files that are not what they claim

class FourD(nn.Module):
    """A segmentation-like net: N×K×H×W out, not N×K scores."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x)


class OneLogit(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


class TwoChannels(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def _rewrite_zip(src, dst, edit):
    """Copy a zip archive, ``edit(name, bytes) -> bytes`` on each entry (stored, as torch writes)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, edit(info.filename, zin.read(info.filename)))


def _edit_program(name, data, key, value):
    if not name.endswith("models/model.json"):
        return data
    program = json.loads(data)
    program[key] = value
    return json.dumps(program).encode()


def bad_files(d, files_dir):
    """(file, architecture, expected message part) for each broken input."""
    cases = []
    (d / "empty.pth").write_bytes(b"")
    cases.append(("empty.pth", SmallNet, "empty model file"))
    (d / "text.pth").write_text("not a model\n")
    cases.append(("text.pth", SmallNet, "not a model file"))
    whole = (files_dir / "net.pth").read_bytes()
    (d / "truncated.pth").write_bytes(whole[: len(whole) // 2])
    cases.append(("truncated.pth", SmallNet, "truncated or damaged"))
    program = (files_dir / "net.pt2").read_bytes()
    (d / "truncated.pt2").write_bytes(program[: len(program) // 2])
    cases.append(("truncated.pt2", None, "truncated or damaged"))
    for net, name, message in ((FourD(), "segmentation.pt2", "returns a 2×4×32×32 tensor"),
                               (OneLogit(), "one_logit.pt2", "one score per image"),
                               (TwoChannels(), "two_channels.pt2", "not an N×3×H×W image batch")):
        example = torch.rand(2, 2 if isinstance(net, TwoChannels) else 3, 32, 32)
        torch.export.save(torch.export.export(net.eval(), (example,),
                                              dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}}), d / name)
        cases.append((name, None, message))
    torch.export.save(torch.export.export(nn.Flatten().eval(), (torch.rand(2, 3, 8),)), d / "rank3.pt2")
    cases.append(("rank3.pt2", None, "not an N×3×H×W image batch"))
    marker = d / "ran"
    _rewrite_zip(files_dir / "net.pt2", d / "guarded.pt2", lambda n, b: _edit_program(
        n, b, "guards_code", [f"__import__('pathlib').Path({str(marker)!r}).touch()"]))
    cases.append(("guarded.pt2", None, "a guard that is not a size comparison"))
    _rewrite_zip(files_dir / "net.pt2", d / "pickled_weights.pt2", lambda n, b: b.replace(
        b'"use_pickle": false', b'"use_pickle": true') if n.endswith("weights_config.json") else b)
    cases.append(("pickled_weights.pt2", None, "pickled tensors"))
    torch.save({"weight": torch.full((4,), float("nan"))}, d / "nan.pth")
    cases.append(("nan.pth", lambda: nn.Sequential(nn.Linear(4, 1)), "not a Sequential state dict"))
    return cases, marker


def test_every_bad_file_is_one_line_naming_it(files, tmp_path):
    cases, marker = bad_files(tmp_path, files[0])
    for name, architecture, message in cases:
        path = tmp_path / name
        with pytest.raises(CvtoolsError) as exc:
            load_user_model(path, architecture, input_size=32, **CPU)
        text = one_line_naming(exc.value, path.name)
        assert message in text, (name, text)
    assert not marker.exists()  # the guard in the file never ran


def test_a_safetensors_header_cannot_claim_a_huge_head(resnet_file, tmp_path):
    """Shapes are used before tensors are read: one that does not match its bytes is refused."""
    path, _ = resnet_file
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["fc.weight"]["shape"] = [10 ** 9, 512]
    raw = json.dumps(header).encode()
    (tmp_path / "huge.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])
    with pytest.raises(WeightsError, match="shape and type do not match its data") as exc:
        load_user_model(tmp_path / "huge.safetensors", "resnet18", **CPU)
    one_line_naming(exc.value, "huge.safetensors")


def test_nan_weights_are_refused(tmp_path):
    torch.save({"0.weight": torch.full((2, 4), float("nan")), "0.bias": torch.zeros(2)}, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match="NaN") as exc:
        load_user_model(tmp_path / "nan.pth", lambda: nn.Sequential(nn.Linear(4, 2)), **CPU)
    one_line_naming(exc.value, "nan.pth")


def test_a_compressed_program_is_refused(files, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(files[0] / "net.pt2") as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    (tmp_path / "deflated.pt2").write_bytes(buf.getvalue())
    with pytest.raises(WeightsError, match="compressed entry") as exc:
        load_user_model(tmp_path / "deflated.pt2", **CPU)
    one_line_naming(exc.value, "deflated.pt2")


# ----------------------------------------------------------------------------- the command line


def test_an_untrained_vit_head_still_gets_the_last_blocks_norm_as_cam_layer(tmp_path):
    """torchvision starts a ViT's head at zero (every logit gradient is 0): the CAM default is
    found through the head's input, as for a trained head, for the module and for a .pt2."""
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=5).eval()
    assert not vit.heads.head.weight.any()
    program = torch.export.export(vit, (torch.rand(2, 3, 32, 32),),
                                  dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}})
    torch.export.save(program, tmp_path / "vit.pt2")
    for model in (vit, tmp_path / "vit.pt2"):
        assert load_user_model(model, **CPU).defaults.cam == "encoder.layers.encoder_layer_1.ln_1"


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A 12-class resnet18 state dict with a labels file, and a tiny ViT as a .pt2 (trained-looking head)."""
    import torchvision

    d = tmp_path_factory.mktemp("user")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=12).state_dict(), d / "ft.pth")
    (d / "labels.txt").write_text("\n".join(f"defect {i}" for i in range(12)))
    program = torch.export.export(tiny_vit(), (torch.rand(2, 3, 32, 32),),
                                  dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}})
    torch.export.save(program, d / "vit.pt2")
    from badinputs import photo

    photo(72, 56).save(d / "p.jpg", quality=95)
    return d


@pytest.mark.slow
def test_cli_explains_and_classifies_a_users_models(user_files, run_cli, tmp_path):
    import json

    d = user_files
    ft = ("--model", d / "ft.pth", "--arch", "resnet18", "--classes", d / "labels.txt")
    r = run_cli("classify", d / "p.jpg", *ft, "--json", "--top", "12")
    assert r.exit_code == 0, r.stderr
    top = json.loads(r.stdout)["top"]
    assert sorted(t["name"] for t in top) == sorted(f"defect {i}" for i in range(12))
    r = run_cli("visualize", "gradcam", d / "p.jpg", *ft, "--target", "defect 3", "--json", "-o", tmp_path / "a.jpg")
    assert r.exit_code == 0, r.stderr
    answer = json.loads(r.stdout)
    assert (answer["target"], answer["label"]) == (3, "defect 3") and (tmp_path / "a.jpg").exists()
    r = run_cli("visualize", "gradcam,layercam", d / "p.jpg", "--model", d / "vit.pt2", "-o", tmp_path / "v.jpg")
    assert r.exit_code == 0 and (tmp_path / "v.jpg").exists(), r.stderr
    r = run_cli("dream", d / "p.jpg", "--model", d / "vit.pt2", "--octaves", "1", "--steps", "1",
                "-o", tmp_path / "dream.jpg")
    assert r.exit_code == 0 and (tmp_path / "dream.jpg").exists(), r.stderr
    r = run_cli("layers", "--model", d / "vit.pt2")
    assert r.exit_code == 0 and "encoder.layers.encoder_layer_1.ln_1" in r.stdout and "cam" in r.stdout
    assert "tokens on the patch grid" in r.stdout


def test_cli_user_model_mistakes_are_one_line(user_files, run_cli):
    d = user_files
    for args, expected in [
        (("--model", d / "nope.pth"), "--model .*nope.pth: no such file"),
        (("--model", d / "ft.pth", "--arch", "resnet18", "--weights", d / "ft.pth"), "--weights is for --backbone"),
        (("--arch", "resnet18"), "--architecture goes with --model"),
        (("--model", d / "ft.pth", "--arch", "resnet50"), "ft.pth: not a resnet50"),
        (("--model", d / "ft.pth", "--arch", "resnet18", "--classes", d / "labels.txt", "--target", "defect 99"),
         "no class named 'defect 99'"),
    ]:
        r = run_cli("visualize", "gradcam", d / "p.jpg", *args)
        import re

        assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert re.search(expected, r.stderr), r.stderr


def test_layers_shows_no_stride_for_the_classifier_after_global_pooling(user_files, run_cli, tmp_path):
    """`cvtools layers --model r18.pt2` (a torch.export program) listed resnet18's fc with stride 0:
    after global pooling there is no grid, so it is "-" with a note, as for the same network
    loaded as a state dict; feature maps keep their strides."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 64, 64),)), tmp_path / "r18.pt2")
    for model in (("--model", tmp_path / "r18.pt2"), ("--model", user_files / "ft.pth", "--arch", "resnet18")):
        r = run_cli("layers", *model)
        assert r.exit_code == 0, r.stderr
        rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[3:] if line.startswith("  ")}
        assert rows["fc"][1] == "-", r.stdout
        assert rows["layer4"][1] == "32" and rows["conv1"][1] == "2"
        assert all(cols[1] != "0" for cols in rows.values() if len(cols) > 1), r.stdout
        assert "stride -: no spatial grid" in r.stdout


def test_sanity_check_on_an_exported_program_puts_its_weights_back(user_files):
    """A .pt2's graph cannot be deep-copied (symbolic tensors): the check randomises the network
    in place and restores it; the logits afterwards are the ones before."""
    from cvtools.visualize.sanity import cascading_randomization

    bb = load_user_model(user_files / "vit.pt2", **CPU)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    before = bb(x)
    result = cascading_randomization(bb, x, ["gradcam"], torch.tensor([0, 1]))
    assert len(result.groups) >= 2 and result.maps["gradcam"].shape[:2] == (len(result.groups) + 1, 2)
    assert torch.equal(bb(x), before)


@pytest.mark.slow
def test_a_multi_label_head_gives_each_class_its_own_probability(user_files, run_cli):
    """--multi-label: probabilities are each output's sigmoid (they need not sum to 1); the
    explained class and the caption's probability follow it, and --top lists the highest."""
    import json

    d = user_files
    common = ("--model", d / "ft.pth", "--arch", "resnet18", "--classes", d / "labels.txt")
    soft = json.loads(run_cli("classify", d / "p.jpg", *common, "--json", "--top", "12").stdout)["top"]
    r = run_cli("classify", d / "p.jpg", *common, "--multi-label", "--json", "--top", "12")
    assert r.exit_code == 0, r.stderr
    sig = json.loads(r.stdout)["top"]
    assert abs(sum(p["probability"] for p in soft) - 1) < 1e-4
    assert [p["index"] for p in sig] == [p["index"] for p in soft]  # both monotone in the logit
    from PIL import Image

    from cvtools.classify import answer_tensor

    bb = load_user_model(d / "ft.pth", "resnet18", multi_label=True, **CPU)
    x = answer_tensor(Image.open(d / "p.jpg").convert("RGB"), bb.preprocessing)[None]
    expected = torch.sigmoid(bb(x))[0]
    for p in sig:
        assert p["probability"] == pytest.approx(float(expected[p["index"]]), abs=1e-5)
    assert "--multi-label goes with --model" in run_cli("classify", d / "p.jpg", "--multi-label").stderr


@pytest.mark.slow
def test_cli_a_torchscript_model_without_layers_is_one_line_where_layers_are_needed(tmp_path, run_cli):
    """TorchScript hides its layers from hooks: the pixel methods and classify work; dream,
    filters, activations and --sanity say why not in one line (they failed with an IndexError or
    a torch message); score skips its sanity column with a note."""
    import warnings

    from badinputs import photo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated: users still have such files
        torch.jit.save(torch.jit.script(small_net()), tmp_path / "net.ts.pt")
    photo(48, 40).save(tmp_path / "p.jpg")
    model = ("--model", tmp_path / "net.ts.pt")
    ok = run_cli("visualize", "saliency", tmp_path / "p.jpg", *model, "-o", tmp_path / "s.jpg")
    assert ok.exit_code == 0, ok.stderr
    for args in (["dream", tmp_path / "p.jpg", "-o", tmp_path / "d.jpg"],
                 ["visualize", "filters", "--steps", "2", "-o", tmp_path / "f.png"],
                 ["visualize", "activations", tmp_path / "p.jpg", "-o", tmp_path / "a.png"],
                 ["visualize", "saliency", tmp_path / "p.jpg", "--sanity", "-o", tmp_path / "s2.jpg"]):
        r = run_cli(*args, *model)
        # (a stage's start line comes first where stderr is not a terminal, as under CliRunner)
        lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("cvtools: visualize: ")]
        assert r.exit_code == 1 and len(lines) == 1, (args, r.stderr)
        assert "hooks cannot reach them" in r.stderr and "Error:" not in r.stderr, r.stderr
    # at 32 px, as the test below: at the default 224 px the score's ROAD imputation took ~75 s of
    # this test on 2 cores, and the note does not depend on the size
    r = run_cli("visualize", "score", tmp_path / "p.jpg", *model, "-m", "saliency", "--size", "32")
    assert r.exit_code == 0 and "no sanity check" in r.stderr, r.stderr


# ---------------------------------------------------------------------- methods a network cannot run, batch-1
# programs, damaged archives, protected model files, class names and targets (QA fixes)

class SiluNet(nn.Module):
    """A network without ReLUs (SiLU, as EfficientNet-B0): guided backprop has nothing to guide."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.SiLU(), nn.Conv2d(8, 8, 3), nn.SiLU())
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def test_guided_backprop_reaches_an_exported_programs_aten_relus(files):
    """A .pt2 has no nn.ReLU modules, only aten relu ops: the guided rule acts on those, so its
    maps are the module's."""
    from cvtools.visualize.attribution import guided_backprop
    from cvtools.visualize.methods import unusable_methods

    d, _ = files
    program = load_user_model(d / "net.pt2", **EXACT)
    module = load_user_model(d / "net.pth", SmallNet, input_size=32, **EXACT)
    x, t = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.tensor([1, 7])
    expected = guided_backprop(module, x, t)
    torch.testing.assert_close(guided_backprop(program, x, t), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))
    assert unusable_methods(["guided-backprop", "guided-gradcam", "gradcam"], program) == {}


def test_all_leaves_out_what_a_network_cannot_run_and_a_named_method_says_why(files):
    from cvtools.visualize.catalog import ALL, only_from_all
    from cvtools.visualize.explain import Explainer

    d, _ = files
    ts = load_user_model(d / "net.ts", input_size=32, **CPU)
    notes = []
    explainer = Explainer(ts, ALL, optional=only_from_all("all"), on_note=notes.append)
    kept = [m.name for m in explainer.methods]
    assert kept == ["saliency", "smoothgrad", "integrated-gradients", "input-x-gradient", "occlusion"]
    assert len(notes) == 1 and "guided-backprop (net.ts: TorchScript runs its ReLUs" in notes[0], notes
    assert "gradcam, gradcam++" in notes[0] and "hooks cannot reach them" in notes[0]
    assert only_from_all("all,guided-backprop") == [m for m in ALL if m != "guided-backprop"]
    with pytest.raises(UsageError, match="TorchScript runs its ReLUs") as exc:
        Explainer(ts, ["saliency", "guided-backprop"], optional=[], on_note=notes.append)
    one_line_naming(exc.value, "net.ts")
    silu = load_user_model(SiluNet().eval(), input_size=32, **CPU)
    with pytest.raises(UsageError, match=r"needs ReLU activations and SiluNet has none \(its activations: silu\)"):
        Explainer(silu, ["guided-gradcam"])
    assert [m.name for m in Explainer(silu, ["saliency", "guided-backprop"], optional=["guided-backprop"]).methods] \
        == ["saliency"]


@pytest.mark.slow
def test_cli_all_and_score_run_on_torchscript_with_one_note(tmp_path, run_cli):
    from badinputs import photo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(small_net()), tmp_path / "net.ts.pt")
    photo(40, 32).save(tmp_path / "p.jpg")
    model = ("--model", tmp_path / "net.ts.pt", "--size", "32")
    r = run_cli("visualize", "all", tmp_path / "p.jpg", *model, "--samples", "2", "--steps", "4",
                "-o", tmp_path / "all.jpg")
    assert r.exit_code == 0 and (tmp_path / "all.jpg").exists(), r.stderr
    notes = [line for line in r.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "skipped gradcam" in notes[0] and "guided-backprop" in notes[0], r.stderr
    r = run_cli("visualize", "score", tmp_path / "p.jpg", *model, "--sanity", "0", "--no-road", "--samples", "2",
                "--steps", "4")
    assert r.exit_code == 0 and "skipped gradcam" in r.stderr and "saliency" in r.stdout, r.stderr
    assert "gradcam" not in r.stdout
    r = run_cli("visualize", "score", tmp_path / "p.jpg", *model, "-m", "saliency,guided-backprop", "--sanity", "0")
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1 and "TorchScript runs its ReLUs" in r.stderr


def test_a_batch_of_one_program_runs(files, tmp_path):
    """Exported with a batch of 1: a graph that does not depend on it runs batched (layers and
    all); one that spells it out (a ViT's reshape(1, ...)) runs one image at a time, logits only."""
    d, net = files
    bb = load_user_model(d / "static_batch.pt2", **EXACT)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(bb(x), reference_logits(net, bb, x))
    assert "exported for batches of 1, runs on any" in bb.fast_path and bb.defaults.cam == "features"
    vit = tiny_vit()
    torch.export.save(torch.export.export(vit, (torch.rand(1, 3, 32, 32),)), tmp_path / "vit1.pt2")
    bb = load_user_model(tmp_path / "vit1.pt2", **EXACT)
    assert "images run one at a time" in bb.fast_path and bb.layers == []
    torch.testing.assert_close(bb(x), reference_logits(vit, bb, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(UsageError, match="dynamic_shapes") as exc:
        bb.check_layers(["encoder"])
    one_line_naming(exc.value, "vit1.pt2")


def test_the_pickle_advice_exports_a_dynamic_batch(files, run_cli, tmp_path):
    """The advice for a pickled module runs as written and gives a program with a free batch."""
    from badinputs import photo

    from cvtools.backbones.user_model import DYNAMIC_BATCH_EXPORT, _program_input

    d, _ = files
    with pytest.raises(WeightsError) as exc:
        load_user_model(d / "pickled.pth", **CPU)
    text = one_line_naming(exc.value, "pickled.pth")
    assert DYNAMIC_BATCH_EXPORT in text and "architecture=NAME" in text and "x: 2 or more images" in text
    program = eval(DYNAMIC_BATCH_EXPORT, {"torch": torch, "model": small_net(), "x": torch.rand(2, 3, 32, 32)})
    assert _program_input(program, d / "x.pt2") == ((32, 32), None)  # fixed size, any batch
    photo().save(tmp_path / "p.jpg")
    r = run_cli("classify", tmp_path / "p.jpg", "--model", d / "pickled.pth")
    assert r.exit_code == 1 and "--architecture NAME" in r.stderr and r.stderr.rstrip().endswith(
        "--trust-pickle for a file you made"), r.stderr


def test_a_damaged_program_is_one_line_without_torchs_logged_traceback(files, tmp_path, capfd):
    import logging

    d, _ = files
    _rewrite_zip(d / "net.pt2", tmp_path / "cut.pt2",
                 lambda n, b: b[: len(b) // 2] if n.endswith("data/weights/weight_0") else b)
    logger = logging.getLogger("torch.export")
    before = (logger.handlers[:], logger.propagate)
    capfd.readouterr()
    with pytest.raises(WeightsError, match="truncated or damaged") as exc:
        load_user_model(tmp_path / "cut.pt2", **CPU)
    assert "out of bounds" in one_line_naming(exc.value, "cut.pt2")  # torch's own reason, not "see above"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "deserializing" not in err, err
    assert (logger.handlers, logger.propagate) == before


def test_cli_outputs_never_replace_the_model_or_its_classes(user_files, run_cli, tmp_path):
    d = user_files
    model, names = tmp_path / "m.png", tmp_path / "names.png"
    model.write_bytes((d / "ft.pth").read_bytes())
    names.write_text((d / "labels.txt").read_text())
    for out in (model, names):
        r = run_cli("visualize", "gradcam", d / "p.jpg", "--model", model, "--arch", "resnet18", "--classes", names,
                    "-o", out, "--overwrite")
        assert r.exit_code == 1 and "would overwrite an input" in r.stderr, r.stderr
    assert model.read_bytes() == (d / "ft.pth").read_bytes() and names.read_text() == (d / "labels.txt").read_text()
    from cvtools.visualize.job import filters_target

    with pytest.raises(CvtoolsError, match="network is read from"):
        filters_target("f", str(model), overwrite=True, protected=[model])


def test_class_names_must_be_distinct_and_not_empty(files, tmp_path):
    d, _ = files
    ten = [f"n{i}" for i in range(10)]
    for lines, expected in ((["cat", "cat"] + ten[2:], r"'cat' is at line 1 and at line 2"),
                            (["cat", ""] + ten[2:], "line 2 is an empty class name")):
        (tmp_path / "names.txt").write_text("\n".join(lines) + "\n")
        with pytest.raises(UsageError, match=expected) as exc:
            load_user_model(d / "net.pt2", classes=tmp_path / "names.txt", **CPU)
        one_line_naming(exc.value, "names.txt")
    with pytest.raises(UsageError, match="'n3' is at index 3 and at index 4"):
        load_user_model(d / "net.pt2", classes=ten[:4] + ["n3"] + ten[5:], **CPU)


def test_class_names_stored_in_the_model_must_be_distinct_and_not_empty(files, tmp_path, run_cli):
    """A checkpoint's own class names (and a .pt2's class_names extra file) were taken unchecked:
    two classes named alike made a target by name ambiguous, an empty one unaskable. They get the
    --classes file's check, one line naming the model file; --classes FILE still overrides them."""
    import json

    from badinputs import photo

    d, net = files
    ten = [f"kind {i}" for i in range(10)]
    x = torch.rand(2, 3, 32, 32)
    program = torch.export.export(net, (x,), dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}})
    for names, expected in ((ten[:2] + ["kind 1"] + ten[3:], r"'kind 1' is at index 1 and at index 2 of its stored"),
                            (ten[:5] + [""] + ten[6:], "index 5 of its stored class names is an empty class name")):
        torch.save({"state_dict": net.state_dict(), "class_names": names}, tmp_path / "ck.pth")
        with pytest.raises(WeightsError, match=expected) as exc:
            load_user_model(tmp_path / "ck.pth", SmallNet, input_size=32, **CPU)
        one_line_naming(exc.value, "ck.pth")
        torch.export.save(program, tmp_path / "own.pt2", extra_files={"class_names": json.dumps(names)})
        with pytest.raises(WeightsError, match=expected) as exc:
            load_user_model(tmp_path / "own.pt2", **CPU)
        one_line_naming(exc.value, "own.pt2")
    photo(40, 32).save(tmp_path / "p.jpg")
    r = run_cli("classify", tmp_path / "p.jpg", "--model", tmp_path / "own.pt2")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and "own.pt2: index 5 of its stored class names" in lines[0], r.stderr
    assert "--classes FILE" in lines[0] and "Traceback" not in r.stderr
    (tmp_path / "names.txt").write_text("\n".join(f"n{i}" for i in range(10)))
    bb = load_user_model(tmp_path / "own.pt2", classes=tmp_path / "names.txt", **CPU)
    assert bb.categories[5] == "n5"
    assert load_user_model(d / "checkpoint.pth", SmallNet, input_size=32, **CPU).categories == ten


def test_cli_a_target_out_of_range_is_one_usage_error_before_the_images(files, run_cli, tmp_path):
    from badinputs import photo

    d, _ = files
    for i in range(3):
        photo(40, 32, seed=i).save(tmp_path / f"p{i}.jpg")
    for target, expected in (("10", "class index 10 out of range 0..9"),
                             ("-1", "-1 is not a class index: class indices run 0..9")):
        r = run_cli("visualize", "gradcam", tmp_path, "--model", d / "net.pt2", "--target", target,
                    "-o", tmp_path / "out/")
        lines = r.stderr.strip().splitlines()  # once, not once per photo and "3 of 3 inputs failed"
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"cvtools: error: {expected}"), r.stderr


def test_an_all_zero_map_is_noted_once(tmp_path):
    """torchvision starts a ViT's head at zero: every gradient of the logits is 0, so gradient
    maps are blank, which the photo drawn plain would not tell."""
    from torchvision.models.vision_transformer import VisionTransformer

    from cvtools.visualize.explain import Explainer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=3).eval()
    notes = []
    explainer = Explainer(load_user_model(vit, **CPU), ["saliency", "eigencam"], on_note=notes.append)
    x = torch.rand(2, 3, 32, 32)
    explainer.explain(x)
    explainer.explain(x)
    assert len(notes) == 1 and notes[0].startswith("saliency: the map is zero everywhere"), notes
