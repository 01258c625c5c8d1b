"""Perceptual losses for style transfer, computed through the shared backbone's layer taps.

- style: Gram matrices (channel correlations, which forget *where* things are and keep *what*
  textures and colours co-occur) on several layers, compared with the painting's;
- content: activations of one deeper layer, compared with the photo's;
- total variation: a small smoothness prior against high-frequency noise.

Each layer's style term is divided by the squared norm of the painting's Gram matrix, and the
content term by the squared norm of the photo's activations. The raw magnitudes differ by orders
of magnitude between layers and between backbones; relative errors make the weights mean the
same thing on any backbone (style weight 1 = "every layer counts alike").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """N×C×H×W → N×C×C, normalised by H·W (so it does not grow with the image size), in fp32."""
    n, c, h, w = features.shape
    # Sums of H·W products lose too much in bf16/fp16: always fp32, even under autocast.
    with torch.autocast(features.device.type, enabled=False):
        f = features.float().reshape(n, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    return dh + dw


@dataclass
class LossWeights:
    content: float = 1.0
    style: float = 10.0
    tv: float = 1e-3
    #: relative weight of each style layer (default: all 1)
    layers: Optional[Dict[str, float]] = None


@dataclass
class StyleTarget:
    """The painting's Gram matrices in each style layer (1×C×C each) and their squared norms."""

    grams: Dict[str, torch.Tensor]
    norms: Dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self):
        if not self.norms:
            self.norms = {k: g.pow(2).sum().clamp_min(1e-12) for k, g in self.grams.items()}


@torch.no_grad()
def style_target(backbone, style_image: torch.Tensor, layers: Sequence[str]) -> StyleTarget:
    """Gram targets of a [0, 1] style image (3×H×W or 1×3×H×W) at the size given."""
    if style_image.dim() == 3:
        style_image = style_image.unsqueeze(0)
    feats = backbone.features(style_image, list(layers))
    return StyleTarget({k: gram_matrix(feats[k]) for k in layers})


def gram_distances(feats: Dict[str, torch.Tensor], target: StyleTarget) -> Dict[str, torch.Tensor]:
    """Per layer, per image: ‖G(x) − G(style)‖² / ‖G(style)‖² (shape N)."""
    out = {}
    for k, g_style in target.grams.items():
        g = gram_matrix(feats[k])
        out[k] = (g - g_style.to(g.device)).pow(2).sum(dim=(1, 2)) / target.norms[k].to(g.device)
    return out


def content_distance(f: torch.Tensor, f_ref: torch.Tensor) -> torch.Tensor:
    """Per image: ‖F(x) − F(photo)‖² / ‖F(photo)‖² (shape N)."""
    f, f_ref = f.float(), f_ref.float()
    dims = tuple(range(1, f.dim()))
    return (f - f_ref).pow(2).sum(dim=dims) / f_ref.pow(2).sum(dim=dims).clamp_min(1e-12)


class PerceptualLoss:
    """The training objective: weighted style + content + TV losses through a frozen backbone.

    >>> loss_fn = PerceptualLoss(backbone, target, ["blocks.0", "blocks.2"], "blocks.4", LossWeights())
    >>> total, parts = loss_fn(stylized, photos)     # parts: {"content", "style", "tv"} (detached)
    """

    def __init__(self, backbone, target: StyleTarget, style_layers: Sequence[str], content_layer: str,
                 weights: LossWeights):
        self.backbone = backbone
        self.target = target
        self.style_layers = list(style_layers)
        self.content_layer = content_layer
        self.weights = weights
        lw = weights.layers or {}
        total = sum(lw.get(k, 1.0) for k in self.style_layers)
        # layer weights are normalised to sum to 1, so --style-weight keeps its meaning
        self.layer_weights = {k: lw.get(k, 1.0) / total for k in self.style_layers}
        self.all_layers = list(dict.fromkeys(self.style_layers + [content_layer]))

    def __call__(self, stylized: torch.Tensor, photos: torch.Tensor):
        with torch.no_grad():
            photo_content = self.backbone.features(photos, [self.content_layer])[self.content_layer]
        feats = self.backbone.features(stylized, self.all_layers)
        style = sum(self.layer_weights[k] * d.mean() for k, d in gram_distances(feats, self.target).items())
        content = content_distance(feats[self.content_layer], photo_content).mean()
        tv = total_variation(stylized.float())
        w = self.weights
        total = w.style * style + w.content * content + w.tv * tv
        return total, {"style": style.detach(), "content": content.detach(), "tv": tv.detach()}
