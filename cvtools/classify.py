"""ImageNet classification with any backbone (the simplest use of the shared loader).

One photo, one answer: by default the network sees the whole photo exactly as ``cvtools
visualize`` does (:func:`cvtools.visualize.explain.analysis_tensor`: short side the backbone's
crop size, long side a multiple of 32, nothing cut off), so ``classify`` and the captions of
``visualize`` name the same class with the same probability. ``crop=True`` gives the ImageNet
evaluation protocol instead (shorter side to 256, centre 224×224 crop: what published top-1
accuracies mean), which cuts the sides off wide photos. On the 50 imagenet50 photos with
EfficientNet-Lite0: top-1 46/50 whole, 45/50 centre crop; the two agree on the top class for
41/50 (chelsea: "Egyptian cat" 38.7 % whole, "tiger cat" 39.1 % cropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence


@dataclass
class Prediction:
    index: int
    name: str
    probability: float


def classify_tensors(backbone, batch, top_k: int = 5) -> List[List[Prediction]]:
    """Top-k predictions for a batch of [0, 1] images (N×3×H×W)."""
    import torch

    with torch.inference_mode():
        probs = backbone(batch).softmax(dim=1)
    p, idx = probs.topk(min(top_k, probs.shape[1]), dim=1)
    return [
        [Prediction(int(i), backbone.categories[int(i)], float(q)) for q, i in zip(prow, irow)]
        for prow, irow in zip(p.cpu(), idx.cpu())
    ]


def classify_input(image, backbone, crop: bool = False):
    """The 3×H×W [0, 1] tensor a PIL image is classified from: the whole photo as ``visualize``
    sees it, or (``crop``) the backbone's evaluation centre crop."""
    if crop:
        from cvtools.backbones.base import eval_crop

        return eval_crop(image, backbone.preprocessing)
    from cvtools.visualize.explain import analysis_tensor

    return analysis_tensor(image, backbone.preprocessing.crop_size)


def classify_images(backbone, images: Sequence, top_k: int = 5, batch_size: int = 32,
                    crop: bool = False) -> List[List[Prediction]]:
    """Top-k predictions for PIL images (see the module's note on ``crop``). Images of the same
    analysed shape run together, in batches of up to ``batch_size``; results keep the input order."""
    import torch

    tensors = [classify_input(im, backbone, crop) for im in images]
    out: List = [None] * len(tensors)
    by_shape = {}
    for i, t in enumerate(tensors):
        by_shape.setdefault(tuple(t.shape), []).append(i)
    for members in by_shape.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            for i, preds in zip(chunk, classify_tensors(backbone, torch.stack([tensors[i] for i in chunk]), top_k)):
                out[i] = preds
    return out
