"""The :class:`Backbone`: a frozen pretrained network that knows its preprocessing, its layers
and its per-task defaults, and returns any layers' activations in one forward pass."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from cvtools.backbones.registry import LayerDefaults, Preprocessing


@dataclass(frozen=True)
class LayerInfo:
    name: str
    channels: int
    stride: int  # input pixels per feature pixel; 0 for an output that is no feature map (after global pooling)
    shape: Tuple[int, ...] = ()  # the output's shape for one image at the probe size (after any view)
    view: str = ""  # how the output became an N×C×h×w map (tokens.py), "" when it is one or is not a map


class _StopForward(Exception):
    """Raised from a hook once every requested layer has been seen: the rest is not needed."""


@dataclass
class Backbone:
    name: str
    model: nn.Module  # classifier: preprocessed N×3×H×W -> logits
    preprocessing: Preprocessing
    layer_paths: Dict[str, str]  # public layer name -> module path, in execution order
    defaults: LayerDefaults
    categories: List[str]
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32  # compute dtype of weights and activations
    channels_last: bool = False
    fused: bool = False
    weights_desc: str = ""
    min_size: int = 32  # smallest input side the network accepts
    compiled: Optional[Callable] = None
    # public layer name -> a view (cvtools.backbones.tokens) that turns its output into N×C×h×w:
    # transformers' token sequences and channels-last maps, for every method that uses layers
    layer_views: Dict[str, object] = field(default_factory=dict)
    fast_path: str = ""  # what loading did for speed ("BatchNorm folded into 20 convolutions", ...)
    multi_label: bool = False  # independent sigmoid outputs (multi-label), not one softmax over classes
    layers_note: str = ""  # why a network has no tappable layers (a TorchScript file), for the error
    tune: bool = False  # cuDNN autotuning for this network's calls (autotuning()), as loaded
    _layers: Optional[List[LayerInfo]] = field(default=None, repr=False)
    _norm_cache: Dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ input
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        # mean/std live on the device once per (device, dtype): building them from Python lists
        # on every call would add two host-to-device copies to each forward.
        key = (x.device, x.dtype)
        stats = self._norm_cache.get(key)
        if stats is None:
            mean = torch.tensor(self.preprocessing.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
            std = torch.tensor(self.preprocessing.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
            stats = self._norm_cache[key] = (mean, std)
        return (x - stats[0]) / stats[1]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (N×3×H×W or 3×H×W) -> the model's input: device, normalised, dtype, layout."""
        if x.dim() == 3:
            x = x.unsqueeze(0)
        x = self.normalize(x.to(self.device, non_blocking=True).float()).to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # ------------------------------------------------------------------ forward
    def autotuning(self):
        """A context manager: cuDNN autotuning for the calls inside it when this network was
        loaded with ``tune`` (on CUDA), the process's setting put back after it; otherwise the
        setting is left as it is. The forward calls below use it; an engine wraps each whole
        step in it (the flag is read when kernels are chosen, backward passes included)."""
        from cvtools.device import cudnn_benchmark

        return cudnn_benchmark(True if self.tune else None, self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (float32) for [0, 1] RGB images."""
        fn = self.compiled if self.compiled is not None else self.model
        with self.autotuning():
            return fn(self.prepare(x)).float()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities of N×K logits: a softmax over the classes, or for a multi-label
        head each output's own sigmoid (they need not sum to 1)."""
        return logits.float().sigmoid() if self.multi_label else logits.float().softmax(dim=1)

    def default_layer(self, role: str) -> str:
        """The first default layer for ``role`` (``dream``, ``cam``, ``content``, ``style``); a
        network without tappable layers (a TorchScript file) is a one-line UsageError saying why."""
        layers = getattr(self.defaults, role)
        name = layers if isinstance(layers, str) else (layers[0] if layers else None)
        if not name:
            from cvtools.errors import UsageError

            raise UsageError(f"{self.name}: {self.layers_note or f'it has no {role} layer'}", param="layer")
        return name

    def check_layers(self, names: Iterable[str]) -> List[str]:
        from cvtools.backbones.registry import check_layer_names

        names = list(names)
        if names and not self.layer_paths and self.layers_note:
            from cvtools.errors import UsageError

            raise UsageError(f"{self.name}: {self.layers_note}", param="layer")
        return check_layer_names(self.name, self.layer_paths, names)

    def module(self, layer: str) -> nn.Module:
        """The layer's module. For a layer read through a view (a transformer's tokens) it is a
        :class:`~cvtools.backbones.tokens.MapHookModule`: its forward hooks see N×C×h×w maps."""
        self.check_layers([layer])
        module = self.model.get_submodule(self.layer_paths[layer])
        view = self.layer_views.get(layer)
        if view is None:
            return module
        from cvtools.backbones.tokens import MapHookModule

        return MapHookModule(module, view)

    @contextlib.contextmanager
    def tap(self, layers: Sequence[str], stop_early: bool = True):
        """Context in which model forwards record ``layers`` into the yielded dict.

        With ``stop_early`` the forward pass is cut short after the deepest requested layer
        (use :meth:`features`, which handles the resulting control flow).
        """
        layers = self.check_layers(layers)
        order = list(self.layer_paths)
        last = max(layers, key=order.index) if layers else None
        store: Dict[str, torch.Tensor] = {}
        handles = []
        by_path: Dict[str, List[str]] = {}
        for name in layers:
            by_path.setdefault(self.layer_paths[name], []).append(name)
        for path, names in by_path.items():
            def hook(mod, inp, out, names=names):
                for n in names:
                    view = self.layer_views.get(n)
                    store[n] = out if view is None else view.to_map(out)  # differentiable: slice, permute
                if stop_early and last in names:
                    raise _StopForward
            handles.append(self.model.get_submodule(path).register_forward_hook(hook))
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def features(self, x: torch.Tensor, layers: Sequence[str], logits: bool = False, prepared: bool = False):
        """Activations of ``layers`` for [0, 1] RGB images in one forward pass.

        Returns a dict name -> tensor (compute dtype); with ``logits=True`` also the key
        ``"logits"`` (float32) and the pass runs to the end. Gradients flow when enabled.
        """
        inp = x if prepared else self.prepare(x)
        with self.tap(layers, stop_early=not logits) as store, self.autotuning():
            try:
                out = self.model(inp)
            except _StopForward:
                out = None
        result = dict(store)
        if logits:
            result["logits"] = out.float()
        return result

    # ------------------------------------------------------------------ description
    @property
    def layers(self) -> List[LayerInfo]:
        """Every tappable layer with its channels and stride (probed once at the crop size)."""
        if self._layers is None:
            size = self.preprocessing.crop_size
            probe = torch.zeros(1, 3, size, size)
            with torch.no_grad():
                feats = self.features(probe, list(self.layer_paths))
            self._layers = [
                LayerInfo(n, int(t.shape[1]), max(1, round(size / t.shape[-1])) if t.dim() == 4 else 0)
                for n, t in feats.items()
            ]
            self._layers.sort(key=lambda info: list(self.layer_paths).index(info.name))
        return self._layers


def eval_crop(image, pre: Preprocessing):
    """A PIL image -> [0, 1] tensor resized (shorter side) and centre-cropped as the backbone
    was evaluated."""
    from PIL import Image

    from cvtools.io.decode import pil_to_tensor

    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}.get(pre.interpolation, Image.BILINEAR)
    w, h = image.size
    scale = pre.resize_size / min(w, h)
    nw, nh = max(pre.crop_size, round(w * scale)), max(pre.crop_size, round(h * scale))
    image = image.resize((nw, nh), resample)
    left, top = (nw - pre.crop_size) // 2, (nh - pre.crop_size) // 2
    image = image.crop((left, top, left + pre.crop_size, top + pre.crop_size))
    return pil_to_tensor(image)

