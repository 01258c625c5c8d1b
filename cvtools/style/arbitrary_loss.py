"""The any-painting network's style distance: what its training minimises (``train_arbitrary``)
and what fitting it to one painting minimises (``arbitrary_fit``), one definition for both."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch


class ArbitraryStyleDistance:
    """Per sample, through one network's layers: ‖G(y) − G(painting)‖² / ‖G(painting)‖² (relative,
    so every painting pulls alike whatever its Gram norm), plus ``stats_weight`` × the relative
    distance of the channel means and standard deviations. ``transform`` "swag": a softmax over
    each position's channels before the Gram matrix, its temperature each painting's activation
    spread in that layer (:func:`cvtools.style.losses.swag`); "gram": plain Grams; "swag+gram": the
    mean of the two relative distances (the softmax tames peaky activations, but the independent
    yardstick reads plain Grams, and a texture trained on swag alone can sit far from it there)."""

    TRANSFORMS = ("gram", "swag", "swag+gram")

    def __init__(self, transform: str = "swag", stats_weight: float = 0.5):
        if transform not in self.TRANSFORMS:
            raise ValueError(f"style transform {transform!r} must be one of {', '.join(self.TRANSFORMS)}")
        self.transform, self.stats_weight = transform, float(stats_weight)

    def temperature(self, f: torch.Tensor) -> Optional[torch.Tensor]:
        """Per painting (N×1×1×1): the spread of its activations in this layer (swag only)."""
        if self.transform == "gram":
            return None
        return f.float().flatten(1).std(dim=1).clamp_min(1e-3).view(-1, 1, 1, 1)

    @staticmethod
    def gram(f: torch.Tensor, temperature: Optional[torch.Tensor]) -> torch.Tensor:
        from cvtools.style.losses import gram_matrix, swag

        return gram_matrix(f if temperature is None else swag(f, temperature))

    @staticmethod
    def relative(g: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """‖g − target‖² / ‖target‖² per sample (N)."""
        return (g - target).pow(2).sum(dim=(1, 2)) / target.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)

    def layer(self, f: torch.Tensor, f_painting: torch.Tensor, target: torch.Tensor,
              temperature: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One layer, per sample (N), against ``target`` = ``gram(f_painting, temperature)``."""
        from cvtools.style.arbitrary import channel_statistics

        d = self.relative(self.gram(f, temperature), target)
        if self.transform == "swag+gram":
            d = 0.5 * (d + self.relative(self.gram(f, None), self.gram(f_painting, None)))
        if self.stats_weight:
            s, s_ref = channel_statistics(f), channel_statistics(f_painting)
            d = d + self.stats_weight * (s - s_ref).pow(2).sum(1) / s_ref.pow(2).sum(1).clamp_min(1e-12)
        return d

    def __call__(self, feats: Dict[str, torch.Tensor], painting_feats: Dict[str, torch.Tensor],
                 layers: Sequence[str]) -> torch.Tensor:
        """Per sample (N): the mean over ``layers`` against the paintings' own features."""
        total = 0.0
        for k in layers:
            t = self.temperature(painting_feats[k])
            total = total + self.layer(feats[k], painting_feats[k], self.gram(painting_feats[k], t), t)
        return total / len(layers)
