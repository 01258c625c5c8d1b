"""The shared helpers: errors.first_line, cvtools.device (device, precision, memory budget) and
cvtools.ops (resizing, Gaussian blur)."""

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cvtools import device as devmod
from cvtools.errors import UsageError, first_line
from cvtools.ops import GaussianBlur, gaussian_blur, resize, resize_area, resize_long_side

# Blur tolerance: each output is two passes of at most 2r+1 fp32 products of N(0, 1) values
# with weights summing to 1; r <= 6 here, so the rounding of the two summation orders differs
# by at most ~2 * 13 * 6e-8 * max|x| (~5 for 2000 N(0,1) samples): ~1e-5.
BLUR_ATOL = 1e-5


# ----------------------------------------------------------------------------- first_line


@pytest.mark.parametrize("exc, expected", [
    (RuntimeError("out of memory\nat line 3"), "out of memory"),
    (RuntimeError("\n\n  Error(s) in loading state_dict:\n\tMissing key"), "Error(s) in loading state_dict:"),
    (RuntimeError(""), "RuntimeError"),          # an empty message: the type, not an IndexError
    (ValueError("   \n \n"), "ValueError"),
    (KeyError(), "KeyError"),
    ("plain text\nsecond", "plain text"),
    ("", ""),
])
def test_first_line(exc, expected):
    assert first_line(exc) == expected


def test_first_line_is_one_printable_line_within_the_limit():
    text = first_line(RuntimeError("a\x1b[31mred\x07" + "x" * 500), limit=40)
    assert len(text) == 40 and text.endswith("…")
    assert text.isprintable()


def test_dream_engine_survives_a_capture_failure_with_an_empty_message(lite0):
    """The CUDA-graph capture failing with an empty message is a note and an eager run, not an
    IndexError from taking the first line of nothing."""
    from cvtools.dream import DreamEngine, DreamSettings

    class FailingCapture:
        def warmup(self, fn):
            raise RuntimeError("")

        def capture(self, fn):
            raise AssertionError("not reached")

    notes = []
    engine = DreamEngine(lite0, DreamSettings(octaves=1, steps=1, tile=None), on_note=notes.append)
    engine.use_graphs, engine.graph_backend = True, FailingCapture()
    x = torch.rand(3, 40, 48)
    for _ in range(2):  # the second sighting of a shape is captured (one-off sizes run eagerly)
        out = engine(x, seed=0)
        assert out.shape == x.shape
    assert any("CUDA graphs unavailable (RuntimeError: RuntimeError)" in n for n in notes), notes
    assert engine.use_graphs is False


# ----------------------------------------------------------------------------- device


def test_resolve_device_and_precision_on_the_cpu():
    cpu = devmod.resolve_device("cpu")
    assert cpu == torch.device("cpu")
    assert devmod.resolve_device(torch.device("cpu")) == cpu
    assert devmod.resolve_precision("auto", cpu) == torch.float32
    assert devmod.resolve_precision(None, cpu) == torch.float32
    assert devmod.resolve_precision("bf16", cpu) == torch.bfloat16
    assert devmod.resolve_precision("float32", cpu) == torch.float32
    if not torch.cuda.is_available():
        assert devmod.resolve_device("auto").type in ("cpu", "mps")


@pytest.mark.parametrize("call, match", [
    (lambda: devmod.resolve_device("toaster"), "unknown device 'toaster'"),
    (lambda: devmod.resolve_precision("fp8", torch.device("cpu")), "unknown precision 'fp8'"),
    (lambda: devmod.resolve_precision("fp16", torch.device("cpu")), "fp16 on the CPU"),
])
def test_device_errors_are_usage_errors_that_name_no_cli_flag(call, match):
    with pytest.raises(UsageError, match=match) as info:
        call()
    assert "--" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_cuda_without_a_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="no CUDA GPU") as info:
        devmod.resolve_device("cuda")
    assert "--" not in str(info.value)


def test_rank_cuda_follows_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert devmod.rank_cuda() == "cuda"
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert devmod.rank_cuda() == "cuda:3"


