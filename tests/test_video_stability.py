"""Optical flow, warping, occlusions, the flicker metric and the stabilizer (cvtools.video)."""

import numpy as np
import pytest
import torch
from conftest import noise_effect

from cvtools.video import synthetic
from cvtools.video.flow import FlowEstimator, occlusion_mask, optical_flow, warp
from cvtools.video.stability import FlickerMeter, TemporalStabilizer, dream_start, stabilize, warping_error

SIZE = (64, 96)  # frames H×W: tiny, CPU


def _interior(mask, margin):
    m = mask.clone()
    m[:margin], m[-margin:], m[:, :margin], m[:, -margin:] = False, False, False, False
    return m


@pytest.fixture(scope="module")
def int_pan():
    return synthetic.pan("coffee", frames=6, size=SIZE, velocity=(2.0, 1.0))


@pytest.fixture(scope="module")
def sub_pan():
    return synthetic.pan("coffee", frames=3, size=SIZE, velocity=(1.37, 0.61))


def test_synthetic_clips_are_consistent_with_their_flow(int_pan):
    # an integer pan is made of crops of one picture: warping with the true flow is exact
    # (bilinear at integer offsets reads single pixels), away from the strip that came in, up to
    # grid_sample's fp32 round trip of coordinates to [-1, 1] and back: ~W·2^-24 ≈ 1e-5 px,
    # times a neighbour difference of at most 1
    for t in range(1, len(int_pan)):
        w = warp(int_pan.frames[t - 1], int_pan.flow[t])
        keep = ~int_pan.occluded[t]
        assert keep.float().mean() > 0.9
        assert (w - int_pan.frames[t])[:, keep].abs().max() < 5e-5
    assert int_pan.frames_uint8()[0].shape == (*SIZE, 3) and int_pan.frames_uint8()[0].dtype == np.uint8
    for kind in synthetic.KINDS:  # every kind renders, with the promised shapes
        c = synthetic.make_clip(kind, frames=2, size=(32, 48))
        assert c.frames.shape == (2, 3, 32, 48) and c.flow.shape == (2, 2, 32, 48) and c.occluded.shape == (2, 32, 48)
        assert torch.equal((c.frames * 255).round(), c.frames * 255)  # on the 8-bit grid



def test_spinning_object_s_flow_follows_its_turn():
    """Inside the turning disc (3° a frame), the previous frame warped along the clip's true flow
    matches the frame far better than along the disc's slide alone (the turn left out): the flow
    carries the turn. (Not exact: the sprite is resampled at each angle.)"""
    clip = synthetic.spinning_object(frames=3, size=(96, 128), velocity=(1.5, 0.4), spin_deg=3.0)
    t = 2
    inside = ~clip.occluded[t] & (clip.flow[t] - clip.flow[t].reshape(2, -1).median(1).values[:, None, None]).norm(dim=0).gt(0.3)
    inside = (-torch.nn.functional.max_pool2d(-inside.float()[None, None], 7, 1, 3))[0, 0] > 0  # 3 px inside the rim
    assert inside.sum() > 500
    slide = clip.flow[t].clone()
    slide[0][inside], slide[1][inside] = -1.5, -0.4
    err_true = (warp(clip.frames[t - 1], clip.flow[t]) - clip.frames[t])[:, inside].abs().mean()
    err_slide = (warp(clip.frames[t - 1], slide) - clip.frames[t])[:, inside].abs().mean()
    assert err_true < 0.5 * err_slide, (err_true, err_slide)

def test_deforming_object_s_flow_follows_its_ripple():
    """Inside the rippling disc, the previous frame warped along the clip's true flow (the ripple
    inverted by its fixed-point iteration) matches the frame far better than along the disc's
    slide alone; and a ripple steep enough to fold the picture (amplitude·2π/λ ≥ 1, where the
    map stops being one-to-one and the iteration need not converge) is refused."""
    clip = synthetic.deforming_object(frames=3, size=(96, 128), velocity=(1.5, 0.4))
    t = 2
    slide_flow = torch.tensor([-1.5, -0.4])[:, None, None]
    moved = (clip.flow[t] - torch.tensor([0.5, 0.0])[:, None, None]).norm(dim=0) > 0.3
    inside = ~clip.occluded[t] & moved
    inside = (-torch.nn.functional.max_pool2d(-inside.float()[None, None], 7, 1, 3))[0, 0] > 0  # 3 px inside the rim
    assert inside.sum() > 500
    assert (clip.flow[t] - slide_flow)[:, inside].abs().amax() > 0.3  # the ripple moves it, not the slide alone
    slide = clip.flow[t].clone()
    slide[0][inside], slide[1][inside] = -1.5, -0.4
    err_true = (warp(clip.frames[t - 1], clip.flow[t]) - clip.frames[t])[:, inside].abs().mean()
    err_slide = (warp(clip.frames[t - 1], slide) - clip.frames[t])[:, inside].abs().mean()
    assert err_true < 0.5 * err_slide, (err_true, err_slide)
    with pytest.raises(ValueError, match="fold"):
        synthetic.deforming_object(frames=2, size=(32, 48), amplitude=4.0, wavelength=20.0)


