"""Faithfulness of a map: deletion and insertion AUC (Petsiuk et al. 2018, "RISE").

Deletion replaces the pixels the map ranks highest, step by step, with the backbone's mean colour
and follows the class probability: a faithful map makes it fall fast (low AUC). Insertion starts
from a blurred copy and puts the top pixels back: a faithful map makes it rise fast (high AUC).
Each number is reported next to the same curve for a random map, so it can be judged at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch

from cvtools.visualize.model import PixelModel


@dataclass
class CausalScores:
    """Deletion / insertion AUC of one image's map, and of a random map, in [0, 1]."""

    deletion: float
    insertion: float
    random_deletion: float
    random_insertion: float

    def describe(self) -> str:
        return (f"deletion AUC {self.deletion:.3f} (random {self.random_deletion:.3f}, lower is better) · "
                f"insertion AUC {self.insertion:.3f} (random {self.random_insertion:.3f}, higher is better)")

    def to_json(self) -> dict:
        return {k: round(v, 6) for k, v in self.__dict__.items()}


def _pixel_ranks(heat: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """N×H×W maps -> N×(H·W) rank of each pixel (0 = most important). Ties (the flat zeros of a
    CAM, the clipped top of a saliency map) are broken by ``jitter`` (1×H·W, tiny and random),
    not by position."""
    flat = heat.flatten(1).float()
    order = torch.argsort(flat + jitter.to(flat.device), dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


@torch.no_grad()
def causal_curves(backbone, x: torch.Tensor, ranks: torch.Tensor, target: torch.Tensor, start: torch.Tensor,
                  end: torch.Tensor, steps: int = 32, batch_size: int = 32) -> torch.Tensor:
    """Probability of ``target`` as pixels move from ``start`` to ``end`` in rank order.

    Returns N×(steps+1): column k has the top k/steps of pixels taken from ``end``.
    """
    model = PixelModel(backbone)
    n, _, h, w = x.shape
    counts = torch.round(torch.arange(steps + 1, device=x.device) * (h * w / steps)).long()
    pairs = [(i, k) for i in range(n) for k in range(steps + 1)]
    probs = torch.empty(n, steps + 1, device=x.device)
    target = target.to(x.device)
    for s in range(0, len(pairs), batch_size):
        ii = torch.tensor([p[0] for p in pairs[s:s + batch_size]], device=x.device)
        kk = torch.tensor([p[1] for p in pairs[s:s + batch_size]], device=x.device)
        mask = (ranks[ii] < counts[kk][:, None]).view(-1, 1, h, w).to(x.dtype)
        images = start[ii] * (1 - mask) + end[ii] * mask
        p = model(images).softmax(dim=1).gather(1, target[ii][:, None])[:, 0]
        probs[ii, kk] = p
    return probs


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under N×(K+1) curves sampled evenly on [0, 1]."""
    k = curves.shape[1] - 1
    return (curves.sum(dim=1) - 0.5 * (curves[:, 0] + curves[:, -1])) / k


def deletion_insertion(backbone, x: torch.Tensor, heatmaps: torch.Tensor, target: torch.Tensor, steps: int = 32,
                       seed: int = 0, batch_size: int = 32) -> List[CausalScores]:
    """Deletion and insertion AUC for maps ``heatmaps`` (N×H×W, the size of ``x``) and for random maps."""
    from cvtools.visualize.render import gaussian_blur

    x = x.detach().float()
    n, _, h, w = x.shape
    # The same random draws for every image, so an image's scores do not depend on its batch.
    gen = torch.Generator().manual_seed(seed)
    random_map = torch.rand((1, h * w), generator=gen)
    jitter = torch.rand((1, h * w), generator=gen) * 1e-6
    mean = torch.tensor(backbone.preprocessing.mean, device=x.device).view(1, -1, 1, 1).expand_as(x)
    # RISE blurs with sigma 5 at 224 px; scaled with the image so the blur removes the same detail.
    blurred = gaussian_blur(x, 5.0 * min(h, w) / 224)
    ranks = _pixel_ranks(heatmaps.to(x.device), jitter)
    random_ranks = _pixel_ranks(random_map.expand(n, -1).to(x.device), jitter)
    out = []
    scores = []
    for r in (ranks, random_ranks):
        deletion = auc(causal_curves(backbone, x, r, target, x, mean, steps, batch_size))
        insertion = auc(causal_curves(backbone, x, r, target, blurred, x, steps, batch_size))
        scores.append((deletion.cpu(), insertion.cpu()))
    (d, i), (rd, ri) = scores
    for k in range(n):
        out.append(CausalScores(float(d[k]), float(i[k]), float(rd[k]), float(ri[k])))
    return out


def summarize(scores: Sequence[CausalScores]) -> str:
    """The mean scores of several images, described like one."""
    n = len(scores)
    mean = CausalScores(*(sum(getattr(s, f) for s in scores) / n for f in
                          ("deletion", "insertion", "random_deletion", "random_insertion")))
    return mean.describe()
