"""1×1 convolutions as matrix products (cuBLAS) instead of cuDNN convolutions.

An EfficientNet's dense work is almost all 1×1 ("pointwise") convolutions. Untuned, cuDNN 9
still builds an execution plan for every convolution at every new input shape, forward and
backward: measured on an H100 (torch 2.11), a new 1080p dream size cost about 1.2 s more than
the same size again, with autotuning off and the depthwise convolutions already off cuDNN (see
depthwise.py). A 1×1 convolution with stride 1 is a matrix product over the channel axis, and
cuBLAS picks its kernel by heuristics with no per-shape plan to build; autograd's backward of
a matrix product is two more matrix products. Results agree with the convolution to rounding
(the same products, summed in another order).

``route_pointwise(model)`` swaps the convolution call of every routable 1×1 ``nn.Conv2d``.
"""

from __future__ import annotations

import os
from typing import Iterable

import torch
from torch import nn

#: "matmul" (default on CUDA): cuBLAS matrix products; "cudnn": leave them to cuDNN.
#: CVTOOLS_POINTWISE overrides the default (for measuring one against the other).
DEFAULT_BACKEND = os.environ.get("CVTOOLS_POINTWISE", "matmul")


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """``conv2d(x, weight, bias)`` for a 1×1, stride-1, ungrouped ``weight`` (Cout×Cin×1×1),
    as one matrix product per image, in ``x``'s memory layout."""
    n, c, h, w = x.shape
    w2 = weight.reshape(weight.shape[0], c)
    if x.is_contiguous():  # N×C×H×W: Cout×Cin @ Cin×HW for each image
        y = torch.matmul(w2, x.reshape(n, c, h * w)).view(n, -1, h, w)
        return y if bias is None else y + bias.view(1, -1, 1, 1).to(y.dtype)
    # channels-last: the pixels are rows of an (N·H·W)×C matrix, and so is the output
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    y = torch.matmul(rows, w2.t()) if bias is None else torch.addmm(bias.to(rows.dtype), rows, w2.t().to(rows.dtype))
    return y.view(n, h, w, -1).permute(0, 3, 1, 2)


def _conv_forward_matmul(self, input, weight, bias):
    if input.device.type in self._pointwise_devices and input.dim() == 4 and not torch.compiler.is_compiling():
        if torch.is_autocast_enabled(input.device.type):
            dtype = torch.get_autocast_dtype(input.device.type)
            input, weight = input.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        return pointwise_conv(input, weight, bias)
    return nn.Conv2d._conv_forward(self, input, weight, bias)


def is_pointwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
            and module.groups == 1 and module.dilation == (1, 1) and module.padding in ((0, 0), "valid")
            and module.padding_mode == "zeros")


def route_pointwise(model: nn.Module, backend: str = DEFAULT_BACKEND, devices: Iterable[str] = ("cuda",)) -> int:
    """Send ``model``'s 1×1 convolutions to ``backend`` ("matmul" or "cudnn") for inputs on
    ``devices``; returns how many were routed. Other devices keep the convolution."""
    if backend not in ("matmul", "cudnn"):
        raise ValueError(f"pointwise backend must be 'matmul' or 'cudnn', not {backend!r}")
    count = 0
    for m in model.modules():
        if is_pointwise(m):
            if backend == "matmul":
                m._pointwise_devices = tuple(devices)
                m._conv_forward = _conv_forward_matmul.__get__(m)
            else:
                m.__dict__.pop("_conv_forward", None)
            count += 1
    return count
