"""What to maximise (lucid/lucent's ``objectives``): functions of the network's activations that
give one value per image, composable with ``+``, ``-`` and scalar ``*``.

>>> obj = channel("blocks.8", [0, 1, 2, 3])       # image i maximises channel i
>>> obj = class_logit(281) - 0.5 * channel("blocks.4", 7)

An objective names the layers it reads (``"logits"`` for the class scores), so the forward pass
taps exactly those and stops early when the logits are not needed.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch

Index = Union[int, Sequence[int]]


class Objective:
    """``fn(activations) -> N`` values to maximise; ``layers``: the activations it needs."""

    def __init__(self, fn: Callable[[Dict[str, torch.Tensor]], torch.Tensor], layers: Tuple[str, ...], name: str):
        self.fn, self.layers, self.name = fn, tuple(dict.fromkeys(layers)), name

    def __call__(self, activations: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.fn(activations)

    @property
    def needs_logits(self) -> bool:
        return "logits" in self.layers

    @property
    def feature_layers(self) -> Tuple[str, ...]:
        return tuple(layer for layer in self.layers if layer != "logits")

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return Objective(lambda a: self(a) + other, self.layers, f"{self.name} + {other}")
        return Objective(lambda a: self(a) + other(a), self.layers + other.layers, f"{self.name} + {other.name}")

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda a: -self(a), self.layers, f"-({self.name})")

    def __sub__(self, other):
        return self + (-other)

    def __mul__(self, k: float):
        return Objective(lambda a: k * self(a), self.layers, f"{k:g} * {self.name}")

    __rmul__ = __mul__

    def __repr__(self):
        return f"Objective({self.name})"


def _per_image(index: Index, n: int, device) -> torch.Tensor:
    """One index per image: an int for all, or a sequence with one entry per image."""
    t = torch.as_tensor(index, dtype=torch.long, device=device).reshape(-1)
    if t.numel() == 1:
        return t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{t.numel()} indices for a batch of {n} images")
    return t


def channel(layer: str, n: Index) -> Objective:
    """Mean activation of channel ``n`` of ``layer`` over all positions (per image, if a sequence)."""

    def fn(acts):
        a = acts[layer].float()
        idx = _per_image(n, a.shape[0], a.device)
        return a.mean(dim=(2, 3)).gather(1, idx[:, None])[:, 0]

    return Objective(fn, (layer,), f"{layer}:{n}")


def neuron(layer: str, n: Index, x: Optional[int] = None, y: Optional[int] = None) -> Objective:
    """Activation of channel ``n`` of ``layer`` at one position (default: the centre)."""

    def fn(acts):
        a = acts[layer].float()
        h, w = a.shape[-2:]
        idx = _per_image(n, a.shape[0], a.device)
        at = a[:, :, h // 2 if y is None else y, w // 2 if x is None else x]
        return at.gather(1, idx[:, None])[:, 0]

    return Objective(fn, (layer,), f"{layer}:{n}@centre")


def class_logit(n: Index) -> Objective:
    """The logit (pre-softmax score) of ImageNet class ``n``."""

    def fn(acts):
        logits = acts["logits"]
        idx = _per_image(n, logits.shape[0], logits.device)
        return logits.gather(1, idx[:, None])[:, 0]

    return Objective(fn, ("logits",), f"class {n}")

