"""The new kinds of painting the any-painting network may train on (cvtools.style.synthetic_paintings):
each renderer keeps the crop's shape, range and broad colours, draws the same picture from the same
random stream, and makes the texture it names."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvtools.style import synthetic_paintings as sp
from cvtools.style.losses import luminance


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


def test_divisionist_dabs_change_hue_not_tone():
    """Neighbouring dabs differ in colour far more than in lightness, and over a few dabs the mean
    stays near the (saturated) crop: optical mixing."""
    crops = _crops(2, 96, seed=3)
    out = sp.divisionism(crops, np.random.default_rng(11))
    luma = luminance(out)
    chroma = out - luma
    assert _high_pass_energy(chroma) > 2 * _high_pass_energy(luma)
    assert float((F.avg_pool2d(luminance(out), 12) - F.avg_pool2d(luminance(crops), 12)).abs().mean()) < 0.05


def test_hatching_inks_the_dark_and_spares_the_light():
    """On a left-to-right gradient from white to black the ink covers more of each column the darker
    the crop, and the lightest columns are almost bare paper."""
    ramp = torch.linspace(1, 0, 96).view(1, 1, 1, 96).expand(1, 3, 96, 96).contiguous()
    out = sp.hatching(ramp, np.random.default_rng(4))
    ink = (luminance(out)[0, 0] < 0.5 * float(luminance(out).max())).float().mean(0)  # per column
    thirds = [float(ink[i * 32:(i + 1) * 32].mean()) for i in range(3)]
    # the lightest sixth (darkness < 1/6) covers at most its darkness (a line takes that share of
    # its period; the tone curve only thins it), give or take the one-pixel edges
    assert float(ink[:16].mean()) < 0.12
    assert thirds[0] < thirds[1] < thirds[2]


def test_watercolour_is_lighter_and_darkens_at_wash_edges():
    """Transparent pigment: lighter than the crop on average; and on a crop of two flat halves the
    boundary is darker than both washes beside it (the drying edge)."""
    crops = _crops(2, 64, seed=5)
    out = sp.watercolour(crops, np.random.default_rng(2))
    assert float(luminance(out).mean()) > float(luminance(crops).mean())
    halves = torch.full((1, 3, 64, 64), 0.7)
    halves[..., 32:] = 0.3
    wet = sp.watercolour(halves, np.random.default_rng(6))[0].mean(0).mean(0)   # per column
    # the wash's blur (up to 5 px) spreads the boundary over ~20 columns; the drying edge darkens the
    # pigment there by at least 0.5 × 3/7 × (its blur's peak, ~0.3) ≈ 6 %, i.e. ≥ 0.015 of a level of
    # ~0.3 on the dark side
    assert float(wet[20:44].min()) < min(float(wet[4:16].mean()), float(wet[48:60].mean())) - 0.005


def test_impasto_is_strokes_lit_from_one_side():
    """The same flow and colours as its stroke texture, shaded by the relief: the shading
    correlates with the height field's slope along the light, and differs from flat strokes."""
    flat = torch.full((1, 3, 96, 96), 0.5)
    lit = sp.impasto(flat, np.random.default_rng(9))
    plain = sp.strokes(flat, np.random.default_rng(9))
    assert (lit - plain).abs().mean() > 0.01
    shade = lit.mean(1)[0]
    # light from one side: the shading's gradient has a dominant direction (a relief, not noise)
    gy, gx = shade[1:, :-1] - shade[:-1, :-1], shade[:-1, 1:] - shade[:-1, :-1]
    assert float(shade.std()) > 0.03 and float((gx.abs() + gy.abs()).mean()) > 0.01


def _anisotropy(picture):
    """(λ1 - λ2) / (λ1 + λ2) of the picture's mean structure tensor: 0 for texture without a
    direction, towards 1 when it runs one way."""
    gy, gx = picture[1:, :-1] - picture[:-1, :-1], picture[:-1, 1:] - picture[:-1, :-1]
    jxx, jyy, jxy = float((gx * gx).mean()), float((gy * gy).mean()), float((gx * gy).mean())
    trace, det = jxx + jyy, jxx * jyy - jxy * jxy
    return (trace * trace - 4 * det) ** 0.5 / trace


def test_mosaic_is_flat_tiles_in_grout():
    """Inside a tessera the colour is flat (a slight bevel), the joints are sharp: most pixels have
    almost no Laplacian, a few (the grout lines) a large one."""
    crops = _crops(2, 96, seed=4)
    out = sp.mosaic(crops, np.random.default_rng(8))
    lap = (4 * out[..., 1:-1, 1:-1] - out[..., :-2, 1:-1] - out[..., 2:, 1:-1] - out[..., 1:-1, :-2]
           - out[..., 1:-1, 2:]).abs().mean(1).flatten()
    assert float(lap.quantile(0.5)) < 0.25 * float(lap.quantile(0.95))


def test_pastel_marks_run_one_way_over_the_paper():
    """On a flat crop the marks follow the flow (anisotropic), and both the paper and the pigment
    show: neither covers everything."""
    flat = torch.full((1, 3, 96, 96), 0.8)
    out = sp.pastel(flat, np.random.default_rng(3))[0].mean(0)
    assert _anisotropy(out) > 0.1
    assert float(out.std()) > 0.03


def test_glaze_is_a_warm_varnish_over_deepened_tones_with_cracks():
    """On a flat grey crop: the varnish makes it warmer (red over blue) and the shadows' curve
    darker (a power > 1 of 0.5), and the craquelure draws thin dark lines (a dark low tail)."""
    grey = torch.full((2, 3, 96, 96), 0.5)
    out = sp.glaze(grey, np.random.default_rng(5))
    assert float((out[:, 0] - out[:, 2]).mean()) > 0.05
    assert float(luminance(out).mean()) < 0.5
    luma = luminance(out).flatten()
    assert float(luma.quantile(0.01)) < float(luma.median()) - 0.03


def test_contour_strokes_follow_the_crops_contours():
    """On a left-to-right ramp the iso-lines are vertical, so the bands and their streaks run up
    and down: the picture changes across x far more than along y."""
    ramp = torch.linspace(0.1, 0.9, 96).view(1, 1, 1, 96).expand(1, 3, 96, 96).contiguous()
    out = sp.contour_strokes(ramp, np.random.default_rng(2))[0].mean(0)
    gy, gx = out[1:, :] - out[:-1, :], out[:, 1:] - out[:, :-1]
    assert float((gx * gx).mean()) > 3 * float((gy * gy).mean())