def test_flow_on_known_pans(int_pan, sub_pan):
    # Integer pan: the frames are crops of the same pixels, so DIS's matching cost has an exact
    # zero at the true shift (and the "fine" preset works at full resolution): measured 0.000 px
    # at 256x160; allow 0.05 px for the variational smoothing near the borders.
    f = optical_flow(int_pan.frames[1], int_pan.frames[0])
    inner = _interior(~int_pan.occluded[1], 8)
    err = (f - int_pan.flow[1]).norm(dim=0)[inner]
    assert err.mean() < 0.05
    # Sub-pixel pan: each frame is a bicubic resample, not the same pixels, and DIS's patches
    # have no exact match; a quarter pixel is the accuracy at which a bilinear warp's error
    # on these photos is below the frames' own 8-bit noise (|grad| ~ 0.05/px x 0.25 px ~ 3/255)
    f = optical_flow(sub_pan.frames[1], sub_pan.frames[0])
    inner = _interior(~sub_pan.occluded[1], 8)
    err = (f - sub_pan.flow[1]).norm(dim=0)[inner]
    assert err.mean() < 0.25
    # the convention: warp(b, optical_flow(a, b)) ~ a; the reverse flow points the other way
    g = optical_flow(sub_pan.frames[0], sub_pan.frames[1])
    assert g[:, inner].mean(1).tolist() == pytest.approx([-1.37, -0.61], abs=0.1)
    # downscaled flow (long side 48) still gives the motion in full-size pixels
    small = FlowEstimator(max_side=48)(int_pan.frames[1], int_pan.frames[0])
    assert small.shape == f.shape
    assert small[:, inner].mean(1).tolist() == pytest.approx([2.0, 1.0], abs=0.25)


def test_smooth_preset_keeps_the_pans_and_fills_a_flat_area_from_its_edges(int_pan, sub_pan):
    """The "smooth" preset ("fine" with SMOOTH_REFINEMENT's stronger, longer variational
    refinement): as exact as "fine" on the pans (the same bounds as test_flow_on_known_pans), and
    inside a large flat area, where no patch can see the motion, it carries the textured border's
    motion further in: a frame whose middle 150×240 px are flat, moved by (2, 1) px, leaves a mean
    end-point error there of 0.19 px with "smooth" against 0.46 with "fine" (OpenCV 5.1.0); the
    test asks for at most 0.7 of "fine"'s, a margin for other OpenCV builds."""
    from cvtools.video.flow import SMOOTH_REFINEMENT

    est = FlowEstimator(max_side=None, preset="smooth")
    dis = est.dis
    assert (dis.getVariationalRefinementAlpha(), dis.getVariationalRefinementIterations()) == SMOOTH_REFINEMENT
    assert dis.getFinestScale() == 0
    for clip, bound in ((int_pan, 0.05), (sub_pan, 0.25)):
        f = est(clip.frames[1], clip.frames[0])
        inner = _interior(~clip.occluded[1], 8)
        assert (f - clip.flow[1]).norm(dim=0)[inner].mean() < bound
    g = torch.Generator().manual_seed(3)
    big = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 220, 320, generator=g), 3, 1, 1)  # strokes ~3 px wide
    big[..., 35:185, 40:280] = 0.5  # the flat area
    a, b = big[..., 10:210, 10:310], big[..., 9:209, 8:308]  # a(x) = b(x + (2, 1))
    truth = torch.tensor([2.0, 1.0]).view(2, 1, 1)

    def flat_error(preset):
        f = FlowEstimator(max_side=None, preset=preset)(a, b)
        return float((f[:, 30:170, 35:265] - truth).norm(dim=0).mean())  # inside the flat area, 5 px in

    assert flat_error("smooth") < 0.7 * flat_error("fine")


