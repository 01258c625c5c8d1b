"""Perceptual losses for style transfer, computed through the shared backbone's layer taps.

- style: Gram matrices (channel correlations, which forget *where* things are and keep *what*
  textures and colours co-occur) on several layers, compared with the painting's;
- content: activations of one deeper layer, compared with the photo's;
- total variation: a small smoothness prior against high-frequency noise.

Each layer's style term is divided by the squared norm of the painting's Gram matrix, and the
content term by the squared norm of the photo's activations. The raw magnitudes differ by orders
of magnitude between layers and between backbones; relative errors make the weights mean the
same thing on any backbone (style weight 1 = "every layer counts alike").

Options of the stronger objective (all off by default; :func:`build_perceptual_loss` makes one
from a recipe's ``objective`` dict, and the training record keeps that dict):

- ``transform="swag"``: a softmax over each position's channels (temperature: the painting's
  activation spread in that layer) before the Gram matrix, after Wang et al., "Rethinking and
  Improving the Robustness of Image Style Transfer" (CVPR 2021). Plain Grams of non-VGG networks
  are dominated by a few peaky activations, which the style network learns to produce cheaply
  (mona's thin vertical streaks: see ``tools/style_streaks.py``); the softmax bounds each
  position's contribution.
- ``stats``: an AdaIN-style term on each style layer's channel means and standard deviations.
- ``tone``: the low-passed luminance of the result against the photo's (whites stay light,
  blacks dark, dark areas are not turned pale), colour left free.
- ``tone_mask="skin"``: the tone term weighted towards skin and fur (a chrominance mask of the
  photo, see :func:`skin_mask`): a face keeps its lightness against its surroundings while skies
  and backgrounds keep the painting's light (a global tone term buys subject lightness with style
  distance: mona's subject −0.16 → −0.10 cost +30 %, QUALITY.md "Styles on people: the retrain").
- ``tone_mask="skin_colour"``: as ``"skin"``, plus the block-mean chrominance (Cb, Cr) on skin
  only: a face keeps its hue as well as its light (great_wave's dark skin kept its lightness
  under ``"skin"`` and still read as the painting's pale beige).
- ``tone_log``: the tone term on log luminance (``log(Y + TONE_LOG_FLOOR)``): a block is held to
  its light *ratio*, as the eye reads light. The plain term charges the same for 0.8 → 0.5 as
  for 0.4 → 0.1; a network that darkens the whole picture keeps every absolute difference and
  turns a grey-white subject on snow into a black silhouette (a polar bear at 0.39 against snow at
  0.78 became 0.06 against 0.48 in mona, QUALITY.md, session l). On logs the second costs ~10×
  the first.
- ``tone_ratio_weight``: a second tone term, beside the plain one, on the photo's light *ratios*:
  the log luminance of each picture with its mean block taken out (``tone_distance(log=True,
  relative=True)``: scale-invariant, as Eigen et al.'s depth loss), so a bear may not turn darker
  against its snow than the photo has it, whatever the picture's exposure. The plain term keeps
  the exposure. Alone, either failed (QUALITY.md, session m): the plain log term held the bear
  by flattening mona's whole tone curve (range kept 0.92 → 0.81); the centred log term in place of
  the plain one let mona darken everything (white p99 0.71 → 0.52, face contrast 0.95 → 0.59).
- ``chroma_tv_weight``: the output's chroma total variation (:func:`chroma_total_variation`): the
  light-ratio term let mona draw saturated green and red fringes along dark edges (a cat's eyelids,
  QUALITY.md "Session o"); luminance strokes are free under it.
- ``lattice_weight``: the output's power at the frequencies of the network's 4-px grid beyond the
  photo's (:func:`lattice_energy`): the fine cross-hatch or dot lattice in flat areas at 2×.
- ``spike_weight``: how far the output's luminance spectrum rises in isolated spikes above its
  own neighbourhood of frequencies, beyond the photo's own spikes (:func:`spectral_spikes`). The
  lattice that survived ``lattice_weight`` is off the grid: an oriented dot weave of period
  2.5-2.8 px that mona and great_wave paint into flat skies whatever the photo (it does not move
  when the photo is shifted, rescaled or blurred, and the paintings have no such spike): a
  sinusoid the loss network's first layers answer strongly, so a cheap way to reach the
  painting's fine-texture statistics. Strokes and grain spread their power; a lattice cannot.
  ``spike_flat``: the term read over the photo's flat 48-px tiles only, where the eye sees it.
- ``style_on_skin`` (0-1, default 1): how much the photo's skin-coloured places count in the
  result's Gram matrices (:func:`skin_mask`, area-resized to each layer): below 1, faces are
  painted with less of the painting's texture and palette (great_wave's palette has no dark warm
  tones, and a tone term alone did not keep dark skin from its paper beige).
- ``extra_backbones``: Gram terms through further networks (EfficientNet-Lite1/2), averaged with
  the main one, so that no single network's blind spots decide the texture.
- ``style_scales``: targets from the painting at several sizes (multi-scale texture).
- ``style_passages`` (``{"count": K, "size": f}``): K square crops of the painting (side f × its
  short side, seeded), each its own target, and each photo of a batch compared with the passage
  at its own light: the batch's photos ranked by mean luminance take the passages at the same
  quantiles of theirs. A target drawn at random per photo would change nothing for a network that
  does not see the painting (the expected loss is one loss against the crops' mean Gram); matched
  by light, a sky learns from the painting's light passages and a shadow from its dark ones
  (mona: the hazy landscape against the dark dress), instead of everything from the average.
- ``teacher_weight``: the mean absolute difference, in pixels, from what the shipped any-painting
  network (:class:`cvtools.style.arbitrary.PaintingTeacher`) paints from the same photo with the
  same painting: distillation. That network learned from 186 paintings' crops, each against its
  own crop, so it paints a painting's dark and light passages where the per-painting Gram loss,
  which matches the whole painting's average, trains mona into a warm monochrome of the photo
  (QUALITY.md, "Mona, a painting, not a filter"). ``teacher_on_skin`` (0-1, default 1): how much
  the photo's skin-coloured places count in it (below 1 the tone term decides faces: the teacher
  repaints tones and darkens some faces below their surroundings).
- ``face_contrast_weight``: each face's lightness against a ring around it, the result's against the
  photo's (:func:`face_contrast_distance`; faces from hand-drawn boxes, :mod:`cvtools.style.faces`,
  ``face_boxes`` a boxes file, default the free training photos'), with ``darker_faces`` (0-1) of
  the batch's faces darkened first. Unlike a tone term on the face itself, nothing holds a face's
  own light, only its difference from its surroundings: great_wave kept the dark-skinned man's face
  darker than the wall (subject kept 0.24 → 0.52) without merging light faces into theirs
  (QUALITY.md, "A face against its surroundings").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F


def gram_matrix(features: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """N×C×H×W → N×C×C, normalised by H·W (so it does not grow with the image size), in fp32.
    ``weights`` (N×1×H×W, ≥ 0): each position's share, normalised by their sum instead."""
    n, c, h, w = features.shape
    # Sums of H·W products lose too much in bf16/fp16: always fp32, even under autocast.
    with torch.autocast(features.device.type, enabled=False):
        f = features.float().reshape(n, c, h * w)
        if weights is None:
            return torch.bmm(f, f.transpose(1, 2)) / (h * w)
        wt = weights.float().reshape(n, 1, h * w)
        return torch.bmm(f * wt, f.transpose(1, 2)) / wt.sum(dim=2, keepdim=True).clamp_min(1e-6)


