"""The native depthwise path (cuDNN off for depthwise convolutions on CUDA) is the same
convolution: forward and input gradient equal F.conv2d's, in both memory layouts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cvtools.backbones.depthwise import _NativeDepthwise, is_depthwise, route_depthwise


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_native_depthwise_equals_conv2d(channels_last, stride):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 13, 17, generator=g, dtype=torch.float64)
    w = torch.randn(8, 1, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(8, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = F.conv2d(x1, w, b, stride, 1, 1, 8)
    out = _NativeDepthwise.apply(x2, w, b, (stride, stride), (1, 1), (1, 1), 8)
    # float64, the same arithmetic in another kernel: equal to rounding (|x|,|w| ~ 1, 9 terms)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    grad = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    ref.backward(grad)
    out.backward(grad)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-12, atol=1e-12)
    assert x2.grad.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_route_depthwise_finds_only_depthwise_convs():
    model = nn.Sequential(nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 3, groups=2))
    assert [is_depthwise(m) for m in model] == [False, True, False]
    assert route_depthwise(model, "native") == 1
    assert "_conv_forward" in model[1].__dict__ and "_conv_forward" not in model[0].__dict__
    x = torch.randn(1, 4, 9, 9)
    before = model(x)  # on the CPU the routed convolution is the plain one
    assert route_depthwise(model, "cudnn") == 1 and "_conv_forward" not in model[1].__dict__
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    with pytest.raises(ValueError):
        route_depthwise(model, "fast")


def test_native_depthwise_under_autocast_matches_conv2d():
    """Under bf16 autocast (train-style's loss network on GPUs) the routed convolution computes
    in bf16 like conv2d does and hands back gradients in the inputs' own dtypes."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 8, 12, 12, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 1, 3, 3, generator=g, requires_grad=True)
    b = torch.randn(8, generator=g)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.conv2d(x1, w, b, 1, 1, 1, 8)
        out = _NativeDepthwise.apply(x2, w, b, (1, 1), (1, 1), (1, 1), 8)
    assert out.dtype == ref.dtype == torch.bfloat16
    # the same bf16 products and sums: equal up to the bf16 rounding of the result (2^-8 relative)
    torch.testing.assert_close(out.float(), ref.float(), rtol=2 ** -7, atol=2 ** -7)
    out.float().sum().backward()
    assert x2.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    w.grad = None
    ref.float().sum().backward()
    # each input gradient is a sum of up to 9 weights of its channel, taken in bf16: the weights'
    # rounding and that of the partial sums are each at most 2^-9 of the channel's Σ|w| (a sum
    # that cancels to a small result can carry the error of its large partial sums: seen on an
    # AVX2-only AMD EPYC, 0.031 apart at a gradient of 0.78, 2026-12-05), so the two paths
    # differ by at most 2 · 2 · 2^-9 · Σ|w| per channel; a wrong gradient is off by O(|w|)
    bound = 2 * 2 * 2 ** -9 * w.detach().abs().sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
    assert bool(((x2.grad - x1.grad).abs() <= bound).all()), float((x2.grad - x1.grad).abs().max())
    assert float((x2.grad - x1.grad).abs().max()) < 0.1 * float(x1.grad.abs().max())