def test_warp_of_a_ramp_is_exact():
    # bilinear interpolation is exact on a linear function: warping x·a + y·b by a constant
    # sub-pixel flow adds flow·(a, b); fp32 rounding of values ~1 gives ~1e-7
    h, w = 20, 30
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    img = torch.stack([xs * 0.01, ys * 0.02, xs * 0.005 + ys * 0.01])
    flow = torch.stack([torch.full((h, w), 0.3), torch.full((h, w), -0.7)])
    out = warp(img, flow)
    expected = torch.stack([(xs + 0.3) * 0.01, (ys - 0.7) * 0.02, (xs + 0.3) * 0.005 + (ys - 0.7) * 0.01])
    inner = (slice(None), slice(1, -1), slice(1, -1))  # the border row/column reads the edge
    assert (out[inner] - expected[inner]).abs().max() < 1e-5
    assert out.shape == img.shape and warp(img[None], flow).shape == (1, 3, h, w)


def test_occlusion_mask_marks_the_uncovered_strip():
    clip = synthetic.moving_object(frames=3, size=SIZE, velocity=(4.0, 0.0), background_velocity=(0.0, 0.0))
    a, b = clip.frames[2], clip.frames[1]
    occ = occlusion_mask(optical_flow(a, b), optical_flow(b, a))
    truth = clip.occluded[2]
    assert truth.sum() > 100  # a strip 4 px wide behind the disc
    from torch.nn.functional import max_pool2d

    # most of the truly uncovered background is caught, all of it to within 1 px (DIS smooths
    # flow edges over about a patch, so the marked strip can sit a pixel off; the stabilizer
    # grows the mask by 2 px). Measured here: 78 % exact, 91 % within 1 px.
    assert (occ & truth).sum() >= 0.6 * truth.sum()
    near = max_pool2d(occ.float()[None, None], 3, 1, 1)[0, 0] > 0
    assert (near & truth).sum() >= 0.85 * truth.sum()
    # and the static background far from the disc is not marked
    disc_zone = max_pool2d((clip.flow[2].norm(dim=0) > 0).float()[None, None], 17, 1, 8)[0, 0] > 0
    far = _interior(~disc_zone, 4)
    assert occ[far].float().mean() < 0.02
    # the motion-boundary option only adds pixels
    assert (occlusion_mask(optical_flow(a, b), optical_flow(b, a), motion_boundaries=True) | ~occ).all()


def test_metric_zero_for_a_perfectly_warped_sequence_and_grows_with_noise(int_pan):
    frames = list(int_pan.frames)
    g = torch.Generator().manual_seed(0)
    # outputs that move exactly as the input's own (DIS) flow says: a texture carried along
    est = FlowEstimator()
    outs = [torch.rand(3, *SIZE, generator=g)]
    for t in range(1, len(frames)):
        outs.append(warp(outs[-1], est(frames[t], frames[t - 1])))
    assert warping_error(frames, outs) < 1e-10
    # with the true flow: outputs = inputs is exact; independent noise of std sigma in every
    # frame gives E[(n_t - n_{t-1})^2] = 2 sigma^2 (integer flow: the warp moves the noise
    # unchanged). N = 5 pairs x 3 x 64 x 96 ~ 92k terms: relative sampling error sqrt(2/N)
    # ~ 0.5 % (x1.2 for consecutive pairs sharing a frame); 4 % is > 5 sigma.
    sigma = 0.02
    noisy = [f + sigma * torch.randn(f.shape, generator=g) for f in frames]
    e = warping_error(frames, noisy, flows=int_pan.flow, occluded=int_pan.occluded)
    assert e == pytest.approx(2 * sigma ** 2, rel=0.04)
    assert warping_error(frames, frames, flows=int_pan.flow, occluded=int_pan.occluded) < 1e-12
    # and with DIS flow: more noise, more flicker
    vals = [warping_error(frames, [f + s * torch.randn(f.shape, generator=g) for f in frames]) for s in (0.0, 0.01, 0.03)]
    assert vals[0] < vals[1] < vals[2]
    # uint8 frames (what a reader gives) are measured in the same [0, 1] units
    meter = FlickerMeter()
    for f in int_pan.frames_uint8():
        meter.add(f, f)
    assert meter.value < 1e-4 and len(meter.errors) == len(frames) - 1


