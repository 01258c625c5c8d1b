"""The shared backbone loader: embedded weights, fusion, layer taps, torchvision backbones."""

import pytest
import torch

from cvtools.backbones import load_backbone
from cvtools.backbones.fuse import fuse_conv_bn
from cvtools.errors import UsageError, WeightsError


def test_fused_matches_unfused_lite0(lite0):
    plain = load_backbone("efficientnet_lite0", device="cpu", precision="fp32", fuse=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.model.modules())
    torch.manual_seed(1)
    x = torch.rand(4, 3, 224, 224)
    with torch.no_grad():
        a, b = plain(x), lite0(x)
    assert (a - b).abs().max().item() <= 1e-3
    assert torch.equal(a.argmax(1), b.argmax(1))


@pytest.mark.parametrize("size", [(97, 131), (224, 224), (33, 64)])
def test_lite0_any_input_size_gives_tf_same_shapes(lite0, size):
    h, w = size
    feats = lite0.features(torch.rand(1, 3, h, w), ["stem", "blocks.4", "head"])
    import math
    assert feats["stem"].shape[-2:] == (math.ceil(h / 2), math.ceil(w / 2))
    assert feats["head"].shape[-2:] == (math.ceil(h / 32), math.ceil(w / 32))


def test_same_padding_is_tensorflows_formula():
    """The stride-2 shortcut (k - 2 + size mod 2, written for torch.export) gives exactly the
    integers of TensorFlow's max((ceil(size / stride) - 1)·stride + k - size, 0), every case."""
    import math

    from cvtools.backbones.efficientnet_lite import same_padding

    for stride in (1, 2, 3):
        for kernel in (1, 2, 3, 5, 7):
            for size in range(1, 200):
                tf = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
                assert same_padding(size, kernel, stride) == tf, (size, kernel, stride)


def test_features_match_full_forward_and_stop_early(lite0):
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        full = lite0.features(x, ["blocks.2", "blocks.7"], logits=True)
        early = lite0.features(x, ["blocks.2", "blocks.7"])
        logits = lite0(x)
    assert torch.allclose(full["blocks.7"], early["blocks.7"])
    assert torch.allclose(full["logits"], logits)
    assert "logits" not in early
    # hooks are removed after use
    assert all(not m._forward_hooks for m in lite0.model.modules())


def test_features_let_gradients_reach_the_input(lite0):
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    lite0.features(x, ["blocks.4"])["blocks.4"].pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in lite0.model.parameters())


def test_unknown_layer_suggests_the_close_name_or_lists_valid_names(lite0):
    with pytest.raises(UsageError, match=r"unknown layer 'blocks.99' .*did you mean 'blocks.9"):
        lite0.features(torch.rand(1, 3, 64, 64), ["blocks.99"])
    with pytest.raises(UsageError, match="valid layers: stem, blocks.0"):
        lite0.features(torch.rand(1, 3, 64, 64), ["zzz"])


def test_layer_table_lite0(lite0):
    info = {l.name: l for l in lite0.layers}
    assert info["stem"].channels == 32 and info["stem"].stride == 2
    assert info["blocks.15"].channels == 320 and info["blocks.15"].stride == 32
    assert info["head"].channels == 1280
    for name in list(lite0.defaults.style) + [lite0.defaults.content, lite0.defaults.cam] + list(lite0.defaults.dream):
        assert name in info


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "vgg19", "resnet50", "googlenet", "mobilenet_v3_large", "efficientnet_b0"])
def test_torchvision_backbones_taps_and_fusion(name):
    plain = load_backbone(name, device="cpu", weights="random", fuse=False, precision="fp32")
    fused = load_backbone(name, device="cpu", weights="random", fuse=True, precision="fp32")
    x = torch.rand(2, 3, 96, 96)
    layers = list(plain.layer_paths)
    with torch.no_grad():
        fa = plain.features(x, layers, logits=True)
        fb = fused.features(x, layers, logits=True)
    assert fa["logits"].shape == (2, 1000)
    for n in layers:
        assert fa[n].shape == fb[n].shape, n
        scale = fa[n].abs().max().clamp_min(1e-6)
        assert ((fa[n] - fb[n]).abs().max() / scale).item() < 1e-3, n
    assert ((fa["logits"] - fb["logits"]).abs().max() / fa["logits"].abs().max()).item() < 1e-3
    d = plain.defaults
    for n in list(d.style) + [d.content, d.cam] + list(d.dream):
        assert n in plain.layer_paths
    if name in ("resnet50", "mobilenet_v3_large", "efficientnet_b0", "googlenet"):
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.model.modules())


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v3_large"])
def test_random_weights_are_the_same_every_time_and_leave_the_global_random_state_alone(name):
    """weights="random" is for tests that compare runs: the same untrained weights whatever the
    caller drew before (Lite0's were drawn from the global state and the seed set after them,
    so a test's trunk depended on the tests that ran before it), and the caller's stream goes on
    as if nothing was loaded."""
    def load():
        return load_backbone(name, device="cpu", weights="random", fuse=False, precision="fp32")

    torch.manual_seed(1)
    a = load()
    after_load = torch.rand(4)
    torch.manual_seed(1)
    expected = torch.rand(4)
    assert torch.equal(after_load, expected)  # the global stream did not move
    torch.rand(7)  # another state before the second load
    b = load()
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(v.dtype.is_floating_point and v.dim() > 1 and float(v.std()) > 0 for v in sa.values())


