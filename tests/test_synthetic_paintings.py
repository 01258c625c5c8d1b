"""The new kinds of painting the any-painting network may train on (cvtools.style.synthetic_paintings):
each renderer keeps the crop's shape, range and broad colours, draws the same picture from the same
random stream, and makes the texture it names."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvtools.style import synthetic_paintings as sp


def _crops(n=2, s=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return F.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)  # smooth: no texture of its own


def _high_pass_energy(x):
    return float((x - F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)).square().mean())


@pytest.mark.parametrize("kind", sp.KINDS)
def test_a_renderer_is_a_painting_of_the_crop(kind):
    crops = _crops()
    out = sp.synthesize(crops, [kind] * 2, np.random.default_rng(1))
    again = sp.synthesize(crops, [kind] * 2, np.random.default_rng(1))
    assert out.shape == crops.shape and out.dtype == crops.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(out, again, atol=0, rtol=0)  # the trainer's stream decides everything
    # a texture the smooth crop did not have...
    assert _high_pass_energy(out) > 3 * _high_pass_energy(crops)
    # ...over the crop's own broad colours (the mean over 16-px blocks; dots and prints move them most)
    blocks = (F.avg_pool2d(out, 16) - F.avg_pool2d(crops, 16)).abs().mean()
    assert float(blocks) < 0.2


def test_dots_are_dots_and_strokes_follow_a_direction():
    crops = _crops(1, 96, seed=2)
    rng = np.random.default_rng(5)
    dotted = sp.dots(crops, rng)[0]
    paper = sp._paper(crops, sp._device_generator(np.random.default_rng(0), crops.device))  # a light ground shows between the dabs
    assert float(dotted.mean(0).quantile(0.95)) > float(crops.mean(0).quantile(0.5))
    flat = sp.strokes(torch.full((1, 3, 96, 96), 0.5), np.random.default_rng(7))[0].mean(0)
    gy, gx = flat[1:, :-1] - flat[:-1, :-1], flat[:-1, 1:] - flat[:-1, :-1]
    # along strokes the texture is smoother than across them: the structure tensor is anisotropic
    jxx, jyy, jxy = float((gx * gx).mean()), float((gy * gy).mean()), float((gx * gy).mean())
    trace, det = jxx + jyy, jxx * jyy - jxy * jxy
    assert paper.shape == (1, 3, 1, 1)
    assert (trace * trace - 4 * det) ** 0.5 / trace > 0.1


def test_unknown_kinds_leave_crops_alone():
    crops = _crops()
    torch.testing.assert_close(sp.synthesize(crops, ["none", "none"], np.random.default_rng(0)), crops)