def test_flicker_meter_leaves_scene_cuts_out_when_asked(int_pan):
    frames = list(int_pan.frames)
    g = torch.Generator().manual_seed(3)
    noisy = [f + 0.05 * torch.randn(f.shape, generator=g) for f in frames]
    cut_at = 3  # the flow of pair 3 is marked occluded everywhere: a cut
    occluded = [None] + [torch.zeros_like(o, dtype=torch.bool) if o is not None else None for o in int_pan.occluded[1:]]
    occluded[cut_at] = torch.ones_like(occluded[cut_at])
    plain, skipping = FlickerMeter(), FlickerMeter(cut_fraction=0.5)
    for t, f in enumerate(noisy):
        for m in (plain, skipping):
            if t == 0:
                m.add(frames[t], f)
            else:
                m.add(frames[t], f, flow=int_pan.flow[t], occluded=occluded[t])
    # nothing left to compare on the cut: the plain meter's E_t there is NaN (no pixels) and
    # its mean skips it too; the cut-aware meter names the pair, and both means agree
    assert skipping.cuts == [cut_at] and plain.cuts == []
    assert skipping.errors[cut_at - 1] != skipping.errors[cut_at - 1]  # NaN
    assert skipping.value == pytest.approx(plain.value, rel=1e-12)
    # a cut that the flow half-follows (occlusions 60 %): counted by default, left out when asked
    half = torch.zeros_like(occluded[cut_at])
    half.view(-1)[: int(0.6 * half.numel())] = True
    a, b = FlickerMeter(), FlickerMeter(cut_fraction=0.5)
    for m in (a, b):
        m.add(frames[0], noisy[0])
        m.add(frames[1], noisy[1], flow=int_pan.flow[1], occluded=half)
        m.add(frames[2], noisy[2], flow=int_pan.flow[2], occluded=occluded[2])
    assert len([e for e in a.errors if e == e]) == 2 and b.cuts == [1] and b.value == pytest.approx(a.errors[1])


def _noise_style(frames, seed=0, sigma=0.05):
    """A toy style that flickers: each frame gets its own noise texture."""
    g = torch.Generator().manual_seed(seed)
    return [(f + sigma * torch.randn(f.shape, generator=g)).clamp(0, 1) for f in frames]


def test_stabilizer_blend_lowers_the_metric_on_a_pan(int_pan):
    frames = list(int_pan.frames)
    fbf = _noise_style(frames)
    s = 0.6
    st = stabilize(frames, fbf, strength=s)
    e0, e1 = warping_error(frames, fbf), warping_error(frames, st)
    # Where the flow holds, O_t - warp(O_t-1) = (1 - s)(x_t - warp(O_t-1)): with independent
    # noise of variance v per frame, the recursion's history has variance v (1-s)/(1+s), so the
    # error is (1-s)^2 (v + v (1-s)/(1+s)) = 2v (1-s)^2/(1+s) against 2v: a ratio of 0.10 at
    # s = 0.6. The occluded strip (~4 % of the frame here) and the feathered band around it
    # keep their frame-by-frame error; 0.3 leaves room for that and the clamping.
    assert e1 < 0.3 * e0
    assert stabilize(frames, fbf, strength=0.0)[3].equal(fbf[3])  # strength 0: unchanged
    # uint8 in, uint8 out, same shape
    u8 = [(f.permute(1, 2, 0) * 255).round().byte().numpy() for f in fbf]
    out = TemporalStabilizer(0.5, phase_lock=False)
    res = [out.step(a, b) for a, b in zip(int_pan.frames_uint8(), u8)]
    assert res[2].dtype == np.uint8 and res[2].shape == u8[2].shape
    with pytest.raises(ValueError):
        TemporalStabilizer(1.0)


def _grid_style(x):
    """A toy style with a network's flaw: a pattern fixed to the 4-px grid of its input."""
    h, w = x.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pattern = 0.1 * torch.sin(torch.pi / 2 * xs + 1.0) * torch.cos(torch.pi / 2 * ys + 0.5)
    return (x * 0.8 + 0.1 + pattern).clamp(0, 1)