def test_fusion_skips_bn_whose_input_is_shared():
    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # the raw conv output is used again: folding would be wrong

    m = Shared().eval()
    m.bn.running_mean.uniform_(-1, 1)
    x = torch.rand(1, 3, 8, 8)
    ref = m(x)
    assert fuse_conv_bn(m, x) == 0
    assert torch.allclose(m(x), ref)


def test_fold_is_exact_on_random_statistics():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)  # depthwise
    bn = torch.nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1); bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2); bn.bias.uniform_(-1, 1)
    m = torch.nn.Sequential(conv, bn).eval()
    x = torch.randn(2, 8, 16, 16)
    ref = m(x)
    assert fuse_conv_bn(m, x) == 1
    assert isinstance(m[1], torch.nn.Identity)
    assert torch.allclose(m(x), ref, atol=1e-5)


def test_tampered_embedded_weights_are_refused(tmp_path):
    from cvtools.backbones.efficientnet_lite import EMBEDDED, embedded_weights_path
    from cvtools.weights import load_state_dict_file

    src = embedded_weights_path("efficientnet_lite0")
    bad = tmp_path / "lite0.pth"
    data = bytearray(open(src, "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_state_dict_file(bad, expected_sha256=EMBEDDED["efficientnet_lite0"].sha256)
    bad.write_bytes(open(src, "rb").read()[:1000])
    with pytest.raises(WeightsError):
        load_state_dict_file(bad)


def test_weights_file_with_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    p = tmp_path / "evil.pth"
    p.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(WeightsError, match="refused.*could run code"):
        load_backbone("efficientnet_lite0", device="cpu", weights=str(p))


def test_foreign_state_dict_is_refused(tmp_path):
    p = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, p)
    with pytest.raises(WeightsError, match="not an efficientnet_lite0 state dict"):
        load_backbone("efficientnet_lite0", device="cpu", weights=str(p))


def test_a_fine_tuned_head_in_weights_says_which_keys_and_points_to_model(tmp_path):
    """--weights is for the architecture as published: a state dict with another head names the
    keys that differ and where a fine-tuned network goes (--model), in one line."""
    import torchvision

    p = tmp_path / "r18_3.pth"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), p)
    with pytest.raises(WeightsError, match=r"fc.weight: \[3, 512\] in the file.*--model FILE --architecture resnet18"):
        load_backbone("resnet18", device="cpu", weights=str(p))


def test_local_torchvision_weights_load(tmp_path):
    import torchvision

    torch.manual_seed(3)
    ref = torchvision.models.resnet18().eval()
    p = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), p)
    bb = load_backbone("resnet18", device="cpu", weights=str(p), fuse=False, precision="fp32")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(bb(x), ref(bb.normalize(x)), atol=1e-5)


def test_bad_device_and_precision():
    with pytest.raises(UsageError):
        load_backbone("efficientnet_lite0", device="tpu")
    with pytest.raises(UsageError, match="fp16 on the CPU"):
        load_backbone("efficientnet_lite0", device="cpu", precision="fp16")


def test_bf16_on_cpu_agrees_on_top1(lite0):
    bf = load_backbone("efficientnet_lite0", device="cpu", precision="bf16")
    from conftest import SAMPLES

    from cvtools.backbones.base import eval_crop
    from cvtools.io.decode import load_image

    x = torch.stack([eval_crop(load_image(SAMPLES / n).rgb, lite0.preprocessing) for n in ("chelsea.jpg", "coffee.jpg")])
    with torch.no_grad():
        assert torch.equal(bf(x).argmax(1), lite0(x).argmax(1))


@pytest.mark.slow
def test_imagenet50_top1(lite0, shared):
    """A correct EfficientNet-Lite0 with (x*255-127)/128 gets 44+ of 50 (mean/std would give ~40)."""
    from cvtools.classify import classify_images
    from cvtools.io.decode import load_image

    folder = shared / "data" / "imagenet50"
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 50
    labels = [int(f.name.split("_")[0]) for f in files]
    preds = classify_images(lite0, [load_image(f).rgb for f in files], top_k=1)
    correct = sum(p[0].index == y for p, y in zip(preds, labels))
    assert correct >= 42, f"top-1 {correct}/50"


# ----------------------------------------------------------------------------- the registry

