"""Temporal stability of processed video: the flicker metric, a stabilizer, dream warping.

Flicker metric (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): the
warping error between consecutive OUTPUT frames, with the optical flow of the INPUT frames

    E_t = Σ_x M_t(x) ‖O_t(x) − warp(O_{t−1}, F_t)(x)‖² / (3 Σ_x M_t(x))

where F_t is the flow from input frame t to input frame t−1 (so the warp brings frame t−1 onto
frame t), M_t is 0 where that flow is occluded (forward-backward check) or leaves the frame,
and pixel values are in [0, 1]; the clip's score is the mean of E_t over t = 1 … T−1. A still
photo stylized twice gives 0; an output that changes where its input did not (flicker) gives
more. Frame-by-frame style transfer flickers because the network answers small input changes
with different strokes.

:class:`TemporalStabilizer` lowers it: it shifts each frame so that the scene keeps its place
on the style network's 4-pixel grid (phase lock: the strokes then move with the scene), then
either blends the previous *stabilized* output, warped onto the frame along the input's flow,
into the new one except where the flow is occluded (a recursive filter along motion
trajectories), or, in the carry mode ``--stable`` uses (:mod:`cvtools.video.carry`), carries each
pixel's stroke from the output that painted it wherever the network agrees, read once. :func:`dream_start` is DeepDreamVideo's method for dreams:
the previous frame's dream (its difference from the frame) is warped along the flow and added
to the next frame before dreaming it, so the dream's creatures move with the scene.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from cvtools.video.flow import FlowEstimator, Frame, flow_and_occlusion, frame_size, to_tensor, warp

#: the DIS preset :class:`TemporalStabilizer` tracks with unless told (see its docstring and
#: :class:`cvtools.video.flow.FlowEstimator`)
STABLE_PRESET = "auto"

#: the blend of :class:`TemporalStabilizer` (see its docstring and :func:`blend_for`): every
#: style network gets it, with or without the stability term in training
DEFAULT_BLEND = 0.45

#: what ``--stable`` does after the phase lock (:func:`stabilizer_for`): "carry" since 2026-12-05
#: (QUALITY.md, "Video: temporal stability": the same steadiness as the blend on average at a
#: fifth of its style cost), "blend" before
STABLE_MODE = "carry"
STABLE_MODES = ("carry", "blend")

#: carry mode: pixels whose flow departs from the camera's (affine) motion by more than this many
#: px move on their own and, at a layer's edge, are blended, not carried (:func:`_local_motion_mask`)
LOCAL_MOTION = 0.75
#: carry mode: only the edge of what moves on its own is blended, where the flow jumps by more
#: than LOCAL_MOTION px within (2·LOCAL_EDGE_WINDOW + 1)² working-size px; the inside of a moving
#: layer is carried like the camera's pixels (unless it turns or deforms: LOCAL_TURN, LOCAL_DEFORM). None: the whole
#: moving layer is blended (the mode until 2026-12-05). The blend was worth its style cost only
#: where the flow is least sure (a region split of great_wave's parallax: edges 0.79 of frame by
#: frame carried, 0.62 blended; insides 0.46 carried, 0.48 blended). On QUALITY's object and
#: parallax clips, 14 rows, both of issue 29's bounds: 5 with whole layers, 9 with this and the
#: per-pixel turn test, 12 with the per-layer one (:func:`_non_sliding_layers`), every row as steady
LOCAL_EDGE_WINDOW: Optional[int] = 1
#: carry mode: ...unless the moving layer turns or stretches on its own: where the slope of its
#: departure from the camera's motion (px per px a frame) is over this, all of it is blended.
#: The positions' composition (nearest pixel + the flow's remainder) is exact for a translation
#: only; carried inside a disc turning 3°/frame (slope 0.074), strokes drifted into jagged,
#: misplaced features within 20 frames (benchmarks/video_stable_2026-12-05/spinning_object.py).
#: The slope is one affine fit per moving layer (:func:`_non_sliding_layers`, since 2026-12-05
#: afternoon), not per pixel: DIS's per-pixel slope inside a rigidly sliding disc has a 90th
#: percentile of 0.011-0.016 and crossed 0.03 on ~3 % of it, which blended strokes that should
#: have been carried; the per-layer fit's is 0.0015-0.0036 on QUALITY's parallax layers. 0.03 (the
#: fit's Frobenius norm) is a turn of ~1.2° a frame or a 3 % stretch
LOCAL_TURN: Optional[float] = 0.03
#: carry mode: whether a sliding layer's edge (flow jumps, no turn or deformation) is repainted and
#: blended (True, since 2026-12-05) or carried like the rest (False: only turning or deforming
#: layers are then blended). Exploration knob (tools/video_flicker.py --carry-edges) for now
LOCAL_EDGES_BLENDED = True
#: carry mode: ...or deforms: where the layer's departure is not one affine motion, its RMS residual
#: from the layer's own affine fit (full-size px) over this, all of it is blended. A picture that
#: ripples (synthetic.deforming_object: a face that talks, fur in the wind) averages to no turn, yet
#: carried, mona's and great_wave's strokes broke into speckled, jagged outlines around the eyes by
#: frame 20 at a 2-px ripple (residual 0.45-0.47 px through DIS); at a 1-px ripple (0.19-0.25) they
#: stayed clean. DIS's noise on QUALITY's rigid sliding discs leaves 0.08-0.20 px
#: (benchmarks/video_stable_2026-12-05/spinning_object.py --deform)
LOCAL_DEFORM: Optional[float] = 0.35
#: the least moving layer (working-size px) whose turn is judged; smaller ones are edges already
TURN_MIN_PIXELS = 48
#: the camera's affine model is fitted again to the samples it fits within this many working-size
#: px (a trimmed least squares, :func:`_camera_departure`)
CAMERA_INLIER = 1.0

#: :class:`TemporalStabilizer`'s ``disagreement`` τ: the warped previous output's weight is
#: scaled by exp(−(d/τ)²), d the network's local mean disagreement with it (pixel values in
#: [0, 1]): 0.94 at d = 0.05 (shimmer), 0.37 at 0.2, 0.02 at 0.4 (a different object)
DISAGREEMENT = 0.2


def _pair_error(out_t: torch.Tensor, out_prev: torch.Tensor, flow: torch.Tensor, occluded: torch.Tensor) -> float:
    """Lai et al.'s E_t for one pair (outputs as 1×3×H×W float)."""
    warped = warp(out_prev, flow)
    keep = (~occluded).to(out_t.dtype)
    n = float(keep.sum()) * out_t.shape[1]
    if n == 0:
        return float("nan")
    return float(((out_t - warped).pow(2) * keep).sum() / n)


