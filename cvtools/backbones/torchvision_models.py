"""Torchvision backbones: architectures from torchvision, weights through its weights API.

Each spec gives the tappable layers (public name -> module path, in execution order) and the
per-task default layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from cvtools.backbones.base import LayerDefaults
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


@dataclass(frozen=True)
class TorchvisionSpec:
    layers: Callable[[], Dict[str, str]]
    defaults: LayerDefaults
    min_size: int = 32


TORCHVISION_SPECS = {
    "vgg16": TorchvisionSpec(
        lambda: _vgg_layers([2, 2, 3, 3, 3]),
        LayerDefaults(style=["relu1_2", "relu2_2", "relu3_3", "relu4_3"], content="relu2_2",
                      dream=["relu4_3"], cam="relu5_3"),
    ),
    "vgg19": TorchvisionSpec(
        lambda: _vgg_layers([2, 2, 4, 4, 4]),
        LayerDefaults(style=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], content="relu4_2",
                      dream=["relu4_4"], cam="relu5_4"),
    ),
    "resnet18": TorchvisionSpec(
        lambda: _resnet_layers([2, 2, 2, 2]),
        LayerDefaults(style=["stem", "layer1", "layer2", "layer3"], content="layer2", dream=["layer3"], cam="layer4"),
    ),
    "resnet50": TorchvisionSpec(
        lambda: _resnet_layers([3, 4, 6, 3]),
        LayerDefaults(style=["stem", "layer1", "layer2", "layer3"], content="layer2", dream=["layer3"], cam="layer4"),
    ),
    "googlenet": TorchvisionSpec(
        lambda: {n: n for n in _GOOGLENET},
        LayerDefaults(style=["conv1", "conv3", "inception3a", "inception4a"], content="inception3b",
                      dream=["inception4c"], cam="inception5b"),
    ),
    "mobilenet_v3_large": TorchvisionSpec(
        lambda: _features_layers(17),
        LayerDefaults(style=["features.1", "features.3", "features.6", "features.10"], content="features.6",
                      dream=["features.10"], cam="features.16"),
    ),
    "efficientnet_b0": TorchvisionSpec(
        lambda: _features_layers(9),
        LayerDefaults(style=["features.1", "features.2", "features.3", "features.4"], content="features.3",
                      dream=["features.5"], cam="features.8"),
    ),
}


def _cache_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def weights_status(name: str) -> str:
    """'available' when torchvision's weights are in the local cache, else 'missing'."""
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    return "available" if _cache_file(weights).exists() else "missing"


def build_torchvision(name: str, weights: Optional[str]):
    """(model, weights_enum_or_None, description). ``weights``: None/"default" (torchvision's
    pretrained weights, cached or downloaded), "random", or a path to a local state dict."""
    import torchvision

    weights_enum = torchvision.models.get_model_weights(name).DEFAULT
    kwargs = {}
    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": False}
    if weights == "random":
        torch.manual_seed(0)
        if name == "googlenet":
            kwargs["init_weights"] = True
        return torchvision.models.get_model(name, weights=None, **kwargs), None, "random (untrained)"
    if weights in (None, "default", "DEFAULT"):
        try:
            model = torchvision.models.get_model(name, weights=weights_enum)
        except Exception as exc:  # no network, proxy, broken download...
            raise WeightsError(
                f"{name}: pretrained weights are not in {_cache_file(weights_enum).parent} and could not be "
                f"downloaded ({type(exc).__name__}). Download {weights_enum.url} into that folder, "
                f"or pass --weights PATH to a local state dict"
            ) from None
        return model, weights_enum, f"torchvision {weights_enum}"
    path = Path(weights)
    if name == "googlenet":
        kwargs["transform_input"] = True  # torchvision's pretrained GoogLeNet expects it
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    from cvtools.weights import load_state_dict_file

    state = load_state_dict_file(path)
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{path}: not a {name} state dict ({first})") from None
    return model, weights_enum, f"local file {path}"
