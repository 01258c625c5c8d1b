"""Faithfulness of a map: deletion and insertion AUC (Petsiuk et al. 2018, "RISE") and ROAD
(Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods").

Deletion replaces the pixels the map ranks highest, step by step, with the backbone's mean colour
and follows the class probability: a faithful map makes it fall fast (low AUC). Insertion starts
from a blurred copy and puts the top pixels back: a faithful map makes it rise fast (high AUC).
ROAD removes the most (MoRF) or least (LeRF) relevant 10, 20, ..., 90 % of the pixels and fills
them by noisy linear imputation, which leaves no sharp-edged holes whose shape alone would tell
the network what was removed: a faithful map has a low MoRF and a high LeRF probability.
Each number is reported next to the same measure for a random map, so it can be judged at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from cvtools.visualize.model import PixelModel


@dataclass
class CausalScores:
    """Deletion / insertion AUC of one image's map, and of a random map, in [0, 1]; with ROAD,
    the mean class probability with the most / least relevant pixels imputed (and the random
    map's)."""

    deletion: float
    insertion: float
    random_deletion: float
    random_insertion: float
    road_morf: Optional[float] = None
    road_lerf: Optional[float] = None
    random_road_morf: Optional[float] = None
    random_road_lerf: Optional[float] = None

    def describe(self) -> str:
        text = (f"deletion AUC {self.deletion:.3f} (random {self.random_deletion:.3f}, lower is better) · "
                f"insertion AUC {self.insertion:.3f} (random {self.random_insertion:.3f}, higher is better)")
        if self.road_morf is not None:
            text += (f" · ROAD MoRF {self.road_morf:.3f} (random {self.random_road_morf:.3f}, lower is better) · "
                     f"LeRF {self.road_lerf:.3f} (random {self.random_road_lerf:.3f}, higher is better)")
        return text

    def to_json(self) -> dict:
        return {k: round(v, 6) for k, v in self.__dict__.items() if v is not None}


def _ranks(scores: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """N×K scores -> N×K rank of each entry (0 = most important). Ties (the flat zeros of a CAM,
    the clipped top of a saliency map) are broken by ``jitter`` (1×K, tiny and random), not by
    position."""
    order = torch.argsort(scores.float() + jitter.to(scores.device), dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return ranks


def _batches(items: int, batch_size: int) -> int:
    return -(-items // batch_size)


def cell_size(height: int, width: int) -> int:
    """Side of the cells pixels are moved in: 1/28 of the short side (8 px at 224)."""
    return max(1, round(min(height, width) / 28))


@torch.no_grad()
def causal_curves(backbone, x: torch.Tensor, ranks: torch.Tensor, cell: int, target: torch.Tensor,
                  start: torch.Tensor, end: torch.Tensor, steps: int = 32, batch_size: int = 32,
                  on_pass: Optional[Callable[[], None]] = None) -> torch.Tensor:
    """Probability of ``target`` as ``cell``-sized cells move from ``start`` to ``end`` in rank order.

    ``ranks``: N×(cells) in row-major order of the ceil(H/cell)×ceil(W/cell) grid. Returns
    N×(steps+1): column k has the top k/steps of the cells taken from ``end``. ``on_pass()``:
    after each forward pass (one per batch of ``batch_size`` points).
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
        probs[ii, kk] = backbone.probabilities(model(images)).gather(1, target[ii][:, None])[:, 0]
        if on_pass is not None:
            on_pass()
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
                       steps: int = 32, seed: int = 0, batch_size: int = 32,
                       on_pass: Optional[Callable[[], None]] = None) -> Dict[str, List[CausalScores]]:
    """Deletion and insertion AUC of each method's maps (``heatmaps``: method -> N×H×W, the size
    of ``x``) and of a random map (computed once, reported with each). ``on_pass()``: after each
    forward pass (:func:`faithfulness_passes` counts them).

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
        deletion = auc(causal_curves(backbone, x, ranks, cell, target, x, mean, steps, batch_size, on_pass))
        insertion = auc(causal_curves(backbone, x, ranks, cell, target, blurred, x, steps, batch_size, on_pass))
        return deletion.cpu(), insertion.cpu()

    rd, ri = scores(_ranks(random_map.expand(n, -1).to(x.device), jitter))
    out = {}
    for name, heat in heatmaps.items():
        cells = F.avg_pool2d(heat.to(x.device).float()[:, None], cell, ceil_mode=True).flatten(1)
        d, i = scores(_ranks(cells, jitter))
        out[name] = [CausalScores(float(d[k]), float(i[k]), float(rd[k]), float(ri[k])) for k in range(n)]
    return out


# ----------------------------------------------------------------------------- ROAD

#: The 8 neighbours' weights of noisy linear imputation (Rong et al. 2022): 1/6 for the 4 sides, 1/12
#: for the 4 corners.
_NEIGHBOURS = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))

ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _neighbour_sum(z: torch.Tensor) -> torch.Tensor:
    """Weighted sum of each pixel's in-image neighbours (N×C×H×W; outside the image counts 0)."""
    import torch.nn.functional as F

    n, c, h, w = z.shape
    kernel = torch.tensor(_NEIGHBOURS, dtype=z.dtype, device=z.device).view(1, 1, 3, 3)
    return F.conv2d(z.reshape(n * c, 1, h, w), kernel, padding=1).view(n, c, h, w)


def _conjugate_gradients(x: torch.Tensor, keep: torch.Tensor, guess: torch.Tensor, tol: float,
                         max_iterations: int, check_every: int = 8) -> Tuple[torch.Tensor, torch.Tensor]:
    """Solve the imputation system for the pixels where ``keep`` is False.

    Each missing pixel equals the weighted mean of its in-image neighbours (known ones fixed):
    ``deg * u - W u = W x_known`` on the missing pixels, a symmetric positive definite system
    (a graph Laplacian with the known pixels as boundary) solved per image and channel by
    conjugate gradients from ``guess`` until the residual is below ``tol`` times the right-hand
    side. An item stops updating once converged (checked every ``check_every`` iterations), so
    its result does not depend on its batch-mates. Returns (image, relative residual per item)."""
    missing = (~keep).to(x.dtype).expand_as(x)
    known = x * keep
    degree = _neighbour_sum(torch.ones_like(keep, dtype=x.dtype))

    def apply(z):
        return missing * (degree * z - _neighbour_sum(z))

    dims = (2, 3)
    b = missing * _neighbour_sum(known)
    b_norm = (b * b).sum(dims, keepdim=True).sqrt()
    u = guess * missing
    r = b - apply(u)
    p = r.clone()
    rr = (r * r).sum(dims, keepdim=True)
    active = (rr.sqrt() > tol * b_norm).to(x.dtype)
    for k in range(max_iterations):
        if k % check_every == 0:
            active = active * (rr.sqrt() > tol * b_norm).to(x.dtype)
            if not bool(active.any()):
                break
        ap = apply(p)
        pap = (p * ap).sum(dims, keepdim=True)
        alpha = active * rr / torch.where(pap > 0, pap, 1)
        u = u + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(dims, keepdim=True)
        beta = rr_new / torch.where(rr > 0, rr, 1)
        p = torch.where(active > 0, r + beta * p, p)
        rr = torch.where(active > 0, rr_new, rr)
    return known + u, rr.sqrt() / b_norm.clamp_min(torch.finfo(x.dtype).tiny)


def linear_impute(x: torch.Tensor, keep: torch.Tensor, tol: float = 1e-4, max_iterations: Optional[int] = None,
                  min_side: int = 8) -> torch.Tensor:
    """Linear imputation of the pixels of ``x`` (N×C×H×W) where ``keep`` (N×1×H×W bool) is False:
    each becomes the weighted mean of its 8 neighbours (ROAD's system, solved exactly rather than
    by a sparse factorisation). The start is the same problem solved on a half-size image (known
    there where any of its 4 pixels is known), recursively, enlarged bilinearly: large holes then
    need few iterations. ``max_iterations`` defaults to H + W."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    max_iterations = max_iterations or (h + w)
    if min(h, w) <= min_side:
        guess = torch.zeros_like(x)
    else:
        k = keep.to(x.dtype)
        coarse_keep = F.avg_pool2d(k, 2, ceil_mode=True)
        coarse = F.avg_pool2d(x * k, 2, ceil_mode=True) / coarse_keep.clamp_min(1e-12)
        coarse = linear_impute(coarse, coarse_keep > 0, tol, None, min_side)
        guess = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return _conjugate_gradients(x, keep, guess, tol, max_iterations)[0]


def road(backbone, x: torch.Tensor, heatmaps: Dict[str, torch.Tensor], target: torch.Tensor,
         fractions: Sequence[float] = ROAD_FRACTIONS, noise: float = 0.01, seed: int = 0, batch_size: int = 32,
         random_map: Optional[torch.Tensor] = None, on_pass: Optional[Callable[[], None]] = None
         ) -> Dict[str, List[Tuple[float, float]]]:
    """ROAD (Rong et al. 2022): for each map (``heatmaps``: method -> N×H×W) the mean probability of
    ``target`` over ``fractions`` with the most relevant (MoRF) and the least relevant (LeRF)
    pixels removed by noisy linear imputation. Returns method -> per image (MoRF, LeRF); with
    ``random_map`` (1×H×W) also ``"random"``. ``on_pass()``: after each forward pass (one per
    batch of ``batch_size`` (image, fraction, order) items).

    Imputation runs on the [0, 1] image; it commutes with the backbone's per-channel
    normalisation, and the noise (std ``noise`` in normalised units, as ROAD's 0.01) is scaled by
    the backbone's std, so this is ROAD on the network's own input. Ties in a map (a CAM's zeros)
    are broken by a fixed random jitter; the noise is the same draw for every image, so an
    image's scores do not depend on its batch-mates.
    """
    from cvtools.visualize.model import PixelModel

    x = x.detach().float()
    n, _, h, w = x.shape
    model = PixelModel(backbone)
    gen = torch.Generator().manual_seed(seed + 1)
    jitter = (torch.rand((1, h * w), generator=gen) * 1e-6).to(x.device)
    std = torch.tensor(backbone.preprocessing.std, dtype=x.dtype).view(1, -1, 1, 1)
    fill = (torch.randn((1,) + tuple(x.shape[1:]), generator=gen) * noise * std).to(x.device)
    maps = dict(heatmaps)
    if random_map is not None:
        maps["random"] = random_map.expand(n, h, w)
    target = target.to(x.device)
    counts = [round(f * h * w) for f in fractions]
    out = {}
    for name, heat in maps.items():
        ranks = _ranks(heat.to(x.device).float().reshape(n, -1), jitter)  # 0 = most relevant
        # Items: (image, fraction, order); order 0 removes the most relevant pixels, 1 the least.
        items = [(i, j, o) for i in range(n) for o in (0, 1) for j in range(len(fractions))]
        probs = torch.empty(n, 2, len(fractions), device=x.device)
        for s in range(0, len(items), batch_size):
            part = items[s:s + batch_size]
            ii = torch.tensor([p[0] for p in part], device=x.device)
            cc = torch.tensor([counts[p[1]] for p in part], device=x.device)[:, None]
            oo = torch.tensor([p[2] for p in part], device=x.device)[:, None]
            r = ranks[ii]
            removed = torch.where(oo == 0, r < cc, r >= h * w - cc)
            keep = ~removed.view(-1, 1, h, w)
            filled = linear_impute(x[ii], keep)
            filled = torch.where(keep, filled, filled + fill)
            with torch.no_grad():
                p = backbone.probabilities(model(filled)).gather(1, target[ii][:, None])[:, 0]
            probs[ii, oo[:, 0], torch.tensor([q[1] for q in part], device=x.device)] = p
            if on_pass is not None:
                on_pass()
        mean = probs.mean(dim=2).cpu()
        out[name] = [(float(mean[i, 0]), float(mean[i, 1])) for i in range(n)]
    return out


def faithfulness_passes(images: int, maps: int, steps: int = 32, batch_size: int = 32, with_road: bool = True,
                        fractions: Sequence[float] = ROAD_FRACTIONS) -> int:
    """The forward passes :func:`faithfulness` runs for ``images`` images and ``maps`` maps (each
    with the random map's beside them): a deletion and an insertion curve of ``steps`` + 1 points
    per image and map, and ROAD's MoRF and LeRF at each fraction, both in batches of ``batch_size``."""
    curves = (maps + 1) * 2 * _batches(images * (steps + 1), batch_size)
    return curves + ((maps + 1) * _batches(images * 2 * len(fractions), batch_size) if with_road else 0)


class _Passes:
    """``progress(done, total)`` after each of ``total`` forward passes (``tick()`` after each)."""

    def __init__(self, total: int, progress: Optional[Callable[[int, int], None]]):
        self.done, self.total, self.progress = 0, total, progress

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def faithfulness(backbone, x: torch.Tensor, heatmaps: Dict[str, torch.Tensor], target: torch.Tensor,
                 steps: int = 32, seed: int = 0, batch_size: int = 32, with_road: bool = True,
                 progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, List[CausalScores]]:
    """What ``--metrics`` reports: :func:`deletion_insertion` and, ``with_road``, :func:`road`, for
    each map and for the random map (the deletion metric's smooth random map, enlarged to pixels).
    ``progress(done, total)``: after each of the ``total`` forward passes
    (:func:`faithfulness_passes`; hundreds on a few photos, minutes on a CPU)."""
    import torch.nn.functional as F

    passes = _Passes(faithfulness_passes(len(x), len(heatmaps), steps, batch_size, with_road), progress)
    scores = deletion_insertion(backbone, x, heatmaps, target, steps=steps, seed=seed, batch_size=batch_size,
                                on_pass=passes.tick)
    if not with_road:
        return scores
    h, w = x.shape[-2:]
    cell = cell_size(h, w)
    blobs = random_blobs(-(-h // cell), -(-w // cell), torch.Generator().manual_seed(seed))  # deletion's draw
    random_map = F.interpolate(blobs[None], scale_factor=cell, mode="bilinear", align_corners=False)[0, :, :h, :w]
    rs = road(backbone, x, heatmaps, target, seed=seed, batch_size=batch_size, random_map=random_map,
              on_pass=passes.tick)
    for name, per_image in scores.items():
        for s, (morf, lerf), (rmorf, rlerf) in zip(per_image, rs[name], rs["random"]):
            s.road_morf, s.road_lerf, s.random_road_morf, s.random_road_lerf = morf, lerf, rmorf, rlerf
    return scores


def summarize(scores: Sequence[CausalScores]) -> str:
    """The mean scores of several images, described like one."""
    n = len(scores)
    fields = [f for f in CausalScores.__dataclass_fields__ if all(getattr(s, f) is not None for s in scores)]
    mean = CausalScores(**{f: sum(getattr(s, f) for s in scores) / n for f in fields})
    return mean.describe()