def test_phase_lock_makes_a_grid_pattern_move_with_the_scene(int_pan):
    frames = list(int_pan.frames)
    fbf = [_grid_style(f) for f in frames]
    st = TemporalStabilizer(strength=0.0)  # the phase lock alone
    locked = []
    for f in frames:
        x = st.prepare(f)
        assert x.shape[-2:] == (SIZE[0] + 4, SIZE[1] + 4)
        locked.append(st.finish(_grid_style(x)))
    assert locked[1].shape == fbf[1].shape
    # the pan moves 2, 1 px per frame: the pattern no longer sits still while the scene moves
    # (the accumulated motion is an integer, so the lock is exact; only the padding's reflect
    # near the borders differs)
    e0 = warping_error(frames, fbf, flows=int_pan.flow, occluded=int_pan.occluded)
    e1 = warping_error(frames, locked, flows=int_pan.flow, occluded=int_pan.occluded)
    assert e1 < 1e-3 * e0
    with pytest.raises(RuntimeError):
        st.finish(fbf[0])  # nothing prepared
    # a reader's uint8 frames: prepared frames are uint8 and 4 px larger, results frame-sized
    st = TemporalStabilizer()
    frames8 = int_pan.frames_uint8()
    xs = [st.prepare(f) for f in frames8[:3]]  # a batch prepared ahead
    assert xs[1].dtype == np.uint8 and xs[1].shape == (SIZE[0] + 4, SIZE[1] + 4, 3)
    outs = [st.finish(x) for x in xs]  # the identity "effect": the frame comes back
    assert outs[2].shape == (*SIZE, 3) and outs[2].dtype == np.uint8
    assert np.abs(outs[2].astype(int) - frames8[2].astype(int)).max() <= 1


def test_dream_start_carries_the_dream_along_the_flow(int_pan):
    a, b = int_pan.frames[0], int_pan.frames[1]
    g = torch.Generator().manual_seed(1)
    dream = (a + 0.2 * torch.rand(a.shape, generator=g) - 0.1).clamp(0, 1)
    start = dream_start(a, b, dream, blend=1.0)
    assert start.shape == b.shape
    # blend 1: the next frame starts from the dream moved along with the scene (integer pan:
    # exact where DIS finds the exact shift, which is nearly everywhere at full resolution)
    expected = warp(dream, int_pan.flow[1])
    inner = _interior(~int_pan.occluded[1], 6)
    d = (start - expected)[:, inner].abs()
    assert (d < 1e-4).float().mean() > 0.9 and d.mean() < 2e-3
    assert torch.allclose(dream_start(a, b, dream, blend=0.0), b)


def test_missing_opencv_is_one_line(monkeypatch):
    import sys

    from cvtools.errors import CvtoolsError

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    with pytest.raises(CvtoolsError, match="opencv-python-headless"):
        FlowEstimator()


@pytest.mark.slow
def test_stylize_video_stable_uses_the_phase_lock_and_lowers_the_warping_error(tmp_path):
    """Through the whole pipeline (file → decode → bundled style network → encode → file): a
    sub-pixel pan written as H.264, stylized frame by frame, with the full stabilizer (phase lock
    in the decoder's thread, crop + blend in the writer's) and with the blend alone.

    Measured (64×96, 10 frames, CRF 18; grande_jatte, the bundled network trained without the
    stability term): warping error with the clip's true flow 4.1e-3 frame by frame, 1.06e-3
    stable (0.26), 1.74e-3 blend only (0.42), so stable / blend-only = 0.61. (great_wave gave
    4.8e-3, 1.4e-3, 2.2e-3 before it was retrained with the term.) The
    bounds: half of frame-by-frame (the issue's target for the stable mode), and 0.75 of the
    blend alone, which fails when the phase lock is not applied (``step`` alone gives exactly
    the blend-only clip: ratio 1). Then again with ``finish`` run in the compute stage."""
    pytest.importorskip("av")
    from cvtools.style import Stylizer
    from cvtools.video.io import read_frames, write_video
    from cvtools.video.process import stylize_video

    clip = synthetic.pan("coffee", frames=10, size=SIZE, velocity=(1.37, 0.61))
    src = write_video(tmp_path / "pan.mp4", clip.frames_uint8(), fps=12)
    # a network trained without the stability term (the stabilizer's own work is what is tested)
    net = Stylizer("grande_jatte", device="cpu")
    assert not net.record.recipe.get("temporal_weight")
    inputs = [f.rgb for f in read_frames(src)]

    def error(name, stable, **kwargs):
        dst = tmp_path / f"{name}.mp4"
        result = stylize_video(net, src, dst, stable=stable, **kwargs)
        outs = [f.rgb for f in read_frames(dst)]
        assert result.frames == len(outs) == len(clip) and outs[0].shape == (*SIZE, 3)
        return warping_error(inputs, outs, flows=clip.flow, occluded=clip.occluded)

    plain = error("plain", None)
    stable = error("stable", TemporalStabilizer())
    blend = error("blend", TemporalStabilizer(phase_lock=False))
    assert stable < 0.5 * plain, (stable, plain)
    assert stable < 0.75 * blend, (stable, blend)
    # finish on the network's device, in the compute stage (what CUDA runs; here the CPU's float
    # results before 8-bit rounding): the same stabilizer (great_wave: 1.44e-3 against 1.40e-3).
    on_device = error("on_device", TemporalStabilizer(), finish_on_device=True)
    assert on_device < 0.5 * plain and on_device < 0.75 * blend, (on_device, plain, blend)


