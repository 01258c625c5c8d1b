"""ImageNet classification with any backbone (the simplest use of the shared loader)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence


@dataclass
class Prediction:
    index: int
    name: str
    probability: float


def classify_tensors(backbone, batch, top_k: int = 5) -> List[List[Prediction]]:
    """Top-k predictions for a batch of eval-cropped [0, 1] images (N×3×S×S)."""
    import torch

    with torch.inference_mode():
        probs = backbone(batch).softmax(dim=1)
    p, idx = probs.topk(min(top_k, probs.shape[1]), dim=1)
    return [
        [Prediction(int(i), backbone.categories[int(i)], float(q)) for q, i in zip(prow, irow)]
        for prow, irow in zip(p.cpu(), idx.cpu())
    ]


def classify_images(backbone, images: Sequence, top_k: int = 5, batch_size: int = 32):
    """Top-k predictions for PIL images, resized and centre-cropped the backbone's way."""
    import torch

    from cvtools.backbones.base import eval_crop

    out = []
    for start in range(0, len(images), batch_size):
        chunk = torch.stack([eval_crop(im, backbone.preprocessing) for im in images[start:start + batch_size]])
        out.extend(classify_tensors(backbone, chunk, top_k))
    return out
