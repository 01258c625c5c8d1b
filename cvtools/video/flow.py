"""Optical flow, backward warping and occlusion masks for video frames.

Flow comes from OpenCV's DIS (Dense Inverse Search, Kroeger et al. 2016): no learned weights, a
few milliseconds per small frame on a CPU. Large frames are downscaled for it (``max_side``) and
the flow scaled back up: the motion that matters for flicker is smooth at that scale.

Frames may be H×W×3 uint8 arrays (what a video reader gives) or RGB float tensors in [0, 1]
(3×H×W or 1×3×H×W). Flows are float32 tensors 2×H×W: x then y displacement in pixels.

Convention (backward flow, the one a warp uses): ``optical_flow(a, b)`` is the flow f with
``warp(b, f) ≈ a``: pixel (x, y) of ``a`` is seen at (x + fx, y + fy) in ``b``. For video,
``optical_flow(frame_t, frame_t_minus_1)`` warps the previous frame (or its stylized output)
onto the current one.

Occlusions: forward-backward consistency (Sundaram et al. 2010, as Ruder et al. 2016 and
Lai et al. 2018 use it): following f from a to b and the reverse flow back must return to the
start; where it does not (|f + g(x + f)|² > 0.01 (|f|² + |g(x + f)|²) + 0.5), the pixel of ``a``
was hidden in ``b`` (or the flow there is wrong: either way not to be trusted). Pixels whose flow
leaves the frame, and (optionally) motion boundaries, are marked too.
"""

from __future__ import annotations

from typing import Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from cvtools.errors import CvtoolsError

Frame = Union[np.ndarray, torch.Tensor]

#: DIS presets by name: OpenCV's three, and "fine" = "medium" down to full resolution (finest
#: scale 0): on the synthetic clips at 256×160 it halves the end-point error of the zoom and the
#: moving object (0.12 → 0.06, 0.21 → 0.11 px) and makes integer pans exact, at about the
#: same time per flow at that size
PRESETS = ("ultrafast", "fast", "medium", "fine", "auto", "smooth")
#: preset "smooth": "fine" with a stronger, longer variational refinement (the smoothness weight α
#: and the iterations of OpenCV's defaults, 20 and 5, raised to these), which fills flat areas from
#: their edges as a variational flow does instead of leaving them to the patch search: on real
#: footage, flat areas are where DIS and TV-L1 disagree and where carried strokes slid
#: (benchmarks/plans/issue29_2026-12-06c/bikes_where.py)
SMOOTH_REFINEMENT = (60.0, 15)

#: preset "auto": "fine" where the working frame's longer side is at most this (a few ms more per
#: flow on small frames, exact integer pans), else "medium" (at 384 px: 0.39 of frame-by-frame
#: warping error on the 1080p zoom and moving object against 0.35-0.37 with "fine" at 512 px, for
#: about a quarter of the time; benchmarks/video_stable.py, BENCHMARKS.md)
AUTO_FINE_SIDE = 256


def _cv2():
    try:
        import cv2
    except ImportError:
        raise CvtoolsError("optical flow needs OpenCV: pip install opencv-python-headless") from None
    return cv2


def _flow_tensor(flow: np.ndarray) -> torch.Tensor:
    """OpenCV's h×w×2 flow as a 2×h×w float tensor (every estimator's ``_calc`` answers so)."""
    return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).float()


