"""Fold inference-mode BatchNorm into the convolution before it.

``y = γ (conv(x) + b − μ) / √(σ² + ε) + β`` is itself a convolution with weight
``W·γ/√(σ²+ε)`` and bias ``(b − μ)·γ/√(σ²+ε) + β``, so each conv→BN pair becomes one
convolution and the BN an identity: one kernel and one pass over memory fewer per pair.

Pairs are found by running the model once and watching which BatchNorm receives, as its
input, the very tensor a convolution just produced. This works on any architecture
(Sequential or not, ours or torchvision's) without tracing its Python control flow, and it
leaves the module tree (and therefore layer names and hooks) intact.
"""

from __future__ import annotations

import torch
from torch import nn

_METADATA_OPS = {"__get__", "size", "dim", "numel", "stride", "is_contiguous", "data_ptr", "element_size",
                 "__len__", "__format__", "__repr__"}


def _find_conv_bn_pairs(model: nn.Module, example: torch.Tensor):
    """(conv name, bn name) pairs where a BN's sole consumer-visible input is a conv's output.

    Module hooks tell which conv produced a tensor and which BN received it; a torch-function
    mode counts every operation that reads the conv output (``bn(y) + y`` reads it twice), so
    a pair is folded only when the BN is the conv output's one reader.
    """
    from torch.overrides import TorchFunctionMode

    produced = {}  # id(conv output) -> conv module name
    reads = {}  # id(conv output) -> number of ops that read it
    pairs = []
    names = {m: n for n, m in model.named_modules()}
    keep_alive = []  # hold produced tensors so their ids are not reused during the pass
    handles = []

    def conv_hook(mod, inp, out):
        produced[id(out)] = names[mod]
        keep_alive.append(out)

    def bn_pre_hook(mod, inp):
        t = inp[0]
        if id(t) in produced:
            pairs.append((produced[id(t)], names[mod], id(t)))

    class CountReads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") not in _METADATA_OPS:
                stack = list(args) + list(kwargs.values())
                while stack:
                    a = stack.pop()
                    if isinstance(a, (list, tuple)):
                        stack.extend(a)
                    elif isinstance(a, torch.Tensor) and id(a) in produced:
                        reads[id(a)] = reads.get(id(a), 0) + 1
            return func(*args, **kwargs)

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            handles.append(m.register_forward_pre_hook(bn_pre_hook))
    try:
        with torch.no_grad(), CountReads():
            model(example)
    finally:
        for h in handles:
            h.remove()
    convs = [c for c, _, _ in pairs]
    bns = [b for _, b, _ in pairs]
    return [
        (c, b) for c, b, tid in pairs
        if reads.get(tid, 0) == 1 and convs.count(c) == 1 and bns.count(b) == 1  # each module called once
    ]


def _get(model, name):
    return model.get_submodule(name)


def _set(model, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` into ``conv`` in place (conv gains a bias)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    w = conv.weight
    conv.weight.copy_(w * scale.reshape(-1, *([1] * (w.dim() - 1))).to(w.dtype))
    b = conv.bias if conv.bias is not None else torch.zeros(w.shape[0], device=w.device, dtype=w.dtype)
    new_bias = (b - bn.running_mean) * scale + shift
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias.to(w.dtype), requires_grad=w.requires_grad)
    else:
        conv.bias.copy_(new_bias)


def fuse_conv_bn(model: nn.Module, example: torch.Tensor) -> int:
    """Fold every conv→BatchNorm pair of an eval-mode ``model``; returns how many were folded."""
    if model.training:
        raise ValueError("fuse_conv_bn needs a model in eval mode")
    pairs = _find_conv_bn_pairs(model, example)
    for conv_name, bn_name in pairs:
        fold_conv_bn(_get(model, conv_name), _get(model, bn_name))
        _set(model, bn_name, nn.Identity().eval())  # a new module starts in training mode
    return len(pairs)