def test_blend_for_is_the_same_for_every_network():
    """Issue 29: the phase lock alone left steady networks at 0.97-1.07 of frame-by-frame on
    zooms and moving objects; every network now gets the flow-guided blend."""
    from types import SimpleNamespace

    from cvtools.style.records import resolve_style
    from cvtools.video.stability import DEFAULT_BLEND, blend_for

    def styled(recipe):
        return SimpleNamespace(record=SimpleNamespace(recipe=recipe))

    for recipe in ({"temporal_weight": 50.0}, {"temporal_weight": 0}, {}, {"temporal_weight": "50"}):
        assert blend_for(styled(recipe)) == DEFAULT_BLEND
    assert blend_for(object()) == DEFAULT_BLEND  # not a trained style (a painting, a dream)
    for name in ("starry_night", "grande_jatte"):  # trained with the term and without
        assert blend_for(SimpleNamespace(record=resolve_style(name))) == DEFAULT_BLEND > 0


@pytest.mark.parametrize("kind", ["pan_subpixel", "zoom", "object", "parallax"])
def test_stable_is_at_most_0_6_of_frame_by_frame_on_every_motion(kind):
    """The issue's target, on a noise "style" (the flicker of a network that answers each frame
    anew), graded with the clip's TRUE flow (not the stabilizer's DIS).

    Where the flow holds, out_t − warp(out_t−1) = (1 − s·a)(x_t − warp(out_t−1)); with fresh noise
    of variance v per frame and the default blend s = 0.45 the recursion's history has variance
    v(1 − s)/(1 + s), so the error is (1 − s)²·2v/(1 + s) = 0.21 of the plain 2v (bilinear warps
    of the history only average its noise further, lowering it). The disagreement gate a =
    exp(−(d/0.2)²) at d ≈ E|N(0, 2·0.03²)| ≈ 0.034 (then averaged over 5×5, which only lowers
    d) is ≥ 0.97, so s·a ≥ 0.44: ≤ 0.22. Where the flow is not trusted or wrong, the plain error
    stays (or a little more: a wrong warp adds its own): the uncovered strip, the strip entering
    at the border, and the moving disc's whole edge, where DIS smooths the flow over a patch,
    each grown by the 2-px feather. On these 64×96 frames that is up to ~30 % of the frame for
    the moving disc (radius 19 px: 2·19·3.5 px uncovered, ~120 px of edge × 4-6 px, 3 columns
    of border), under 10 % for the pan and the zoom: ≤ 0.22 + 0.30 = 0.52 < 0.6, the issue's
    target. Measured: 0.34 / 0.33 / 0.48 / 0.45 (sub-pixel pan, zoom, object, parallax)."""
    from cvtools.video.stability import DEFAULT_BLEND, stabilized_effect

    assert DEFAULT_BLEND == 0.45
    clip = synthetic.make_clip(kind, frames=10, size=SIZE)
    frames = list(clip.frames)
    sigma = 0.03
    plain_effect = noise_effect(sigma, seed=1)
    plain = [plain_effect(f) for f in frames]
    stable = stabilized_effect(frames, noise_effect(sigma, seed=2))
    e0 = warping_error(frames, plain, flows=clip.flow, occluded=clip.occluded)
    e1 = warping_error(frames, stable, flows=clip.flow, occluded=clip.occluded)
    assert e0 == pytest.approx(2 * sigma ** 2, rel=0.35)  # the noise is what flickers (clamping trims it)
    assert e1 < 0.6 * e0, (kind, e1 / e0)