def to_tensor(frame: Frame) -> torch.Tensor:
    """A frame as a 1×3×H×W float32 tensor in [0, 1] (uint8 H×W×3 arrays are divided by 255)."""
    if isinstance(frame, np.ndarray):
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 frame, got shape {frame.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
        x = x.float() / 255 if frame.dtype == np.uint8 else x.float()
        return x[None]
    x = frame
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a 3×H×W or 1×3×H×W frame, got shape {tuple(frame.shape)}")
    return x.float() if x.dtype != torch.uint8 else x.float() / 255


def to_gray_u8(frame: Frame) -> np.ndarray:
    """H×W uint8 luma (Rec. 601) of a frame, the input DIS takes."""
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3:
        # OpenCV's fixed-point conversion (the same weights, within 1 level): 1 ms at 1080p, not 12
        return _cv2().cvtColor(np.ascontiguousarray(frame), _cv2().COLOR_RGB2GRAY)
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8:
        rgb = frame.astype(np.float32)
    else:
        rgb = to_tensor(frame)[0].permute(1, 2, 0).cpu().numpy() * 255
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def frame_size(frame: Frame) -> Tuple[int, int]:
    """(height, width) of a frame in any of the accepted forms."""
    if isinstance(frame, np.ndarray):
        return frame.shape[0], frame.shape[1]
    return frame.shape[-2], frame.shape[-1]


class FlowEstimator:
    """DIS optical flow, reusable across frames (the OpenCV object is made once).

    max_side: frames whose longer side exceeds this are downscaled (area averaging) before the
    flow is computed, and the flow is resized and scaled back (None: full size). preset:
    "ultrafast" | "fast" | "medium" (OpenCV's presets: more iterations, finer patches) | "fine" |
    "auto" ("fine" up to :data:`AUTO_FINE_SIDE` working pixels, else "medium") | "smooth" ("fine"
    with the stronger refinement of :data:`SMOOTH_REFINEMENT`).
    """

    def __init__(self, max_side: Union[int, None] = 512, preset: str = "fine"):
        if preset not in PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r} (one of {', '.join(PRESETS)})")
        self._dis = {}
        self.dis = self._make("fine" if preset == "auto" else preset)  # checks OpenCV now
        self.max_side = max_side
        self.preset = preset

    def copy(self) -> "FlowEstimator":
        """A new estimator with the same settings (one per thread: OpenCV's DIS objects keep
        per-call state)."""
        return FlowEstimator(self.max_side, self.preset)

    def _make(self, preset: str):
        if preset not in self._dis:
            cv2 = _cv2()
            code = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fine": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
                    "smooth": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
            dis = cv2.DISOpticalFlow_create(code)
            if preset in ("fine", "smooth"):
                dis.setFinestScale(0)
            if preset == "smooth":
                alpha, iterations = SMOOTH_REFINEMENT
                dis.setVariationalRefinementAlpha(alpha)
                dis.setVariationalRefinementIterations(iterations)
            self._dis[preset] = dis
        return self._dis[preset]

    def _scaled(self, gray: np.ndarray) -> np.ndarray:
        h, w = gray.shape
        if not self.max_side or max(h, w) <= self.max_side:
            return gray
        s = self.max_side / max(h, w)
        return _cv2().resize(gray, (max(8, round(w * s)), max(8, round(h * s))), interpolation=_cv2().INTER_AREA)

    def _working(self, a: Frame, b: Frame):
        """Both frames as (possibly downscaled) gray uint8, and the full size (h, w)."""
        ga, gb = to_gray_u8(a), to_gray_u8(b)
        if ga.shape != gb.shape:
            raise ValueError(f"frames differ in size: {ga.shape[::-1]} and {gb.shape[::-1]}")
        return self._scaled(ga), self._scaled(gb), ga.shape

    def _calc(self, sa: np.ndarray, sb: np.ndarray) -> torch.Tensor:
        """2×h×w flow at the working size: sa(x) ≈ sb(x + flow(x))."""
        dis = self.dis
        if self.preset == "auto" and max(sa.shape) > AUTO_FINE_SIDE:
            dis = self._make("medium")
        return _flow_tensor(dis.calc(sa, sb, None))

    @staticmethod
    def _upscale(flow: torch.Tensor, h: int, w: int) -> torch.Tensor:
        sh, sw = flow.shape[-2:]
        if (sh, sw) == (h, w):
            return flow
        up = F.interpolate(flow[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        return up * up.new_tensor([w / sw, h / sh]).view(2, 1, 1)

    def __call__(self, a: Frame, b: Frame) -> torch.Tensor:
        """The flow f (2×H×W) with ``warp(b, f) ≈ a``."""
        sa, sb, (h, w) = self._working(a, b)
        return self._upscale(self._calc(sa, sb), h, w)

    def forward_small(self, cur: Frame, prev: Frame) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(flow cur→prev, (H, W)) at the working size, without the backward flow and the
        occlusion test (half the work of :meth:`pair_small`: for the dominant motion only)."""
        sa, sb, size = self._working(cur, prev)
        return self._calc(sa, sb), size

    def pair_small(self, cur: Frame, prev: Frame, **occlusion) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
        """(flow cur→prev, occluded, (H, W)) at the working size (flow in working-size pixels):
        the frames are converted once, both flows and the forward-backward test run there (the
        test's thresholds are then in working-size pixels). :meth:`upscale` and
        :func:`upscale_mask` bring them to the full size (H, W) where they are used (a stabilizer
        keeps the small ones until then: 1080p flows are 16 MB a frame, at 512 px 1.2 MB)."""
        sa, sb, size = self._working(cur, prev)
        f, g = self._calc(sa, sb), self._calc(sb, sa)
        return f, occlusion_mask(f, g, **occlusion), size

    def pair(self, cur: Frame, prev: Frame, **occlusion) -> Tuple[torch.Tensor, torch.Tensor]:
        """(flow cur→prev, occluded), both full size (:meth:`pair_small` scaled up; the mask
        conservatively: a full-size pixel is occluded if any working pixel near it is)."""
        f, occ, (h, w) = self.pair_small(cur, prev, **occlusion)
        return self._upscale(f, h, w), upscale_mask(occ, h, w)

    upscale = _upscale


def upscale_mask(occluded: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """An H×W bool mask from a smaller one, conservatively (true if any source pixel near is)."""
    if tuple(occluded.shape[-2:]) == (h, w):
        return occluded
    up = F.interpolate(occluded.float()[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    return up > 0.01


_default = {}


def optical_flow(a: Frame, b: Frame, max_side: Union[int, None] = 512, preset: str = "fine") -> torch.Tensor:
    """The DIS flow f (2×H×W) with ``warp(b, f) ≈ a`` (see :class:`FlowEstimator`)."""
    key = (max_side, preset)
    if key not in _default:
        _default[key] = FlowEstimator(max_side, preset)
    return _default[key](a, b)


_base_grid = {}


def _grid(flow: torch.Tensor) -> torch.Tensor:
    """1×H×W×2 grid_sample coordinates (align_corners=True) of x + flow(x)."""
    _, h, w = flow.shape[-3:]
    key = (h, w, flow.dtype, flow.device)
    base = _base_grid.get(key)
    if base is None:  # the identity grid in [-1, 1], kept for the last size (a video: every frame)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                                torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
        base = torch.stack([xs * (2 / max(w - 1, 1)) - 1, ys * (2 / max(h - 1, 1)) - 1], dim=-1)[None]
        _base_grid.clear()
        _base_grid[key] = base
    f = flow.reshape(-1, 2, h, w)[0]
    scale = flow.new_tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)])
    return base + f.permute(1, 2, 0)[None] * scale


def warp(image: Union[Frame, torch.Tensor], flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warp: ``out(x) = image(x + flow(x))``, bilinear, borders repeated.

    image: a frame (uint8 H×W×3 array, or 3×H×W / 1×3×H×W float) or any C×H×W / 1×C×H×W float
    tensor (a flow, a mask). Returns a float tensor: 1×C×H×W for arrays and 4-D tensors,
    C×H×W for 3-D tensors.
    """
    squeeze = False
    if isinstance(image, np.ndarray):
        x = to_tensor(image)
    else:
        x = image.float()
        squeeze = x.dim() == 3
        if squeeze:
            x = x[None]
    if x.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"image {tuple(x.shape[-2:])} and flow {tuple(flow.shape[-2:])} differ in size")
    grid = _grid(flow.to(x.device, torch.float32))
    out = F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1), mode=mode, padding_mode="border", align_corners=True)
    return out[0] if squeeze else out