from cvtools.backbones.registry import backbone_names, get_spec  # noqa: E402


@pytest.mark.parametrize("name", backbone_names())
def test_registered_spec_is_complete(name):
    """Every spec builds with random weights (on the meta device: shapes and structure, no
    arithmetic), has its parameter count and preprocessing, and its layer table names modules
    that run, in execution order; the default layers of every effect are among them."""
    spec = get_spec(name)
    with torch.device("meta"):
        model, desc = spec.build("random")
    assert desc == "random (untrained)"
    assert sum(p.numel() for p in model.parameters()) == spec.params
    pre = spec.preprocessing
    assert len(pre.mean) == len(pre.std) == 3 and min(pre.std) > 0
    assert pre.crop_size == spec.input_size and pre.resize_size >= pre.crop_size
    assert pre.interpolation in ("bilinear", "bicubic")
    w = spec.weights
    assert w.name and w.source and w.license and w.file and 50 < w.top1 < 100
    assert spec.weights_status().split()[0] in ("embedded", "available", "missing")

    order = []
    paths = {}
    for public, path in spec.layers.items():
        paths.setdefault(path, []).append(public)
    handles = [model.get_submodule(p).register_forward_hook(lambda m, i, o, p=p: order.append(p)) for p in paths]
    with torch.no_grad():
        out = model.eval()(torch.empty(1, 3, spec.input_size, spec.input_size, device="meta"))
    for h in handles:
        h.remove()
    assert out.shape == (1, 1000)
    seen = list(dict.fromkeys(order))  # first call of each module (ResNet's stem ReLU runs once)
    assert seen == list(paths), "layer table is not in execution order or names a module that never runs"
    for layer in spec.defaults.roles():
        assert layer in spec.layers


@pytest.mark.parametrize("name", [n for n in backbone_names() if get_spec(n).family == "torchvision"])
def test_torchvision_metadata_matches_torchvision(name):
    """The registry's copy of torchvision's weights metadata (kept so that listing imports no
    torchvision) is what torchvision says."""
    import torchvision

    spec = get_spec(name)
    w = torchvision.models.get_model_weights(name).DEFAULT
    t = w.transforms()
    assert spec.weights.name == w.name
    assert spec.weights.file == w.url.rsplit("/", 1)[-1]
    assert spec.weights.top1 == w.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert spec.params == w.meta["num_params"]
    pre = spec.preprocessing
    assert (list(pre.mean), list(pre.std)) == (list(t.mean), list(t.std))
    assert (pre.resize_size, pre.crop_size, pre.interpolation) == (t.resize_size[0], t.crop_size[0], t.interpolation.value)


@pytest.mark.parametrize("name", [n for n in backbone_names() if get_spec(n).family == "efficientnet_lite"])
def test_embedded_metadata_names_the_installed_file(name):
    import os

    from cvtools.backbones.efficientnet_lite import embedded_weights_path

    path = embedded_weights_path(name)
    if path is None:
        pytest.skip(f"{name}: weights package not installed")
    assert os.path.basename(path) == get_spec(name).weights.file
    assert get_spec(name).weights_status() == "embedded"


def test_unknown_backbone_is_one_line_listing_the_known():
    for call in (lambda: get_spec("nope"), lambda: load_backbone("nope", device="cpu")):
        with pytest.raises(UsageError) as err:
            call()
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("unknown backbone 'nope'; choose from ")
        assert msg.split("choose from ", 1)[1].split(" (")[0].split(", ") == backbone_names()


@pytest.mark.slow
def test_registry_imports_torchvision_only_to_build():
    """Importing the package imports no torch; listing every backbone (names, metadata, weights
    status, the `backbones` command) imports no torchvision; building a torchvision one does."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import cvtools.backbones as b\n"
        "print('torch' in sys.modules)\n"
        "from click.testing import CliRunner\n"
        "from cvtools.cli import cli\n"
        "r = CliRunner().invoke(cli, ['backbones'])\n"
        "assert r.exit_code == 0 and 'googlenet' in r.output, r.output\n"
        "r = CliRunner().invoke(cli, ['backbones', 'googlenet'])\n"
        "assert r.exit_code == 0 and 'inception4c' in r.output, r.output\n"
        "print('torchvision' in sys.modules)\n"
        "b.get_spec('resnet18').build('random')\n"
        "print('torchvision' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_registration_refuses_a_default_layer_not_in_the_table():
    from dataclasses import replace

    from cvtools.backbones.registry import LayerDefaults, register

    spec = get_spec("resnet18")
    bad = replace(spec, name="resnet18_bad", defaults=LayerDefaults(style=["layer9"], content="layer2",
                                                                    dream=["layer3"], cam="layer4"))
    with pytest.raises(ValueError, match="layer9"):
        register(bad)
    assert "resnet18_bad" not in backbone_names()