def swag(features: torch.Tensor, temperature) -> torch.Tensor:
    """Softmax over the channels of each position, of activations / temperature, times C (so a
    flat response gives ones): each position adds at most C² to the Gram sum, however peaky."""
    c = features.shape[1]
    with torch.autocast(features.device.type, enabled=False):
        return torch.softmax(features.float() / temperature, dim=1) * c


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    return dh + dw


def chroma_total_variation(images: torch.Tensor) -> torch.Tensor:
    """Per image (N, fp32): the anisotropic total variation of the chroma alone (BT.601 Cb and Cr of
    N×3×H×W RGB in [0, 1]): mean |difference| between neighbouring pixels, rows plus columns, over
    the two chroma planes. Grey strokes of any contrast cost nothing; a colour fringe along an edge
    (mona's green eyelid rim, QUALITY.md "Session o") costs its chroma step twice."""
    x = images.float()
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    c = torch.stack([-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b], 1)
    dh = (c[..., 1:, :] - c[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    dw = (c[..., :, 1:] - c[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    return dh + dw


def luminance(images: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0, 1] → N×1×H×W luma (Rec. 601 weights)."""
    w = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * w).sum(1, keepdim=True)


#: the weight of a block without skin in a masked tone term: subjects the chrominance rule misses
#: (grey fur, a face in coloured light) still keep some of their lightness
TONE_MASK_FLOOR = 0.2


def skin_mask(photos: torch.Tensor) -> torch.Tensor:
    """N×1×H×W in [0, 1]: where the photo has skin-like chrominance (a smooth version of the
    classic YCbCr box Cb 77-127, Cr 133-173 of Chai & Ngan 1999). Chrominance, not lightness,
    so the same rule holds for dark and light skin; tan and beige fur match too."""
    cb, cr = (chrominance(photos.float().clamp(0, 1)) * 255 + 128).unbind(1)  # JPEG's 0-255 levels

    def inside(v, lo, hi, soft=4.0):  # 1 inside [lo, hi], falling to 0 over `soft` levels outside
        return ((v - lo + soft) / soft).clamp(0, 1) * ((hi - v + soft) / soft).clamp(0, 1)

    return (inside(cb, 77, 127) * inside(cr, 133, 173)).unsqueeze(1)


TONE_MASKS = ("skin", "skin_colour")


def chrominance(images: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0, 1] → N×2×H×W (Cb, Cr) of JPEG's YCbCr, centred on 0, in [−0.5, 0.5]."""
    w = torch.tensor([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], device=images.device,
                     dtype=images.dtype)
    return torch.einsum("nchw,kc->nkhw", images, w)


#: ``tone_log``'s floor: log(Y + floor), so that near-black blocks (JPEG noise, deep shadow) do not
#: dominate the term (0.05: black to 0.1 costs as much as 0.15 to 0.45)
TONE_LOG_FLOOR = 0.05


def tone_distance(images: torch.Tensor, photos: torch.Tensor, scale: int = 8, mask: Optional[str] = None,
                  log: bool = False, relative: bool = False) -> torch.Tensor:
    """Per image: mean squared difference of the luminance averaged over scale×scale blocks
    (the photo's light and dark areas; fine texture and colour are left to the style); ``log``:
    of ``log(block mean + TONE_LOG_FLOOR)`` instead (light ratios, see the module's docstring);
    ``relative``: each picture's mean block taken out of both first (contrasts held, exposure free).

    ``mask="skin"``: each block weighted by ``TONE_MASK_FLOOR`` + its share of skin-like pixels
    (:func:`skin_mask`), normalised by the weights' sum (a photo without skin weighs its blocks
    evenly, as the plain term does). ``mask="skin_colour"``: plus each block's squared
    chrominance difference weighted by its skin share alone (no floor: the background's colour
    stays the painting's), over the same sum."""
    a = F.avg_pool2d(luminance(images.float()), scale, ceil_mode=True)
    b = F.avg_pool2d(luminance(photos.float()), scale, ceil_mode=True)
    if log:
        a, b = (a.clamp_min(0) + TONE_LOG_FLOOR).log(), (b.clamp_min(0) + TONE_LOG_FLOOR).log()
    if relative:
        a, b = a - a.mean(dim=(1, 2, 3), keepdim=True), b - b.mean(dim=(1, 2, 3), keepdim=True)
    d = (a - b).pow(2)
    if mask is None:
        return d.mean(dim=(1, 2, 3))
    if mask not in TONE_MASKS:
        raise ValueError(f"tone mask must be one of {', '.join(TONE_MASKS)}, not {mask!r}")
    skin = F.avg_pool2d(skin_mask(photos), scale, ceil_mode=True)
    w = TONE_MASK_FLOOR + (1 - TONE_MASK_FLOOR) * skin
    total = (d * w).sum(dim=(1, 2, 3))
    if mask == "skin_colour":
        ca = F.avg_pool2d(chrominance(images.float()), scale, ceil_mode=True)
        cb = F.avg_pool2d(chrominance(photos.float()), scale, ceil_mode=True)
        total = total + ((ca - cb).pow(2).sum(1, keepdim=True) * skin).sum(dim=(1, 2, 3))
    return total / w.sum(dim=(1, 2, 3))


#: the style networks' grid: two stride-2 stages down and two ×2 upsampling stages up, so an
#: artefact locked to the grid repeats every 4 (or 2) output pixels
LATTICE_PERIOD = 4


def lattice_energy(images: torch.Tensor, photos: torch.Tensor, period: int = LATTICE_PERIOD) -> torch.Tensor:
    """Per image: the luminance power at the frequencies of a ``period``-pixel lattice (multiples
    of 1/period cycles per pixel in each axis, the zero frequency excepted) beyond the photo's
    own power there, over the output's total power (zero frequency excepted). A pattern locked to
    the network's grid (mona's 2-px checkerboard, starry_night's 4-px dots: the issue's cross-hatch
    in flat skies at 2×) is exactly periodic, so all its power falls in these 15 bins; strokes
    spread theirs over the spectrum. Crops whose sides are not multiples of ``period`` are cut."""
    h, w = (images.shape[-2] // period) * period, (images.shape[-1] // period) * period
    a = luminance(images[..., :h, :w].float())[:, 0]
    b = luminance(photos[..., :h, :w].float())[:, 0]
    pa = torch.fft.fft2(a - a.mean(dim=(1, 2), keepdim=True)).abs().pow(2)
    pb = torch.fft.fft2(b - b.mean(dim=(1, 2), keepdim=True)).abs().pow(2)
    grid = pa[:, ::h // period, ::w // period], pb[:, ::h // period, ::w // period]  # period × period bins
    excess = (grid[0] - grid[1]).clamp_min(0).sum(dim=(1, 2))  # the zero bin is 0 in both (means removed)
    return excess / pa.sum(dim=(1, 2)).clamp_min(1e-12)


#: a spectral spike costs only where it stands more than this many times above its neighbourhood
#: (the photos' own flat tiles peak at ~15 against a 7×7 ring: tools/people_quality.py)
SPIKE_FLOOR = 10.0
#: frequencies below this (cycles per pixel) are a crop's shading and its largest strokes
SPIKE_LOW = 0.06
#: the neighbourhood: a (2·OUTER+1)² square of frequencies without its (2·INNER+1)² centre, which
#: holds a windowed sinusoid's main lobe
SPIKE_OUTER, SPIKE_INNER = 5, 2


def _spike_ratios(y: torch.Tensor, outer: int = SPIKE_OUTER, inner: int = SPIKE_INNER) -> torch.Tensor:
    """N×H×W luminance → log of each frequency's power over its neighbourhood's mean power."""
    n, h, w = y.shape
    window = torch.hann_window(h, periodic=False, device=y.device)[:, None] * torch.hann_window(
        w, periodic=False, device=y.device)[None, :]
    power = torch.fft.fft2((y - y.mean(dim=(1, 2), keepdim=True)) * window).abs().pow(2)
    k = 2 * outer + 1
    ring = torch.ones(k, k, device=y.device)
    ring[outer - inner:outer + inner + 1, outer - inner:outer + inner + 1] = 0
    ring = ring / ring.sum()
    around = F.conv2d(F.pad(power[:, None], (outer,) * 4, mode="circular"), ring[None, None])[:, 0]
    floor = 1e-10 * power.mean(dim=(1, 2), keepdim=True).clamp_min(1e-20)
    return (power + floor).log() - (around + floor).log()


#: ``spike_flat``: tiles of this side (and a 16-px stride), the photo's flat ones only: the tiles
#: tools/people_quality.py's lattice column reads, with its neighbourhood (7×7 without 3×3)
SPIKE_TILE = 48
#: a tile is flat where every 16-px block of the photo varies by less than this (luminance std)
SPIKE_FLAT_STD = 0.02


def _flat_tiles(images: torch.Tensor, photos: torch.Tensor):
    """The luminance of both, cut into SPIKE_TILE-px tiles at a 16-px stride, and which tiles are
    flat in the photo (N·L×T×T twice, N·L booleans)."""
    a, b = luminance(images.float()), luminance(photos.float())
    block = F.avg_pool2d(b * b, 16) - F.avg_pool2d(b, 16) ** 2
    span = SPIKE_TILE // 16
    flat = F.max_pool2d(block.clamp_min(0).sqrt(), span, stride=1) < SPIKE_FLAT_STD  # N×1×(H/16-2)×(W/16-2)

    def tiles(y):
        t = y.unfold(2, SPIKE_TILE, 16).unfold(3, SPIKE_TILE, 16)  # N×1×I×J×T×T
        return t.reshape(-1, SPIKE_TILE, SPIKE_TILE)

    return tiles(a), tiles(b), flat.reshape(-1)


def spectral_spikes(images: torch.Tensor, photos: torch.Tensor, floor: float = SPIKE_FLOOR,
                    flat: bool = False) -> torch.Tensor:
    """Per image: the sum over frequencies (above :data:`SPIKE_LOW` cycles per pixel) of how far
    the output's luminance power stands above its neighbourhood of frequencies (log ratio), beyond
    ``floor`` and beyond the photo's own ratio there, per 64k pixels. A regular lattice is a few
    sinusoids: all their power in a few bins far above their neighbours, which this counts;
    painted strokes and grain spread theirs into a smooth hill, which it does not. The gradient of
    a log ratio is relative, so a strong spike is pulled down as hard as a faint one.

    ``flat``: the same over the photo's flat 48-px tiles only (where the eye sees a lattice and
    the lattice column of tools/people_quality.py reads it), summed over tiles; textured places,
    whose own spectrum hides a weave, do not count."""
    if flat:
        n = images.shape[0]
        a, b, keep = _flat_tiles(images, photos) if min(images.shape[-2:]) >= SPIKE_TILE else (None, None, None)
        if keep is None or not bool(keep.any()):  # no flat tile: nothing to read (zero, still in the graph)
            return images.new_zeros(n, dtype=torch.float32) + 0 * images.float().sum()
        a, b = a[keep], b[keep]
        owner = torch.arange(n, device=images.device).repeat_interleave(keep.numel() // n)[keep]
        outer, inner = 3, 1
    else:
        a, b = luminance(images.float())[:, 0], luminance(photos.float())[:, 0]
        outer, inner = SPIKE_OUTER, SPIKE_INNER
    with torch.no_grad():
        own = _spike_ratios(b, outer, inner)
    h, w = a.shape[-2:]
    fy = torch.fft.fftfreq(h, device=a.device)[:, None]
    fx = torch.fft.fftfreq(w, device=a.device)[None, :]
    high = (fy * fy + fx * fx).sqrt() > SPIKE_LOW
    excess = ((_spike_ratios(a, outer, inner) - own.clamp_min(math.log(floor))).clamp_min(0) * high).sum(dim=(1, 2))
    if flat:
        per_image = images.new_zeros(images.shape[0], dtype=excess.dtype).index_add(0, owner, excess)
        return per_image * (65536.0 / (images.shape[-2] * images.shape[-1]))
    return excess * (65536.0 / (h * w))


@dataclass
class LossWeights:
    content: float = 1.0
    style: float = 10.0
    tv: float = 1e-3
    #: relative weight of each style layer (default: all 1)
    layers: Optional[Dict[str, float]] = None
    #: AdaIN-style channel mean/std term, in the same units as the style term (0: off)
    stats: float = 0.0
    #: low-passed luminance against the photo's (0: off)
    tone: float = 0.0
    tone_scale: int = 8
    #: None (every block alike) or "skin" (see :func:`tone_distance`)
    tone_mask: Optional[str] = None
    #: the tone term on log luminance (light ratios) instead of luminance
    tone_log: bool = False
    #: the light-ratio tone term, beside the plain one (0: off; see the module docstring)
    tone_ratio: float = 0.0
    #: the output's chroma total variation (0: off; :func:`chroma_total_variation`)
    chroma_tv: float = 0.0
    #: power at the network grid's lattice frequencies, beyond the photo's (0: off)
    lattice: float = 0.0
    #: isolated spikes of the output's spectrum, beyond the photo's (0: off; :func:`spectral_spikes`)
    spikes: float = 0.0
    #: ... read over the photo's flat tiles only
    spikes_flat: bool = False
    #: how much skin-coloured places of the photo count in the result's Gram matrices (1: as any
    #: other place; 0.3: a face is painted with less of the painting's texture and colour, so a
    #: palette without dark warm tones need not turn dark skin pale; see :func:`skin_mask`)
    style_on_skin: float = 1.0
    #: mean |output − the any-painting network's output| (0: off; see the module docstring)
    teacher: float = 0.0
    #: how much skin-coloured places count in the teacher term (1: as any other place)
    teacher_on_skin: float = 1.0
    #: a face's lightness against its surroundings (0: off; see :func:`face_contrast_distance`)
    face_contrast: float = 0.0


@dataclass
class StyleTarget:
    """The painting's Gram matrices in each style layer (1×C×C each) and their squared norms.

    ``transform``: "gram" (plain) or "swag" (softmax with per-layer ``temperatures`` first).
    ``means``/``stds``: the painting's channel statistics per layer (for the stats term).
    """

    grams: Dict[str, torch.Tensor]
    norms: Dict[str, torch.Tensor] = field(default_factory=dict)
    transform: str = "gram"
    temperatures: Dict[str, float] = field(default_factory=dict)
    means: Dict[str, torch.Tensor] = field(default_factory=dict)
    stds: Dict[str, torch.Tensor] = field(default_factory=dict)
    #: None: one target (grams 1×C×C). Else the mean luminance of each of K passages (grams K×C×C,
    #: norms K, means/stds K×C), ascending: see :func:`passage_index`
    passage_light: Optional[torch.Tensor] = None

    def __post_init__(self):
        if not self.norms:
            self.norms = {k: g.pow(2).sum().clamp_min(1e-12) for k, g in self.grams.items()}

    def pick(self, index: Optional[torch.Tensor]) -> "StyleTarget":
        """This target for each image of a batch: passage ``index[i]`` for image i (None: as is)."""
        if index is None or self.passage_light is None:
            return self
        dev = next(iter(self.grams.values())).device
        i = index.to(dev)
        return StyleTarget({k: g[i] for k, g in self.grams.items()}, {k: n[i] for k, n in self.norms.items()},
                           self.transform, self.temperatures, {k: m[i] for k, m in self.means.items()},
                           {k: v[i] for k, v in self.stds.items()})

    def gram(self, layer: str, features: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.transform == "swag":
            features = swag(features, self.temperatures[layer])
        return gram_matrix(features, weights)


def _channel_stats(f: torch.Tensor):
    with torch.autocast(f.device.type, enabled=False):
        var, mean = torch.var_mean(f.float(), dim=(2, 3), unbiased=False)
        return mean, (var + 1e-6).sqrt()


@torch.no_grad()
def style_target(backbone, style_image: torch.Tensor, layers: Sequence[str], transform: str = "gram") -> StyleTarget:
    """Gram targets of a [0, 1] style image (3×H×W or 1×3×H×W) at the size given."""
    if transform not in ("gram", "swag"):
        raise ValueError(f"unknown style transform {transform!r} (gram or swag)")
    if style_image.dim() == 3:
        style_image = style_image.unsqueeze(0)
    feats = backbone.features(style_image, list(layers))
    temps = {k: float(feats[k].float().std().clamp_min(1e-3)) for k in layers} if transform == "swag" else {}
    target = StyleTarget({}, transform=transform, temperatures=temps)
    target.grams = {k: target.gram(k, feats[k]) for k in layers}
    target.norms = {k: g.pow(2).sum().clamp_min(1e-12) for k, g in target.grams.items()}
    for k in layers:
        target.means[k], target.stds[k] = _channel_stats(feats[k])
    return target


@torch.no_grad()
def style_passage_targets(backbone, style_image: torch.Tensor, layers: Sequence[str], transform: str = "gram",
                          count: int = 64, size: float = 0.5, seed: int = 0) -> StyleTarget:
    """``count`` square passages of a [0, 1] painting (3×H×W), side ``size`` × its short side, at
    seeded places, each a target (SWAG temperatures from the whole painting, so that every
    passage's Grams are on one scale), sorted by their mean luminance."""
    if style_image.dim() == 4:
        style_image = style_image[0]
    whole = style_target(backbone, style_image, layers, transform)
    h, w = style_image.shape[-2:]
    side = max(16, round(size * min(h, w)))
    gen = torch.Generator().manual_seed(seed)
    crops, light = [], []
    for _ in range(count):
        y0 = int(torch.randint(0, h - side + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - side + 1, (1,), generator=gen))
        crop = style_image[:, y0:y0 + side, x0:x0 + side]
        crops.append(crop)
        light.append(float(luminance(crop[None]).mean()))
    order = sorted(range(count), key=light.__getitem__)
    target = StyleTarget({}, transform=transform, temperatures=whole.temperatures,
                         passage_light=torch.tensor([light[i] for i in order]))
    # the passages are one size: one pass through the network for all of them
    batch = torch.stack([crops[i] for i in order]).to(next(iter(whole.grams.values())).device)
    feats = backbone.features(batch, list(layers))
    target.grams = {k: target.gram(k, feats[k]) for k in layers}
    target.norms = {k: g.pow(2).sum(dim=(1, 2)).clamp_min(1e-12) for k, g in target.grams.items()}
    for k in layers:
        target.means[k], target.stds[k] = _channel_stats(feats[k])
    return target


def passage_index(photos: torch.Tensor, passages: int) -> torch.Tensor:
    """For each photo of a batch (N×3×H×W), the passage at its light: the photos ranked by mean
    luminance take the passages (sorted by theirs) at the same quantiles, anywhere within the
    photo's quantile step (where: a fraction of the photo's own mean light, so the same batch picks
    the same passages, and a resumed run the uninterrupted run's)."""
    n = photos.shape[0]
    light = luminance(photos.float()).mean(dim=(1, 2, 3)).double().cpu()
    rank = light.argsort().argsort().double()
    jitter = torch.frac(light * 9973.0)
    quantile = (rank + jitter) / n
    return (quantile * passages).long().clamp(0, passages - 1)


def gram_distances(feats: Dict[str, torch.Tensor], target: StyleTarget,
                   positions: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Per layer, per image: ‖G(x) − G(style)‖² / ‖G(style)‖² (shape N). ``positions``
    (N×1×H×W at the image's size, ≥ 0): how much each place of the image counts in its Gram
    matrices, area-resized to each layer (None: all alike)."""
    out = {}
    for k, g_style in target.grams.items():
        f = feats[k]
        w = None if positions is None else F.interpolate(positions.float(), size=f.shape[-2:], mode="area")
        g = target.gram(k, f, w)
        # norms: one number, or one per image (a passage target picked per image)
        out[k] = (g - g_style.to(g.device)).pow(2).sum(dim=(1, 2)) / target.norms[k].to(g.device)
    return out


def stats_distances(feats: Dict[str, torch.Tensor], target: StyleTarget) -> Dict[str, torch.Tensor]:
    """Per layer, per image: (‖μ − μ_s‖² + ‖σ − σ_s‖²) / (‖μ_s‖² + ‖σ_s‖²) over channels."""
    out = {}
    for k in target.grams:
        mean, std = _channel_stats(feats[k])
        ms, ss = target.means[k].to(mean.device), target.stds[k].to(std.device)
        out[k] = ((mean - ms).pow(2).sum(1) + (std - ss).pow(2).sum(1)) / \
            (ms.pow(2).sum(-1) + ss.pow(2).sum(-1)).clamp_min(1e-12)
    return out


def content_distance(f: torch.Tensor, f_ref: torch.Tensor) -> torch.Tensor:
    """Per image: ‖F(x) − F(photo)‖² / ‖F(photo)‖² (shape N)."""
    f, f_ref = f.float(), f_ref.float()
    dims = tuple(range(1, f.dim()))
    return (f - f_ref).pow(2).sum(dim=dims) / f_ref.pow(2).sum(dim=dims).clamp_min(1e-12)


@dataclass
class StyleTerm:
    """Style targets (one per painting scale) through one network, in its layers."""

    backbone: object
    targets: List[StyleTarget]
    layers: List[str]
    layer_weights: Dict[str, float]


def _normalised(layers: Sequence[str], weights: Optional[Dict[str, float]]) -> Dict[str, float]:
    lw = weights or {}
    total = sum(lw.get(k, 1.0) for k in layers)
    # layer weights are normalised to sum to 1, so --style-weight keeps its meaning
    return {k: lw.get(k, 1.0) / total for k in layers}


class PerceptualLoss:
    """The training objective: weighted style + content + TV losses through a frozen backbone.

    >>> loss_fn = PerceptualLoss(backbone, target, ["blocks.0", "blocks.2"], "blocks.4", LossWeights())
    >>> total, parts = loss_fn(stylized, photos)     # parts: {"content", "style", "tv"} (detached)

    ``target`` may be a list (the painting at several sizes: their distances are averaged);
    ``extra`` adds :class:`StyleTerm` s through other networks (averaged with the main one).
    With ``weights.stats`` or ``weights.tone`` set, ``parts`` also has "stats" / "tone".
    """

    def __init__(self, backbone, target, style_layers: Sequence[str], content_layer: str,
                 weights: LossWeights, extra: Sequence[StyleTerm] = (), teacher=None):
        self.backbone = backbone
        #: photos → the picture to copy (``weights.teacher``), without gradients
        self.teacher = teacher
        if weights.teacher and teacher is None:
            raise ValueError("a teacher weight needs a teacher")
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        self.target = targets[0]
        self.style_layers = list(style_layers)
        self.content_layer = content_layer
        self.weights = weights
        self.layer_weights = _normalised(self.style_layers, weights.layers)
        self.terms = [StyleTerm(backbone, targets, self.style_layers, self.layer_weights)] + list(extra)
        self.all_layers = list(dict.fromkeys(self.style_layers + [content_layer]))

    def __call__(self, stylized: torch.Tensor, photos: torch.Tensor, faces: Optional[torch.Tensor] = None):
        """(total, parts) for a batch; ``faces`` (N×1×H×W in [0, 1], optional): where the photos'
        faces are, for the face-contrast term (:func:`cvtools.style.faces.face_weights`)."""
        w = self.weights
        with torch.no_grad():
            photo_content = self.backbone.features(photos, [self.content_layer])[self.content_layer]
        feats = self.backbone.features(stylized, self.all_layers)
        positions = None
        if w.style_on_skin < 1:  # the photo's skin counts less in the result's Grams
            positions = 1 - (1 - w.style_on_skin) * skin_mask(photos)
        style = 0.0
        stats = None
        passages = {}  # passage count -> each photo's passage (style_passages)
        for i, term in enumerate(self.terms):
            f = feats if i == 0 else term.backbone.features(stylized, term.layers)
            picked = []
            for target in term.targets:
                if target.passage_light is not None:
                    k = len(target.passage_light)
                    if k not in passages:
                        passages[k] = passage_index(photos, k)
                    target = target.pick(passages[k])
                picked.append(target)
                d = gram_distances(f, target, positions)
                style = style + sum(term.layer_weights[k] * d[k].mean() for k in term.layers) / (
                    len(term.targets) * len(self.terms))
            if i == 0 and w.stats:
                d = stats_distances(f, picked[0])
                stats = sum(term.layer_weights[k] * d[k].mean() for k in term.layers)
        content = content_distance(feats[self.content_layer], photo_content).mean()
        tv = total_variation(stylized.float())
        total = w.style * style + w.content * content + w.tv * tv
        parts = {"style": style.detach(), "content": content.detach(), "tv": tv.detach()}
        if stats is not None:
            total = total + w.style * w.stats * stats
            parts["stats"] = stats.detach()
        for key, (weight, value) in self._picture_terms(stylized, photos, faces).items():
            total = total + weight * value
            parts[key] = value.detach()
        return total, parts

    def _picture_terms(self, stylized: torch.Tensor, photos: torch.Tensor, faces: Optional[torch.Tensor]) -> Dict:
        """The terms read off the pictures alone (no backbone), those whose weight is on:
        {part name: (weight, batch mean)}."""
        w, terms = self.weights, {}
        if w.lattice:
            terms["lattice"] = (w.lattice, lattice_energy(stylized, photos).mean())
        if w.spikes:
            terms["spikes"] = (w.spikes, spectral_spikes(stylized, photos, flat=w.spikes_flat).mean())
        if w.tone:
            terms["tone"] = (w.tone, tone_distance(stylized, photos, w.tone_scale, w.tone_mask, w.tone_log).mean())
        if w.tone_ratio:
            terms["tone_ratio"] = (w.tone_ratio, tone_distance(stylized, photos, w.tone_scale, w.tone_mask, log=True,
                                                               relative=True).mean())
        if w.chroma_tv:
            terms["chroma_tv"] = (w.chroma_tv, chroma_total_variation(stylized).mean())
        if w.teacher:
            terms["teacher"] = (w.teacher, teacher_distance(stylized, photos, self.teacher, w.teacher_on_skin))
        if w.face_contrast and faces is not None:
            terms["face"] = (w.face_contrast, face_contrast_distance(stylized, photos, faces).mean())
        return terms


#: the ring around a face spans this share of the crop's width (odd, at least 3 px)
FACE_RING = 0.2
#: a face (and its ring) smaller than this many 8×8 blocks is left out of the face-contrast term
FACE_MIN_BLOCKS = 0.5


def face_contrast_distance(images: torch.Tensor, photos: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Per image (N, fp32): the squared change of a face's lightness against its surroundings,
    (Δ_result − Δ_photo)², Δ the mean luminance over the face (``faces``' weights, N×1×H×W in [0, 1])
    minus the mean over a ring around it (the face's mask, > 0.25, grown by FACE_RING of the width,
    minus the mask): what ``tools/people_quality.py``'s "subject kept" measures. 0 for an image
    without a face, or with one under FACE_MIN_BLOCKS blocks. A dark face may stay dark and a light
    one light: only the difference is held, so the palette may move both."""
    fm = faces.to(images.device).float()
    grow = max(3, int(images.shape[-1] * FACE_RING) | 1)
    inside = (fm > 0.25).float()
    ring = (F.max_pool2d(inside, grow, 1, grow // 2) - inside).clamp(0, 1)
    fs, rs = fm.sum(dim=(1, 2, 3)), ring.sum(dim=(1, 2, 3))

    def face_minus_ring(x):
        lum = luminance(x.float())
        return (lum * fm).sum(dim=(1, 2, 3)) / fs.clamp_min(1e-6) - (lum * ring).sum(dim=(1, 2, 3)) / rs.clamp_min(1e-6)

    per = (face_minus_ring(images) - face_minus_ring(photos)).pow(2)
    big_enough = torch.minimum(fs, rs) / 64 > FACE_MIN_BLOCKS
    return torch.where(big_enough, per, torch.zeros_like(per))


def teacher_distance(stylized: torch.Tensor, photos: torch.Tensor, teacher, on_skin: float = 1.0) -> torch.Tensor:
    """Mean absolute difference (fp32) between ``stylized`` and ``teacher(photos)``, each place
    weighted by 1 − (1 − on_skin) × the photo's skin share (:func:`skin_mask`)."""
    with torch.no_grad():
        target = teacher(photos).float()
    d = (stylized.float() - target).abs().mean(1, keepdim=True)
    if on_skin >= 1:
        return d.mean()
    w = 1 - (1 - on_skin) * skin_mask(photos.float())
    return (d * w).sum() / w.sum().clamp_min(1e-6)


#: keys of a recipe's ``objective`` dict (see the module docstring)
OBJECTIVE_KEYS = {"transform", "stats_weight", "tone_weight", "tone_scale", "tone_mask", "tone_log",
                  "tone_ratio_weight", "chroma_tv_weight", "lattice_weight", "spike_weight", "spike_flat",
                  "extra_backbones", "style_scales", "style_on_skin", "teacher_weight", "teacher_on_skin",
                  "style_passages", "face_contrast_weight", "darker_faces", "face_boxes"}


def check_objective(objective: Optional[dict]) -> dict:
    """Validate an ``objective`` dict (from a config or record); returns a normalised copy."""
    o = dict(objective or {})
    unknown = set(o) - OBJECTIVE_KEYS
    if unknown:
        raise ValueError(f"unknown objective option(s): {', '.join(sorted(unknown))}")
    if o.get("transform", "gram") not in ("gram", "swag"):
        raise ValueError(f"objective transform must be gram or swag, not {o['transform']!r}")
    for k in ("stats_weight", "tone_weight", "tone_ratio_weight", "chroma_tv_weight", "lattice_weight", "spike_weight", "spike_flat", "teacher_weight",
              "face_contrast_weight"):
        if float(o.get(k, 0.0)) < 0:
            raise ValueError(f"objective {k} must be ≥ 0")
    if o.get("tone_mask") not in (None,) + TONE_MASKS:
        raise ValueError(f"objective tone_mask must be one of {', '.join(TONE_MASKS)}, not {o['tone_mask']!r}")
    for k in ("spike_flat", "tone_log"):
        if not isinstance(o.get(k, False), bool):
            raise ValueError(f"objective {k} must be true or false, not {o[k]!r}")
    darker = o.get("darker_faces", 0.0)
    if isinstance(darker, bool) or not isinstance(darker, (int, float)) or not 0 <= darker <= 1:
        raise ValueError(f"objective darker_faces must be a number of 0-1, not {darker!r}")
    if o.get("face_boxes") is not None and not isinstance(o["face_boxes"], str):
        raise ValueError(f"objective face_boxes must be a file name, not {o['face_boxes']!r}")
    for k in ("style_on_skin", "teacher_on_skin"):
        on_skin = o.get(k, 1.0)
        if isinstance(on_skin, bool) or not isinstance(on_skin, (int, float)) or not 0 <= on_skin <= 1:
            raise ValueError(f"objective {k} must be a number of 0-1, not {on_skin!r}")
    passages = o.get("style_passages")
    if passages is not None:
        count, size = (passages.get("count"), passages.get("size", 0.5)) if isinstance(passages, dict) else (None, None)
        if (not isinstance(passages, dict) or set(passages) - {"count", "size"} or isinstance(count, bool)
                or not isinstance(count, int) or not 2 <= count <= 1024 or isinstance(size, bool)
                or not isinstance(size, (int, float)) or not 0.05 <= size <= 1):
            raise ValueError(f'objective style_passages must be {{"count": 2-1024, "size": 0.05-1}}, not {passages!r}')
    scales = [float(s) for s in o.get("style_scales", [1.0])]
    if not scales or any(not 0.1 <= s <= 4 for s in scales):
        raise ValueError("objective style_scales must be factors between 0.1 and 4")
    extra = o.get("extra_backbones", {}) or {}
    if not isinstance(extra, dict) or not all(isinstance(v, list) and v for v in extra.values()):
        raise ValueError("objective extra_backbones must map backbone names to lists of layers")
    return o


def build_perceptual_loss(backbone, style_image, style_size: int, style_layers: Sequence[str], content_layer: str,
                          weights: LossWeights, objective: Optional[dict] = None, load_backbone=None,
                          teacher=None) -> PerceptualLoss:
    """The loss of a recipe: ``style_image`` a PIL image (the painting, any size), resized so its
    longer side is ``style_size`` × each of ``objective['style_scales']``.

    ``load_backbone(name)`` loads an extra network (default: like ``backbone``: same device, fp32,
    fused, same memory layout). ``teacher``: photos → pictures, for ``teacher_weight`` (default:
    the shipped any-painting network with this painting, on the backbone's device).
    """
    from cvtools.io.decode import pil_to_tensor
    from cvtools.style.stylize import resize_long_side

    o = check_objective(objective)
    transform = o.get("transform", "gram")
    weights.stats = float(o.get("stats_weight", weights.stats))
    weights.tone = float(o.get("tone_weight", weights.tone))
    weights.tone_scale = int(o.get("tone_scale", weights.tone_scale))
    weights.tone_mask = o.get("tone_mask", weights.tone_mask)
    weights.tone_log = bool(o.get("tone_log", weights.tone_log))
    weights.tone_ratio = float(o.get("tone_ratio_weight", weights.tone_ratio))
    weights.chroma_tv = float(o.get("chroma_tv_weight", weights.chroma_tv))
    weights.lattice = float(o.get("lattice_weight", weights.lattice))
    weights.spikes = float(o.get("spike_weight", weights.spikes))
    weights.spikes_flat = bool(o.get("spike_flat", weights.spikes_flat))
    weights.style_on_skin = float(o.get("style_on_skin", weights.style_on_skin))
    weights.teacher = float(o.get("teacher_weight", weights.teacher))
    weights.teacher_on_skin = float(o.get("teacher_on_skin", weights.teacher_on_skin))
    weights.face_contrast = float(o.get("face_contrast_weight", weights.face_contrast))
    if weights.teacher and teacher is None:
        from cvtools.style.arbitrary import PaintingTeacher

        teacher = PaintingTeacher(pil_to_tensor(style_image), device=str(backbone.device))
    scales = [float(s) for s in o.get("style_scales", [1.0])]
    images = [pil_to_tensor(resize_long_side(style_image, max(32, round(style_size * s)))) for s in scales]

    passages = o.get("style_passages")

    def targets_for(bb, layers):
        if passages:
            return [style_passage_targets(bb, img, layers, transform, passages["count"], passages.get("size", 0.5))
                    for img in images]
        return [style_target(bb, img, layers, transform) for img in images]

    extra = []
    for name, layers in (o.get("extra_backbones") or {}).items():
        if load_backbone is None:
            from cvtools.backbones import load_backbone as lb

            bb = lb(name, device=str(backbone.device), precision="fp32", fuse=True,
                    channels_last=backbone.channels_last, tune=backbone.device.type == "cuda")
        else:
            bb = load_backbone(name)
        bb.check_layers(layers)
        extra.append(StyleTerm(bb, targets_for(bb, layers), list(layers), _normalised(layers, None)))
    return PerceptualLoss(backbone, targets_for(backbone, style_layers), style_layers, content_layer, weights, extra,
                          teacher if weights.teacher else None)