def test_backbones_and_style_use_the_one_resolver():
    import cvtools.backbones as backbones

    assert backbones.resolve_device is devmod.resolve_device
    assert backbones.resolve_precision is devmod.resolve_precision


def test_memory_budget_on_the_cpu(monkeypatch):
    cpu = torch.device("cpu")
    assert devmod.available_cpu_memory() > 0
    monkeypatch.setattr(devmod, "available_cpu_memory", lambda: 1 << 30)
    assert devmod.memory_budget(cpu, gpu_fraction=0.9, cpu_fraction=0.5, cpu_cap=8 << 30) == 1 << 29
    assert devmod.memory_budget(cpu, gpu_fraction=0.9, cpu_fraction=0.5, cpu_cap=100) == 100
    # the dream's and the stylizer's budgets are this one policy with their own fractions
    from cvtools.dream.tiling import memory_budget as dream_budget

    assert dream_budget(cpu) == int(0.4 * (1 << 30))
    monkeypatch.setattr(devmod, "available_cpu_memory", lambda: 64 << 30)
    assert dream_budget(cpu) == 4 << 30


# ----------------------------------------------------------------------------- ops


def test_resize_long_side():
    im = Image.new("RGB", (300, 200))
    assert resize_long_side(im, None) is im
    assert resize_long_side(im, 300) is im
    assert resize_long_side(im, 150).size == (150, 100)
    assert resize_long_side(im, 600).size == (600, 400)
    assert resize_long_side(Image.new("L", (5, 1000)), 10).size == (1, 10)  # never a zero side
    # the same function serves the style module's callers
    from cvtools.style.stylize import resize_long_side as from_style

    assert from_style is resize_long_side


def test_resize_and_resize_area():
    x = torch.rand(1, 3, 20, 30)
    assert resize(x, (20, 30)) is x and resize_area(x, (20, 30)) is x
    assert torch.equal(resize(x, (10, 15)), F.interpolate(x, size=(10, 15), mode="bilinear", antialias=True))
    assert torch.equal(resize(x, (40, 60)), F.interpolate(x, size=(40, 60), mode="bilinear"))
    # area averaging by an exact factor of 2 is the mean of each 2x2 block
    assert torch.allclose(resize_area(x, (10, 15)), x.unflatten(-1, (15, 2)).unflatten(-3, (10, 2)).mean((-1, -3)),
                          atol=1e-6)
    assert resize_area(x, (40, 20)).shape[-2:] == (40, 20)  # one side grows: bilinear


@pytest.mark.parametrize("sigma", [0.5, 1.3, 2.0])
def test_gaussian_blurs_match_torchvision(sigma):
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    x = torch.randn(2, 3, 40, 50)
    ours = GaussianBlur(sigma, torch.device("cpu"))(x)
    ref = tv_blur(x, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)
    assert torch.allclose(ours, ref, atol=BLUR_ATOL)
    one_off = gaussian_blur(x, sigma)
    ref = tv_blur(x, kernel_size=2 * max(1, int(3 * sigma + 0.5)) + 1, sigma=sigma)
    assert torch.allclose(one_off, ref, atol=BLUR_ATOL)
    assert torch.allclose(gaussian_blur(x[0, 0], sigma), one_off[0, 0], atol=BLUR_ATOL)  # H×W maps
    single = GaussianBlur(sigma, "cpu", channels=1)(x[:, :1])
    assert torch.allclose(single, GaussianBlur(sigma, "cpu")(x)[:, :1], atol=BLUR_ATOL)


def test_gaussian_blur_edge_cases():
    x = torch.rand(1, 2, 3, 3)
    assert gaussian_blur(x, 0) is x
    small = gaussian_blur(x, 5.0)  # the radius shrinks to fit a 3x3 map (reflect needs r < side)
    assert small.shape == x.shape
    # every output is a convex combination of inputs (weights >= 0 summing to 1): within their range
    lo, hi = x.amin((-2, -1), keepdim=True), x.amax((-2, -1), keepdim=True)
    assert bool(((small >= lo - 1e-6) & (small <= hi + 1e-6)).all())
