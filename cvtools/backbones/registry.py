"""The backbone registry: one :class:`BackboneSpec` per network, registered by its family's file.

A spec is everything cvtools knows about a network before building it: how to build it (with its
pretrained, random or a local file's weights), the pretrained weights and their metadata (source,
license, published ImageNet top-1, evaluation preprocessing), the tappable layers, the default
layers of each effect and the parameter count. ``load_backbone`` looks a spec up, builds, then runs
the steps every network shares (freeze, fuse, device, precision, layout, compile).

>>> from cvtools.backbones.registry import get_spec, specs
>>> get_spec("vgg16").weights.top1, get_spec("vgg16").defaults.dream
(71.592, ['relu4_3'])

A family registers its specs at import (``register(BackboneSpec(...))`` in
``efficientnet_lite_specs.py``, ``torchvision_models.py``); the registry imports the family files on the
first lookup (:data:`FAMILY_MODULES`). Nothing here imports torch, and no family file imports
torchvision before a torchvision network is built, so listing backbones stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from cvtools.errors import UsageError, WeightsError, first_line

if TYPE_CHECKING:
    from torch import nn

#: The family files, imported (in this order: the listing order) on the first registry lookup.
FAMILY_MODULES = ("cvtools.backbones.efficientnet_lite_specs", "cvtools.backbones.torchvision_models")


@dataclass(frozen=True)
class LayerDefaults:
    """Which layers each effect uses unless told otherwise."""

    style: Sequence[str]
    content: str
    dream: Sequence[str]
    cam: str

    def roles(self) -> Dict[str, List[str]]:
        """layer -> the effects using it by default (``{"blocks.4": ["style", "content"], ...}``)."""
        roles: Dict[str, List[str]] = {}
        for n in self.style:
            roles.setdefault(n, []).append("style")
        roles.setdefault(self.content, []).append("content")
        for n in self.dream:
            roles.setdefault(n, []).append("dream")
        roles.setdefault(self.cam, []).append("cam")
        return roles


@dataclass
class Preprocessing:
    """How a backbone wants its input: ``(x - mean) / std`` on [0, 1] RGB, then its sizes."""

    mean: Sequence[float]
    std: Sequence[float]
    resize_size: int = 256
    crop_size: int = 224
    interpolation: str = "bilinear"

    def describe(self) -> str:
        return f"(x - {list(self.mean)}) / {list(self.std)}"


#: torchvision's ImageNet statistics, which every torchvision classifier here was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Weights:
    """A network's pretrained weights and what is known about them (like one member of a
    torchvision weights enum). ``top1`` is the ImageNet-1k validation top-1 (%) the source
    publishes, not a cvtools measurement."""

    name: str  # "EMBEDDED", "IMAGENET1K_V1", ...
    source: str  # where the file comes from
    license: str
    top1: float
    preprocessing: Preprocessing  # the evaluation transform these weights were measured with
    file: str  # the file name (torchvision's cache name; the embedded package's file)
    sha256: Optional[str] = None  # pinned where cvtools checks the file itself


@dataclass(frozen=True)
class BackboneSpec:
    """One network. ``build(weights, on_note=None)`` returns ``(model, description)`` for
    ``weights`` None or "default" (the pretrained :attr:`weights`), "random" (untrained) or a
    local state-dict path (``on_note`` hears of its keys left out: :func:`load_weights_file`);
    the model is a classifier on preprocessed N×3×H×W input. ``layers`` maps public layer names
    to module paths in execution order; ``params`` is the built classifier's parameter count and
    ``weights_status()`` says whether the pretrained weights are on this machine."""

    name: str
    family: str
    build: Callable[..., Tuple["nn.Module", str]]
    weights: Weights
    layers: Mapping[str, str]
    defaults: LayerDefaults
    params: int
    weights_status: Callable[[], str]
    min_size: int = 32  # smallest input side the network accepts

    @property
    def preprocessing(self) -> Preprocessing:
        return self.weights.preprocessing

    @property
    def input_size(self) -> int:
        return self.weights.preprocessing.crop_size

    def check_layers(self, names) -> List[str]:
        """``names`` unchanged when each is a layer of this network; otherwise a one-line
        :class:`UsageError` naming the first unknown one and its likely meaning (no torch: the
        commands check ``--layer`` before loading anything)."""
        return check_layer_names(self.name, self.layers, names)


@contextlib.contextmanager
def untrained_weights(seed: int = 0):
    """Build a family's ``weights="random"`` network inside this: its initialisation draws from a
    generator seeded with ``seed`` and forked from the global one, so the untrained weights are
    the same every time (tests compare runs) whatever the caller drew before, and the caller's
    global random stream goes on untouched. (Lite0's were once drawn first and seeded after, so a
    test's trunk depended on the tests before it.)"""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def check_layer_names(network: str, known, names) -> List[str]:
    """``names`` as a list when all are in ``known``; else a one-line :class:`UsageError` with the
    closest layer names (``blocks.100`` -> ``blocks.10``), or all of them when none is close."""
    from cvtools.errors import did_you_mean

    names = list(names)
    known = list(known)
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known) or f"; valid layers: {', '.join(known)}"
            listing = f"cvtools layers {network}" if network in _REGISTRY else "cvtools layers --model FILE"
            raise UsageError(f"unknown layer {name!r} for {network}{hint} (`{listing}` lists them)")
    return names


