"""What the library's one-image calls and file functions take: images in [0, 1] (or 8/16-bit
integers scaled by their range), 16-bit PIL images brought to 8 bits as files are, a strength
that is a number, and a ``size`` in its command's range, each refused in one line otherwise
(QA: 0-255 floats and uint8 tensors gave wrong pictures, size=-5 a 1×1 one)."""

import numpy as np
import pytest
import torch
from PIL import Image

from cvtools.errors import UsageError
from cvtools.io.decode import one_image


def photo(h=24, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g)


@pytest.fixture(scope="module")
def stylizer():
    from cvtools.style.stylize import Stylizer

    return Stylizer("mona", device="cpu", precision="fp32", compile=False)


@pytest.fixture(scope="module")
def network():
    from cvtools.style.painting import NetworkPaintingStylizer

    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    painting = torch.stack([(x // 8 % 2).float(), (y // 8 % 2).float(), torch.full((64, 64), 0.5)])
    return NetworkPaintingStylizer([(painting, 1.0)], device="cpu")


# ----------------------------------------------------------------------------- item 1: value ranges


def test_one_image_scales_integer_tensors_and_refuses_other_dtypes():
    t = photo()
    u8 = (t * 255).round().to(torch.uint8)
    assert torch.equal(one_image(u8), u8.float() / 255)
    u16 = (t * 65535).round().to(torch.int32).to(torch.uint16)
    assert torch.allclose(one_image(u16), t, atol=1 / 65535)
    for dtype in (torch.int64, torch.int16, torch.int8, torch.bool):
        with pytest.raises(UsageError, match="float in \\[0, 1\\], uint8 or uint16"):
            one_image(t.to(dtype))


def test_one_image_refuses_floats_off_the_range_and_clamps_rounding():
    t = photo()
    with pytest.raises(UsageError, match="runs from .* to 25.*divide 8-bit values by 255") as info:
        one_image(t * 255)
    assert "\n" not in str(info.value) and info.value.params == ("image",)
    with pytest.raises(UsageError, match="from -0.4999 to 0.4998 \\(undo any mean/std normalisation\\)"):
        one_image(t - 0.5)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(UsageError, match="NaN or infinite"):
            one_image(torch.full((3, 4, 4), bad))
    near = t.clone()
    near[0, 0, 0], near[1, 0, 0] = -5e-4, 1 + 5e-4
    got = one_image(near)
    assert got.min() == 0 and got.max() == 1 and torch.equal(got[:, 1:], t[:, 1:])
    assert one_image(t.double()).dtype == torch.float32


def test_numpy_arrays_follow_the_same_rule():
    t = photo()
    u16 = (t.permute(1, 2, 0).numpy() * 65535).round().astype(np.uint16)
    assert torch.allclose(one_image(u16), t, atol=1 / 65535)
    for bad in (u16.astype(np.int32), u16.astype(np.float32)):
        with pytest.raises(UsageError, match="H×W×3 uint8"):
            one_image(bad)
    with pytest.raises(UsageError, match="empty"):
        one_image(np.zeros((0, 5, 3), np.uint8))


def test_stylizer_refuses_0_255_floats_and_takes_uint8_tensors(stylizer):
    t = photo()
    with pytest.raises(UsageError, match="divide 8-bit values by 255"):
        stylizer(t * 255, strength=0.5)
    u8 = (t * 255).round().to(torch.uint8)
    same = stylizer(u8.float() / 255, strength=0.5)
    assert torch.allclose(stylizer(u8, strength=0.5), same, atol=1e-6)
    zero = stylizer(u8, strength=0)
    assert zero.dtype == torch.float32 and zero.max() <= 1 and torch.equal(zero, u8.float() / 255)
    with pytest.raises(UsageError, match="NaN or infinite"):
        stylizer(torch.full((3, 24, 32), float("nan")))


def test_network_painting_stylizer_checks_the_same(network):
    t = photo()
    with pytest.raises(UsageError, match="divide 8-bit values by 255"):
        network(t * 255, strength=0.5)
    with pytest.raises(UsageError, match="NaN or infinite"):
        network(torch.full((3, 24, 32), float("nan")))
    u8 = (t * 255).round().to(torch.uint8)
    assert torch.allclose(network(u8), network(u8.float() / 255), atol=1e-6)


# ----------------------------------------------------------------------------- item 3: 16-bit PIL


def test_16_bit_pil_images_are_scaled_to_8_bits_not_clipped():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (12, 16)).astype(np.uint8)
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    assert wide.mode.startswith("I;16")
    got = np.asarray(one_image(wide))
    assert got.shape == (12, 16, 3) and np.array_equal(got[:, :, 0], grey) and np.array_equal(got[:, :, 2], grey)
    as_i = Image.fromarray(grey.astype(np.int32) * 257).convert("I")
    assert np.array_equal(np.asarray(one_image(as_i))[:, :, 1], grey)
    small_i = Image.fromarray(grey.astype(np.int32)).convert("I")  # values up to 255 stay as they are
    assert np.array_equal(np.asarray(one_image(small_i))[:, :, 1], grey)


def test_stylizer_takes_a_16_bit_pil_image_as_its_8_bit_picture(stylizer):
    grey = np.random.default_rng(1).integers(0, 256, (24, 32)).astype(np.uint8)
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    assert torch.equal(stylizer(wide, as_uint8=True), stylizer(Image.fromarray(grey).convert("RGB"), as_uint8=True))


# ----------------------------------------------------------------------------- item 4: empty, strength


def test_empty_images_and_non_number_strengths_are_one_line_usage_errors(stylizer):
    t = photo()
    for empty in (t[:, :0, :], t[:, :, :0], Image.new("RGB", (0, 0))):
        with pytest.raises(UsageError, match="empty") as info:
            stylizer(empty)
        assert "\n" not in str(info.value)
    for bad in ("0.5", None, [0.5], float("nan"), 1.5, -0.1):
        with pytest.raises(UsageError, match="strength") as info:
            stylizer(t, strength=bad)
        assert "\n" not in str(info.value) and info.value.params == ("strength",)
    assert torch.equal(stylizer(t, strength=np.float32(0.0)), t)
    assert torch.equal(stylizer(t, strength=torch.tensor(0.0)), t)


# ----------------------------------------------------------------------------- item 2: size


def test_checked_size_takes_the_commands_range():
    from cvtools.io.decode import checked_size

    assert checked_size(None, 16, 32768) is None
    assert checked_size(np.int64(512), 16, 32768) == 512
    for bad in (-5, 0, 15, 32769):
        with pytest.raises(UsageError, match="size must be from 16 to 32768 pixels"):
            checked_size(bad, 16, 32768)
    for bad in ("big", "512", 512.0, True):
        with pytest.raises(UsageError, match="size must be a whole number of pixels from 16 to 32768"):
            checked_size(bad, 16, 32768)


def test_stylize_files_refuses_a_bad_size_before_reading_anything(tmp_path):
    from cvtools.io.atomic import save_image
    from cvtools.style.job import stylize_files, stylize_provenance

    save_image(tmp_path / "a.png", photo())
    missing_painting = str(tmp_path / "no-such-painting.jpg")  # read first, it would answer instead
    for bad in (-5, "big"):
        with pytest.raises(UsageError, match="^size must") as info:
            stylize_files(tmp_path / "a.png", style=missing_painting, size=bad)
        assert info.value.params == ("size",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    with pytest.raises(UsageError, match="^size must"):
        stylize_provenance("mona", size="big")


@pytest.mark.parametrize("call", ["dream_files", "explain_files", "score_files", "activations_files"])
def test_dream_and_visualize_files_refuse_a_bad_size_first(tmp_path, call):
    import cvtools

    missing = tmp_path / "no-such-photo.png"
    for bad in (-5, "big"):
        with pytest.raises(UsageError, match="^size must") as info:
            getattr(cvtools, call)(missing, size=bad, backbone="no-such-backbone")
        assert info.value.params == ("size",)


def test_render_filters_refuses_a_bad_size_before_loading_the_network():
    from cvtools.visualize.job import render_filters

    for bad in (-5, 2048, "big"):
        with pytest.raises(UsageError, match="^size must .* 32 to 1024"):
            render_filters("no-such-backbone", size=bad)


def _onnx_bundled():
    from cvtools.style.fast_cpu import torch_free_stylizer
    from cvtools.style.records import resolve_style

    built = torch_free_stylizer(resolve_style("mona"), device="cpu", engine="onnxruntime")
    assert built is not None, "the shipped ONNX graph did not route"
    return built


def _painting_optimiser():
    from cvtools.style.optimize import PaintingStylizer

    return PaintingStylizer(torch.rand(3, 64, 64), device="cpu", steps=1)


@pytest.mark.parametrize("make", [_onnx_bundled, _painting_optimiser], ids=["onnx-bundled", "painting-optimiser"])
@pytest.mark.parametrize("strength", ["0.5", None, float("nan"), 1.5, [0.5]])
def test_every_stylizer_checks_strength_the_same_way(make, strength):
    """The torch-free ONNX stylizer and the optimiser raised a raw TypeError for a string strength
    (their own copies of the check compared it with floats); all now call limits.checked_strength."""
    with pytest.raises(UsageError, match="strength"):
        make()(torch.rand(3, 32, 32), strength=strength)


# ----------------------------------------------------------------------------- the torch-free stylizers


@pytest.mark.parametrize("kind", ["bundled", "painting"])
def test_torch_free_stylizers_take_a_16_bit_pil_image_as_its_8_bit_picture(kind):
    """QA: the ONNX stylizers' own PIL path (no torch) converted a 16-bit image with a plain
    convert("RGB"), which clips it near-white; it is scaled to 8 bits as one_image does."""
    pytest.importorskip("onnxruntime")
    from cvtools.style import fast_cpu, fast_cpu_painting
    from cvtools.style.records import resolve_style

    if kind == "bundled":
        st = fast_cpu.torch_free_stylizer(resolve_style("mona"), device="cpu", precision="fp32")
    else:
        st = fast_cpu_painting.torch_free_painting_stylizer([("mona", 1.0)], device="cpu", precision="fp32")
    assert st is not None, "the shipped ONNX graphs are pinned and present"
    grey = np.random.default_rng(2).integers(0, 256, (40, 48)).astype(np.uint8)
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    assert wide.mode.startswith("I;16")
    for strength in (1.0, 0.5):
        ours = np.asarray(st(wide, strength=strength, as_uint8=True))
        ref = np.asarray(st(Image.fromarray(grey).convert("RGB"), strength=strength, as_uint8=True))
        assert np.array_equal(ours, ref), strength
    assert np.asarray(st(wide, strength=0.0, as_uint8=True)).mean() < 200  # not the clipped near-white