class FlickerMeter:
    """The flicker metric, fed one frame at a time (``add(input, output)``, in order).

    ``value``: the mean warping error so far (NaN before the second frame); ``errors``: E_t per
    pair. ``estimator``: a :class:`~cvtools.video.flow.FlowEstimator` (default: DIS "fine",
    frames downscaled to 512 px). Flows and masks of the inputs can be given instead with
    ``add(input, output, flow=, occluded=)`` (true motion of a synthetic clip).

    ``cut_fraction``: a pair whose occlusions cover more than this share of the frame is a scene
    cut (nothing of frame t−1 is in frame t to compare with, and what the flow keeps there is its
    own error): its E_t is recorded as NaN, left out of ``value``, and counted in ``cuts``. None
    (the default): every pair counts, as in Lai et al.'s metric, whose clips have no cuts.
    """

    def __init__(self, estimator: Optional[FlowEstimator] = None, cut_fraction: Optional[float] = None):
        self.estimator = estimator
        self.cut_fraction = cut_fraction
        self.errors: List[float] = []
        self.occluded_fraction: List[float] = []
        #: the pairs (t, counted from 1) left out as scene cuts
        self.cuts: List[int] = []
        self._prev_in = None
        self._prev_out = None

    def add(self, frame_in: Frame, frame_out: Frame, flow: Optional[torch.Tensor] = None,
            occluded: Optional[torch.Tensor] = None) -> Optional[float]:
        """Add the next (input, output) pair; returns E_t for it (None for the first frame)."""
        if frame_size(frame_in) != frame_size(frame_out):
            raise ValueError(f"input frame {frame_size(frame_in)} and output frame {frame_size(frame_out)} differ in size")
        out = to_tensor(frame_out)
        err = None
        if self._prev_out is not None:
            if flow is None:
                self.estimator = self.estimator or FlowEstimator()
                flow, occluded = flow_and_occlusion(frame_in, self._prev_in, self.estimator)
            elif occluded is None:
                from cvtools.video.flow import outside_frame

                occluded = outside_frame(flow)
            occluded_share = float(occluded.float().mean())
            if self.cut_fraction is not None and occluded_share > self.cut_fraction:
                err = float("nan")
                self.cuts.append(len(self.errors) + 1)
            else:
                err = _pair_error(out, self._prev_out, flow, occluded)
            self.errors.append(err)
            self.occluded_fraction.append(occluded_share)
        self._prev_in, self._prev_out = frame_in, out
        return err

    @property
    def value(self) -> float:
        vals = [e for e in self.errors if e == e]
        return float(np.mean(vals)) if vals else float("nan")


def warping_error(inputs: Iterable[Frame], outputs: Iterable[Frame], estimator: Optional[FlowEstimator] = None,
                  flows: Optional[Sequence[torch.Tensor]] = None,
                  occluded: Optional[Sequence[torch.Tensor]] = None) -> float:
    """Lai et al.'s flicker metric of ``outputs`` (frames in [0, 1] terms; see the module).

    inputs, outputs: sequences of frames of the same size, in order (uint8 H×W×3 arrays or
    float tensors). flows/occluded: the inputs' true motion (``flows[t]`` warps frame t−1 onto
    frame t; index 0 unused), e.g. a :class:`~cvtools.video.synthetic.SyntheticClip`'s; default:
    DIS flow and the forward-backward check on the inputs.
    """
    meter = FlickerMeter(estimator)
    for t, (a, b) in enumerate(zip(inputs, outputs)):
        if flows is not None and t > 0:
            meter.add(a, b, flow=flows[t], occluded=None if occluded is None else occluded[t])
        else:
            meter.add(a, b)
    return meter.value


