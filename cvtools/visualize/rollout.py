"""Attention rollout (Abnar & Zuidema 2020): where a vision transformer's class token draws its
information from, through every layer's attention.

Each block's attention ``A`` (N×heads×T×T, softmax rows) is averaged over heads, the residual
connection is accounted for as ``0.5·A + 0.5·I`` (rows still sum to 1), and the blocks are
multiplied in order: ``R = Â_L ··· Â_1``. The class token's row of ``R`` over the patch tokens,
laid out on the patch grid and upsampled, is the map. It is the same for every class (like
Eigen-CAM): it shows what the network attends to, not the evidence for one class.

Attention weights are recomputed from each attention module's own input and projections, so
nothing in the network changes and its fused attention kernel still runs: torchvision's
``nn.MultiheadAttention`` (its ViTs call it with ``need_weights=False``) and timm's ``Attention``
(``qkv`` projection, ``num_heads``, optional ``q_norm``/``k_norm``). Other networks (CNNs, a
torch.export program whose modules lost their types) have no attention to roll out: one line.
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import nn

from cvtools.errors import UsageError
from cvtools.visualize.attribution import Attribution
from cvtools.visualize.cam import minmax


def _torchvision_attention(module: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Softmax attention weights (N×heads×Tq×Tk) of an ``nn.MultiheadAttention`` call."""
    if not module.batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    e, heads = module.embed_dim, module.num_heads
    w = module.in_proj_weight
    b = module.in_proj_bias if module.in_proj_bias is not None else torch.zeros(3 * e, device=w.device, dtype=w.dtype)
    q = nn.functional.linear(query, w[:e], b[:e])
    k = nn.functional.linear(key, w[e:2 * e], b[e:2 * e])
    n, tq, tk, d = q.shape[0], q.shape[1], k.shape[1], e // heads
    q = q.reshape(n, tq, heads, d).transpose(1, 2)
    k = k.reshape(n, tk, heads, d).transpose(1, 2)
    return (q.float() @ k.float().transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)


def _timm_attention(module: nn.Module, qkv: torch.Tensor) -> torch.Tensor:
    """Softmax attention weights of a timm ``Attention`` from its ``qkv`` projection's output."""
    n, t, three_c = qkv.shape
    heads = module.num_heads
    d = three_c // 3 // heads
    q, k, _ = qkv.reshape(n, t, 3, heads, d).permute(2, 0, 3, 1, 4)
    q, k = getattr(module, "q_norm", nn.Identity())(q), getattr(module, "k_norm", nn.Identity())(k)
    scale = getattr(module, "scale", d ** -0.5)
    return (q.float() @ k.float().transpose(-2, -1) * scale).softmax(dim=-1)


_NO_ATTENTION = ("attention-rollout needs a vision transformer's attention layers (torchvision or timm ViT/DeiT, "
                 "loaded from a state dict or module); {name} has none it can read")


def _reads_attention(module: nn.Module) -> bool:
    """An attention module whose weights this can recompute (torchvision's or timm's)."""
    return isinstance(module, nn.MultiheadAttention) or (
        isinstance(getattr(module, "qkv", None), nn.Linear) and hasattr(module, "num_heads"))


def attention_weights(backbone, x: torch.Tensor) -> List[torch.Tensor]:
    """Each attention module's weights (N×heads×T×T, float32) for [0, 1] images ``x``, in the
    order the network runs them; a UsageError when the network has none this can read."""
    recorded: List[torch.Tensor] = []
    handles = []
    for module in backbone.model.modules():
        if isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_hook(
                lambda m, inputs, output: recorded.append(_torchvision_attention(m, inputs[0], inputs[1]))))
        elif _reads_attention(module):
            handles.append(module.qkv.register_forward_hook(
                lambda m, inputs, output, owner=module: recorded.append(_timm_attention(owner, output))))
    if not handles:
        raise UsageError(_NO_ATTENTION.format(name=backbone.name))
    try:
        with torch.no_grad():
            backbone(x)
    finally:
        for h in handles:
            h.remove()
    return recorded


def rollout(attentions: List[torch.Tensor], residual: float = 0.5) -> torch.Tensor:
    """``Â_L ··· Â_1`` with ``Â = (1 - residual)·mean_heads(A) + residual·I`` (N×T×T)."""
    result = None
    for a in attentions:
        a = a.mean(dim=1)
        eye = torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
        a = (1 - residual) * a + residual * eye
        result = a if result is None else a @ result
    return result


class AttentionRollout(Attribution):
    """Attention rollout: the class token's rolled-out attention to the patches, N×1×H×W in [0, 1]."""

    name = "attention-rollout"

    def __init__(self, backbone, internal_batch_size=None):
        super().__init__(backbone, internal_batch_size)
        if not any(_reads_attention(m) for m in backbone.model.modules()):  # refused once, not per photo
            raise UsageError(_NO_ATTENTION.format(name=backbone.name))

    def attribute(self, x, target=None):
        attentions = attention_weights(self.backbone, x)
        tokens = attentions[-1].shape[-1]
        grid = _patch_grid(self.backbone, tokens)
        extra = tokens - grid[0] * grid[1]
        rolled = rollout([a for a in attentions if a.shape[-1] == tokens])
        cls_row = rolled[:, 0, extra:].reshape(-1, 1, *grid)
        up = nn.functional.interpolate(cls_row, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return minmax(up)

    def heatmap(self, attribution):
        return attribution[:, 0]


def _patch_grid(backbone, tokens: int):
    """(h, w) of the patch grid behind ``tokens`` tokens, from the backbone's token views."""
    from cvtools.backbones.tokens import TokenGrid

    for view in getattr(backbone, "layer_views", {}).values():
        if isinstance(view, TokenGrid):
            try:
                h, w = view.grid(tokens)
            except Exception:  # another token count (a pooled stage): try the next view
                continue
            if h * w <= tokens:
                return h, w
    side = math.isqrt(tokens - 1)
    if side * side == tokens - 1:  # one class token on a square grid
        return side, side
    raise UsageError(f"attention-rollout: cannot lay {tokens} tokens of {backbone.name} on a patch grid")
