"""Carried strokes: the stabilizer's second mode, where a pixel keeps the frame that painted it (issue 29).

The blend (:class:`~cvtools.video.stability.TemporalStabilizer`'s first mode) mixes each new output
with the previous *result* warped along the flow. Two things cost it style: strokes of successive
frames are averaged, and a carried stroke is resampled once per frame, so a stroke carried for
n frames has been interpolated n times and goes soft (QUALITY.md, "Video: temporal stability").

Here nothing is averaged where the network agrees with the past, and nothing is resampled twice:
every pixel holds the index of the output that painted it and its position in that output (the
frames' flows composed back to it: nearest for the pixel it came from, plus the sub-pixel
remainder). Its colour is read from that stored output once, however long it has been carried,
with a quintic B-spline (the ring keeps each output's B-spline coefficients: :data:`SPLINE_DEGREE`),
which keeps more of a fine stroke than Keys' bicubic. A pixel is repainted where the flow is not
trusted, where the network disagrees with the carried colour (the blend's 5×5 agreement test, or
the pixel alone differing by more than FOREIGN·τ), where its position has left the frame that
painted it, and where a zoom has magnified or shrunk its stroke by more than MAX_SCALE_CHANGE: the
new output, blended with the
carried colour at ``repaint_blend`` where the flow is trusted (the blend's steadiness where the
network changes its strokes, the carry's sharpness where it does not; less where the pixel or
its region changed by more than strokes do, at most REFRESH_BLEND for a magnified stroke, and
down to ZOOM_REPAINT_BLEND where the camera zooms: :func:`zoom_repaint_blend`), and it
becomes its own source. Where a pixel is blended, its strokes are given back the contrast the
average took (:func:`keep_contrast`: variance-preserving blending), or a face that talks, blended
frame after frame, goes soft (QUALITY.md, "Real footage").

Memory is bounded by a ring of the last ``ring`` outputs (their coefficients, float16 for the
quintic read, on the outputs' device): a pixel whose source would leave the ring is re-based on the
current result (its carried colour, already sampled once, becomes its new source): one more
interpolation every ``ring`` frames (32 at 1080p, 8 at 4K). Probed on the CPU first
(tools/feature_blend_probe.py, benchmarks/plans/issue29_people.md): re-basing every
8 frames cost 5-12 points of style distance on sub-pixel pans and zooms over 32 frames, so the ring
is as long as the memory budget allows (:data:`RING_BYTES`, at most :data:`MAX_RING` frames).
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch
import torch.nn.functional as F

from cvtools.video.stability import _agreement, box_mean

#: the most outputs the ring keeps (a pixel is re-based after this many frames at the latest)
MAX_RING = 32
#: the fewest (below this, re-basing costs style: see the module's docstring)
MIN_RING = 4
#: the ring's memory budget: 32 frames of 1080p (12.4 MB each as float16), 8 of 4K (what the
#: 8-bit ring of colours held in 200 MiB before the quintic read)
RING_BYTES = 400 * 2 ** 20
#: a carried pixel whose source is magnified or shrunk by more than this is repainted (zooms)
MAX_SCALE_CHANGE = 0.1
#: the most of a magnified stroke's colour kept where it is repainted (the refresh of a zoom)
REFRESH_BLEND = 0.45
#: the blend at the edge of what moves on its own (``local``: not carried; the blend mode's
#: weight): 0.55 brought every moving-object and parallax row of QUALITY's table to ≤ 0.6 of frame
#: by frame when whole moving layers were blended (0.45, the blend mode's: great_wave's parallax
#: 0.63, object 0.603); since 2026-12-05 only their edges are (stability.LOCAL_EDGE_WINDOW);
#: 0.6 since the contrast of repainted strokes is kept (:func:`keep_contrast`: great_wave's
#: parallax 0.592 → 0.604 at 0.55, 0.594 at 0.6)
LOCAL_BLEND = 0.6
#: the blend over a layer that turns or deforms on its own (blended whole, not carried)
WHOLE_LAYER_BLEND = 0.75
#: the span (px) over which that scale is measured
SCALE_WINDOW = 8
#: a carried pixel whose source is turned by more than asin(MAX_SCALE_CHANGE) is repainted too
TURN_KEPT = True
#: a carried pixel whose own colour differs from the network's by more than this many τ
#: (mean over RGB) is repainted however well its neighbourhood agrees
FOREIGN = 1.0
#: the carry mode's default repaint blend (TemporalStabilizer's ``strength`` in carry mode): high,
#: because only pixels the network repaints are blended (QUALITY.md: 0.45 left parallax at
#: 0.63-0.73 of frame by frame, 0.85 at 0.55-0.61, for +1 point of style distance)
REPAINT_BLEND = 0.85
#: the repaint blend on a zoom: where the camera's scale changes by ZOOM_FULL or more a frame, the
#: repaint blend falls to this, from ``repaint_blend`` at ZOOM_START (linearly between; None: off).
#: A zoom repaints most of the frame where the network disagrees with the carried strokes (its
#: strokes change with the scale), and blending those repaints at 0.85 softens them: on QUALITY's
#: zoom clip (1.2 % a frame) starry_night paid +8.1 % of style distance and great_wave +6.0 % at
#: 0.85, and +4.5 / +4.4 % at 0.3 (0.56 / 0.58 of frame by frame); the same 0.3 everywhere took
#: both parallax clips over 0.6 (QUALITY.md, "Session o"), where the camera does not zoom
ZOOM_REPAINT_BLEND: Optional[float] = 0.3
ZOOM_START, ZOOM_FULL = 0.002, 0.01
#: the repaint blend falls as exp(−(d/(PIXEL_GATE·τ))² − (d̄/(REGION_GATE·τ))²): d the pixel's own
#: difference from the carried colour, d̄ its mean over REGION × REGION px
PIXEL_GATE = 3.0
REGION_GATE = 1.5
REGION = 9
#: Keys' cubic convolution parameter, the one ``torch.nn.functional.grid_sample`` uses (the
#: read before 2026-12-05; :func:`spline_gather` still takes its weights, for comparison)
CUBIC_A = -0.75
#: the ring holds B-spline coefficients, not colours, and a carried pixel is read from them with
#: the B-spline's weights: an interpolation that passes through the samples like Keys' cubic but
#: keeps more of a fine stroke (at a half-pixel shift, of a 0.35-cycle/px stroke's contrast: Keys
#: 72 %, the cubic B-spline 84 %, the quintic 95 %). One read of frame-by-frame outputs at a
#: sub-pixel pan's offsets cost the Lite2 style distance +26.7 % (starry_night) and +9.5 % (mona)
#: with Keys, +13.9 / +5.2 % with the cubic B-spline, +6.1 / +1.8 % with the quintic (QUALITY.md,
#: "The read", 2026-12-05): the interpolation was most of what the carry cost on sub-pixel pans
#: and zooms. SPLINE_DEGREE: the read's degree, 3 (4×4 taps) or 5 (6×6). The quintic: on QUALITY's
#: 35 clips × networks, both of the issue's bounds in 25 rows (cubic 21, Keys 14), mean style
#: change +3.2 % (+5.4 %, +8.6 %); it costs ~0.65 s more a 1080p frame on 2 CPU cores (the carry
#: 0.93-1.00 s → 1.58-1.65 s on a loaded machine) and half the ring's frames (float16)
SPLINE_DEGREE = 5
#: the B-spline's samples at the integers (0, ±1, ±2): the filter the prefilter inverts
_SAMPLED = {3: (4 / 6, 1 / 6, 0.0), 5: (66 / 120, 26 / 120, 1 / 120)}
#: taps on each side of the prefilter (the exact inverse filter is IIR); its tail beyond them sums
#: to 3.4e-5 (cubic, 8 taps) and 3.5e-5 (quintic, 14) of the signal
PREFILTER_TAPS = {3: 8, 5: 14}
#: the cubic's coefficients are stored as uint8 codes over CODE_RANGE[3]: a stroke's coefficients
#: overshoot [0, 1] (the bundled networks' outputs −0.49 … 1.36, the any-painting network's
#: −1.42 … 2.18 with 0.035 % outside; a lone pixel of contrast Δ reaches 3Δ beyond its surround,
#: so such specks are clipped: a slight blur of that pixel). A read's weights are positive and sum
#: to 1, so it is within half a code step, 1.25/255, of the unquantized one
CODE_RANGE = {3: (-0.75, 1.75), 5: None}
#: the quintic's coefficients overshoot too far for 8-bit codes (the bundled outputs −1.46 … 2.95,
#: the any-painting network's speckle −8.6 … 9.0; with codes over −1.5 … 3.0 its integer pan came
#: out +31 % from the style instead of +4.5 %): they are kept as float16, half the frames a budget
RING_DTYPE = {3: torch.uint8, 5: torch.float16}


def ring_length(height: int, width: int, budget: int = RING_BYTES, itemsize: int = 1) -> int:
    """How many H×W×3 outputs (``itemsize`` bytes a value) the ring keeps within ``budget`` bytes
    (MIN_RING..MAX_RING)."""
    return max(MIN_RING, min(MAX_RING, budget // max(1, 3 * height * width * itemsize)))


def _cubic_weights(t: torch.Tensor):
    """The four tap weights (at offsets −1, 0, 1, 2) of Keys' cubic at fractional offsets ``t``."""
    a = CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def bspline_weights(t: torch.Tensor, degree: int = SPLINE_DEGREE):
    """The tap weights (offsets −1 … 2 for the cubic, −2 … 3 for the quintic) of the B-spline of
    ``degree`` at fractional offsets ``t`` (any shape): applied to :func:`bspline_coefficients`,
    they interpolate the samples. On a GPU each tap's weight is one polynomial in ``t``, evaluated
    for all taps at once (Horner over a taps × ``t`` stack: ``degree`` kernels, where the pieces
    written tap by tap took ~70, and a 1080p read was bound by launching them); on a CPU the pieces
    (:func:`_bspline_weights_by_piece`: the broadcast stack took 3× as long there, 180 against 58 ms
    for a 1080p frame's x and y on 2 cores)."""
    if t.device.type == "cpu":
        return _bspline_weights_by_piece(t, degree)
    return _bspline_weights_horner(t, degree)