_REGISTRY: Dict[str, BackboneSpec] = {}
_families_loaded = False


def register(spec: BackboneSpec) -> BackboneSpec:
    """Add a spec (a family file calls this at import). Every default layer must be a layer."""
    missing = [n for n in spec.defaults.roles() if n not in spec.layers]
    if missing:
        raise ValueError(f"{spec.name}: default layers {missing} are not in its layer table")
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"backbone {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _load_families() -> None:
    global _families_loaded
    if not _families_loaded:
        for module in FAMILY_MODULES:
            importlib.import_module(module)
        _families_loaded = True


def specs() -> List[BackboneSpec]:
    """Every registered backbone, family by family."""
    _load_families()
    return list(_REGISTRY.values())


def backbone_names() -> List[str]:
    return [s.name for s in specs()]


def get_spec(name: str) -> BackboneSpec:
    """The spec of ``name``; an unknown name is a one-line :class:`UsageError` listing the known."""
    _load_families()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        from cvtools.errors import did_you_mean

        hint = did_you_mean(str(name), _REGISTRY) or f"; choose from {', '.join(_REGISTRY)}"
        raise UsageError(f"unknown backbone {name!r}{hint} (`cvtools backbones` lists them)") from None


def load_weights_file(model, path, name: str, drop: Callable[[str], bool] = lambda key: False,
                      expected_sha256: Optional[str] = None, on_note: Optional[Callable[[str], None]] = None):
    """Load a state-dict file (safely: :func:`cvtools.weights.load_state_dict_file`) into
    ``model``, leaving out the keys ``drop`` names; a file for another network is a one-line
    :class:`WeightsError` naming the file. Keys under names the network has nothing for (a
    training script's ``aux.*``, ``criterion.*``, AveragedModel's ``n_averaged``) are left out
    with one note to ``on_note`` naming them (a Python warning without it), as ``--model`` does:
    the same check and note (:func:`cvtools.backbones.user_model.check_state_shapes`)."""
    from cvtools.backbones.user_model import check_state_shapes, extra_keys_note, send_note
    from cvtools.weights import load_state_dict_file

    state = load_state_dict_file(path, expected_sha256=expected_sha256)
    state = {k: v for k, v in state.items() if not drop(k)}
    # which keys and shapes differ, in one line; a network fine-tuned with another head is a
    # user's model, which --model takes with its class count from the file
    extra = check_state_shapes(model, {k: tuple(v.shape) for k, v in state.items()}, Path(path), name,
                               hint=f"; for a fine-tuned {name} with another head use --model FILE --architecture "
                                    f"{name}", extra_ok=True)
    if extra:
        left_out = set(extra)
        state = {k: v for k, v in state.items() if k not in left_out}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        article = "an" if name[:1] in "aeiou" else "a"
        raise WeightsError(f"{path}: not {article} {name} state dict ({first_line(exc)})") from None
    if extra:
        send_note(on_note, extra_keys_note(Path(path), name, extra))
    return model