def test_disagreement_keeps_the_new_frame_where_the_network_changed_its_mind():
    """A still scene whose output turns from dark to light at frame 3 (a change the flow cannot
    explain: a new object, a light switched on): with the disagreement gate the stabilizer
    follows at once (d = 0.6 → weight 0.35·exp(−9) ≈ 0); without it, a 35 % ghost of the old
    output stays."""
    frame = synthetic.pan("coffee", frames=1, size=SIZE).frames[0]
    frames = [frame] * 5
    outs = [torch.full((1, 3, *SIZE), 0.2 if t < 3 else 0.8) for t in range(5)]
    gated = TemporalStabilizer(0.35, phase_lock=False)
    plain = TemporalStabilizer(0.35, phase_lock=False, disagreement=None)
    a = [gated.step(f, o) for f, o in zip(frames, outs)]
    b = [plain.step(f, o) for f, o in zip(frames, outs)]
    assert (a[3] - 0.8).abs().max() < 1e-3
    assert (b[3] - (0.8 - 0.35 * 0.6)).abs().max() < 1e-3
    # small differences (shimmer) are blended as before: weight 0.35 · exp(−(0.02/0.2)²) = 0.3465
    small = [torch.full((1, 3, *SIZE), 0.5 + (0.02 if t % 2 else 0.0)) for t in range(2)]
    st = TemporalStabilizer(0.35, phase_lock=False)
    r = [st.step(f, o) for f, o in zip(frames, small)]
    assert float(r[1].mean()) == pytest.approx(0.52 - 0.02 * 0.35 * np.exp(-0.01), abs=1e-4)
    with pytest.raises(ValueError):
        TemporalStabilizer(disagreement=0)


def test_farneback_flow_is_an_independent_grader(int_pan, sub_pan):
    """The metric's second flow (issue 29): on the pans it finds the motion to a fraction of a
    pixel (measured at 256×160: 0.24 / 0.14 px mean end-point error on the integer / sub-pixel
    pan), and a texture carried along its own flow scores 0."""
    from cvtools.video.flow import FarnebackEstimator

    est = FarnebackEstimator()
    for clip in (int_pan, sub_pan):
        f, occ = est.pair(clip.frames[1], clip.frames[0])
        inner = _interior(~clip.occluded[1] & ~occ, 8)
        assert inner.float().mean() > 0.5
        assert (f - clip.flow[1]).norm(dim=0)[inner].mean() < 0.5
    g = torch.Generator().manual_seed(0)
    outs = [torch.rand(3, *SIZE, generator=g)]
    frames = list(int_pan.frames)
    for t in range(1, len(frames)):
        outs.append(warp(outs[-1], est(frames[t], frames[t - 1])))
    assert warping_error(frames, outs, estimator=est) < 1e-10


def _has_contrib_flow() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "optflow")


@pytest.mark.skipif(not _has_contrib_flow(), reason="TV-L1 is in opencv-contrib-python-headless, not installed here")
def test_tvl1_flow_finds_the_pans(int_pan, sub_pan):
    """The third grading flow (issue 29): TV-L1 finds the synthetic pans' true motion to well
    under a pixel inside the frame, and trusts most of it."""
    from cvtools.video.flow import TVL1Estimator

    est = TVL1Estimator()
    for clip in (int_pan, sub_pan):
        f, occ = est.pair(clip.frames[1], clip.frames[0])
        inner = _interior(~clip.occluded[1] & ~occ, 8)
        assert inner.float().mean() > 0.5
        assert (f - clip.flow[1]).norm(dim=0)[inner].mean() < 0.5


def test_tvl1_without_contrib_is_a_one_line_error(monkeypatch):
    """Without OpenCV's contrib modules the TV-L1 grader says what to install, in one line."""
    import types

    import cvtools.video.flow as flow_module
    from cvtools.errors import CvtoolsError

    monkeypatch.setattr(flow_module, "_cv2", lambda: types.SimpleNamespace())
    with pytest.raises(CvtoolsError, match="opencv-contrib-python-headless") as err:
        flow_module.TVL1Estimator()
    assert "\n" not in str(err.value)