def _bspline_weights_horner(t: torch.Tensor, degree: int = SPLINE_DEGREE):
    """:func:`bspline_weights` as one Horner evaluation over the stack of the taps' polynomials."""
    coefficients = _bspline_polynomials(degree, str(t.device), t.dtype)  # (degree + 1) × taps, highest power first
    shape = (-1,) + (1,) * t.dim()
    acc = torch.addcmul(coefficients[1].reshape(shape), coefficients[0].reshape(shape), t)
    for c in coefficients[2:]:
        acc = torch.addcmul(c.reshape(shape), acc, t)
    return tuple(acc.unbind(0))


def _bspline_weights_by_piece(t: torch.Tensor, degree: int = SPLINE_DEGREE):
    """:func:`bspline_weights` written piece by piece (the B-spline's pieces at each tap's
    distance): the definition the polynomials are taken from, and what the tests check them by."""
    s = 1 - t
    if degree == 3:
        return s * s * s / 6, (3 * t - 6) * t * t / 6 + 2 / 3, (3 * s - 6) * s * s / 6 + 2 / 3, t * t * t / 6
    if degree != 5:
        raise ValueError(f"the read's B-spline degree must be 3 or 5, not {degree}")

    def near(x):  # |x| < 1
        x2 = x * x
        return 11 / 20 + x2 * (-1 / 2 + x2 * (1 / 4 - x / 12))

    def mid(x):  # 1 <= |x| < 2
        return 17 / 40 + x * (5 / 8 + x * (-7 / 4 + x * (5 / 4 + x * (-3 / 8 + x / 24))))

    return s ** 5 / 120, mid(t + 1), near(t), near(s), mid(2 - t), t ** 5 / 120


