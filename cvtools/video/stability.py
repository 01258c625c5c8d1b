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

:class:`TemporalStabilizer` lowers it: each output is blended with the previous *stabilized*
output warped onto it along the input's flow, except where the flow is occluded (a recursive
filter along motion trajectories). :func:`dream_start` is DeepDreamVideo's method for dreams:
the previous frame's dream (its difference from the frame) is warped along the flow and added
to the next frame before dreaming it, so the dream's creatures move with the scene.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from cvtools.video.flow import Frame, FlowEstimator, flow_and_occlusion, frame_size, to_tensor, warp


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
    """

    def __init__(self, estimator: Optional[FlowEstimator] = None):
        self.estimator = estimator
        self.errors: List[float] = []
        self.occluded_fraction: List[float] = []
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
            err = _pair_error(out, self._prev_out, flow, occluded)
            self.errors.append(err)
            self.occluded_fraction.append(float(occluded.float().mean()))
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


class TemporalStabilizer:
    """Flow-warped blending of the previous output into the current one, per frame.

    ``step(frame_in, output)``: ``frame_in`` is the input frame, ``output`` what the effect made
    of it on its own (same size; uint8 H×W×3 arrays or float tensors, 3×H×W or 1×3×H×W); returns
    the stabilized output in the form of ``output``. Call it for every frame in order;
    ``reset()`` at a cut or a new clip.

        out_t = (1 − s·K) · output_t + s·K · warp(out_{t−1}, flow(input_t → input_{t−1}))

    with s = ``strength`` (0: off, the output unchanged; towards 1: stiller, blurrier where the
    flow is off) and K = 1 where the forward-backward check trusts the flow, 0 on occlusions
    (grown and feathered by ``feather`` px). A frame whose occlusions cover more than
    ``cut_fraction`` of it (a scene cut, a flash) starts afresh.

    The error of a pair of outputs, O_t − warp(O_{t−1}), is (1 − s) times what it was before
    blending (and the recursion averages the strokes along each trajectory), so the warping
    error (a squared error) falls by about (1 − s)² or more where the flow holds.

    max_side, preset: of the DIS flow (see :class:`~cvtools.video.flow.FlowEstimator`).
    """

    def __init__(self, strength: float = 0.6, max_side: Optional[int] = 512, preset: str = "fine",
                 feather: int = 2, cut_fraction: float = 0.5):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"stabilizer strength must be in [0, 1), not {strength}")
        self.strength = float(strength)
        self.estimator = FlowEstimator(max_side, preset)
        self.feather = int(feather)
        self.cut_fraction = float(cut_fraction)
        self.reset()

    def reset(self) -> None:
        self._prev_in = None
        self._prev_out = None
        #: the fraction of the last frame that took the warped previous output (for reports)
        self.last_trusted = 0.0

    def step(self, frame_in: Frame, output: Frame) -> Frame:
        if frame_size(frame_in) != frame_size(output):
            raise ValueError(f"input frame {frame_size(frame_in)} and output {frame_size(output)} differ in size")
        out = to_tensor(output).cpu()
        if self.strength > 0 and self._prev_out is not None and frame_size(frame_in) == frame_size(self._prev_in):
            flow, occluded = flow_and_occlusion(frame_in, self._prev_in, self.estimator)
            if float(occluded.float().mean()) <= self.cut_fraction:
                keep = _soft_keep(occluded, self.feather) * self.strength
                out = out + keep * (warp(self._prev_out, flow) - out)
                self.last_trusted = float(keep.mean()) / self.strength
            else:
                self.last_trusted = 0.0
        self._prev_in = frame_in.copy() if isinstance(frame_in, np.ndarray) else frame_in.detach().clone()
        self._prev_out = out
        return _like(out, output)


def stabilize(inputs: Iterable[Frame], outputs: Iterable[Frame], strength: float = 0.6, **kwargs) -> List[Frame]:
    """A whole clip through one :class:`TemporalStabilizer` (a list, in the outputs' form)."""
    st = TemporalStabilizer(strength, **kwargs)
    return [st.step(a, b) for a, b in zip(inputs, outputs)]


def warp_previous(prev_input: Frame, cur_input: Frame, prev_result: Frame,
                  estimator: Optional[FlowEstimator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(warped, occluded): ``prev_result`` (aligned with ``prev_input``) warped onto
    ``cur_input`` along the inputs' flow (1×C×H×W float), and where that warp is not to be trusted."""
    flow, occluded = flow_and_occlusion(cur_input, prev_input, estimator or FlowEstimator())
    return warp(to_tensor(prev_result), flow), occluded


def dream_start(prev_input: Frame, cur_input: Frame, prev_dream: Frame, blend: float = 0.8,
                estimator: Optional[FlowEstimator] = None, feather: int = 2) -> torch.Tensor:
    """Where to start dreaming frame t (DeepDreamVideo's flow mode): the current input plus the
    previous dream's change to its own input, warped along the flow onto this frame:

        start = cur_input + blend · K · warp(prev_dream − prev_input)

    (K: 0 on occlusions, where the plain frame is dreamed afresh). ``blend`` = 1 carries the
    whole dream over (and the next dream deepens it further each frame); smaller values let
    it fade at the rate the dream regrows. Returns a 3×H×W float tensor in [0, 1] (CPU).
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"dream blend must be in [0, 1], not {blend}")
    cur = to_tensor(cur_input).cpu()
    diff = to_tensor(prev_dream).cpu() - to_tensor(prev_input).cpu()
    warped, occluded = warp_previous(prev_input, cur_input, diff, estimator)
    keep = _soft_keep(occluded, feather)
    return (cur + blend * keep * warped)[0].clamp(0, 1)