def test_phase_lock_alone_tracks_the_motion_with_one_flow(monkeypatch):
    """Without a blend the stabilizer computes only the forward flow (no backward flow, no
    occlusion test); the accumulated motion follows the pan exactly. The flows are the clip's
    true ones (the estimator's accuracy is test_flow_on_known_pans' business), given at half
    the frame's size as the estimator's working size would be, so the result is the same on
    every machine: the median of a constant field is that constant, halving and doubling are
    exact, and the seven float32 velocities add up exactly in the float64 accumulator (24-bit
    mantissas, sums below 16), so the motion must be 7 × velocity to the last bit."""
    from cvtools.video.flow import FlowEstimator

    clip = synthetic.pan("coffee", frames=8, size=SIZE, velocity=(1.37, 0.61))
    h, w = SIZE
    calls = {"forward": 0, "pair": 0}

    def working_flow(key):  # the k-th call measures frame k+1 against frame k
        calls[key] += 1
        return clip.flow[calls["forward"] + calls["pair"]][:, ::2, ::2] / 2

    def forward_small(self, cur, prev):
        return working_flow("forward"), (h, w)

    def pair_small(self, cur, prev, **occlusion):
        return working_flow("pair"), torch.zeros(h // 2, w // 2, dtype=torch.bool), (h, w)

    monkeypatch.setattr(FlowEstimator, "forward_small", forward_small)
    monkeypatch.setattr(FlowEstimator, "pair_small", pair_small)
    velocity = np.array([1.37, 0.61], dtype=np.float32).astype(np.float64)
    for strength, flow_kind in ((0.0, "forward"), (0.35, "pair")):
        calls.update(forward=0, pair=0)
        st = TemporalStabilizer(strength=strength)
        for f in clip.frames:
            st.finish(st.prepare(f))
        # the flow is +velocity per frame; _motion accumulates the camera's motion, its negative
        moved = -st._motion.numpy()
        assert (moved == velocity * (len(clip) - 1)).all(), (strength, moved)
        # one kind of flow per frame pair: the phase lock alone never runs the pair
        assert calls == {"forward": 0, "pair": 0, flow_kind: len(clip) - 1}, (strength, calls)
        assert st.last_phase == tuple(int(round(-m)) % st.stride for m in -moved)


@pytest.mark.parametrize("strength, carry", [(0.0, False), (0.35, False), (0.85, True)])
def test_flow_measured_ahead_in_threads_prepares_the_same_frames(strength, carry):
    """``_prepared`` with flow threads (``measure`` ahead of ``prepare``) gives exactly what the
    sequential path gives: the same padded frames, grid phases, flows and occlusions, for the
    phase lock alone (one flow), with the blend (the pair and the occlusion test) and with the
    carry (plus the moving layers, labelled in the threads), across a change of frame size (a
    new shot) in the middle."""
    from types import SimpleNamespace

    from cvtools.video.process import _Clock, _prepared

    clip = synthetic.pan("coffee", frames=7, size=SIZE, velocity=(1.37, 0.61))
    other = synthetic.pan("chelsea", frames=4, size=(48, 80), velocity=(2.5, -1.0))
    frames = clip.frames_uint8() + other.frames_uint8()

    def run(workers):
        st = TemporalStabilizer(strength=strength, carry=carry)
        out = [f.rgb for f in _prepared((SimpleNamespace(rgb=a) for a in frames), st, _Clock(), workers=workers)]
        phases = [p for _, p, _ in st._pending]
        flows = [(t.flow, t.occluded, t.layers) for t, _, _ in st._pending]
        return out, phases, flows, st._motion.clone()

    seq, threaded = run(1), run(3)
    assert len(seq[0]) == len(threaded[0]) == len(frames)
    for a, b in zip(seq[0], threaded[0]):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert seq[1] == threaded[1]
    assert len(set(seq[1])) > 1  # the pan moved the grid phase: the comparison has teeth
    for (fa, oa, la), (fb, ob, lb) in zip(seq[2], threaded[2]):
        assert (fa is None) == (fb is None)
        assert fa is None or strength > 0  # the phase lock alone keeps no flows
        if fa is not None:
            assert torch.equal(fa, fb) and torch.equal(oa, ob)
            assert (la is not None) == carry  # only the carry labels layers
        if la is not None:
            (da, ta), (db, tb) = la, lb
            assert torch.equal(ta, tb) and ta.shape[-2:] == fa.shape[-2:]
            assert (da is None) == (db is None) and (da is None or torch.equal(da, db))
    assert torch.equal(seq[3], threaded[3])
