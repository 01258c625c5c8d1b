"""Torchvision backbones: architectures from torchvision, weights through its weights API.

Each network is registered with its tappable layers (public name -> module path, in execution
order), its per-effect default layers and its pretrained weights' metadata, copied from
torchvision's weights enums so that listing them imports neither torch nor torchvision
(tests/test_backbones.py checks the copy against torchvision). torchvision is imported only when
a network is built or its weights status is asked for.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Optional

from cvtools.backbones.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneSpec,
    LayerDefaults,
    Preprocessing,
    Weights,
    load_weights_file,
    register,
    untrained_weights,
)
from cvtools.errors import WeightsError


def _vgg_layers(n_convs_per_block):
    paths, idx = {}, 0
    for b, n in enumerate(n_convs_per_block, start=1):
        for i in range(1, n + 1):
            idx += 1  # conv at idx-1, relu at idx
            paths[f"relu{b}_{i}"] = f"features.{idx}"
            idx += 1
        paths[f"pool{b}"] = f"features.{idx}"
        idx += 1
    return paths


def _resnet_layers(blocks):
    paths = {"stem": "relu", "pool": "maxpool"}
    for i, n in enumerate(blocks, start=1):
        for j in range(n):
            paths[f"layer{i}.{j}"] = f"layer{i}.{j}"
        paths[f"layer{i}"] = f"layer{i}"  # same tensor as the stage's last block
    return paths


def _features_layers(n):
    return {f"features.{i}": f"features.{i}" for i in range(n)}


_GOOGLENET = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
              "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
              "inception5a", "inception5b"]


#: Constructor arguments per network: torchvision's GoogLeNet builds its two auxiliary
#: classifiers (training-only) unless told not to.
BUILD_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False}}


def _cache_file(file: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / file


def weights_status(name: str) -> str:
    """'available' when torchvision's weights are in the local cache, else 'missing'."""
    from cvtools.backbones.registry import get_spec

    return "available" if _cache_file(get_spec(name).weights.file).exists() else "missing"


def build(name: str, weights: Optional[str], on_note=None):
    """(model, description): see :class:`~cvtools.backbones.registry.BackboneSpec`. The pretrained
    weights come from torch's cache, or are downloaded by torchvision."""
    import torchvision

    kwargs = dict(BUILD_KWARGS.get(name, {}))
    if weights == "random":
        if name == "googlenet":
            kwargs["init_weights"] = True
        with untrained_weights():
            return torchvision.models.get_model(name, weights=None, **kwargs), "random (untrained)"
    if weights in (None, "default", "DEFAULT"):
        weights_enum = torchvision.models.get_model_weights(name).DEFAULT
        try:
            model = torchvision.models.get_model(name, weights=weights_enum)
        except Exception as exc:  # no network, proxy, broken download...
            raise WeightsError(
                f"{name}: pretrained weights are not in {_cache_file(weights_enum.url.rsplit('/', 1)[-1]).parent} "
                f"and could not be downloaded ({type(exc).__name__}). Download {weights_enum.url} into that "
                f"folder, or pass weights=PATH to a local state dict", param="weights"
            ) from None
        return model, f"torchvision {weights_enum}"
    path = Path(weights)
    if name == "googlenet":
        kwargs["transform_input"] = True  # torchvision's pretrained GoogLeNet expects it
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    load_weights_file(model, path, name, drop=lambda key: key.startswith(("aux1.", "aux2.")), on_note=on_note)
    return model, f"local file {path}"


_LICENSE = "BSD-3-Clause (torchvision); weights trained on ImageNet-1k, whose terms may apply"
_SOURCE = "torchvision, downloaded from download.pytorch.org into torch's cache on first use"


def _imagenet(resize: int = 256, interpolation: str = "bilinear") -> Preprocessing:
    return Preprocessing(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), resize_size=resize, crop_size=224,
                         interpolation=interpolation)


def _register(name, weights_name, file, top1, params, layers, defaults, preprocessing=None):
    register(BackboneSpec(
        name=name, family="torchvision", build=partial(build, name),
        weights=Weights(name=weights_name, source=_SOURCE, license=_LICENSE, top1=top1,
                        preprocessing=preprocessing or _imagenet(), file=file),
        layers=layers, defaults=defaults, params=params, weights_status=partial(weights_status, name),
    ))


# Weights: torchvision's DEFAULT per network (name, file, ImageNet-1K acc@1, num_params, transforms).
_register("vgg16", "IMAGENET1K_V1", "vgg16-397923af.pth", 71.592, 138357544, _vgg_layers([2, 2, 3, 3, 3]),
          LayerDefaults(style=["relu1_2", "relu2_2", "relu3_3", "relu4_3"], content="relu2_2",
                        dream=["relu4_3"], cam="relu5_3"))
_register("vgg19", "IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", 72.376, 143667240, _vgg_layers([2, 2, 4, 4, 4]),
          LayerDefaults(style=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], content="relu4_2",
                        dream=["relu4_4"], cam="relu5_4"))
_register("resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 69.758, 11689512, _resnet_layers([2, 2, 2, 2]),
          LayerDefaults(style=["stem", "layer1", "layer2", "layer3"], content="layer2", dream=["layer3"], cam="layer4"))
_register("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 80.858, 25557032, _resnet_layers([3, 4, 6, 3]),
          LayerDefaults(style=["stem", "layer1", "layer2", "layer3"], content="layer2", dream=["layer3"], cam="layer4"),
          _imagenet(resize=232))
_register("googlenet", "IMAGENET1K_V1", "googlenet-1378be20.pth", 69.778, 6624904, {n: n for n in _GOOGLENET},
          LayerDefaults(style=["conv1", "conv3", "inception3a", "inception4a"], content="inception3b",
                        dream=["inception4c"], cam="inception5b"))
_register("mobilenet_v3_large", "IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth", 75.274, 5483032,
          _features_layers(17),
          LayerDefaults(style=["features.1", "features.3", "features.6", "features.10"], content="features.6",
                        dream=["features.10"], cam="features.16"),
          _imagenet(resize=232))
_register("efficientnet_b0", "IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth", 77.692, 5288548,
          _features_layers(9),
          LayerDefaults(style=["features.1", "features.2", "features.3", "features.4"], content="features.3",
                        dream=["features.5"], cam="features.8"),
          _imagenet(interpolation="bicubic"))