def outside_frame(flow: torch.Tensor) -> torch.Tensor:
    """H×W bool: pixels whose flow points outside the frame (nothing there to warp from)."""
    _, h, w = flow.shape[-3:]
    f = flow.reshape(-1, 2, h, w)[0]
    xs = torch.arange(w, dtype=f.dtype, device=f.device).view(1, w) + f[0]
    ys = torch.arange(h, dtype=f.dtype, device=f.device).view(h, 1) + f[1]
    return (xs < 0) | (xs > w - 1) | (ys < 0) | (ys > h - 1)


def occlusion_mask(flow_ab: torch.Tensor, flow_ba: torch.Tensor, alpha: float = 0.01, beta: float = 0.5,
                   motion_boundaries: bool = False) -> torch.Tensor:
    """H×W bool, True where a pixel of ``a`` is occluded (or its flow unreliable) in ``b``.

    flow_ab: ``optical_flow(a, b)``; flow_ba: ``optical_flow(b, a)``. The forward-backward
    test of Sundaram et al. 2010 with their constants (``alpha``, ``beta`` in px²), plus pixels
    whose flow leaves the frame; ``motion_boundaries``: also where the flow's gradient is large
    (|∇fx|² + |∇fy|² > 0.01 |f|² + 0.002, Ruder et al. 2016).
    """
    f = flow_ab.reshape(-1, *flow_ab.shape[-3:])[0].float()
    g = warp(flow_ba.reshape(-1, *flow_ba.shape[-3:])[0].float(), f)  # the reverse flow where f lands
    diff = (f + g).pow(2).sum(0)
    occ = diff > alpha * (f.pow(2).sum(0) + g.pow(2).sum(0)) + beta
    occ |= outside_frame(f)
    if motion_boundaries:
        gx = F.pad(f[:, :, 1:] - f[:, :, :-1], (0, 1))
        gy = F.pad(f[:, 1:, :] - f[:, :-1, :], (0, 0, 0, 1))
        occ |= (gx.pow(2) + gy.pow(2)).sum(0) > 0.01 * f.pow(2).sum(0) + 0.002
    return occ


def flow_and_occlusion(cur: Frame, prev: Frame, estimator: Union[FlowEstimator, None] = None,
                       **occlusion) -> Tuple[torch.Tensor, torch.Tensor]:
    """(flow, occluded) for warping ``prev`` (or anything aligned with it) onto ``cur``: two DIS
    flows (cur→prev and back) and their consistency test (see :meth:`FlowEstimator.pair`)."""
    return (estimator or FlowEstimator()).pair(cur, prev, **occlusion)


