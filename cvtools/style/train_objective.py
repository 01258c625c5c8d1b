"""What train-style optimises besides the perceptual loss of :mod:`cvtools.style.losses`: the
learning-rate schedule and the stability term (a photo moved a little must give the output
moved the same way, so video frames do not flicker)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from cvtools.style.train_config import TrainConfig


def learning_rate(config: TrainConfig, step: int) -> float:
    """Short linear warm-up, then cosine decay to a tenth (a function of the step: resumable)."""
    warm = min(100, max(1, config.steps // 20))
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, config.steps - warm)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


#: the moves of the stability term, per photo, uniform in ±: shift (pixels), zoom (fraction),
#: turn (degrees). A video's frame-to-frame motion is mostly of this size (the synthetic clips
#: of cvtools.video.synthetic: pans of 0.5-2 px, zooms of 1.2 % per frame).
STABILITY_MOVES = {"shift": 2.0, "zoom": 0.02, "turn": 1.0}
#: pixels at the border left out of the stability term (where a move brings in reflected
#: content that the original photo does not have)
STABILITY_BORDER = 8


def _sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class StabilityPair:
    """The photos moved (``image``), and the same move for the outputs (:meth:`move`);
    ``weight`` (N×1×H×W or None): where the outputs are compared (0 along a moving object's
    edge, where the network rightly paints differently: a new edge in new surroundings)."""

    image: torch.Tensor
    grid: torch.Tensor
    weight: Optional[torch.Tensor] = None

    def move(self, y: torch.Tensor) -> torch.Tensor:
        return _sample(y, self.grid)

    def distance(self, y_moved: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared difference, in fp32, between the output of the moved photo and the
        moved output, inside the border (and off moving objects' edges)."""
        b = STABILITY_BORDER
        d = (y_moved.float() - self.move(y)).pow(2)
        w = self.weight
        if d.shape[-1] > 4 * b and d.shape[-2] > 4 * b:
            d = d[..., b:-b, b:-b]
            w = None if w is None else w[..., b:-b, b:-b]
        if w is None:
            return d.mean()
        return (d * w).sum() / (w.sum() * d.shape[1]).clamp_min(1.0)


def stability_pair(x: torch.Tensor, generator: torch.Generator, moves: Optional[Dict[str, float]] = None,
                   local_fraction: float = 0.0, deform: float = 0.0) -> StabilityPair:
    """Each photo of the batch ``x`` (B×3×H×W in [0, 1]) moved by a small random similarity
    transform (bilinear, reflected at the borders): what consecutive video frames look like.
    The stability term of train-style (Gupta et al. 2017's idea: train the network to answer
    small moves with the same strokes, moved) needs no video: only still photos.

    ``local_fraction`` of the photos also get a moving object (:func:`_moving_disc`): a disc
    of the photo that moves on its own, as a person or a car does in front of a panning camera.
    ``deform`` (px, 0: off): every photo also ripples, by a smooth random field of at most that
    many px (:func:`_ripple`): a face that talks, which no similarity transform or sliding disc
    is (``--stable`` blends such layers, and the blend is what costs it style on real footage:
    QUALITY.md, "Where --stable's style cost on real footage comes from")."""
    m = dict(STABILITY_MOVES, **(moves or {}))
    n, _, h, w = x.shape
    r = torch.rand(n, 4, generator=generator, dtype=torch.float64) * 2 - 1
    scale = 1 + m["zoom"] * r[:, 0]
    angle = torch.deg2rad(m["turn"] * r[:, 1])
    # affine_grid works in [-1, 1] units (align_corners=False: a pixel is 2/size wide)
    tx, ty = m["shift"] * r[:, 2] * 2 / w, m["shift"] * r[:, 3] * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    aspect = h / w  # a turn in pixels, not in the unit square
    theta = torch.stack([torch.stack([cos, -sin * aspect, tx], 1), torch.stack([sin / aspect, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.float().to(x.device), [n, 3, h, w], align_corners=False)
    weight = None
    if local_fraction > 0:
        grid, weight = _moving_disc(grid, generator, local_fraction)
    if deform > 0:  # drawn after the other moves: recipes without it keep their random stream
        grid = grid + _ripple(n, h, w, deform, generator).to(grid.device)
    image = _sample(x, grid).to(x.dtype)
    if x.is_contiguous(memory_format=torch.channels_last):
        image = image.contiguous(memory_format=torch.channels_last)
    return StabilityPair(image, grid, weight)


#: the ripple's field: random displacements on a RIPPLE_CELLS × RIPPLE_CELLS lattice, interpolated
#: bicubically (a talking face's motion varies over a few cells of the face, not per pixel)
RIPPLE_CELLS = 4


def _ripple(n: int, h: int, w: int, amplitude: float, generator: torch.Generator) -> torch.Tensor:
    """N×H×W×2 offsets in grid units: a smooth field of at most ``amplitude`` px per axis."""
    k = RIPPLE_CELLS
    field = (torch.rand(n, 2, k, k, generator=generator, dtype=torch.float64) * 2 - 1).float()
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True).clamp(-1, 1) * amplitude
    return torch.stack([field[:, 0] * 2 / w, field[:, 1] * 2 / h], -1)


#: the moving object of the stability term: a disc of radius ``radius`` × the short side,
#: moved ± ``shift`` pixels per axis on top of the camera's move (the synthetic clips' objects
#: move 2-3 px a frame); ``edge`` pixels either side of its rim are left out of the comparison
#: (plus the move itself: what the disc uncovers or covers has no counterpart)
MOVING_OBJECT = {"radius": (0.12, 0.3), "shift": 3.0, "edge": 4.0}


def _moving_disc(grid: torch.Tensor, generator: torch.Generator, fraction: float):
    """``grid`` (N×H×W×2, where each moved pixel samples the photo) with a disc of some
    photos sampled from an extra offset: the disc's content moves on its own. Returns the new
    grid and the comparison weight (N×1×H×W: 0 near the disc's rim, 1 elsewhere)."""
    n, h, w, _ = grid.shape
    o = MOVING_OBJECT
    r = torch.rand(n, 6, generator=generator, dtype=torch.float64)
    chosen = (r[:, 0] < fraction).to(torch.float64)
    short = min(h, w)
    radius = (o["radius"][0] + (o["radius"][1] - o["radius"][0]) * r[:, 1]) * short
    cx, cy = r[:, 2] * (w - 1), r[:, 3] * (h - 1)
    dx, dy = (r[:, 4] * 2 - 1) * o["shift"] * chosen, (r[:, 5] * 2 - 1) * o["shift"] * chosen
    dev = grid.device
    ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    f = lambda t: t.float().to(dev).view(n, 1, 1)  # noqa: E731
    dist = ((xs - f(cx)) ** 2 + (ys - f(cy)) ** 2).sqrt() - f(radius)
    inside = (dist < 0).float() * f(chosen)
    offset = torch.stack([f(dx) * 2 / w, f(dy) * 2 / h], -1)  # N×1×1×2 in grid units
    moved = grid - inside.unsqueeze(-1) * offset
    margin = o["edge"] + f(torch.maximum(dx.abs(), dy.abs()))
    weight = 1 - (dist.abs() < margin).float() * f(chosen)
    return moved, weight.unsqueeze(1)
