"""1×1 convolutions as matrix products (cvtools/backbones/pointwise.py): the same function as
the convolution, checked on the CPU (the routing is for CUDA; ``devices=("cpu",)`` applies it
here), forward and input/weight gradients, in both memory layouts."""

import pytest
import torch
from torch import nn

from cvtools.backbones.pointwise import is_pointwise, pointwise_conv, route_pointwise

U32 = 2.0 ** -24  # fp32 unit roundoff


def _bound(x, w, cin):
    """Worst-case difference of two summation orders of a Cin-term dot product:
    2·Cin·u·Σ|w||x| per output (each order is within Cin·u·Σ|w||x| of the exact sum)."""
    return 2 * cin * U32 * torch.nn.functional.conv2d(x.abs(), w.abs()) + 1e-30


@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_conv2d_forward_and_backward(channels_last):
    g = torch.Generator().manual_seed(0)
    cin, cout = 24, 40
    x = torch.randn(2, cin, 9, 13, generator=g)
    w = torch.randn(cout, cin, 1, 1, generator=g)
    b = torch.randn(cout, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    wa, wb = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    ya = torch.nn.functional.conv2d(xa, wa, b)
    yb = pointwise_conv(xb, wb, b)
    assert yb.shape == ya.shape
    assert yb.is_contiguous(memory_format=torch.channels_last) == channels_last  # the layout is kept
    assert bool(((ya - yb).abs() <= _bound(x, w, cin) + 2 * U32 * b.abs().view(1, -1, 1, 1)).all())
    gy = torch.randn(ya.shape, generator=g)
    ya.backward(gy)
    yb.backward(gy)
    # input gradient: Cout-term sums; weight gradient: N·H·W-term sums
    assert torch.allclose(xa.grad, xb.grad, rtol=0, atol=float(2 * cout * U32 * (w.abs().sum(0).max() * gy.abs().max())))
    n_terms = x.shape[0] * x.shape[2] * x.shape[3]
    assert torch.allclose(wa.grad, wb.grad, rtol=0, atol=float(2 * n_terms * U32 * (x.abs().max() * gy.abs().max())))


def test_routes_only_1x1_stride_1_convolutions_and_the_model_agrees():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 1), nn.ReLU(),
                          nn.Conv2d(16, 16, 1, stride=2), nn.Conv2d(16, 16, 1, groups=4), nn.Conv2d(16, 4, 1))
    assert [is_pointwise(m) for m in model if isinstance(m, nn.Conv2d)] == [False, True, False, False, True]
    x = torch.rand(1, 3, 17, 11)
    before = model(x)
    assert route_pointwise(model, devices=("cuda",)) == 2
    assert torch.equal(model(x), before)  # a CPU input keeps the convolution
    route_pointwise(model, devices=("cpu",))
    after = model(x)
    assert torch.allclose(after, before, rtol=1e-5, atol=1e-6)
    route_pointwise(model, "cudnn")  # and back
    assert torch.equal(model(x), before)
    with pytest.raises(ValueError):
        route_pointwise(model, "nope")


def test_autocast_runs_the_product_in_the_autocast_dtype():
    conv = nn.Conv2d(32, 8, 1)
    x = torch.rand(1, 32, 6, 6)
    route_pointwise(conv, devices=("cpu",))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
        ref = torch.nn.functional.conv2d(x.bfloat16(), conv.weight.bfloat16(), conv.bias.bfloat16())
    assert y.dtype == torch.bfloat16
    # both round the same products to bf16 (u = 2^-8) after different summation orders
    assert torch.allclose(y.float(), ref.float(), rtol=2 * 2.0 ** -8, atol=2 * 2.0 ** -8)
