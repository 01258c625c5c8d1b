"""What a dream maximises: layer targets (``blocks.10:3,7``), the plain objective (squared
activations) and the guided one (dot product with the best-matching guide feature).

Everything device-side is prepared once (channel index tensors, guide features), so the
objective issues only kernels and can be captured in a CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from cvtools.errors import UsageError
from cvtools.specs import ChannelSpec, compact_channels, parse_channel_spec

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LayerTarget:
    """A layer, optionally restricted to some of its channels.

    channels: the channel indices (None: all of them); None too while ``spec`` has open ends
    (``8:``, ``all``) that only the layer's channel count resolves (see
    :func:`resolve_layer_targets`). spec: the channels as parsed (for messages)."""

    layer: str
    channels: Optional[Tuple[int, ...]] = None
    spec: Optional[ChannelSpec] = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.channels is None:
            return self.layer if self.spec is None else f"{self.layer}:{self.spec}"
        return f"{self.layer}:{compact_channels(self.channels)}"


def parse_layer_target(text) -> LayerTarget:
    """``NAME`` or ``NAME:CHANNELS``; CHANNELS as in :mod:`cvtools.specs`: ``3,7``, ``0-15``
    (inclusive), ``0:16`` (a slice, end excluded), ``8:`` or ``all``."""
    if isinstance(text, LayerTarget):
        return text
    name, sep, spec = str(text).strip().partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"layer target {str(text)!r}: missing the layer name (e.g. blocks.10 or blocks.10:0-15)")
    if not sep:
        return LayerTarget(name)
    channels = parse_channel_spec(spec, label=repr(str(text).strip()))
    return LayerTarget(name, tuple(channels.indices()) if channels.closed else None, channels)


def resolve_layer_targets(backbone, layers: Union[None, str, Sequence]) -> List[LayerTarget]:
    """Layer targets (text like ``blocks.10:0-15`` or LayerTarget) parsed and checked against
    ``backbone``'s layers and channel counts, open channel ranges resolved (None: the
    backbone's dream defaults)."""
    if layers is None or (not isinstance(layers, str) and len(layers) == 0):
        layers = list(backbone.defaults.dream)
        if not layers:  # a network without tappable layers (a TorchScript file): say why, once
            note = getattr(backbone, "layers_note", "") or "it has no layers to dream with"
            raise UsageError(f"{backbone.name}: {note}", param="layers")
    if isinstance(layers, (str, LayerTarget)):
        layers = [layers]
    targets = [parse_layer_target(t) for t in layers]
    backbone.check_layers([t.layer for t in targets])
    channels = {info.name: info.channels for info in backbone.layers}
    resolved = []
    for t in targets:
        spec = t.spec if t.spec is not None else (None if t.channels is None else parse_channel_spec(t.channels))
        if spec is None:
            resolved.append(t)
            continue
        picked = spec.resolve(channels[t.layer], layer=t.layer, label=f"{t.layer}:{spec}")
        resolved.append(LayerTarget(t.layer, None if spec.everything else tuple(picked), spec))
    return resolved


class DreamObjective:
    """feats (dict from ``backbone.features``) -> scalar to maximise.

    Each layer's term is scaled by stride² / channels: that is the mean over the layer's
    activations times the input's pixel count, so layers of different depth weigh alike (as
    with plain means), while the scale does not depend on the size of the image or tile (sums,
    not means, over positions). Gradients of tiles therefore add up to the whole image's, and in
    half precision per-element gradients stay far from underflow. The dream step normalises the
    gradient anyway, so only the ratios between layers matter.
    """

    def __init__(self, backbone, targets: Sequence[LayerTarget], guide=None, guide_size: int = 224):
        import torch

        self.targets = list(targets)
        self.layers = list(dict.fromkeys(t.layer for t in self.targets))
        info = {i.name: i for i in backbone.layers}
        self.weights = []
        self.index = []
        for t in self.targets:
            n = len(t.channels) if t.channels else info[t.layer].channels
            self.weights.append(info[t.layer].stride ** 2 / n)
            self.index.append(None if t.channels is None
                              else torch.tensor(t.channels, dtype=torch.long, device=backbone.device))
        self.guides: Optional[List] = None
        if guide is not None:
            self.guides = self._guide_features(backbone, guide, guide_size)

    def _select(self, i, act):
        return act if self.index[i] is None else act.index_select(1, self.index[i])

    def _guide_features(self, backbone, guide, size):
        """Feature vectors (C×N, float32) of the guide image at each target, computed once."""
        import torch
        import torch.nn.functional as F

        g = guide if guide.dim() == 4 else guide.unsqueeze(0)
        h, w = g.shape[-2:]
        # The guide is seen at about the network's own resolution: its content at the scale the
        # features were trained on, and a few hundred vectors to match against.
        scale = size / min(h, w)
        scale = min(scale, 2 * size / max(h, w))
        nh, nw = max(backbone.min_size, round(h * scale)), max(backbone.min_size, round(w * scale))
        g = F.interpolate(g.float(), size=(nh, nw), mode="bilinear", align_corners=False,
                          antialias=nh < h or nw < w).clamp(0, 1)
        with torch.no_grad():
            feats = backbone.features(g.to(backbone.device), self.layers)
        return [self._select(i, feats[t.layer]).float()[0].flatten(1).contiguous()
                for i, t in enumerate(self.targets)]

    def __call__(self, feats: Dict[str, "torch.Tensor"]):
        total = None
        for i, t in enumerate(self.targets):
            act = self._select(i, feats[t.layer]).float()
            if self.guides is None:
                term = act.pow(2).sum()
            else:
                # Guided (Google's DeepDream notebook): at each position the gradient is the guide
                # vector it matches best (largest dot product), so the guide's features grow there.
                x = act.flatten(2)  # N×C×P
                y = self.guides[i]  # C×M
                best = best_guide_match(x, y)  # N×P indices into M
                target = y.t()[best].transpose(1, 2)  # N×C×P
                term = (x * target).sum()
            term = term * self.weights[i]
            total = term if total is None else total + term
        return total


def best_guide_match(x, y):
    """For features x (N×C×P) and guide vectors y (C×M): index of the best dot product per position."""
    return (x.transpose(1, 2) @ y).argmax(dim=2)