@functools.lru_cache(maxsize=None)
def _bspline_polynomials(degree: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """(degree + 1) × taps: each tap weight's coefficients in ``t``, highest power first, solved in
    float64 from the pieces at degree + 1 points (exact up to float64 rounding: they are
    polynomials of that degree)."""
    if degree not in (3, 5):
        raise ValueError(f"the read's B-spline degree must be 3 or 5, not {degree}")
    nodes = torch.linspace(0, 1, degree + 1, dtype=torch.float64)
    values = torch.stack(_bspline_weights_by_piece(nodes, degree), 1)  # nodes × taps
    vandermonde = nodes[:, None] ** torch.arange(degree, -1, -1, dtype=torch.float64)
    return torch.linalg.solve(vandermonde, values).to(device=device, dtype=dtype)


def _reflect(index: torch.Tensor, n: int) -> torch.Tensor:
    """Indices mirrored about the first and last sample (−1 → 1, n → n − 2), then clamped: the
    whole-sample symmetric extension the B-spline prefilter assumes."""
    if n == 1:
        return torch.zeros_like(index)
    index = index.abs()
    return torch.where(index > n - 1, 2 * (n - 1) - index, index).clamp(0, n - 1)


def _prefilter_kernel(degree: int, device) -> torch.Tensor:
    """The FIR prefilter: the inverse of the B-spline's sampled kernel (exact, by a long DFT in
    float64), cut at PREFILTER_TAPS[degree] a side; fp32 on ``device`` (kept there: no host copy
    per frame)."""
    return _prefilter_on(degree, str(torch.device(device)))


@functools.lru_cache(maxsize=None)
def _prefilter_on(degree: int, device: str) -> torch.Tensor:
    return _prefilter_taps(degree).to(device, torch.float32)


@functools.lru_cache(maxsize=None)
def _prefilter_taps(degree: int) -> torch.Tensor:
    n = 1024
    sampled = torch.zeros(n, dtype=torch.float64)
    for k, v in enumerate(_SAMPLED[degree]):
        sampled[k] = sampled[-k] = v
    inverse = torch.fft.ifft(1 / torch.fft.fft(sampled)).real
    t = PREFILTER_TAPS[degree]
    h = inverse[torch.arange(-t, t + 1) % n]
    return h / h.sum()  # sums to 1: a flat area keeps its value exactly


def bspline_coefficients(image: torch.Tensor, degree: int = SPLINE_DEGREE) -> torch.Tensor:
    """The B-spline coefficients (of ``degree``) of a 1×C×H×W image (same shape, fp32): the samples
    through the inverse of the B-spline's sampled kernel ((1, 4, 1)/6 for the cubic), along x then
    y, with the image mirrored at its edges (Unser, "Splines: a perfect fit", 1999; here an FIR of
    the exact IIR inverse). On the CPU through OpenCV's separable filter (15-22 ms for a 1080p
    frame on 2 cores, where torch's depthwise convolutions took 340 ms); elsewhere
    :func:`_prefilter_torch`."""
    if image.device.type != "cpu":
        return _prefilter_torch(image, degree)
    import cv2  # a dependency of cvtools.video (its flow)

    kernel = _prefilter_kernel(degree, "cpu").numpy()
    hwc = image[0].float().permute(1, 2, 0).contiguous().numpy()
    out = cv2.sepFilter2D(hwc, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out.reshape(hwc.shape)).permute(2, 0, 1)[None]


def _prefilter_torch(image: torch.Tensor, degree: int = SPLINE_DEGREE) -> torch.Tensor:
    """:func:`bspline_coefficients` as two depthwise convolutions (any device)."""
    _, c, h, w = image.shape
    kernel = _prefilter_kernel(degree, image.device)
    t = PREFILTER_TAPS[degree]
    x = image.float()
    cols = _reflect(torch.arange(-t, w + t, device=image.device), w)
    x = F.conv2d(x.index_select(3, cols), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    rows = _reflect(torch.arange(-t, h + t, device=image.device), h)
    return F.conv2d(x.index_select(2, rows), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def spline_gather(ring: torch.Tensor, slot: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  weights=bspline_weights) -> torch.Tensor:
    """1×C×H×W float: pixel (i, j) read from ``ring[slot[i, j]]`` (ring: K×H×W×C, any dtype) at the
    sub-pixel position (x[i, j], y[i, j]) in pixels, separable, with the taps ``weights`` gives
    (an elementwise function of the fractional offsets; :func:`bspline_weights` on B-spline
    coefficients: 6 taps for the quintic, 4 for the cubic; ``_cubic_weights`` for Keys' bicubic),
    the taps mirrored at the frame's edges: with Keys' weights ``grid_sample(..., mode="bicubic",
    padding_mode="reflection", align_corners=True)`` per pixel, but each pixel from its own stored
    output (one gather per tap, not one warp per source).

    Two orders of the same sums: on a CPU, where the read is bound by memory, tap by tap; on a GPU,
    where a 1080p read was bound by launching its ~250 small kernels (an H200 busy ~11 ms of the
    compute thread's ~37 ms a frame of ``--stable``, 2026-12-05), every tap's weights, mirrored
    indices and row offsets in a few whole-stack passes (x and y together) and each row's taps
    gathered and weighted at once: ~45 kernels."""
    if ring.device.type == "cuda":
        return _spline_gather_stacked(ring, slot, x, y, weights)
    return _spline_gather_by_tap(ring, slot, x, y, weights)


def _spline_gather_by_tap(ring, slot, x, y, weights):
    k, h, w, c = ring.shape
    rows = ring.reshape(k * h * w, c)
    x0, y0 = x.floor(), y.floor()
    wx, wy = weights(x - x0), weights(y - y0)
    # int32 indices where they fit (half the memory traffic of int64 on the CPU)
    itype = torch.int32 if k * h * w < 2 ** 31 else torch.long
    x0, y0 = x0.to(itype), y0.to(itype)
    base = slot.to(itype) * (h * w)
    taps = len(wx)
    first = 1 - taps // 2  # the first tap's offset: −1 for four taps, −2 for six
    columns = [_reflect(x0 + (first + i), w) for i in range(taps)]
    out = None
    for j in range(taps):  # separable: the taps along x per row, then the rows along y
        row_base = base + _reflect(y0 + (first + j), h) * w
        row = None
        for i in range(taps):
            index = (row_base + columns[i]).reshape(-1)
            tap = rows.index_select(0, index).float().mul_(wx[i].reshape(-1, 1))
            row = tap if row is None else row.add_(tap)
        row.mul_(wy[j].reshape(-1, 1))
        out = row if out is None else out.add_(row)
    return out.reshape(h, w, c).permute(2, 0, 1)[None]


def _spline_gather_stacked(ring, slot, x, y, weights):
    k, h, w, c = ring.shape
    n = h * w
    rows = ring.reshape(k * n, c)
    xy = torch.stack((x, y))
    corner = xy.floor()
    tap_weights = weights(xy - corner)  # taps maps of 2×H×W: x's weights, then y's
    taps = len(tap_weights)
    itype = torch.int32 if k * n < 2 ** 31 else torch.long
    corner = corner.to(itype)
    first = 1 - taps // 2
    offsets = torch.arange(first, first + taps, dtype=itype, device=x.device).reshape(taps, 1, 1)
    columns = _reflect(corner[0] + offsets, w)  # taps × H × W
    row_starts = _reflect(corner[1] + offsets, h).mul_(w).add_(slot.to(itype) * n)
    wx = torch.stack([tw[0] for tw in tap_weights]).reshape(taps, n, 1)
    out = None
    for j in range(taps):
        gathered = rows.index_select(0, (row_starts[j] + columns).reshape(-1)).reshape(taps, n, c)
        row = (gathered * wx).sum(0)  # widened to float32 by the product
        wy = tap_weights[j][1].reshape(n, 1)
        out = row.mul_(wy) if out is None else out.addcmul_(row, wy)
    return out.reshape(h, w, c).permute(2, 0, 1)[None]


def scale_kept(src: torch.Tensor, x: torch.Tensor, y: torch.Tensor, max_change: float, window: int = SCALE_WINDOW) -> torch.Tensor:
    """1×1×H×W bool: where the composed positions (x, y in the output ``src`` painted) still map
    the frame onto its source at about the same scale and orientation: the geometric mean of the
    x and y slopes over ``window`` px within 1 ± ``max_change``, and, when TURN_KEPT, the cross
    slopes (a turn's sine) within ± ``max_change``. A zoom magnifies carried strokes frame after
    frame (a 1.2 % zoom: 21 % larger after 16 frames), which the style yardstick reads as another
    style; a turning object turns them, and the positions' composition (the nearest pixel's
    position plus the flow's remainder, exact for a translation) drifts with the turn, which shows
    as jagged outlines: such pixels are repainted. Where the window spans two sources, the slope
    is not known: kept. (A window across two layers painted by the same frame reads as a scale
    change too; a test on both halves of the window, to tell a zoom's smooth stretch from a
    layer's jump, was tried on 2026-12-05 and lost on zooms without gaining on parallax.)"""
    h, w = x.shape
    sx, sy = torch.ones_like(x), torch.ones_like(y)
    cx, cy = torch.zeros_like(x), torch.zeros_like(y)
    k, c = window, window // 2
    if w > k:  # the slopes centred on each pixel; the c px at either edge take their neighbour's
        same = src[:, k:] == src[:, :-k]
        sx = F.pad(torch.where(same, (x[:, k:] - x[:, :-k]) / k, 1.0)[None], (c, k - c), mode="replicate")[0]
        if TURN_KEPT:
            cy = F.pad(torch.where(same, (y[:, k:] - y[:, :-k]) / k, 0.0)[None], (c, k - c), mode="replicate")[0]
    if h > k:
        same = src[k:] == src[:-k]
        sy = F.pad(torch.where(same, (y[k:] - y[:-k]) / k, 1.0).T[None], (c, k - c), mode="replicate")[0].T
        if TURN_KEPT:
            cx = F.pad(torch.where(same, (x[k:] - x[:-k]) / k, 0.0).T[None], (c, k - c), mode="replicate")[0].T
    scale = (sx * sy).clamp_min(1e-6).sqrt()
    kept = scale.log().abs() <= math.log1p(max_change)
    if TURN_KEPT:
        kept &= (cx.abs() <= max_change) & (cy.abs() <= max_change)
    return kept[None, None]


#: the most a blended pixel's stroke detail is amplified to give back what averaging took (1: off)
CONTRAST_GAIN = 2.0
#: the detail's scale: what a CONTRAST_LOW × CONTRAST_LOW box mean removes
CONTRAST_LOW = 3
#: after the contrast step, the blended pixels' detail takes the values of the network's own detail at
#: the same pixels, rank for rank (:func:`match_detail`): histogram-preserving blending (Heitz and
#: Neyret 2018). Off by default: measured on real footage (TV-L1 grader, QUALITY.md "Histogram-
#: preserving blends") it took 1.3-4.7 points off --stable's style change for +0.01-0.03 of warping
#: ratio, the synthetic clips unchanged, neither bound reached; +114-204 ms a 1080p frame on 2 CPU
#: cores, +1.2-1.9 ms on an H200 (where the contrast step itself takes 0.91 ms)
HISTOGRAM_BLEND = False
#: pixels blended with less of the carried colour than this keep their detail as it is
HISTOGRAM_MIN_WEIGHT = 0.05
#: the most blended pixels matched exactly (a full sort); more are matched through quantiles read
#: from every k-th pixel (:func:`match_detail`)
MATCH_SAMPLES = 65536
#: the histogram that gives each blended pixel its quantile when there are more than MATCH_SAMPLES
QUANTILE_BINS = 4096


def keep_contrast(out: torch.Tensor, carried: torch.Tensor, weight: torch.Tensor, most: Optional[float] = None,
                  low: Optional[int] = None, window: int = REGION, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``lerp(out, carried, weight)`` with its stroke detail (the image minus its CONTRAST_LOW box
    mean) amplified, by at most ``most``, to the detail energy the two had, mixed at the same
    weight: (1 − w)·E(out) + w·E(carried), each measured over ``window`` × ``window`` regions.

    Averaging two stroke patterns that do not line up keeps their colour but flattens their
    strokes: independent textures mixed at w keep sqrt(w² + (1 − w)²) of their contrast, and a
    pixel repainted frame after frame is a running average whose strokes fade towards a blur
    (mona on a talking face: +25 % of style distance, QUALITY.md "Real footage"). Mixing the
    energies instead is variance-preserving blending (as texture synthesis blends patches). Where
    the two agree, the mix loses nothing and the gain is 1; where ``weight`` is 0 the output is
    ``out`` as it is, and where ``skip`` (bool, optional) the plain blend."""
    most = CONTRAST_GAIN if most is None else most
    low = CONTRAST_LOW if low is None else low
    blended = torch.lerp(out, carried, weight)
    # the three pictures' details and energies in one pass (a GPU launches a third of the kernels);
    # the energies in float32 (half-precision outputs on a GPU: detail² ~1e-4)
    stack = torch.cat([blended, out, carried.to(blended.dtype)])
    detail = stack - box_mean(stack, low)
    energy = box_mean(detail.float().pow(2).mean(1, keepdim=True), window)
    target = torch.lerp(energy[1:2], energy[2:3], weight.float())
    gain = (target / energy[0:1].clamp_min(1e-6)).sqrt().clamp(1.0, most)
    blended_here = weight > 0 if skip is None else (weight > 0) & ~skip
    gain = torch.where(blended_here, gain, 1.0).to(blended.dtype)
    result = (blended + (gain - 1) * detail[0:1]).clamp(0, 1)
    if HISTOGRAM_BLEND:
        where = (weight > HISTOGRAM_MIN_WEIGHT) if skip is None else (weight > HISTOGRAM_MIN_WEIGHT) & ~skip
        result = match_detail(result, out, where, low)
    return result


def match_detail(result: torch.Tensor, reference: torch.Tensor, where: torch.Tensor, low: int) -> torch.Tensor:
    """``result`` (1×3×H×W) with its detail (the image minus its ``low`` × ``low`` box mean) at the
    pixels ``where`` (1×1×H×W bool) replaced, per channel, by ``reference``'s detail values at the
    same pixels, rank for rank: the blend keeps its strokes' places and order, and takes back the
    sparse distribution of the network's strokes that averaging makes Gaussian. Over
    MATCH_SAMPLES pixels, each pixel's quantile comes from a histogram of the blend's detail and
    the reference's value at it from every k-th pixel's, sorted (no sort of 2 M values a channel)."""
    mask = where[0, 0]
    count = int(mask.sum())
    if count < 2:
        return result
    d_res = (result - box_mean(result, low))[0]
    d_ref = (reference.to(result.dtype) - box_mean(reference.to(result.dtype), low))[0]
    values = d_res[:, mask]  # C×K
    if count <= MATCH_SAMPLES:
        target = torch.sort(d_ref[:, mask], dim=1).values
        remapped = torch.empty_like(values).scatter_(1, torch.argsort(values, dim=1), target)
    else:
        # each value's quantile among the blend's values from a fine histogram (QUANTILE_BINS bins
        # over its range, linear inside a bin: rises with the value), then the reference's value at
        # that quantile, linearly between every k-th pixel's sorted values: elementwise work only
        # (a full sort or a searchsorted of 2 M values a channel takes ~0.4-0.7 s on 2 CPU cores)
        step = -(-count // MATCH_SAMPLES)
        ref_q = torch.sort(d_ref[:, mask][:, ::step].float(), dim=1).values
        v = values.float()
        lo, hi = v.amin(dim=1, keepdim=True), v.amax(dim=1, keepdim=True)
        pos = (v - lo) / (hi - lo).clamp_min(1e-12) * QUANTILE_BINS
        idx = pos.long().clamp_(0, QUANTILE_BINS - 1)
        frac = (pos - idx).clamp_(0, 1)
        c = v.shape[0]
        offset = torch.arange(c, device=v.device).view(c, 1) * QUANTILE_BINS
        counts = torch.bincount((idx + offset).reshape(-1), minlength=c * QUANTILE_BINS).view(c, QUANTILE_BINS)
        before = counts.cumsum(1) - counts
        rank = torch.gather(before, 1, idx).float() + frac * torch.gather(counts, 1, idx).float()
        n = ref_q.shape[1]
        q = (rank / count * n - 0.5).clamp_(0, n - 1)
        i0 = q.floor().long().clamp_(max=n - 1)
        i1 = (i0 + 1).clamp_(max=n - 1)
        f = q - i0.float()
        remapped = (torch.gather(ref_q, 1, i0) * (1 - f) + torch.gather(ref_q, 1, i1) * f).to(values.dtype)
    new = d_res.clone()
    new[:, mask] = remapped
    return (result + (new - d_res)[None]).clamp(0, 1)



def zoom_repaint_blend(repaint_blend: float, zoom: float) -> float:
    """The repaint blend for a frame whose camera changes scale by ``zoom`` (relative, per frame,
    either sign): ``repaint_blend`` on pans and still cameras, down to :data:`ZOOM_REPAINT_BLEND`
    on zooms of :data:`ZOOM_FULL` a frame or more (never above ``repaint_blend``)."""
    if ZOOM_REPAINT_BLEND is None or not math.isfinite(zoom):
        return repaint_blend
    share = min(1.0, max(0.0, (abs(zoom) - ZOOM_START) / (ZOOM_FULL - ZOOM_START)))
    return min(repaint_blend, repaint_blend + share * (ZOOM_REPAINT_BLEND - repaint_blend))

class StrokeCarrier:
    """The carry state of one clip: call it per frame with the network's output (1×3×H×W float in
    [0, 1], on any device), the input's flow from this frame to the previous one (2×H×W, full
    size, on the output's device; None: the first frame, a cut, a new size) and where that flow is
    trusted (1×1×H×W soft mask in [0, 1]); it returns the stabilized output (same form).

    ``tau``: the agreement test's τ (:func:`cvtools.video.stability._agreement`);
    ``repaint_blend``: the weight of the carried colour where a pixel is repainted;
    ``ring``: outputs kept (None: :func:`ring_length` for the frame size);
    ``degree``: the read's B-spline, 3 or 5 (None: :data:`SPLINE_DEGREE`)."""

    def __init__(self, tau: float, repaint_blend: float, ring: Optional[int] = None,
                 max_scale_change: Optional[float] = MAX_SCALE_CHANGE, degree: Optional[int] = None):
        degree = SPLINE_DEGREE if degree is None else degree
        if degree not in RING_DTYPE:
            raise ValueError(f"the read's B-spline degree must be 3 or 5, not {degree}")
        if not tau > 0:
            raise ValueError(f"the agreement τ must be positive, not {tau}")
        if not 0 <= repaint_blend < 1:
            raise ValueError(f"repaint blend must be in [0, 1), not {repaint_blend}")
        if ring is not None and not MIN_RING <= ring <= 4 * MAX_RING:
            raise ValueError(f"the ring must hold {MIN_RING} to {4 * MAX_RING} outputs, not {ring}")
        if max_scale_change is not None and not max_scale_change > 0:
            raise ValueError(f"the largest scale change must be positive (or None: off), not {max_scale_change}")
        self.tau, self.repaint_blend, self.ring_frames = float(tau), float(repaint_blend), ring
        self.max_scale_change, self.degree = max_scale_change, degree
        self.reset()

    def reset(self) -> None:
        self._ring = None  # K×H×W×3 uint8: the last K results
        self._t = -1  # this clip's frame counter
        #: the share of the last frame's pixels carried: a 0-d tensor on the output's device after a
        #: frame (no device sync per frame); ``last_carried`` reads it as a float
        self.carried_share = 0.0

    def _start(self, out: torch.Tensor) -> torch.Tensor:
        h, w = out.shape[-2:]
        dtype = RING_DTYPE[self.degree]
        k = self.ring_frames or ring_length(h, w, itemsize=dtype.itemsize)
        self._ring = torch.empty(k, h, w, 3, dtype=dtype, device=out.device)
        gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=out.device),
                                torch.arange(w, dtype=torch.float32, device=out.device), indexing="ij")
        self._grid = gx, gy
        self._src = torch.zeros(h, w, dtype=torch.long, device=out.device)
        self._x, self._y = gx.clone(), gy.clone()
        self._t = 0
        self._store(out)
        self.carried_share = 0.0
        return out

    def _store(self, result: torch.Tensor) -> None:
        """Keeps ``result`` in the ring as its B-spline coefficients (8-bit codes for the cubic,
        float16 for the quintic)."""
        coefficients = bspline_coefficients(result.float().clamp(0, 1), self.degree)[0]
        if CODE_RANGE[self.degree] is not None:
            low, high = CODE_RANGE[self.degree]
            coefficients = (coefficients - low).mul_(255 / (high - low)).round_().clamp_(0, 255)
        self._ring[self._t % self._ring.shape[0]] = coefficients.to(self._ring.dtype).permute(1, 2, 0)

    def _read(self, src, x, y, dtype) -> torch.Tensor:
        """Each pixel's colour read once from the output that painted it, at its position there."""
        value = spline_gather(self._ring, src % self._ring.shape[0], x, y,
                             weights=lambda t: bspline_weights(t, self.degree))
        if CODE_RANGE[self.degree] is not None:
            low, high = CODE_RANGE[self.degree]
            value = value.mul_((high - low) / 255).add_(low)
        return value.clamp_(0, 1).to(dtype)

    def __call__(self, out: torch.Tensor, flow: Optional[torch.Tensor], trusted: Optional[torch.Tensor],
                 local: Optional[torch.Tensor] = None, edges: Optional[torch.Tensor] = None,
                 zoom: float = 0.0) -> torch.Tensor:
        """The stabilized output; ``local`` (1×1×H×W bool, optional): pixels that are blended, never
        carried (what ``--stable`` passes: the edges of what moves on its own, where the flow is
        least sure, and layers that turn, stretch or deform on their own, where carried strokes drift);
        ``edges`` (optional, within ``local``): those that are only a sliding layer's edge, blended
        as they are (:func:`keep_contrast` restores strokes elsewhere: on a thin edge it mostly
        restored flicker, parallax 0.59 → 0.64 of frame by frame). ``zoom``: the camera's relative
        scale change this frame (:func:`zoom_repaint_blend`)."""
        h, w = out.shape[-2:]
        if flow is None or self._ring is None or self._ring.shape[1:3] != (h, w) or self._ring.device != out.device:
            return self._start(out)
        src, x, y = self._compose(flow)
        carried = self._read(src, x, y, out.dtype)
        # carried where the flow is trusted and the network agrees (the blend's 5×5 test), except
        # where the composed position has left the frame that painted the pixel (its edge pixel
        # would be smeared inwards as new content enters) and where the pixel alone is far from
        # the network's answer (a stroke of another layer picked up at an object's edge, which
        # the 5×5 test averages away): those are repainted
        inside = (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)  # in the output that painted it
        d = (out - carried).abs().mean(1, keepdim=True)  # the pixel's own difference (RGB mean)
        trusted = trusted.to(out.device, out.dtype) * inside
        agreement = _agreement(out, carried, self.tau)
        carry = ((trusted * agreement) > 0.5) & (d <= FOREIGN * self.tau)
        repaint_blend = zoom_repaint_blend(self.repaint_blend, zoom)
        blend = torch.full_like(d, repaint_blend)
        if self.max_scale_change is not None:
            scaled = scale_kept(src, x, y, self.max_scale_change)
            carry &= scaled
            # a stroke repainted because a zoom magnified it must give way to the new one: it keeps
            # at most REFRESH_BLEND, or the refresh would hand the magnified stroke on
            blend = torch.where(scaled, blend, min(repaint_blend, REFRESH_BLEND))
        if local is not None:
            carry &= ~local
        result = torch.where(carry, carried,
                             self._repaint(out, carried, d, trusted * blend, trusted * agreement, local, edges))
        self._advance(carry[0, 0], src, x, y)
        self._store(result)
        return result

    def _compose(self, flow: torch.Tensor):
        """(source index, x, y) of each pixel if carried: the pixel it came from in the previous
        frame (nearest) keeps its source, its position moved by the sub-pixel remainder."""
        h, w = self._src.shape
        gx, gy = self._grid
        fx, fy = gx + flow[0].float(), gy + flow[1].float()  # where each pixel was in the previous frame
        rx, ry = fx.round().clamp(0, w - 1), fy.round().clamp(0, h - 1)
        came_from = (ry * w + rx).long().reshape(-1)
        src = self._src.reshape(-1)[came_from].reshape(h, w)
        x = self._x.reshape(-1)[came_from].reshape(h, w) + (fx - rx)
        y = self._y.reshape(-1)[came_from].reshape(h, w) + (fy - ry)
        return src, x, y

    def _repaint(self, out, carried, d, weight, blend_weight, local, edges=None):
        """The colour of a repainted pixel: the carried colour stays in at ``weight`` (the repaint
        blend where the flow is trusted: the blend's steadiness where the network changes its
        strokes), less where the pixel differs by more than a stroke does and where its whole
        neighbourhood changed (a light switched on, an object the flow did not see: followed at
        once, no ghost). Where ``local`` (the edge of something moving on its own, where the flow
        is least sure, or a layer turning or deforming on its own, where carried strokes drift), the blend instead
        (``blend_weight``: trust × 5×5 agreement, at LOCAL_BLEND on a sliding layer's ``edges``,
        WHOLE_LAYER_BLEND elsewhere in ``local``). Blended strokes keep their contrast
        (:func:`keep_contrast`), except on those edges."""
        if not self.repaint_blend:
            return out
        region = box_mean(d, REGION)
        gate = (d / (PIXEL_GATE * self.tau)).pow(2) + (region / (REGION_GATE * self.tau)).pow(2)
        weight = weight * torch.exp(-gate)
        if local is not None:
            local_weight = blend_weight * min(self.repaint_blend, LOCAL_BLEND)
            if edges is not None:
                # a turning or deforming layer, blended all over: its strokes keep their contrast
                # (below), so it can lean on the past more than a thin edge can
                local_weight = torch.where(edges, local_weight, blend_weight * min(self.repaint_blend, WHOLE_LAYER_BLEND))
            weight = torch.where(local, local_weight, weight)
        if CONTRAST_GAIN > 1:
            return keep_contrast(out, carried, weight, skip=edges)
        return torch.lerp(out, carried, weight)

    def _advance(self, keep: torch.Tensor, src, x, y) -> None:
        """The next frame's sources: carried pixels keep theirs, the others start at this frame;
        a source about to be overwritten in the ring hands its pixels on to this result."""
        gx, gy = self._grid
        self._t += 1
        k = self._ring.shape[0]
        src = torch.where(keep, src, self._t)
        x, y = torch.where(keep, x, gx), torch.where(keep, y, gy)
        old = src <= self._t - k
        self._src = torch.where(old, self._t, src)
        self._x, self._y = torch.where(old, gx, x), torch.where(old, gy, y)
        self.carried_share = keep.float().mean()  # read on demand: no device sync per frame

    @property
    def last_carried(self) -> float:
        """The share of the last frame's pixels carried (not repainted)."""
        return float(self.carried_share)
