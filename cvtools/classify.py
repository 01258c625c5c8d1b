"""ImageNet classification with any backbone (the simplest use of the shared loader).

One photo, one answer: by default the network sees the photo as it was evaluated (shorter side
to the backbone's resize size, centre crop: the ImageNet protocol behind published accuracies),
and ``cvtools visualize`` takes its class and probability from the same crop
(:func:`answer_tensor`), so both commands name the same class with the same probability; the
heat maps still cover the whole photo. ``crop=False`` classifies the whole photo instead (short
side the crop size, nothing cut off), which loses accuracy: top-1 0.848 against 0.874 for the
crop on a held-out 950-image ImageNet sample (issue 26, EfficientNet-Lite0); on imagenet50 the
two give 46/50 (whole) and 45/50 (crop), too few to tell them apart.
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
        probs = backbone.probabilities(backbone(batch))
    p, idx = probs.topk(min(top_k, probs.shape[1]), dim=1)
    return [
        [Prediction(int(i), backbone.categories[int(i)], float(q)) for q, i in zip(prow, irow)]
        for prow, irow in zip(p.cpu(), idx.cpu())
    ]


def answer_tensor(image, preprocessing):
    """The 3×H×W [0, 1] tensor a PIL image's class is read from (``classify`` and the captions
    of ``visualize``): the evaluation centre crop of ``preprocessing``."""
    from cvtools.backbones.base import eval_crop

    return eval_crop(image.convert("RGB"), preprocessing)


def classify_input(image, backbone, crop: bool = True):
    """The 3×H×W [0, 1] tensor a PIL image is classified from: the backbone's evaluation centre
    crop (:func:`answer_tensor`), or (``crop=False``) the whole photo as ``visualize`` analyses it."""
    if crop:
        return answer_tensor(image, backbone.preprocessing)
    from cvtools.visualize.explain import analysis_tensor

    return analysis_tensor(image, backbone.preprocessing.crop_size)


def classify_images(backbone, images: Sequence, top_k: int = 5, batch_size: int = 32,
                    crop: bool = True) -> List[List[Prediction]]:
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


def classify_work(backbone, top_k: int = 5, crop: bool = True, max_pixels=-1, on_result=None, batch_size: int = 8):
    """``cvtools classify``'s work for :func:`cvtools.batch.run`: decode (``max_pixels``: as
    :func:`~cvtools.io.decode.load_image`'s) and make the network's input on loader threads,
    classify photos of one input size ``batch_size`` at a time, and hand ``(path, predictions)``
    to ``on_result`` in input order (the command prints them; :func:`classify_files` keeps them).
    ``backbone``: a loaded backbone or a Deferred one (built at the first photo that decodes)."""
    from cvtools.batch import BatchedWork

    def prepare(path):
        return {"path": path}

    def load(item):
        from cvtools.io.decode import load_image

        image = load_image(item["path"], max_pixels=max_pixels)
        item["x"] = classify_input(image.rgb, backbone, crop)
        return item

    def compute(items):
        import torch

        return classify_tensors(backbone, torch.stack([it["x"] for it in items]), top_k)

    def finish(path, item, preds):
        if on_result is not None:
            on_result(path, preds)

    return BatchedWork(prepare=prepare, compute=compute, finish=finish, batch_size=batch_size, load=load)


def classify_files(inputs, top_k: int = 5, *, backbone: str = "efficientnet_lite0", crop: bool = True,
                   device: str = "auto", precision: str = "auto", max_pixels=-1, on_note=None, progress=None):
    """Top-k predictions for photos (files, folders, glob patterns) as ``cvtools classify`` makes
    them: ``(results, report)``, ``results`` a list of ``(path, [Prediction, ...])`` in input
    order, ``report`` the :class:`cvtools.batch.BatchReport` (a file that fails does not stop the
    others; ``on_note(message)`` hears why)."""
    from pathlib import Path

    from cvtools.batch import run
    from cvtools.deferred import Deferred

    if isinstance(inputs, (str, Path)):
        inputs = [inputs]

    def build():
        from cvtools.backbones import load_backbone

        return load_backbone(backbone, device=device, precision=precision)

    results = []
    work = classify_work(Deferred(build), top_k, crop=crop, max_pixels=max_pixels,
                         on_result=lambda path, preds: results.append((str(path), preds)))

    def failed(path, message, exc):
        if on_note is not None:
            on_note(message)

    report = run([str(i) for i in inputs], work, on_note=on_note, on_fail=failed, progress=progress)
    return results, report