def _like(result: torch.Tensor, template: Frame) -> Frame:
    """``result`` (1×3×H×W float) in the form of ``template`` (uint8 array, 3-D or 4-D tensor)."""
    if isinstance(template, np.ndarray):
        u8 = (result[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
        return np.ascontiguousarray(u8.numpy())
    r = result.to(template.device)
    if template.dtype == torch.uint8:
        r = (r.clamp(0, 1) * 255).round().to(torch.uint8)
    else:
        r = r.to(template.dtype)
    return r if template.dim() == 4 else r[0]


def _soft_keep(occluded: torch.Tensor, grow: int) -> torch.Tensor:
    """1×1×H×W float: 1 where the warp is trusted, 0 on the occlusions grown by ``grow`` px, with
    a ``grow`` px ramp between (no hard seam where the blend switches off)."""
    occ = occluded.float()[None, None]
    if grow > 0:
        k = 2 * grow + 1
        occ = F.max_pool2d(occ, k, 1, grow)
        occ = F.avg_pool2d(occ, k, 1, grow, count_include_pad=False)
    return 1 - occ


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """N×C×H×W mean over a ``size`` × ``size`` window (odd), the window cut at the borders (what
    ``avg_pool2d(x, size, 1, size // 2, count_include_pad=False)`` gives) as two 1-D passes:
    2·size reads a pixel instead of size², and the same numbers (a cut window is a rectangle, so
    its count is the product of the two 1-D counts); CPU fp32 tensors go through OpenCV instead
    (:func:`_box_mean_cpu`)."""
    half = size // 2
    if x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad:
        return _box_mean_cpu(x, size)
    x = F.avg_pool2d(x, (1, size), 1, (0, half), count_include_pad=False)
    return F.avg_pool2d(x, (size, 1), 1, (half, 0), count_include_pad=False)


def _box_mean_cpu(x: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`box_mean` through OpenCV's box filter (running sums, zeros beyond the borders),
    divided by each window's count inside the frame: the same numbers to fp32 rounding, ~10×
    faster than the two pooling passes on the CPU (a 1080p plane: 8-9 ms against 79-95 ms,
    2 cores, 2026-12-05; the carry runs two a frame)."""
    import cv2  # a dependency of cvtools.video (its flow)

    n, c, h, w = x.shape
    half = size // 2

    def inside(m):  # how many of the window's positions along an axis fall in the frame
        i = torch.arange(m)
        return ((i + half).clamp(max=m - 1) - (i - half).clamp(min=0) + 1).float()

    planes = x.contiguous().numpy().reshape(n * c, h, w)
    out = np.empty_like(planes)
    for i in range(n * c):
        cv2.boxFilter(planes[i], -1, (size, size), dst=out[i], normalize=False, borderType=cv2.BORDER_CONSTANT)
    out /= (inside(h)[:, None] * inside(w)[None, :]).numpy()
    return torch.from_numpy(out.reshape(n, c, h, w))


def _agreement(out: torch.Tensor, warped: torch.Tensor, tau: float) -> torch.Tensor:
    """1×1×H×W confidence exp(−(d/τ)²) in the warped previous output, from d, the network's
    disagreement with it (mean |out − warped| over RGB and a 5×5 neighbourhood): ~1 where they
    differ by shimmer, falling where they differ by a whole stroke or object (a flow error the
    forward-backward check missed, a lighting change: the new frame is trusted, no ghost)."""
    d = box_mean((out - warped).abs().mean(1, keepdim=True), 5)
    return torch.exp(-(d / tau).pow(2))


def _pad_frame(frame: Frame, left: int, right: int, top: int, bottom: int) -> Frame:
    """``frame`` reflect-padded, in its own form (uint8 H×W×3 array or 3-D / 4-D tensor)."""
    if isinstance(frame, np.ndarray):
        return np.pad(frame, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    x = frame if frame.dim() == 4 else frame[None]
    dtype = x.dtype
    y = F.pad(x.float(), (left, right, top, bottom), mode="reflect").to(dtype)
    return y if frame.dim() == 4 else y[0]


@dataclass
class Tracked:
    """What :meth:`TemporalStabilizer.measure` found between two frames: the camera's motion
    (x, y px; None: not needed or not trusted), the flow and occlusions for the blend (working
    size; None without a blend), and whether the frame starts a new shot (no frame before it, or
    a new size: the grid phase starts again). ``layers``: for the carry, the flow's departure from
    the camera's motion and the layers that turn or deform (:meth:`TemporalStabilizer.moving_layers`),
    labelled on the host with the flow, so that this work runs in the flow's threads, not between
    the network and the carry."""

    motion: Optional[torch.Tensor] = None
    flow: Optional[torch.Tensor] = None
    occluded: Optional[torch.Tensor] = None
    new_shot: bool = False
    layers: Optional[Tuple[Optional[torch.Tensor], torch.Tensor]] = None


class Stabilizer:
    """What a video run (:func:`cvtools.video.process.stylize_video`, ``dream_video``) takes as
    ``stable``: ``reset()`` once per clip, then for every frame, in order, one of two protocols,
    said by :attr:`wraps_effect`:

    - ``wraps_effect = True``: ``x = prepare(frame)`` before the effect (in the decoder's thread,
      possibly a few frames ahead) and ``out = finish(effect(x))`` after it (in order);
    - ``wraps_effect = False``: ``out = step(frame, effect(frame))`` after the effect.

    :attr:`measures_ahead`: ``measure(frame, last, estimator=)`` may run in worker threads ahead of
    ``prepare(frame, measured=)`` (the optical flow), with ``estimator``'s ``copy()`` per thread."""

    #: prepare/finish around the effect (True) or step after it (False)
    wraps_effect = False
    #: measure() runs ahead of prepare() in worker threads
    measures_ahead = False

    def reset(self) -> None:
        """Forget the clip so far (a new clip, a cut)."""

    def step(self, frame_in: Frame, output: Frame) -> Frame:
        raise NotImplementedError

    def prepare(self, frame_in: Frame, measured=None) -> Frame:
        raise NotImplementedError

    def finish(self, output: Frame) -> Frame:
        raise NotImplementedError


class TemporalStabilizer(Stabilizer):
    """Steadier per-frame effects (style transfer) for video: phase locking and flow-warped blending.

    Frame-by-frame style transfer flickers mostly because the network is not shift-invariant:
    its two stride-2 stages make its strokes depend on where the content falls on a 4-pixel grid
    (a pan by 4 px gives the same strokes moved along; a pan by 1-2 px, different strokes:
    measured on the synthetic pans, 25-35x the warping error). So:

    1. **phase lock** (``prepare``/``finish``): the dominant motion (the median of the input
       flow) is accumulated over the clip, and each frame is shifted by 0-3 px (reflect padding,
       ``stride`` px in all) so that the scene keeps its place on the network's grid; the result
       is cropped back. Same network, same cost, same kind of strokes; on a pan they now move
       with the scene.
    2. **blend** (both paths): the previous stabilized output, warped onto this frame along the
       input's flow, is mixed in where the flow is trusted (forward-backward check; occlusions
       grown and feathered by ``feather`` px) and where the network agrees with it:

           out_t = (1 − s·K·A) · output_t + s·K·A · warp(out_{t−1}, flow(input_t → input_{t−1}))

       with s = ``strength``, K the occlusion mask and A = exp(−(d/τ)²) the agreement (d: the
       network's local mean disagreement with the warped previous output, τ = ``disagreement``;
       None: A = 1): shimmer is blended away, a stroke or object the flow got wrong is not
       carried over (no ghosts); a cut (occlusions over ``cut_fraction``) starts afresh. This
       removes what the phase lock cannot (sub-pixel motion, local motion, zooms, parallax) at a
       price: strokes from successive frames are averaged, which softens the texture (the style
       distance grows with s). 0.45, the default since issue 29, is about the least that brings
       every bundled network and the any-painting network to 0.6 of its frame-by-frame warping
       error on a moving object and parallax (0.41-0.57, an independent Farnebäck flow; at 0.35:
       0.51-0.67); QUALITY.md "Video: temporal stability" has the table and the style cost.

    3. **carry** (``carry=True``, what ``--stable`` runs: :func:`stabilizer_for`), instead of the
       blend: each pixel keeps the frame that painted it and its position there; where the flow
       is trusted and the network agrees, its colour is read from that output once (a B-spline),
       however long it is carried, so strokes are neither averaged nor resampled frame after
       frame; elsewhere it is repainted, the carried colour kept in at ``strength`` (gated by
       how far the pixel and its region changed). What moves on its own is carried too, except
       at its edges (where the flow jumps) and where it turns, stretches or deforms
       (LOCAL_EDGE_WINDOW, LOCAL_TURN, LOCAL_DEFORM): those are blended. :class:`cvtools.video.carry.StrokeCarrier`
       has the rules (frame edges, magnified strokes, the ring of stored outputs); QUALITY.md
       "Video: temporal stability" the measurements (the same steadiness as the blend on
       average, a third of its style cost).

    Per frame, in order — with control over the effect's input (phase lock + blend)::

        x = st.prepare(frame)          # the frame to run the effect on (``stride`` px larger)
        out = st.finish(effect(x))     # the stabilized output, frame-sized

    (``prepare`` may run ahead of ``finish`` for a batch; ``finish`` takes the results in the
    same order; one thread may prepare while another finishes: they share only a deque).
    Tensor outputs stay on their device (the warp and blend run there; the flow is computed on
    the CPU from the input frames). Without it (blend only): ``out = st.step(frame, effect(frame))``. Frames and
    outputs: uint8 H×W×3 arrays or float tensors (3×H×W or 1×3×H×W); results come back in the
    output's form. ``reset()`` at a cut or new clip; a frame whose occlusions cover more than
    ``cut_fraction`` of it is not blended (a cut, a flash).

    carry, ring, max_scale_change: the carry mode (3. above), the outputs its ring keeps (None: as
    many as :data:`cvtools.video.carry.RING_BYTES` allows) and the scale change at which a carried
    stroke is repainted (None: :data:`cvtools.video.carry.MAX_SCALE_CHANGE`; 0: never).

    max_side, preset: of the DIS flow (see :class:`~cvtools.video.flow.FlowEstimator`). The
    defaults, 384 px and "auto" ("fine" on frames up to 256 px, "medium" above), were measured
    on the synthetic clips at 1920×1080 (benchmarks/video_stable.py, starry_night, 10 frames):
    stable / frame-by-frame warping error 0.04 / 0.18 / 0.39 / 0.40 on the pan, sub-pixel pan,
    zoom and moving object (512 px "fine", the earlier default: 0.005 / 0.19 / 0.35 / 0.37;
    384 px "fast": 0.07 / 0.20 / 0.44 / 0.43), with the two flows of ``prepare`` taking about a
    quarter of the time of 512 px "fine" on a CPU core (17 against 54-75 ms per 1080p frame).
    """

    wraps_effect = True  # prepare/finish (the phase lock's shift and crop, even with phase_lock=False)
    measures_ahead = True

    def __init__(self, strength: float = DEFAULT_BLEND, phase_lock: bool = True, stride: int = 4,
                 max_side: Optional[int] = 384, preset: Optional[str] = None, feather: int = 2, cut_fraction: float = 0.5,
                 disagreement: Optional[float] = DISAGREEMENT, carry: bool = False, ring: Optional[int] = None,
                 max_scale_change: Optional[float] = None, local_motion: Optional[float] = LOCAL_MOTION):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"stabilizer strength must be in [0, 1), not {strength}")
        if stride < 1:
            raise ValueError(f"stride must be at least 1, not {stride}")
        self.strength = float(strength)
        self.phase_lock = bool(phase_lock)
        self.stride = int(stride)
        self.estimator = FlowEstimator(max_side, STABLE_PRESET if preset is None else preset)
        self.feather = int(feather)
        self.cut_fraction = float(cut_fraction)
        if disagreement is not None and not disagreement > 0:
            raise ValueError(f"disagreement must be positive (or None: off), not {disagreement}")
        self.disagreement = disagreement
        self.carrier = None
        if local_motion is not None and not local_motion > 0:
            raise ValueError(f"local motion threshold must be positive (or None: off), not {local_motion}")
        self.local_motion = local_motion
        if carry:
            from cvtools.video.carry import MAX_SCALE_CHANGE, StrokeCarrier

            self.carrier = StrokeCarrier(disagreement or DISAGREEMENT, self.strength, ring,
                                         MAX_SCALE_CHANGE if max_scale_change is None else max_scale_change or None)
        self.reset()

    def reset(self) -> None:
        self._last_in = None  # the last frame tracked (prepare / step)
        self._prev_out = None  # the last stabilized output (1×3×H×W float, on the output's device)
        self._pending = deque()  # (Tracked, (px, py), size) per prepared frame not yet finished
        self._motion = torch.zeros(2, dtype=torch.float64)  # accumulated dominant motion (px)
        self._trusted_share = 0.0  # a device tensor after a frame: read through last_trusted
        #: the last frame's grid shift (x, y)
        self.last_phase = (0, 0)
        if self.carrier is not None:
            self.carrier.reset()

    @property
    def last_trusted(self) -> float:
        """The fraction of the last frame that took the warped previous output (for reports)."""
        return float(self._trusted_share)

    def measure(self, frame_in: Frame, last: Optional[Frame], estimator: Optional[FlowEstimator] = None) -> "Tracked":
        """The optical-flow work of tracking ``frame_in`` after ``last`` (the frame decoded before
        it; None for the first): a function of the two frames alone, so it may run in any thread
        and ahead of :meth:`prepare`, which takes its result (``measured=``). A thread of its own
        needs its own ``estimator`` (:meth:`FlowEstimator.copy`: OpenCV's DIS objects are not
        shared across threads)."""
        if last is None or frame_size(last) != frame_size(frame_in):
            return Tracked(new_shot=True)
        blends = self.strength > 0 or self.carrier is not None
        if not blends and not self.phase_lock:
            return Tracked()
        est = estimator or self.estimator
        if not blends:
            # phase lock alone (steady networks) needs only the dominant motion: one flow, no
            # backward flow or occlusion test (half the flow work; the median of all pixels
            # stands in for the median of the trusted ones)
            flow, size = est.forward_small(frame_in, last)
            return Tracked(motion=self._dominant(flow, None, *size))
        flow, occluded, size = est.pair_small(frame_in, last)
        if float(occluded.float().mean()) > self.cut_fraction:
            return Tracked()  # a cut: nothing to blend, the grid phase may stay
        return Tracked(motion=self._dominant(flow, occluded, *size), flow=flow, occluded=occluded,
                       layers=self.moving_layers(flow, occluded, size[1]) if self.carrier is not None else None)

    def moving_layers(self, flow: torch.Tensor, occluded: torch.Tensor, w: int):
        """(departure, turning) for the carry's local-motion mask: the flow minus the camera's
        affine motion (:func:`_camera_departure`, None if too little is trusted) and the layers
        that turn, stretch or deform on their own (:func:`_non_sliding_layers`), both at the
        working size on the host (OpenCV labels them: ~10 ms of a 384×216 flow on a 2-core CPU);
        None when the mask does not look at layers. ``w``: the full frame's width."""
        if not (self.local_motion and LOCAL_EDGE_WINDOW is not None and LOCAL_TURN is not None):
            return None
        flow, occluded = flow.cpu(), occluded.cpu()
        departure = _camera_departure(flow, occluded)
        turning = _non_sliding_layers(flow, occluded, w, self.local_motion, LOCAL_TURN, LOCAL_DEFORM,
                                      departure=departure)
        return departure, turning

    def _track(self, frame_in: Frame, measured: Optional["Tracked"] = None) -> "Tracked":
        """What :meth:`measure` finds from ``frame_in`` to the frame tracked before it (flow and
        occlusions at the flow's working size, :meth:`FlowEstimator.pair_small`; None for the first
        frame, a new size, or when nothing needs them); the accumulated motion follows. ``measured``:
        what :meth:`measure` gave for this frame and the one before (else it is measured here)."""
        last, self._last_in = self._last_in, (frame_in.copy() if isinstance(frame_in, np.ndarray)
                                              else frame_in.detach().clone())
        t = measured if measured is not None else self.measure(frame_in, last)
        if t.new_shot:
            self._motion.zero_()
        if t.motion is not None:
            self._motion -= t.motion
        return t

    @staticmethod
    def _dominant(flow: torch.Tensor, occluded: Optional[torch.Tensor], h: int, w: int) -> torch.Tensor:
        """The median flow (x, y) in full-size pixels over the trusted pixels (all when
        ``occluded`` is None), from a ~256-px grid of samples; zero if none is trusted. The
        scene moved by minus this: the camera's motion."""
        step = max(1, max(flow.shape[-2:]) // 256)
        sample = flow[:, ::step, ::step].reshape(2, -1)
        if occluded is not None:
            sample = sample[:, ~occluded[::step, ::step].reshape(-1)]
        if sample.shape[1] == 0:
            return torch.zeros(2, dtype=torch.float64)
        scale = torch.tensor([w / flow.shape[-1], h / flow.shape[-2]], dtype=torch.float64)
        return sample.median(dim=1).values.double() * scale

    def prepare(self, frame_in: Frame, measured: Optional["Tracked"] = None) -> Frame:
        """The frame to run the effect on: ``frame_in`` shifted onto the locked grid phase and
        reflect-padded to (H + stride)×(W + stride) (every frame the same size: batchable).
        ``measured``: :meth:`measure`'s result for this frame, computed ahead (in order)."""
        tracked = self._track(frame_in, measured)
        px = py = 0
        if self.phase_lock and self.stride > 1:
            px, py = (int(torch.round(-v)) % self.stride for v in self._motion)
        self._pending.append((tracked, (px, py), frame_size(frame_in)))
        self.last_phase = (px, py)
        s = self.stride
        return _pad_frame(frame_in, px, s - px, py, s - py)

    def finish(self, output: Frame) -> Frame:
        """The stabilized output for the oldest prepared frame (``output``: the effect's result
        on what :meth:`prepare` returned, or already cropped to the frame's size)."""
        if not self._pending:
            raise RuntimeError("finish() without a prepare() for that frame")
        tracked, (px, py), (h, w) = self._pending.popleft()
        out = to_tensor(output)  # stays on its device (CUDA tensors: the warp and blend run there)
        if out.shape[-2:] != (h, w):
            if out.shape[-2] < py + h or out.shape[-1] < px + w:
                raise ValueError(f"output {tuple(out.shape[-2:])} is smaller than the prepared frame")
            out = out[..., py:py + h, px:px + w]
        return _like(self._blend(out, tracked.flow, tracked.occluded, tracked.layers), output)

    def step(self, frame_in: Frame, output: Frame) -> Frame:
        """Blend only (``output`` made from ``frame_in`` itself): the stabilized output."""
        if frame_size(frame_in) != frame_size(output):
            raise ValueError(f"input frame {frame_size(frame_in)} and output {frame_size(output)} differ in size")
        if self._pending:
            raise RuntimeError("step() while prepared frames wait for finish()")
        t = self._track(frame_in)
        return _like(self._blend(to_tensor(output), t.flow, t.occluded, t.layers), output)

    def _blend(self, out: torch.Tensor, flow, occluded, layers=None) -> torch.Tensor:
        """``out`` blended with the previous result along ``flow`` (working size: scaled up here,
        on ``out``'s device; the occlusions grown and feathered at the working size, then scaled
        up bilinearly, which widens the ramp in proportion). ``layers``: :meth:`moving_layers` of
        this flow if measured already (the carry labels them here otherwise)."""
        if self.carrier is not None:
            return self._carry(out, flow, occluded, layers)
        prev, self._trusted_share = self._prev_out, 0.0
        if self.strength > 0 and flow is not None and prev is not None and prev.shape == out.shape:
            keep, flow = self._keep_and_flow(out, flow, occluded)
            keep = keep * self.strength
            warped = warp(prev, flow)
            if self.disagreement:
                keep = keep * _agreement(out, warped, self.disagreement)
            out = torch.lerp(out, warped, keep)  # out + keep · (warped − out)
            self._trusted_share = keep.mean() / self.strength  # read on demand: no device sync
        self._prev_out = out
        return out

    def _keep_and_flow(self, out: torch.Tensor, flow, occluded) -> Tuple[torch.Tensor, torch.Tensor]:
        """Where the warp is trusted (1×1×H×W, soft) and the flow, both at ``out``'s size and device."""
        h, w = out.shape[-2:]
        sh, sw = flow.shape[-2:]
        grow = self.feather if (sh, sw) == (h, w) else max(1, -(-self.feather * sw // w))
        keep = _soft_keep(occluded, grow).to(out.device)
        if (sh, sw) != (h, w):
            keep = F.interpolate(keep, size=(h, w), mode="bilinear", align_corners=False)
        return keep, FlowEstimator.upscale(flow.to(out.device), h, w)

    def _carry(self, out: torch.Tensor, flow, occluded, layers=None) -> torch.Tensor:
        """The carry mode (:class:`cvtools.video.carry.StrokeCarrier`) instead of the blend."""
        if flow is None:
            result = self.carrier(out, None, None)
        else:
            # the flow's small maps go to the output's device first: on a GPU the mask and the
            # trust map (fits, norms, pools, a 1080p upscale) then cost ~0.3 ms, where on the
            # host they took ~40 ms of a 1080p frame (profiled on an H200, 2026-12-05)
            # labelled on the host (OpenCV), normally by measure() in a flow thread ahead of time;
            # the camera's fit is made once there and handed on to the mask
            departure, turning = layers or self.moving_layers(flow, occluded, out.shape[-1]) or (None, None)
            turning = None if turning is None else turning.to(out.device)
            # a zoom repaints at a lower blend (carry.zoom_repaint_blend): the camera's scale change,
            # read off the working-size flow (scale-free) where it was made (the host: no device sync)
            zoom = camera_zoom(flow, occluded, departure)
            flow, occluded = flow.to(out.device), occluded.to(out.device)
            local, edges = (_local_motion_mask(flow, occluded, *out.shape[-2:], self.local_motion,
                                               edge_window=LOCAL_EDGE_WINDOW, turning=turning, departure=departure,
                                               split=True)
                            if self.local_motion else (None, None))
            if local is not None and not LOCAL_EDGES_BLENDED:
                local, edges = local & ~edges, None  # the sliding layers' edges carried too
            keep, flow = self._keep_and_flow(out, flow, occluded)
            result = self.carrier(out, flow, keep, local, edges, zoom=zoom)
        self._trusted_share = self.carrier.carried_share  # read on demand: no device sync per frame
        return result


def _camera_model(flow: torch.Tensor, occluded: torch.Tensor) -> Optional[torch.Tensor]:
    """3×2 (rows x, y, 1; on the flow's device): the camera's motion, an affine model (pan, zoom,
    rotation) of the flow (2×h'×w', working size) fitted by least squares to the trusted pixels on a
    ~64² grid, then once more to those of them it fits within CAMERA_INLIER px (so that things
    moving on their own do not tilt the camera's model, which would lend every layer a false turn);
    None when fewer than 6 are trusted."""
    dev = flow.device
    sh, sw = flow.shape[-2:]
    step = max(1, max(sh, sw) // 64)
    sample = torch.zeros(sh, sw, dtype=torch.bool, device=dev)
    sample[::step, ::step] = True
    sample &= ~occluded.to(dev).reshape(sh, sw)
    ys, xs = sample.nonzero(as_tuple=True)
    if len(ys) < 6:
        return None
    flow = flow.float().reshape(2, sh, sw)
    basis = torch.stack([xs.float(), ys.float(), torch.ones_like(xs, dtype=torch.float32)], -1)
    f = flow[:, ys, xs].T  # the samples' flow, n×2
    model = torch.linalg.lstsq(basis, f).solution  # 3×2: rows x, y, 1
    r = f - basis @ model
    inliers = r[:, 0] * r[:, 0] + r[:, 1] * r[:, 1] <= CAMERA_INLIER ** 2
    if int(inliers.sum()) >= max(6, len(ys) // 2):
        model = torch.linalg.lstsq(basis[inliers], f[inliers]).solution
    return model


def camera_zoom(flow: torch.Tensor, occluded: torch.Tensor, departure: Optional[torch.Tensor] = None) -> float:
    """The camera's relative scale change this frame (0 on pans and still cameras; about −0.012 for
    a zoom in by 1.2 % a frame, the flow pointing from each pixel to where it was), from
    :func:`_camera_model`'s divergence: scale-free, so any working size gives the same; 0 when the
    model cannot be fitted. ``departure``: :func:`_camera_departure` of this flow, if made already:
    the camera's affine motion is then ``flow − departure`` and its slopes are read off it (no
    second fit)."""
    if departure is not None:
        camera = flow.float().reshape(2, *flow.shape[-2:]) - departure.to(flow.device).reshape(2, *flow.shape[-2:])
        return float(camera[0, 0, 1] - camera[0, 0, 0] + camera[1, 1, 0] - camera[1, 0, 0]) / 2
    model = _camera_model(flow, occluded)
    return 0.0 if model is None else float(model[0, 0] + model[1, 1]) / 2


def _camera_departure(flow: torch.Tensor, occluded: torch.Tensor) -> Optional[torch.Tensor]:
    """1×2×h'×w' (working-size px, on the flow's device): the flow minus the camera's motion
    (:func:`_camera_model`); None when fewer than 6 pixels are trusted."""
    model = _camera_model(flow, occluded)
    if model is None:
        return None
    dev = flow.device
    sh, sw = flow.shape[-2:]
    x = torch.arange(sw, dtype=torch.float32, device=dev)
    y = torch.arange(sh, dtype=torch.float32, device=dev)[:, None]
    camera = model[0][:, None, None] * x + model[1][:, None, None] * y + model[2][:, None, None]  # 2×h'×w'
    return (flow.float() - camera)[None]


def _non_sliding_layers(flow: torch.Tensor, occluded: torch.Tensor, w: int, threshold: float, turn: float,
                        deform: Optional[float] = None, departure: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1×1×h'×w' bool (CPU, working size): the layers that move on their own AND turn, stretch or
    deform: all of what the carry's translation-exact composition would let drift.

    A layer is a connected region (8-neighbours) where the flow departs from the camera's motion
    by more than ``threshold`` full-size px (``w``: the full width) and does not jump by more than
    that within 3×3 px (:func:`_flow_jumps`: two touching layers are two layers, split along the
    line where their motions meet). Its departure gets one affine fit, d(x, y) ≈ A·(x, y) + t,
    over its trusted pixels; it turns or stretches on its own when ‖A‖_F (px per px a frame: a
    turn by θ gives √2·θ, a stretch by s gives √2·|s − 1|) is over ``turn``, and deforms when the
    fit's RMS residual (full-size px) is over ``deform`` (None: not judged). Sliding layers
    (A = 0, residual only DIS's noise) are left to the carry. One fit per layer averages DIS's
    per-pixel noise away. ``departure``: :func:`_camera_departure` of this flow, if made already."""
    import cv2
    import numpy as np

    flow, occluded = flow.cpu(), occluded.cpu()
    if departure is None:
        departure = _camera_departure(flow, occluded)
    sh, sw = flow.shape[-2:]
    out = torch.zeros(1, 1, sh, sw, dtype=torch.bool)
    if departure is None:
        return out
    d = departure[0].cpu().numpy()
    moving = (np.hypot(d[0], d[1]) * (w / sw) > threshold) & ~_flow_jumps(flow, w, threshold, 1)[0, 0].numpy()
    if int(moving.sum()) < TURN_MIN_PIXELS:
        return out
    count, labels = cv2.connectedComponents(moving.astype(np.uint8), connectivity=8)
    inner = moving & ~occluded.numpy()
    lab = labels[inner]
    ys, xs = np.nonzero(inner)
    # per-layer least squares of d ~ [x, y, 1] through the normal equations, all layers at once
    xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    cols = [xs, ys, np.ones_like(xs)]
    gram = np.stack([np.stack([np.bincount(lab, a * b, count) for b in cols], -1) for a in cols], -2)
    rhs = np.stack([np.stack([np.bincount(lab, a * d[k][inner], count) for k in range(2)], -1) for a in cols], -2)
    n = np.bincount(lab, minlength=count)
    # Σ|d|² per layer: with the normal equations, the fit's residual sum of squares is Σ|d|² − rhs·coef
    energy = sum(np.bincount(lab, d[k][inner].astype(np.float64) ** 2, count) for k in range(2))
    to_full = w / sw
    turning = np.zeros(count, dtype=bool)
    for i in range(1, count):  # label 0 is the camera's pixels
        if n[i] < TURN_MIN_PIXELS:
            continue
        try:
            coef = np.linalg.solve(gram[i] + 1e-6 * np.eye(3), rhs[i])  # 3×2: rows x, y, 1
        except np.linalg.LinAlgError:  # a layer one pixel thick: no slope to judge
            continue
        turning[i] = float(np.sqrt((coef[:2] ** 2).sum())) > turn
        if deform is not None and not turning[i]:
            residual = max(0.0, float(energy[i] - (rhs[i] * coef).sum())) / n[i]
            turning[i] = np.sqrt(residual) * to_full > deform
    if turning.any():
        out[0, 0] = torch.from_numpy(turning[labels] & moving)
    return out


def _flow_jumps(flow: torch.Tensor, w: int, threshold: float, window: int) -> torch.Tensor:
    """1×1×h'×w' bool: where the flow (2×h'×w', working size) spans more than ``threshold``
    full-size px (``w``: the full width) within (2·window + 1)² px: the edges of moving layers."""
    k = 2 * window + 1
    full = flow.float()[None] * (w / flow.shape[-1])  # in full-size px
    spread = F.max_pool2d(full, k, 1, window) + F.max_pool2d(-full, k, 1, window)
    # hypot, not norm(dim=1): torch's CPU norm over a 2-long dim took 35 ms at 512×288
    return torch.hypot(spread[:, :1], spread[:, 1:]) > threshold


def _local_motion_mask(flow: torch.Tensor, occluded: torch.Tensor, h: int, w: int, threshold: float,
                       grow: int = 2, edge_window: Optional[int] = None,
                       turning: Optional[torch.Tensor] = None, departure: Optional[torch.Tensor] = None,
                       split: bool = False):
    """1×1×H×W bool, on the flow's device: where the flow (2×h'×w', working size) departs from the
    camera's motion (:func:`_camera_departure`) by more than ``threshold`` full-size px, grown by
    ``grow`` px at the working size (object edges), scaled up. ``edge_window`` (working-size px,
    optional): only where the flow also jumps by more than ``threshold`` within that distance (the
    edge of a moving layer, not its inside), and, with ``turning`` (1×1×h'×w' bool, e.g.
    :func:`_non_sliding_layers`), all of the layers marked there (they turn, stretch or deform on their own).
    ``departure``: :func:`_camera_departure` of this flow, if made already (on any device).
    ``split``: (mask, edges), ``edges`` the part of the mask that is only a sliding layer's edge
    (not a turning or deforming layer's whole)."""
    dev = flow.device
    sh, sw = flow.shape[-2:]
    departure = _camera_departure(flow, occluded) if departure is None else departure.to(dev)
    if departure is None:
        none = torch.zeros(1, 1, h, w, dtype=torch.bool, device=dev)
        return (none, none) if split else none
    residual = torch.hypot(departure[:, :1], departure[:, 1:]) * (w / sw)
    moving = (residual > threshold).float()
    local, whole = moving, None
    if edge_window is not None:
        edge = _flow_jumps(flow, w, threshold, edge_window)
        if turning is not None:
            turning = turning.to(dev)
            edge |= turning
            whole = moving * turning
        local = moving * edge
    masks = [local] + ([whole] if split and whole is not None else [])
    if grow:
        masks = [F.max_pool2d(m, 2 * grow + 1, 1, grow) for m in masks]
    if (sh, sw) != (h, w):
        masks = [F.interpolate(m, size=(h, w), mode="nearest") for m in masks]
    local = masks[0] > 0
    if not split:
        return local
    # no turning layers marked: all of the mask is sliding layers' edges
    edges = local & ~(masks[1] > 0) if len(masks) > 1 else local
    return local, edges


def blend_for(stylizer) -> float:
    """The blend a stabilizer should use for ``stylizer``'s network: :data:`DEFAULT_BLEND` for
    every network (bundled, steady or not, the any-painting network, a trained style).

    Until 2026-12-04 networks trained with train-style's stability term (``recipe.temporal_weight``
    > 0) got the phase lock alone (0): their style distance stays put, but their warping error
    on a zoom or a moving object stayed at 0.97-1.07 of frame by frame (issue 29, measured with
    an independent Farnebäck flow). The flow-guided blend brings every network to at most 0.6
    of its frame-by-frame error on pans, zooms, moving objects and parallax, and costs style
    distance (the Lite2 yardstick is that sensitive to the averaged strokes: QUALITY.md,
    "Video: temporal stability", has the table and the trade-off).
    """
    return DEFAULT_BLEND


def stabilizer_for(stylizer, mode: Optional[str] = None) -> "TemporalStabilizer":
    """The stabilizer ``--stable`` runs for ``stylizer``'s network (a fresh one per clip): the
    phase lock, then ``mode`` (None: :data:`STABLE_MODE`): "carry" (strokes carried from the output
    that painted them, :mod:`cvtools.video.carry`; repainted pixels blended at its
    ``REPAINT_BLEND``) or "blend" (the flow-guided blend at :func:`blend_for`, the mode before
    2026-12-05). The same for every network (measured on the bundled six and the any-painting one);
    where the camera zooms the carry's repaint blend falls (:func:`cvtools.video.carry.zoom_repaint_blend`)."""
    mode = STABLE_MODE if mode is None else mode
    if mode not in STABLE_MODES:
        raise ValueError(f"stable mode must be one of {', '.join(STABLE_MODES)}, not {mode!r}")
    if mode == "carry":
        from cvtools.video.carry import REPAINT_BLEND

        return TemporalStabilizer(REPAINT_BLEND, carry=True)
    return TemporalStabilizer(blend_for(stylizer))


def stabilize(inputs: Iterable[Frame], outputs: Iterable[Frame], strength: float = DEFAULT_BLEND, **kwargs) -> List[Frame]:
    """Blend only: finished outputs through one :class:`TemporalStabilizer` (a list, in the
    outputs' form)."""
    st = TemporalStabilizer(strength, phase_lock=False, **kwargs)
    return [st.step(a, b) for a, b in zip(inputs, outputs)]


def stabilized_effect(frames: Iterable[Frame], effect, strength: float = DEFAULT_BLEND, **kwargs) -> List[Frame]:
    """Phase lock + blend: ``effect`` (frame → output of the same size) run on every frame
    through one :class:`TemporalStabilizer` (a list)."""
    st = TemporalStabilizer(strength, **kwargs)
    return [st.finish(effect(st.prepare(f))) for f in frames]


def warp_previous(prev_input: Frame, cur_input: Frame, prev_result: Frame,
                  estimator: Optional[FlowEstimator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(warped, occluded): ``prev_result`` (aligned with ``prev_input``) warped onto
    ``cur_input`` along the inputs' flow (1×C×H×W float), and where that warp is not to be trusted."""
    flow, occluded = flow_and_occlusion(cur_input, prev_input, estimator or FlowEstimator())
    return warp(to_tensor(prev_result), flow), occluded


def dream_start(prev_input: Frame, cur_input: Frame, prev_dream: Frame, blend: float = 0.5,
                estimator: Optional[FlowEstimator] = None, feather: int = 2) -> torch.Tensor:
    """Where to start dreaming frame t (DeepDreamVideo's flow mode): the current input plus the
    previous dream's change to its own input, warped along the flow onto this frame:

        start = cur_input + blend · K · warp(prev_dream − prev_input)

    (K: 0 on occlusions, where the plain frame is dreamed afresh). ``blend`` = 1 carries the
    whole dream over (and the next dream deepens it further each frame); smaller values let
    it fade at the rate the dream regrows. Measured on the sub-pixel pan (12 frames, 256×160,
    EfficientNet-Lite0, 3 octaves × 5 steps): warping error 0.57 / 0.51 / 0.52 of frame-by-frame
    dreams at blend 0.5 / 0.8 / 1.0, while the dream's mean |dream − frame| grows from 0.039
    (frame by frame) to 0.048 / 0.062 / 0.083 (0.051 / 0.070 / 0.108 by the 12th frame: at 1 it
    keeps deepening). Returns a 3×H×W float tensor in [0, 1] (CPU).
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"dream blend must be in [0, 1], not {blend}")
    cur = to_tensor(cur_input).cpu()
    diff = to_tensor(prev_dream).cpu() - to_tensor(prev_input).cpu()
    warped, occluded = warp_previous(prev_input, cur_input, diff, estimator)
    keep = _soft_keep(occluded, feather)
    return (cur + blend * keep * warped)[0].clamp(0, 1)
