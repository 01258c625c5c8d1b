"""tools/video_flicker.py on real footage (``--footage``, issue 29): a clip made in code is read
as the command reads videos, and the warping error says what follows from its definition. CPU,
tiny frames."""
import sys
from pathlib import Path

import av  # a dependency: a missing PyAV fails here, it does not skip
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import video_flicker  # noqa: E402

W, H, N = 128, 96, 10


def _panning_clip(path: Path) -> Path:
    """N frames of a smooth random texture panning 2 px a frame (an integer motion that
    Farnebäck follows), H.264 at CRF 12."""
    rng = np.random.default_rng(0)
    big = rng.random((H // 8 + 4, (W + 2 * N) // 8 + 4, 3))
    big = torch.nn.functional.interpolate(torch.from_numpy(big).permute(2, 0, 1)[None], scale_factor=8,
                                          mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=12, options={"crf": "12"})
    v.width, v.height, v.pix_fmt = W, H, "yuv420p"
    for k in range(N):
        img = (np.clip(big[:H, 2 * k:2 * k + W], 0, 1) * 255).astype(np.uint8)
        for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    c.close()
    return path


class _Effect:
    """A stand-in style network: the frame itself, or the frame plus fresh noise every call."""

    def __init__(self, noise=0.0):
        self.name, self.noise = "noise" if noise else "identity", noise
        self.gen = torch.Generator().manual_seed(1)

    def __call__(self, x, strength=1.0, tile=None):
        x = x[0] if x.dim() == 4 else x
        if self.noise:
            x = (x + self.noise * torch.randn(x.shape, generator=self.gen)).clamp(0, 1)
        return x


@pytest.fixture(scope="module")
def pan(tmp_path_factory):
    """The panning clip read as --footage reads it, its input flows, and compare_footage's result
    for each stand-in effect, computed once: the tests below asked for the same deterministic
    comparisons of the same frames (each effect's noise comes from its own seeded generator),
    which with the flows were most of this module's time."""
    frames = video_flicker.footage_frames(_panning_clip(tmp_path_factory.mktemp("pan") / "pan.mp4"))
    flows = video_flicker.input_flows(frames)
    made = {}

    def compared(effect):
        key = (type(effect).__name__, effect.name, effect.noise)
        if key not in made:
            made[key] = video_flicker.compare_footage("pan", frames, effect, flows=flows, carry=True, stable=0.85)
        row, fbf, st = made[key]
        return dict(row), list(fbf), st

    return frames, compared


def test_footage_frames_reads_the_clip_at_the_asked_size(tmp_path):
    frames = video_flicker.footage_frames(_panning_clip(tmp_path / "pan.mp4"), size=64, max_frames=8)
    assert len(frames) == 8
    assert all(f.shape == (1, 3, 48, 64) and f.dtype == torch.float32 for f in frames)
    assert 0.0 <= float(min(f.min() for f in frames)) and float(max(f.max() for f in frames)) <= 1.0


@pytest.mark.slow
def test_compare_footage_identity_is_the_input_and_stable_steadies_noise(pan):
    frames, compared = pan
    row, fbf, _ = compared(_Effect())
    # frame by frame with an effect that changes nothing is the input: the same error, to the bit
    assert row["fbf"] == row["input"] and len(fbf) == len(frames)
    noisy, _, _ = compared(_Effect(noise=0.05))
    # fresh noise every frame: frame by frame adds about 2·0.05² of squared difference over the
    # input's; the stable mode carries what it painted along the motion, so much less of it
    assert noisy["fbf"] > row["input"] + 0.002
    assert noisy["ratio"] < 0.8, noisy


class _Soft(_Effect):
    """A stand-in soft style: the frame blurred (less fine detail than its input, like mona)."""

    def __init__(self):
        super().__init__()
        self.name = "soft"

    def __call__(self, x, strength=1.0, tile=None):
        x = x[0] if x.dim() == 4 else x
        from cvtools.ops import gaussian_blur

        return gaussian_blur(x[None], 1.5)[0]


def test_steady_reference_of_an_unchanged_clip_is_the_clip(pan):
    frames, _ = pan
    ref, sigma = video_flicker.steady_reference(frames, frames)
    # the curve maps each of the 257 input quantiles to itself (the same pixels on both sides); the
    # strictly rising ramp added to the input side (≤ 2.6e-5) is all that moves a value
    assert sigma == 0.0
    assert max(float((a - b).abs().max()) for a, b in zip(ref, frames)) < 1e-4


def test_steady_floor_is_low_for_flicker_and_matches_a_soft_styles_detail(pan):
    _, compared = pan
    same, _, _ = compared(_Effect())
    # an effect that changes nothing: the reference is the input, so its error is frame by frame's
    assert abs(same["floor"] - 1.0) < 1e-3
    noisy, _, _ = compared(_Effect(noise=0.05))
    # fresh noise every frame costs frame by frame ~2·0.05² of squared difference; the steady
    # reference carries none of it (only the input's own error, ≪ 0.005, through a curve of slope ~1)
    assert noisy["floor_blur"] == 0.0 and noisy["floor"] < 0.5, noisy
    soft, _, _ = compared(_Soft())
    # a blurred output: the reference's input is blurred too, to the σ nearest the output's detail
    assert 1.0 <= soft["floor_blur"] <= 2.0, soft
