"""Faithfulness of a map: deletion and insertion AUC (Petsiuk et al. 2018, "RISE").

Deletion replaces the pixels the map ranks highest, step by step, with the backbone's mean colour
and follows the class probability: a faithful map makes it fall fast (low AUC). Insertion starts
from a blurred copy and puts the top pixels back: a faithful map makes it rise fast (high AUC).
Each number is reported next to the same curve for a random map, so it can be judged at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

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


def _ranks(scores: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """N×K scores -> N×K rank of each entry (0 = most important). Ties (the flat zeros of a CAM,
    the clipped top of a saliency map) are broken by ``jitter`` (1×K, tiny and random), not by
    position."""
    order = torch.argsort(scores.float() + jitter.to(scores.device), dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return ranks


def cell_size(height: int, width: int) -> int:
    """Side of the cells pixels are moved in: 1/28 of the short side (8 px at 224)."""
    return max(1, round(min(height, width) / 28))


@torch.no_grad()
def causal_curves(backbone, x: torch.Tensor, ranks: torch.Tensor, cell: int, target: torch.Tensor,
                  start: torch.Tensor, end: torch.Tensor, steps: int = 32, batch_size: int = 32) -> torch.Tensor:
    """Probability of ``target`` as ``cell``-sized cells move from ``start`` to ``end`` in rank order.

    ``ranks``: N×(cells) in row-major order of the ceil(H/cell)×ceil(W/cell) grid. Returns
    N×(steps+1): column k has the top k/steps of the cells taken from ``end``.
    """
    model = PixelModel(backbone)
    n, _, h, w = x.shape
    gh, gw = -(-h // cell), -(-w // cell)
    counts = torch.round(torch.arange(steps + 1, device=x.device) * (gh * gw / steps)).long()
    pairs = [(i, k) for i in range(n) for k in range(steps + 1)]
    probs = torch.empty(n, steps + 1, device=x.device)
    target = target.to(x.device)
    for s in range(0, len(pairs), batch_size):
        ii = torch.tensor([p[0] for p in pairs[s:s + batch_size]], device=x.device)
        kk = torch.tensor([p[1] for p in pairs[s:s + batch_size]], device=x.device)
        cells = (ranks[ii] < counts[kk][:, None]).view(-1, 1, gh, gw).to(x.dtype)
        mask = cells.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)[:, :, :h, :w]
        images = start[ii] * (1 - mask) + end[ii] * mask
        probs[ii, kk] = model(images).softmax(dim=1).gather(1, target[ii][:, None])[:, 0]
    return probs


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under N×(K+1) curves sampled evenly on [0, 1]."""
    k = curves.shape[1] - 1
    return (curves.sum(dim=1) - 0.5 * (curves[:, 0] + curves[:, -1])) / k


def random_blobs(height: int, width: int, generator: torch.Generator, grain: int = 4) -> torch.Tensor:
    """A smooth random map (1×H×W): uniform noise on a grid ``grain`` times coarser, bilinearly
    enlarged. Its regions are the size of a CAM's (stride 32 at 8 px cells), so the random
    baseline removes blobs as a region map does, not scattered specks (which wreck any image
    fastest and would make every map look worse than chance)."""
    import torch.nn.functional as F

    coarse = torch.rand((1, 1, max(1, -(-height // grain)), max(1, -(-width // grain))), generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]


def deletion_insertion(backbone, x: torch.Tensor, heatmaps: Dict[str, torch.Tensor], target: torch.Tensor,
                       steps: int = 32, seed: int = 0, batch_size: int = 32) -> Dict[str, List[CausalScores]]:
    """Deletion and insertion AUC of each method's maps (``heatmaps``: method -> N×H×W, the size
    of ``x``) and of a random map (computed once, reported with each).

    Pixels move in cells of :func:`cell_size`, ranked by the map's mean over the cell; the random
    map is :func:`random_blobs`. Deletion favours speckled maps (scattered holes wreck an image
    fastest, whatever they hide) and insertion smooth ones: compare methods of one kind.
    """
    import torch.nn.functional as F

    from cvtools.visualize.render import gaussian_blur

    x = x.detach().float()
    n, _, h, w = x.shape
    cell = cell_size(h, w)
    gh, gw = -(-h // cell), -(-w // cell)
    # The same random draws for every image, so an image's scores do not depend on its batch.
    gen = torch.Generator().manual_seed(seed)
    random_map = random_blobs(gh, gw, gen).flatten(1)
    jitter = torch.rand((1, gh * gw), generator=gen) * 1e-6
    mean = torch.tensor(backbone.preprocessing.mean, device=x.device).view(1, -1, 1, 1).expand_as(x)
    # RISE blurs with sigma 5 at 224 px; scaled with the image so the blur removes the same detail.
    blurred = gaussian_blur(x, 5.0 * min(h, w) / 224)

    def scores(ranks):
        deletion = auc(causal_curves(backbone, x, ranks, cell, target, x, mean, steps, batch_size))
        insertion = auc(causal_curves(backbone, x, ranks, cell, target, blurred, x, steps, batch_size))
        return deletion.cpu(), insertion.cpu()

    rd, ri = scores(_ranks(random_map.expand(n, -1).to(x.device), jitter))
    out = {}
    for name, heat in heatmaps.items():
        cells = F.avg_pool2d(heat.to(x.device).float()[:, None], cell, ceil_mode=True).flatten(1)
        d, i = scores(_ranks(cells, jitter))
        out[name] = [CausalScores(float(d[k]), float(i[k]), float(rd[k]), float(ri[k])) for k in range(n)]
    return out
def summarize(scores: Sequence[CausalScores]) -> str:
    """The mean scores of several images, described like one."""
    n = len(scores)
    mean = CausalScores(*(sum(getattr(s, f) for s in scores) / n for f in
                          ("deletion", "insertion", "random_deletion", "random_insertion")))
    return mean.describe()