class FarnebackEstimator:
    """OpenCV's Farnebäck flow (polynomial expansion, Farnebäck 2003): a second, independent
    flow for *grading* stabilizers that track with DIS (:class:`FlowEstimator`), so the flicker
    metric does not share the stabilizer's flow errors (a stabilizer would otherwise be graded
    by its own tracker). The same interface as :class:`FlowEstimator` (``__call__``, ``pair``:
    flow ``cur → prev`` and the forward-backward occlusions), full resolution by default.

    Parameters: 5 pyramid levels at scale 0.5, 15-px Gaussian windows, 10 iterations, 5-px
    polynomial neighbourhoods with σ = 1.1. Mean end-point error against the true motion on the
    synthetic clips at 256×160 (cvtools.video.synthetic, 8 px border and occlusions left out):
    0.24 / 0.14 / 0.20 / 0.26 px on the pan, sub-pixel pan, zoom and moving object (DIS "fine":
    0.00 / 0.04 / 0.06 / 0.08): less exact, mostly in flat areas where a warp's error is small
    anyway; it is a different method with different errors, which is what grading needs.
    """

    def __init__(self, max_side: Union[int, None] = None, levels: int = 5, winsize: int = 15, iterations: int = 10,
                 poly_n: int = 5, poly_sigma: float = 1.1):
        self.cv2 = _cv2()
        self.max_side = max_side
        self.params = (0.5, levels, winsize, iterations, poly_n, poly_sigma, self.cv2.OPTFLOW_FARNEBACK_GAUSSIAN)

    def copy(self) -> "FarnebackEstimator":
        new = FarnebackEstimator.__new__(FarnebackEstimator)
        new.cv2, new.max_side, new.params = self.cv2, self.max_side, self.params
        return new

    _scaled = FlowEstimator._scaled
    _working = FlowEstimator._working
    upscale = staticmethod(FlowEstimator._upscale)

    def _calc(self, sa: np.ndarray, sb: np.ndarray) -> torch.Tensor:
        return _flow_tensor(self.cv2.calcOpticalFlowFarneback(sa, sb, None, *self.params))

    def __call__(self, a: Frame, b: Frame) -> torch.Tensor:
        sa, sb, (h, w) = self._working(a, b)
        return self.upscale(self._calc(sa, sb), h, w)

    def pair_small(self, cur: Frame, prev: Frame, **occlusion):
        sa, sb, size = self._working(cur, prev)
        f, g = self._calc(sa, sb), self._calc(sb, sa)
        return f, occlusion_mask(f, g, **occlusion), size

    def pair(self, cur: Frame, prev: Frame, **occlusion) -> Tuple[torch.Tensor, torch.Tensor]:
        f, occ, (h, w) = self.pair_small(cur, prev, **occlusion)
        return self.upscale(f, h, w), upscale_mask(occ, h, w)


class TVL1Estimator(FarnebackEstimator):
    """OpenCV contrib's Dual TV-L1 flow (Zach, Pock and Bischof 2007; ``cv2.optflow``): a grading
    flow like :class:`FarnebackEstimator` (same interface, full resolution by default), for real
    footage where Farnebäck is wrong. On bikes' fast stretch Farnebäck's own warp of the INPUT
    leaves 0.53e-3 (mean squared, its trusted pixels, 384 px), the stabilizer's DIS 0.28e-3, TV-L1
    0.11e-3: where Farnebäck and DIS disagreed by over a pixel, the stable output's "flicker" was
    mostly the grader's (benchmarks/plans/issue29_2026-12-06c/grader_flows.py). A variational
    method with an L1 data term, not DIS's patch search: independent of the stabilizer. Slow
    (~1 s a flow at 384×216 on a CPU core) and only in ``opencv-contrib-python-headless``, which
    replaces ``opencv-python-headless`` (both install the ``cv2`` module): for the tools, not
    the product."""

    def __init__(self, max_side: Union[int, None] = None):
        cv2 = _cv2()
        if not hasattr(cv2, "optflow"):
            raise CvtoolsError("the TV-L1 flow needs OpenCV's contrib modules: pip uninstall "
                               "opencv-python-headless && pip install opencv-contrib-python-headless")
        self.cv2 = cv2
        self.max_side = max_side
        self.algo = cv2.optflow.createOptFlow_DualTVL1()

    def copy(self) -> "TVL1Estimator":
        return TVL1Estimator(self.max_side)

    def _calc(self, sa: np.ndarray, sb: np.ndarray) -> torch.Tensor:
        return _flow_tensor(self.algo.calc(sa, sb, None))
