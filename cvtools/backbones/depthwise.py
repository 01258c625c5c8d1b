"""Depthwise convolutions on PyTorch's own CUDA kernels instead of cuDNN's.

For channels-last half-precision input PyTorch always hands depthwise convolutions to cuDNN,
and cuDNN 9 answers each new input shape with kernels it compiles at run time (and, with
``cudnn.benchmark``, autotunes): measured on an H100 with torch 2.11, the first 1080p dream
took 40-60 s, 14 s of it even with autotuning off, and every new image size paid it again.
PyTorch's native depthwise kernels need no plan: the same dream starts in about a second.
Everything else (the 1×1 and dense convolutions, which are the FLOPs) stays on cuDNN, whose
plans for those are cheap to build.

``route_depthwise(model)`` swaps the convolution call of every depthwise ``nn.Conv2d`` for a
function that runs forward *and* backward with cuDNN switched off (an autograd Function: the
backward kernel is chosen when the backward runs, so a context manager around the forward
alone would send the backward to cuDNN again). The function is the same convolution; only
the kernel differs, so results agree to rounding.
"""

from __future__ import annotations

import os

import torch
from torch import nn

#: "native" (default on CUDA): PyTorch's depthwise kernels; "cudnn": leave them to cuDNN.
#: CVTOOLS_DEPTHWISE overrides the default (for measuring one against the other).
DEFAULT_BACKEND = os.environ.get("CVTOOLS_DEPTHWISE", "native")


def _cudnn_off():
    b = torch.backends.cudnn
    return b.flags(enabled=False, benchmark=b.benchmark, deterministic=b.deterministic, allow_tf32=b.allow_tf32)


class _NativeDepthwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        memory_format = (torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                         and not x.is_contiguous() else torch.contiguous_format)
        dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        # Under autocast the convolution runs in the autocast dtype: cast here, explicitly, so
        # the backward sees the tensors the forward used (and returns gradients in the dtypes
        # the inputs came in, as autograd requires).
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        with _cudnn_off(), torch.autocast(x.device.type, enabled=False):
            y = torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation, groups, bias is not None, memory_format, dtypes)
        return y.contiguous(memory_format=memory_format)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups, has_bias, memory_format, dtypes = ctx.conv
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]]
        with _cudnn_off(), torch.autocast(x.device.type, enabled=False):
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad.to(x.dtype).contiguous(), x.contiguous(), weight, [weight.shape[0]] if has_bias else None,
                stride, padding, dilation, False, [0, 0], groups, mask)
        gx = None if gx is None else gx.to(dtypes[0]).contiguous(memory_format=memory_format)
        gw = None if gw is None else gw.to(dtypes[1])
        gb = None if gb is None else gb.to(dtypes[2])
        return gx, gw, gb, None, None, None, None


def _conv_forward_native(self, input, weight, bias):
    if input.is_cuda and self.padding_mode == "zeros" and not torch.compiler.is_compiling():
        return _NativeDepthwise.apply(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
    return nn.Conv2d._conv_forward(self, input, weight, bias)


def is_depthwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
            and isinstance(module.padding, tuple))


def route_depthwise(model: nn.Module, backend: str = DEFAULT_BACKEND) -> int:
    """Send ``model``'s depthwise convolutions to ``backend`` ("native" or "cudnn"); returns how
    many were routed. Only CUDA calls change: on other devices the convolution is untouched."""
    if backend not in ("native", "cudnn"):
        raise ValueError(f"depthwise backend must be 'native' or 'cudnn', not {backend!r}")
    count = 0
    for m in model.modules():
        if is_depthwise(m):
            if backend == "native":
                m._conv_forward = _conv_forward_native.__get__(m)
            else:
                m.__dict__.pop("_conv_forward", None)
            count += 1
    return count

