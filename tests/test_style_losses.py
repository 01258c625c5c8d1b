"""The style objective's options (softmax/SWAG Grams, channel statistics, tone, several networks,
several painting sizes) and the streak detector of tools/style_quality.py. CPU, tiny images."""

import math
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cvtools.style.losses import (
    LossWeights,
    PerceptualLoss,
    build_perceptual_loss,
    check_objective,
    chroma_total_variation,
    gram_distances,
    gram_matrix,
    lattice_energy,
    passage_index,
    skin_mask,
    spectral_spikes,
    stats_distances,
    style_passage_targets,
    style_target,
    swag,
    teacher_distance,
    tone_distance,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import style_quality  # noqa: E402

LAYERS = ["blocks.0", "blocks.2"]


def smooth_image(seed, size=64):
    """A random image with some structure (blurred noise), 1×3×S×S in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def test_swag_is_a_distribution_over_channels_times_c():
    f = torch.randn(2, 7, 5, 6) * 20  # large activations: the softmax must stay finite
    s = swag(f, 3.0)
    assert torch.isfinite(s).all() and (s >= 0).all()
    # each position's values sum to C: the softmax sums to 1 (fp32 rounding over 7 terms)
    assert torch.allclose(s.sum(1), torch.full((2, 5, 6), 7.0), rtol=1e-5)
    # so every position adds exactly C² to the Gram sum (normalised by H·W: C² per image),
    # however peaky the activations
    peaky = f.clone()
    peaky[0, 0, 0, 0] = 1e4
    assert torch.allclose(gram_matrix(swag(peaky, 3.0)).sum(dim=(1, 2)), torch.full((2,), 49.0), rtol=1e-5)


@pytest.mark.parametrize("transform", ["gram", "swag"])
def test_the_painting_is_at_distance_zero_from_itself(lite0, transform):
    img = smooth_image(0)
    t = style_target(lite0, img, LAYERS, transform)
    feats = lite0.features(img, LAYERS)
    for k, d in gram_distances(feats, t).items():
        assert float(d) < 1e-6, k  # the same fp32 arithmetic twice: equal up to rounding
    for k, d in stats_distances(feats, t).items():
        assert float(d) < 1e-6, k
    other = smooth_image(1)
    d_other = gram_distances(lite0.features(other, LAYERS), t)
    assert all(float(v) > 1e-3 for v in d_other.values())


def test_plain_target_matches_the_original_formula(lite0):
    img, x = smooth_image(2), smooth_image(3)
    t = style_target(lite0, img, LAYERS)
    fi, fx = lite0.features(img, LAYERS), lite0.features(x, LAYERS)
    for k in LAYERS:
        g, gs = gram_matrix(fx[k]), gram_matrix(fi[k])
        expected = (g - gs).pow(2).sum() / gs.pow(2).sum()
        assert torch.allclose(gram_distances(fx, t)[k], expected.view(1), rtol=1e-5)


def test_tone_distance_sees_inverted_light_not_texture():
    photo = smooth_image(4)
    assert float(tone_distance(photo, photo)) == 0.0
    # fine texture that averages out in 8×8 blocks (a ±0.1 checkerboard) costs nothing
    checker = ((torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2 * 0.2 - 0.1).expand(1, 3, 64, 64)
    assert float(tone_distance(photo + checker, photo)) < 1e-10
    assert float(tone_distance(1 - photo, photo)) > 0.01


def test_log_tone_term_charges_a_crushed_dark_subject_more_than_a_dimmed_light_one():
    """The plain term charges a block's absolute change; on logs it charges the ratio: a grey
    subject 0.4 -> 0.1 (a silhouette) against light snow 0.8 -> 0.5 (a darker painting)."""
    from cvtools.style.losses import TONE_LOG_FLOOR

    grey = torch.full((1, 3, 16, 16), 0.4)
    snow = torch.full((1, 3, 16, 16), 0.8)
    plain_subject, plain_snow = tone_distance(grey - 0.3, grey), tone_distance(snow - 0.3, snow)
    assert torch.allclose(plain_subject, plain_snow, rtol=1e-5)  # 0.09 each: the plain term cannot tell
    log_subject, log_snow = tone_distance(grey - 0.3, grey, log=True), tone_distance(snow - 0.3, snow, log=True)
    f = TONE_LOG_FLOOR  # flat blocks: the expected values are the logs of the ratios, squared
    assert torch.allclose(log_subject, torch.tensor([math.log((0.4 + f) / (0.1 + f)) ** 2]), rtol=1e-5)
    assert torch.allclose(log_snow, torch.tensor([math.log((0.8 + f) / (0.5 + f)) ** 2]), rtol=1e-5)
    assert float(log_subject / log_snow) > 5
    # the same picture costs nothing; black output (below the floor's reach) stays finite
    assert float(tone_distance(grey, grey, log=True)) == 0.0
    assert math.isfinite(float(tone_distance(torch.zeros_like(grey) - 0.01, grey, log=True)))
    assert check_objective({"tone_log": True})["tone_log"] is True
    with pytest.raises(ValueError, match="tone_log"):
        check_objective({"tone_log": 1})


def test_relative_log_tone_term_frees_the_exposure_and_holds_the_ratios():
    """The light-ratio term (log and relative; objective tone_ratio_weight): a picture darkened as a
    whole (every block's light times one factor, so every log moves by one constant) costs nothing;
    a subject crushed against its snow costs the squared, mean-centred change of its log ratio."""
    from cvtools.style.losses import TONE_LOG_FLOOR

    f = TONE_LOG_FLOOR
    photo = torch.cat([torch.full((1, 3, 16, 16), 0.4), torch.full((1, 3, 16, 16), 0.8)], dim=3)  # bear | snow
    # halve (Y + floor) everywhere: the logs all fall by log 2, which the centring removes
    darker = (photo + f) / 2 - f
    assert float(tone_distance(darker, photo, log=True)) == pytest.approx(math.log(2) ** 2, rel=1e-5)
    assert float(tone_distance(darker, photo, log=True, relative=True)) < 1e-10
    # the plain term with the mean taken out frees a uniform shift, not a scale
    assert float(tone_distance(photo - 0.3, photo, relative=True)) < 1e-10
    # bear 0.4 -> 0.1, snow 0.8 -> 0.5: the log ratio changes by r; centred, each half is off by r/2
    crushed = torch.cat([photo[..., :16] - 0.3, photo[..., 16:] - 0.3], dim=3)
    r = math.log((0.4 + f) / (0.1 + f)) - math.log((0.8 + f) / (0.5 + f))
    assert float(tone_distance(crushed, photo, log=True, relative=True)) == pytest.approx((r / 2) ** 2, rel=1e-4)
    assert check_objective({"tone_ratio_weight": 7})["tone_ratio_weight"] == 7
    with pytest.raises(ValueError, match="tone_ratio_weight"):
        check_objective({"tone_ratio_weight": -1})


def test_chroma_total_variation_charges_colour_steps_not_grey_strokes():
    """chroma_total_variation (objective chroma_tv_weight): a grey picture of any luminance pattern
    costs 0 (Cb = Cr = 0 exactly for r = g = b: the BT.601 rows sum to 0, so fp32 leaves ~1e-8); a
    vertical step between grey and pure green costs the green's |Cb| + |Cr| over the number of
    column pairs (one step in W − 1 neighbours), rows nothing; per image, so a batch is two numbers."""
    from cvtools.style.losses import chroma_total_variation

    grey = torch.rand(1, 1, 16, 16).repeat(1, 3, 1, 1)
    assert float(chroma_total_variation(grey).abs().max()) < 1e-6
    step = torch.full((1, 3, 8, 9), 0.5)
    step[:, :, :, 5:] = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    cb, cr = -0.331264 * 1.0 - (-0.168736 * 0.5 - 0.331264 * 0.5 + 0.5 * 0.5), -0.418688 * 1.0 - (0.5 * 0.5 - 0.418688 * 0.5 - 0.081312 * 0.5)
    expected = (abs(cb) + abs(cr)) / 2 / 8  # mean over the 2 planes of one step in 8 column pairs
    got = chroma_total_variation(torch.cat([step, grey[..., :8, :9]]))
    assert got.shape == (2,)
    assert float(got[0]) == pytest.approx(expected, rel=1e-5)
    assert check_objective({"chroma_tv_weight": 10})["chroma_tv_weight"] == 10
    with pytest.raises(ValueError, match="chroma_tv_weight"):
        check_objective({"chroma_tv_weight": -1})


def flat(rgb, size=16):
    return torch.tensor(rgb, dtype=torch.float32).div(255).view(1, 3, 1, 1).expand(1, 3, size, size).clone()


@pytest.mark.parametrize("rgb, skin", [
    ((87, 60, 45), True), ((141, 85, 36), True), ((198, 134, 66), True), ((232, 190, 172), True),  # dark to light
    ((110, 160, 220), False), ((60, 140, 60), False), ((128, 128, 128), False), ((20, 20, 20), False)])
def test_skin_mask_follows_chrominance_across_skin_tones(rgb, skin):
    assert float(skin_mask(flat(rgb)).mean()) == (1.0 if skin else 0.0)


def test_masked_tone_term_weighs_skin_blocks_more():
    photo = torch.cat([flat((110, 160, 220)), flat((87, 60, 45))], dim=3)  # sky | dark skin, 16×32
    # no skin anywhere: every block has the floor weight, so the masked term is the plain one
    sky = flat((110, 160, 220))
    assert torch.allclose(tone_distance(sky * 0.5, sky, mask="skin"), tone_distance(sky * 0.5, sky), rtol=1e-6)
    paler_face, paler_sky = photo.clone(), photo.clone()
    paler_face[..., 16:] += 0.2
    paler_sky[..., :16] += 0.2
    plain_face, plain_sky = tone_distance(paler_face, photo), tone_distance(paler_sky, photo)
    assert torch.allclose(plain_face, plain_sky, rtol=1e-5)  # the plain term cannot tell them apart
    face, sky_only = tone_distance(paler_face, photo, mask="skin"), tone_distance(paler_sky, photo, mask="skin")
    # block weights 1 (skin) and 0.2 (floor): the error on the face weighs 1/1.2, on the sky 0.2/1.2
    assert torch.allclose(face / sky_only, torch.tensor(5.0), rtol=1e-4)
    with pytest.raises(ValueError, match="tone_mask"):
        check_objective({"tone_mask": "faces"})


def test_skin_colour_tone_term_keeps_the_hue_of_skin_only():
    """The chrominance part weighs each block by its skin share: a grey face costs, a grey sky
    does not; lightness counts as in the "skin" term. The blocks are flat, so the block means
    are the colours and the expected values follow from JPEG's YCbCr matrix directly."""
    skin_rgb, sky_rgb = (87, 60, 45), (110, 160, 220)
    photo = torch.cat([flat(sky_rgb), flat(skin_rgb)], dim=3)  # sky | dark skin, 16×32
    y = lambda c: (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255  # noqa: E731
    grey_face, grey_sky = photo.clone(), photo.clone()
    grey_face[..., 16:] = y(skin_rgb)  # the same light, no hue
    grey_sky[..., :16] = y(sky_rgb)
    assert float(tone_distance(grey_face, photo, mask="skin")) < 1e-10  # light alone: unchanged
    assert float(tone_distance(grey_sky, photo, mask="skin_colour")) < 1e-10  # the sky's colour is free
    cb = (-0.168736 * skin_rgb[0] - 0.331264 * skin_rgb[1] + 0.5 * skin_rgb[2]) / 255
    cr = (0.5 * skin_rgb[0] - 0.418688 * skin_rgb[1] - 0.081312 * skin_rgb[2]) / 255
    # 2 skin blocks (weight 1, chroma weight 1) and 2 sky blocks (weight 0.2) per image: 8 px blocks
    expected = 2 * (cb ** 2 + cr ** 2) / (2 * 1 + 2 * 0.2)
    assert float(tone_distance(grey_face, photo, mask="skin_colour")) == pytest.approx(expected, rel=1e-4)
    check_objective({"tone_mask": "skin_colour"})


def test_position_weights_in_a_gram_matrix():
    """Weights of one everywhere are the plain Gram; weights 0 on half the map leave the Gram of
    the other half alone (normalised by its own count), computed here position by position."""
    torch.manual_seed(3)
    f = torch.randn(2, 5, 6, 8)
    assert torch.allclose(gram_matrix(f, torch.ones(2, 1, 6, 8)), gram_matrix(f), rtol=1e-5, atol=1e-6)
    w = torch.zeros(2, 1, 6, 8)
    w[..., :4] = 1
    left = f[..., :4].reshape(2, 5, -1)
    expected = torch.einsum("ncp,ndp->ncd", left, left) / left.shape[-1]
    assert torch.allclose(gram_matrix(f, w), expected, rtol=1e-5, atol=1e-6)


def test_style_on_skin_leaves_the_skin_out_of_the_style_distance():
    """With skin counting 0, what the result does on the photo's skin does not move the style
    distance; with 1 (the default) it does. The skin half of the photo is 8 px wide and the
    layers' maps are 1/2 and 1/4 of the image, so the area-resized weights are exactly 0 and 1."""
    from cvtools.style.losses import StyleTarget

    photo = torch.cat([flat((110, 160, 220)), flat((87, 60, 45))], dim=3)  # sky | dark skin, 16×32
    positions = 1 - skin_mask(photo)  # style_on_skin 0
    torch.manual_seed(4)
    feats = {"a": torch.randn(1, 4, 8, 16), "b": torch.randn(1, 6, 4, 8)}
    target = StyleTarget(grams={k: gram_matrix(torch.randn(1, v.shape[1], 5, 5)) for k, v in feats.items()})
    changed = {k: v.clone() for k, v in feats.items()}
    for k, v in changed.items():
        v[..., v.shape[-1] // 2:] += 3.0  # the skin half of every map
    masked = [gram_distances(x, target, positions) for x in (feats, changed)]
    plain = [gram_distances(x, target) for x in (feats, changed)]
    for k in feats:
        assert torch.allclose(masked[0][k], masked[1][k], rtol=1e-5)
        assert not torch.allclose(plain[0][k], plain[1][k], rtol=1e-2)
    assert check_objective({"style_on_skin": 0.3})["style_on_skin"] == 0.3
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="style_on_skin"):
            check_objective({"style_on_skin": bad})


def test_teacher_term_is_zero_at_the_teacher_and_weighs_skin_as_asked():
    """Mean |output − teacher(photo)|, each place weighted 1 − (1 − on_skin) × skin share. The
    photo is half sky, half skin of flat colours (skin share exactly 0 and 1), and the output
    misses the teacher by 0.1 on the skin half only: the weighted means are exact fractions."""
    photo = torch.cat([flat((110, 160, 220)), flat((87, 60, 45))], dim=3).repeat(2, 1, 1, 1)
    teacher = lambda x: 1 - x  # noqa: E731
    exact = teacher(photo)
    assert float(teacher_distance(exact, photo, teacher)) == 0.0
    off = exact.clone()
    off[..., 16:] += 0.1
    assert float(teacher_distance(off, photo, teacher)) == pytest.approx(0.05, rel=1e-5)
    assert float(teacher_distance(off, photo, teacher, on_skin=0.3)) == pytest.approx(0.03 / 1.3, rel=1e-5)
    assert float(teacher_distance(off, photo, teacher, on_skin=0.0)) == 0.0
    # no gradient flows into the teacher's picture, only into the output
    out = off.clone().requires_grad_(True)
    teacher_distance(out, photo, teacher).backward()
    assert float(out.grad.abs().sum()) > 0
    for bad in ({"teacher_weight": -1}, {"teacher_on_skin": 2}, {"teacher_on_skin": "x"}):
        with pytest.raises(ValueError, match="teacher"):
            check_objective(bad)


def test_teacher_term_reaches_the_loss(lite0):
    photos = smooth_image(5).repeat(2, 1, 1, 1)
    stylized = smooth_image(6).repeat(2, 1, 1, 1)
    t = style_target(lite0, smooth_image(7), LAYERS)
    teacher = lambda x: x.flip(-1)  # noqa: E731
    plain_total, _ = PerceptualLoss(lite0, t, LAYERS, "blocks.2", LossWeights())(stylized, photos)
    w = LossWeights(teacher=4.0)
    total, parts = PerceptualLoss(lite0, t, LAYERS, "blocks.2", w, teacher=teacher)(stylized, photos)
    expected = (stylized - teacher(photos)).abs().mean()
    assert float(parts["teacher"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(total) == pytest.approx(float(plain_total + 4.0 * expected), rel=1e-5)
    with pytest.raises(ValueError, match="teacher"):
        PerceptualLoss(lite0, t, LAYERS, "blocks.2", LossWeights(teacher=1.0))


def test_painting_teacher_paints_as_the_stylizer_does():
    """The teacher batches photos through the training form of the shipped any-painting network;
    the stylizer runs them one at a time through the inference form (sub-pixel convolutions, the
    batch-norm kernel). Same function: fp32 sums in another order, a few 1e-6 after the sigmoid."""
    from cvtools.style.arbitrary import ArbitraryStylizer, PaintingTeacher, bundled_weights

    painting = smooth_image(3, 96)[0]
    photos = torch.cat([smooth_image(11, 64), smooth_image(12, 64)])[..., :48]
    teacher = PaintingTeacher(painting, device="cpu")
    assert teacher.sha256 == bundled_weights()[1]
    stylizer = ArbitraryStylizer(device="cpu")
    expected = stylizer.stylize(photos, stylizer.encode(painting))
    got = teacher(photos)
    assert got.shape == photos.shape and not got.requires_grad
    assert float((got - expected).abs().max()) < 1e-4


def test_passages_are_the_painting_crops_sorted_by_light(lite0):
    """A painting dark on the left, light on the right: passages are crops of it, one target
    each (a passage's Gram is the Gram of that crop through the same network, the painting's SWAG
    temperatures kept), sorted by mean luminance from the dark side to the light one."""
    painting = torch.cat([torch.full((3, 48, 48), 0.1), torch.full((3, 48, 48), 0.9)], dim=2)
    painting = painting + 0.05 * smooth_image(2, 96)[0, :, :48]
    t = style_passage_targets(lite0, painting, LAYERS, "swag", count=12, size=0.5)
    light = t.passage_light
    assert light.shape == (12,) and bool((light[1:] >= light[:-1]).all())
    assert float(light[0]) < 0.3 and float(light[-1]) > 0.7  # crops from either side were drawn
    whole = style_target(lite0, painting, LAYERS, "swag")
    assert t.temperatures == whole.temperatures
    for k in LAYERS:
        c = whole.grams[k].shape[-1]
        assert t.grams[k].shape == (12, c, c) and t.means[k].shape == (12, c) and t.norms[k].shape == (12,)
    # the brightest passage is a crop of the right (light) half: its Gram is that crop's
    light_crop = style_target(lite0, painting[:, :, 48 + 12:48 + 36], LAYERS, "swag")  # a 24-px crop inside
    for k in LAYERS:
        g = t.grams[k]
        assert float((g[-1] - light_crop.grams[k][0]).norm()) < float((g[0] - light_crop.grams[k][0]).norm())


def test_photos_take_the_passage_at_their_light():
    """Ranked by mean light, photo r of n takes a passage inside its quantile step [r·K/n, (r+1)·K/n)."""
    levels = [0.8, 0.2, 0.5, 0.35]
    photos = torch.stack([torch.full((3, 8, 8), v) for v in levels])
    index = passage_index(photos, 64)
    for i, v in enumerate(levels):
        r = sorted(levels).index(v)
        assert 16 * r <= int(index[i]) < 16 * (r + 1)
    assert torch.equal(index, passage_index(photos, 64))  # the same batch, the same passages
    assert int(passage_index(photos[:1], 5)[0]) in range(5)


def test_passage_targets_reach_the_loss(lite0):
    """Each photo's style term is its own passage's: the loss equals the mean of the distances to
    the passages passage_index picked, computed by hand."""
    painting = torch.cat([torch.full((3, 48, 48), 0.15), torch.full((3, 48, 48), 0.85)], dim=2)
    painting = (painting + 0.1 * smooth_image(4, 96)[0, :, :48]).clamp(0, 1)
    t = style_passage_targets(lite0, painting, LAYERS, "gram", count=8, size=0.5)
    photos = torch.cat([smooth_image(5) * 0.3, smooth_image(6) * 0.3 + 0.7])
    stylized = torch.cat([smooth_image(7), smooth_image(8)])
    _, parts = PerceptualLoss(lite0, t, LAYERS, "blocks.2", LossWeights(stats=0.5))(stylized, photos)
    index = passage_index(photos, 8)
    feats = lite0.features(stylized, LAYERS)
    expected = 0.0
    for k in LAYERS:
        g = gram_matrix(feats[k])
        d = (g - t.grams[k][index]).pow(2).sum(dim=(1, 2)) / t.norms[k][index]
        expected += 0.5 * float(d.mean())
    assert float(parts["style"]) == pytest.approx(expected, rel=1e-5)
    assert int(index[0]) < int(index[1])
    # a recipe's objective builds them, through every network of the loss
    image = Image.fromarray((painting.permute(1, 2, 0) * 255).round().byte().numpy())
    built = build_perceptual_loss(lite0, image, 96, LAYERS, "blocks.2", LossWeights(),
                                  {"style_passages": {"count": 8, "size": 0.5},
                                   "extra_backbones": {"efficientnet_lite0": ["blocks.1"]}},
                                  load_backbone=lambda name: lite0)
    assert [len(term.targets[0].passage_light) for term in built.terms] == [8, 8]
    for bad in ({"count": 1}, {"count": 8, "size": 2}, {"count": "8"}, {"count": 8, "where": 1}, 8):
        with pytest.raises(ValueError, match="style_passages"):
            check_objective({"style_passages": bad})


def test_lattice_energy_sees_a_grid_locked_pattern_not_strokes():
    photo = smooth_image(7)
    assert float(lattice_energy(photo, photo)) == 0.0
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = (((yy + xx) % 2) * 2 - 1).float() * 0.02  # a 2-px checkerboard: period 2 divides 4
    dots = ((yy % 4 == 0) & (xx % 4 == 0)).float() * 0.1  # a 4-px dot lattice
    for pattern in (checker, dots):
        out = photo + pattern
        # the photo is smooth (little power at these bins), so the share is the pattern's power
        # over the output's: Parseval, computed in pixel space, independent of the FFT in the loss
        share = float(lattice_energy(out, photo))
        luma = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]  # noqa: E731
        centred = lambda t: t - t.mean()  # noqa: E731
        pattern_power = float(centred(luma(out) - luma(photo)).pow(2).sum())
        expected = pattern_power / float(centred(luma(out)).pow(2).sum())
        assert share == pytest.approx(expected, rel=0.1) and share > 0.01
    # random strokes (white noise) spread their power: 15 of 4,095 bins, ~0.4 %
    noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.05
    assert float(lattice_energy(photo + noise, photo)) < 0.02
    with pytest.raises(ValueError, match="lattice_weight"):
        check_objective({"lattice_weight": -1})


def oriented_lattice(size, period=2.6, angle=0.35, amplitude=0.02):
    """A faint oriented sinusoid weave (two crossed waves): the off-grid lattice of issue 29."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    waves = [torch.cos(2 * torch.pi / period * (xx * torch.cos(torch.tensor(a)) + yy * torch.sin(torch.tensor(a))))
             for a in (angle, angle + torch.pi / 2)]
    return amplitude * (waves[0] + waves[1])


def test_spectral_spikes_see_an_off_grid_lattice_not_grain():
    photo = smooth_image(7, size=96)
    # excess over the photo's own ratio (or the floor, whichever is higher): never below zero,
    # and exactly zero for the photo itself
    assert float(spectral_spikes(photo, photo)) == 0.0
    weave = photo + oriented_lattice(96)
    # grain of the same energy: a periodogram bin over its neighbourhood's mean is ~Exp(1), so
    # P(ratio > SPIKE_FLOOR = 10) = e^-10 per bin: ~0.4 of the 9,216 bins, each by a little
    energy = float(oriented_lattice(96).pow(2).mean())
    grain = photo + torch.randn(1, 1, 96, 96, generator=torch.Generator().manual_seed(0)) * energy ** 0.5
    spikes, noise = float(spectral_spikes(weave, photo)), float(spectral_spikes(grain, photo))
    # a windowed sinusoid of amplitude 0.02 over smooth content stands ~10^3-10^4 above its ring:
    # log ratios of 7-9 over the floor's 2.3, in a dozen bins, times 65536 / 96²
    assert spikes > 100 and noise < spikes / 20, (spikes, noise)
    # the gradient points along the weave: descending it lowers the weave's amplitude
    x = weave.clone().requires_grad_(True)
    spectral_spikes(x, photo).sum().backward()
    along = float((x.grad[0].sum(0) * oriented_lattice(96)).sum())
    assert along > 0
    # and a fainter weave costs less (log ratios: halving the amplitude takes log 4 off each bin)
    assert float(spectral_spikes(photo + 0.5 * oriented_lattice(96), photo)) < spikes
    with pytest.raises(ValueError, match="spike_weight"):
        check_objective({"spike_weight": -1})


def test_spectral_spikes_on_flat_tiles_read_only_where_the_photo_is_flat():
    flat_photo = torch.full((1, 3, 96, 96), 0.5)
    weave = oriented_lattice(96)
    # textured everywhere: every 16-px block of the photo varies by far more than SPIKE_FLAT_STD
    busy_photo = flat_photo + 0.1 * torch.randn(1, 1, 96, 96, generator=torch.Generator().manual_seed(1))
    on_flat = float(spectral_spikes(flat_photo + weave, flat_photo, flat=True))
    assert on_flat > 100  # 16 tiles of 48 px, each with the weave's spikes far above the floor
    assert float(spectral_spikes(flat_photo, flat_photo, flat=True)) == 0.0
    assert float(spectral_spikes(busy_photo + weave, busy_photo, flat=True)) == 0.0  # no flat tile
    assert float(spectral_spikes(busy_photo + weave, busy_photo)) > 0  # the whole crop still sees it
    # the weave only in the left half, which is flat; the right half textured: only the left tiles count
    half = flat_photo.clone()
    half[..., 48:] = busy_photo[..., 48:]
    x = (half + weave).requires_grad_(True)
    spectral_spikes(x, half, flat=True).sum().backward()
    assert float(x.grad[..., :, :40].abs().sum()) > 0 and float(x.grad[..., :, 64:].abs().sum()) == 0
    assert float(spectral_spikes(torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40), flat=True).abs().sum()) == 0
    with pytest.raises(ValueError, match="spike_flat"):
        check_objective({"spike_flat": 1})


def test_spike_weight_reaches_the_loss(lite0):
    photos = smooth_image(5).repeat(2, 1, 1, 1)
    stylized = (smooth_image(6) + oriented_lattice(64)).repeat(2, 1, 1, 1).requires_grad_(True)
    t = style_target(lite0, smooth_image(7), LAYERS)
    total, parts = PerceptualLoss(lite0, t, LAYERS, "blocks.2", LossWeights())(stylized, photos)
    w = LossWeights(spikes=0.01)
    total2, parts2 = PerceptualLoss(lite0, t, LAYERS, "blocks.2", w)(stylized, photos)
    assert float(parts2["spikes"]) > 0
    assert torch.allclose(total2, total + 0.01 * parts2["spikes"], rtol=1e-5)
    built = build_perceptual_loss(lite0, Image.new("RGB", (64, 64), (90, 60, 30)), 64, LAYERS, "blocks.2",
                                  LossWeights(), {"spike_weight": 0.02})
    assert built.weights.spikes == 0.02


def test_old_api_and_new_parts(lite0):
    photos = smooth_image(5).repeat(2, 1, 1, 1)
    stylized = smooth_image(6).repeat(2, 1, 1, 1).requires_grad_(True)
    t = style_target(lite0, smooth_image(7), LAYERS)
    total, parts = PerceptualLoss(lite0, t, LAYERS, "blocks.2", LossWeights())(stylized, photos)
    assert set(parts) == {"style", "content", "tv"}
    total.backward()
    assert torch.isfinite(stylized.grad).all()
    w = LossWeights(stats=0.5, tone=10.0)
    total2, parts2 = PerceptualLoss(lite0, t, LAYERS, "blocks.2", w)(stylized, photos)
    assert set(parts2) == {"style", "content", "tv", "stats", "tone"}
    expected = total + w.style * w.stats * parts2["stats"] + w.tone * parts2["tone"]
    assert torch.allclose(total2, expected, rtol=1e-5)
    w3 = LossWeights(stats=0.5, tone=10.0, tone_ratio=7.0)
    total3, parts3 = PerceptualLoss(lite0, t, LAYERS, "blocks.2", w3)(stylized, photos)
    assert set(parts3) == set(parts2) | {"tone_ratio"}
    assert torch.allclose(parts3["tone_ratio"], tone_distance(stylized, photos, log=True, relative=True).mean())
    assert torch.allclose(total3, total2 + w3.tone_ratio * parts3["tone_ratio"], rtol=1e-5)
    w4 = LossWeights(stats=0.5, tone=10.0, chroma_tv=20.0)
    total4, parts4 = PerceptualLoss(lite0, t, LAYERS, "blocks.2", w4)(stylized, photos)
    assert set(parts4) == set(parts2) | {"chroma_tv"}
    assert torch.allclose(parts4["chroma_tv"], chroma_total_variation(stylized).mean())
    assert torch.allclose(total4, total2 + w4.chroma_tv * parts4["chroma_tv"], rtol=1e-5)


def test_style_on_skin_reaches_the_loss(lite0):
    """Through PerceptualLoss: a photo without skin gives the same style term whatever
    style_on_skin is; a photo half sky, half skin gives another one at 0.3 (the result's two
    halves differ, so weighing them differently moves its Gram matrices)."""
    stylized = torch.cat([smooth_image(6), smooth_image(9)], dim=3).repeat(2, 1, 1, 1)  # 64×128
    t = style_target(lite0, smooth_image(7), LAYERS)
    sky = flat((110, 160, 220), 64)
    skin = flat((198, 134, 66), 64)
    photos = {"sky": torch.cat([sky, sky], dim=3).repeat(2, 1, 1, 1),
              "half skin": torch.cat([sky, skin], dim=3).repeat(2, 1, 1, 1)}
    parts = {}
    for name, photo in photos.items():
        for on_skin in (1.0, 0.3):
            loss = PerceptualLoss(lite0, t, LAYERS, "blocks.2", LossWeights(style_on_skin=on_skin))
            parts[name, on_skin] = float(loss(stylized, photo)[1]["style"])
    assert parts["sky", 0.3] == pytest.approx(parts["sky", 1.0], rel=1e-6)
    # fp32 Gram sums of a few thousand products round at ~1e-6 relative: 1e-3 is a real change
    assert abs(parts["half skin", 0.3] - parts["half skin", 1.0]) > 1e-3 * parts["half skin", 1.0]


def test_build_with_scales_and_a_second_network(lite0):
    painting = Image.fromarray((smooth_image(8, 96)[0].permute(1, 2, 0) * 255).byte().numpy())
    objective = {"transform": "swag", "style_scales": [1.0, 0.5],
                 "extra_backbones": {"efficientnet_lite0": ["blocks.1"]}}
    loss = build_perceptual_loss(lite0, painting, 64, LAYERS, "blocks.2", LossWeights(), objective,
                                 load_backbone=lambda name: lite0)
    assert len(loss.terms) == 2 and len(loss.terms[0].targets) == 2 and len(loss.terms[1].targets) == 2
    assert loss.terms[0].targets[0].transform == "swag"
    # the style term averages (networks × scales), so a photo's style loss stays on the plain scale
    total, parts = loss(smooth_image(9), smooth_image(9))
    assert 0 < float(parts["style"]) < 10
    # the painting itself at its own size scores 0 on the scale-1 targets of the main network
    from cvtools.io.decode import pil_to_tensor

    img = pil_to_tensor(painting.resize((64, 64), Image.LANCZOS))
    d = gram_distances(lite0.features(img[None], LAYERS), loss.terms[0].targets[0])
    assert all(float(v) < 1e-6 for v in d.values())


@pytest.mark.parametrize("bad", [{"nope": 1}, {"transform": "fft"}, {"style_scales": [9]},
                                 {"tone_weight": -1}, {"extra_backbones": {"x": []}}])
def test_objective_is_validated(bad):
    with pytest.raises(ValueError):
        check_objective(bad)


def test_streak_detector_flags_a_thin_line_not_in_the_photo():
    photo = torch.full((3, 80, 80), 0.5)
    out = photo.clone()
    out[:, 20:50, 40] += 0.3  # a 1 px vertical line, 30 px long, on a flat surround
    assert style_quality.streaks_per_10k(photo, out) > 0
    # the same line in the photo is not a streak
    assert style_quality.streaks_per_10k(out, out) == 0
    # turned by 90°, it is found as a horizontal streak, as much as the vertical one
    assert style_quality.streaks_per_10k(photo, out.transpose(1, 2)) == style_quality.streaks_per_10k(photo, out)
    # dense isotropic texture of the same amplitude is not a streak
    g = torch.Generator().manual_seed(0)
    noisy = (photo + 0.3 * (torch.rand(1, 80, 80, generator=g) - 0.5)).clamp(0, 1).expand(3, -1, -1)
    assert style_quality.streaks_per_10k(photo, noisy) < 1.0


def test_training_uses_and_records_the_objective(tmp_path, monkeypatch, lite0):
    import json

    import cvtools.backbones
    from cvtools.errors import UsageError
    from cvtools.style.train import TrainConfig, train_style
    from cvtools.style.trainer import Trainer

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: lite0)  # loading is the slow part
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray((smooth_image(10 + i, 80)[0].permute(1, 2, 0) * 255).byte().numpy()).save(photos / f"{i}.png")
    painting = tmp_path / "painting.png"
    Image.fromarray((smooth_image(20, 64)[0].permute(1, 2, 0) * 255).byte().numpy()).save(painting)
    objective = {"transform": "swag", "stats_weight": 0.5, "tone_weight": 3.0, "teacher_weight": 2.0,
                 "extra_backbones": {"efficientnet_lite1": ["blocks.1"]}}
    c = TrainConfig(style_image=str(painting), photos=str(photos), name="o", output=str(tmp_path / "out"),
                    batch_size=2, image_size=32, style_size=64, width=0.25, device="cpu", workers=0, steps=2,
                    preview_every=0, checkpoint_every=0, log_every=1, objective=objective)
    result = train_style(c)
    record = json.loads(result.record_path.read_text())
    assert record["recipe"]["objective"] == objective
    from cvtools.style.arbitrary import bundled_weights

    # a distilled style names the network it copied, and its loss is in the record
    assert record["recipe"]["teacher"] == {"network": "any-painting", "sha256": bundled_weights()[1]}
    assert record["training"]["final_losses"]["teacher"] > 0
    trainer = Trainer(TrainConfig.from_json(c.to_json()))
    assert len(trainer.loss_fn.terms) == 2 and trainer.loss_fn.weights.tone == 3.0
    with pytest.raises(UsageError, match="objective"):
        Trainer(TrainConfig(style_image=str(painting), photos=str(photos), name="x", device="cpu",
                            objective={"transform": "fft"}))
