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


def test_unknown_layer_lists_valid_names(lite0):
    with pytest.raises(UsageError, match="valid layers: stem, blocks.0"):
        lite0.features(torch.rand(1, 3, 64, 64), ["blocks.99"])


def test_layer_table_lite0(lite0):
    info = {l.name: l for l in lite0.layers}
    assert info["stem"].channels == 32 and info["stem"].stride == 2
    assert info["blocks.15"].channels == 320 and info["blocks.15"].stride == 32
    assert info["head"].channels == 1280
    for name in list(lite0.defaults.style) + [lite0.defaults.content, lite0.defaults.cam] + list(lite0.defaults.dream):
        assert name in info


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
    from cvtools.backbones import EMBEDDED, embedded_weights_path
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
    from cvtools.imageio import load_image
    from cvtools.backbones.base import eval_crop
    from conftest import SAMPLES

    x = torch.stack([eval_crop(load_image(SAMPLES / n).rgb, lite0.preprocessing) for n in ("chelsea.jpg", "coffee.jpg")])
    with torch.no_grad():
        assert torch.equal(bf(x).argmax(1), lite0(x).argmax(1))


def test_imagenet50_top1(lite0, shared):
    """A correct EfficientNet-Lite0 with (x*255-127)/128 gets 44+ of 50 (mean/std would give ~40)."""
    from cvtools.classify import classify_images
    from cvtools.imageio import load_image

    folder = shared / "data" / "imagenet50"
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 50
    labels = [int(f.name.split("_")[0]) for f in files]
    preds = classify_images(lite0, [load_image(f).rgb for f in files], top_k=1)
    correct = sum(p[0].index == y for p, y in zip(preds, labels))
    assert correct >= 42, f"top-1 {correct}/50"
