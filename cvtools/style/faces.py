"""Faces in the training photos, for the face-against-its-surroundings term (issue 29).

A style network trained on the painting's palette alone paints a dark face the painting's light
beige (great_wave: a dark-skinned man's face as pale as the wall behind him). The term that fixed
it without paling light-skinned faces (:func:`cvtools.style.losses.face_contrast_distance`)
needs to know where the faces are: hand-drawn boxes on the training photos
(:data:`FREE_PHOTO_FACES`: the nine faces among ``shared/data/photos/free``), a fourth channel of
each training crop (:class:`cvtools.style.train_data.PhotoCrops`), narrowed to skin-coloured
pixels (:func:`face_weights`). Few training photos show dark skin, so a share of the batch has its
faces darkened (:func:`darken_faces`): the network sees dark faces it must keep dark against a
light surround.

A boxes file is JSON: ``{"photo file name": [[x0, y0, x1, y1], ...]}``, corners as fractions of
the photo's width and height. It is read as untrusted input (:func:`load_face_boxes`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

#: the boxes drawn by hand on the freely licensed training photos (2026-12-06)
FREE_PHOTO_FACES = Path(__file__).resolve().parent.parent / "data" / "free_photo_faces.json"
#: the most boxes a file may hold (a hand-made list is far smaller; a larger file is not one)
MAX_BOXES = 100_000
#: a darkened face keeps this share of its light, log-uniform (skin from fair to very dark)
DARKEN_RANGE = (0.3, 0.75)


def load_face_boxes(path=None) -> Dict[str, List[List[float]]]:
    """The boxes file at ``path`` (None: :data:`FREE_PHOTO_FACES`), checked: a mapping of file
    names to lists of four fractions with x0 < x1, y0 < y1. ValueError naming the file and the
    first bad entry."""
    path = Path(path) if path is not None else FREE_PHOTO_FACES
    if path.stat().st_size > 64 * MAX_BOXES:
        raise ValueError(f"{path}: too large for a face-boxes file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a face-boxes JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must map photo file names to lists of boxes")
    count = 0
    for name, boxes in data.items():
        if not isinstance(boxes, list):
            raise ValueError(f"{path}: {name!r} must have a list of boxes")
        for box in boxes:
            ok = (isinstance(box, list) and len(box) == 4
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1
                          for v in box) and box[0] < box[2] and box[1] < box[3])
            if not ok:
                raise ValueError(f"{path}: {name!r} has a box that is not [x0, y0, x1, y1] fractions with x0 < x1, "
                                 f"y0 < y1: {box!r}")
            count += 1
    if count > MAX_BOXES:
        raise ValueError(f"{path}: more than {MAX_BOXES} boxes")
    return {os.path.basename(str(k)): v for k, v in data.items()}


def face_mask(size, boxes: List[List[float]]):
    """An L-mode PIL image of ``size`` (w, h): 255 inside the boxes, 0 elsewhere."""
    from PIL import Image, ImageDraw

    w, h = size
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0 * w, y0 * h, x1 * w, y1 * h], fill=255)
    return mask


def face_weights(photos: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Where the faces are, N×1×H×W in [0, 1]: the boxes' channel (N×1×H×W in [0, 1]) times the
    photo's skin colour (:func:`cvtools.style.losses.skin_mask`, 5×5 mean): a box holds hair,
    hats and background too."""
    from cvtools.style.losses import skin_mask

    skin = F.avg_pool2d(skin_mask(photos), 5, 1, 2, count_include_pad=False)
    return boxes.to(photos.dtype) * skin


def darken_faces(photos: torch.Tensor, faces: torch.Tensor, share: float, step: int) -> torch.Tensor:
    """``photos`` (N×3×H×W in [0, 1]) with the faces of about ``share`` of them darkened to
    :data:`DARKEN_RANGE` of their light, rounded to 8 bits as a photo would be. The picks and
    factors come from a generator seeded by the step (resumable, and the same on every device)."""
    if share <= 0:
        return photos
    g = torch.Generator().manual_seed(4321 + int(step))
    n = photos.shape[0]
    pick = (torch.rand(n, generator=g) < share).float().view(n, 1, 1, 1)
    factor = torch.exp(torch.empty(n).uniform_(math.log(DARKEN_RANGE[0]), math.log(DARKEN_RANGE[1]), generator=g))
    pick, factor = pick.to(photos.device), factor.view(n, 1, 1, 1).to(photos.device)
    darker = (photos * (1 - faces * (1 - factor) * pick)).clamp(0, 1)
    return (darker * 255).round() / 255


def face_boxes_for(objective: Optional[dict]) -> Optional[Dict[str, List[List[float]]]]:
    """The boxes a recipe's objective trains with: None unless its ``face_contrast_weight`` is
    set; then its ``face_boxes`` file (None: :data:`FREE_PHOTO_FACES`)."""
    o = objective or {}
    if not float(o.get("face_contrast_weight", 0) or 0):
        return None
    return load_face_boxes(o.get("face_boxes"))
