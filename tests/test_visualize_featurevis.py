"""Feature visualization: parameterisation, transforms, objectives, and what the images do to the
network; the activations grid; the `visualize filters` / `visualize activations` commands."""

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cvtools.visualize.featurevis import ImageParam, evaluate, objectives, parse_channels, render
from cvtools.visualize.featurevis.param import COLOR_CORRELATION, FourierImage
from cvtools.visualize.featurevis.transforms import (
    Jitter,
    Pad,
    RandomRotate,
    RandomScale,
    class_transforms,
    standard_transforms,
)

SIZES = [(32, 32), (47, 61), (64, 40), (128, 128)]


# ----------------------------------------------------------------------------- transforms


@pytest.mark.parametrize("size", SIZES)
def test_transforms_keep_size_and_pass_gradients(size):
    gen = torch.Generator().manual_seed(0)
    for t in [Jitter(5), Pad(6), RandomScale([0.8, 1.25]), RandomRotate([-30, 17]), standard_transforms(size[0]),
              class_transforms(size[0])]:
        x = torch.rand(3, 3, *size, requires_grad=True)
        y = t(x, gen)
        assert y.shape == x.shape, (t, size)
        y.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, t


@settings(max_examples=25, deadline=None)
@given(h=st.integers(4, 90), w=st.integers(4, 90), n=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_standard_transforms_keep_any_size(h, w, n, seed):
    x = torch.rand(n, 3, h, w)
    for make in (standard_transforms, class_transforms):
        y = make(min(h, w))(x, torch.Generator().manual_seed(seed))
        assert y.shape == x.shape and torch.isfinite(y).all() and y.min() >= -1e-6 and y.max() <= 1 + 1e-6


def test_transforms_do_what_they_say():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 20, 20)
    # Neutral settings are the identity.
    assert torch.allclose(RandomScale([1.0])(x, gen), x, atol=1e-5)
    assert torch.allclose(RandomRotate([0])(x, gen), x, atol=1e-5)
    # 90 degrees on a square image moves pixel centres onto pixel centres: an exact rotation.
    turned = RandomRotate([90])(x, gen)
    assert min((turned - torch.rot90(x, k, dims=(2, 3))).abs().max().item() for k in (1, 3)) < 1e-4
    # Jitter is a shifted window of the reflected image, at most `pixels` away.
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect")
    y = Jitter(3)(x, gen)
    for i in range(2):
        assert any(torch.equal(y[i], padded[i, :, dy:dy + 20, dx:dx + 20]) for dy in range(7) for dx in range(7))
    # Pad shrinks the content into a grey frame.
    framed = Pad(5, value=0.5)(torch.ones(1, 3, 40, 40), gen)
    assert framed[..., 0, 0].allclose(torch.tensor(0.5), atol=0.05) and framed[..., 20, 20].allclose(torch.tensor(1.0))
    # A seed reproduces the random choices.
    t = standard_transforms(20)
    assert torch.equal(t(x, torch.Generator().manual_seed(7)), t(x, torch.Generator().manual_seed(7)))


# ----------------------------------------------------------------------------- parameterisation


def test_fourier_image_inverts_the_spectrum():
    """Setting the parameter to rfft(image) / scale reproduces the image (×1/4): the Fourier
    parameterisation is an exact change of variables, not a filter."""
    torch.manual_seed(0)
    image = torch.randn(1, 3, 24, 30)
    f = FourierImage((24, 30), batch=1)
    spectrum = torch.fft.rfftn(image * 4, dim=(-2, -1), norm="ortho")
    with torch.no_grad():
        f.spectrum.copy_(torch.view_as_real(spectrum) / f.scale)
    assert torch.allclose(f(), image, atol=1e-5)


def test_image_param_is_valid_rgb_with_natural_spectrum():
    p = ImageParam((64, 64), batch=4, seed=3)
    x = p()
    assert x.shape == (4, 3, 64, 64) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, ImageParam((64, 64), batch=4, seed=3)())  # seeded
    # 1/f scaling: the random start has more energy at low than at high frequencies.
    power = torch.fft.rfftn(p.spatial(), dim=(-2, -1)).abs().pow(2).mean(dim=(0, 1))
    assert power[1:4, 1:4].mean() > 10 * power[20:32, 20:32].mean()
    # The colour matrix is lucid's, normalised so its widest column has unit norm.
    assert COLOR_CORRELATION.norm(dim=0).max().item() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- objectives


@pytest.mark.parametrize("objective", [
    objectives.channel("blocks.8", [3, 40]),
    objectives.neuron("blocks.4", [0, 7]),
    objectives.class_logit([1, 281]),
    objectives.channel("stem", 5) - 0.5 * objectives.channel("blocks.1", 2),
], ids=["channel", "neuron", "class", "composite"])
def test_every_objective_improves_after_a_few_steps(lite0, objective):
    start = evaluate(lite0, objective, ImageParam(64, batch=2, seed=0)())
    vis = render(lite0, objective, batch=2, size=64, steps=6, lr=0.05, seed=0)
    after = evaluate(lite0, objective, vis.images)
    assert vis.images.shape == (2, 3, 64, 64) and vis.history.shape == (6, 2)
    assert (after > start).all(), (objective, start, after)


@pytest.mark.slow
def test_channel_images_beat_the_99th_percentile_of_natural_images(lite0):
    """The rendered image of a channel excites it more than 99 % of positions in real photos do."""
    from cvtools.io.decode import load_image, pil_to_tensor

    layer, channels = "blocks.8", [0, 1, 2, 3]
    photos = [pil_to_tensor(load_image(p).rgb.resize((224, 224), Image.BICUBIC))
              for p in sorted(SAMPLES.glob("*.jpg"))]
    with torch.no_grad():
        natural = lite0.features(torch.stack(photos), [layer])[layer][:, channels]  # N×4×14×14
    p99 = torch.quantile(natural.transpose(0, 1).flatten(1), 0.99, dim=1)
    objective = objectives.channel(layer, channels)
    vis = render(lite0, objective, batch=4, size=64, steps=20, seed=0)
    reached = evaluate(lite0, objective, vis.images)
    assert (reached > p99).all(), (reached, p99)


def test_parse_channels():
    assert parse_channels("0:4", 10) == [0, 1, 2, 3]
    assert parse_channels("3,7, 8:10", 10) == [3, 7, 8, 9]
    assert parse_channels("all", 3) == [0, 1, 2]
    from cvtools.errors import UsageError

    # one grammar with the dream's layer targets: a-b includes b, a:b is a slice (end excluded)
    assert parse_channels("0-3", 10) == parse_channels("0:4", 10) == [0, 1, 2, 3]
    assert parse_channels("8:", 10) == [8, 9] and parse_channels("0:10:4", 10) == [0, 4, 8]
    with pytest.raises(UsageError) as err:  # the error shows the layer's range and what is missing
        parse_channels("5:12", 10)
    assert str(err.value) == "channels 5:12: the layer has 10 channels (0-9); channels 10-11 do not exist"
    with pytest.raises(UsageError, match="channels must be numbers") as err:
        parse_channels("a:b", 10)
    assert "--" not in str(err.value)  # the library names no command-line option


# ----------------------------------------------------------------------------- activations


def test_activation_grid_shows_the_layer(lite0):
    from cvtools.visualize.activations import activation_grid, layer_activations, most_active

    x = torch.rand(3, 64, 96)
    acts = layer_activations(lite0, x, "blocks.4")
    with torch.no_grad():
        ref = lite0.features(x[None], ["blocks.4"])["blocks.4"][0]
    assert torch.equal(acts, ref)
    top = most_active(acts, 5)
    means = acts.clamp_min(0).mean(dim=(1, 2))
    assert top[0] == int(means.argmax()) and len(top) == 5 and means[top[4]] >= means.sort(descending=True).values[4]
    picture = activation_grid(x, acts, top, "blocks.4", tile=40)
    assert picture.width > 3 * 40 and picture.height > 2 * 40


# ----------------------------------------------------------------------------- command line


def test_class_filters_name_lists_the_classes_not_a_range(lite0):
    """--class 1,985 was written as classes_..._1-985, which reads as the classes 1 to 985."""
    from cvtools.io.naming import MAX_SUFFIX_BYTES
    from cvtools.visualize.job import filter_plan

    assert filter_plan(lite0, classes="goldfish,985").name == "classes_efficientnet_lite0_1+985"
    assert filter_plan(lite0, classes=[7]).name == "classes_efficientnet_lite0_7"
    many = [filter_plan(lite0, classes=list(range(k, k + 60))).name for k in (0, 1)]
    assert many[0] != many[1] and all(len(n) <= len("classes_efficientnet_lite0_") + MAX_SUFFIX_BYTES for n in many)
    assert all(n.startswith("classes_efficientnet_lite0_0+1+2+") or n.startswith("classes_efficientnet_lite0_1+2+")
               for n in many)


def test_filters_name_their_channels_by_the_channels_not_the_text_asked(lite0):
    """"0:16" (a slice) and "0-16" (a range, 16 included) both read "0-16", and "3,7" read "3-7":
    different channels under one name. The name now says the channels themselves, in runs."""
    from cvtools.visualize.job import channels_name, filter_plan

    def name(spec, **kw):
        return filter_plan(lite0, layer="blocks.4", channels=spec, **kw).name

    assert name("0:16") == name("0-15") == "filters_efficientnet_lite0_blocks.4_0-15"
    assert name("0-16").endswith("_0-16") and name("3,7").endswith("_3+7") and name("3-7").endswith("_3-7")
    assert name("0:4,8").endswith("_0-3+8") and name("5").endswith("_5")
    assert name("0:4", neuron=True) == name("0:4") + "_neurons"  # another objective, another file
    assert channels_name([2, 3, 4, 9, 11, 12]) == "2-4+9+11-12"


@pytest.mark.slow
def test_cli_filters_and_classes(run_cli, tmp_path):
    out = tmp_path / "f.png"
    r = run_cli("visualize", "filters", "-l", "blocks.4", "-c", "0:3", "--steps", "3", "--size", "48",
                "--device", "cpu", "-o", out)
    assert r.exit_code == 0, r.output
    grid = np.asarray(Image.open(out).convert("RGB")).astype(float)
    assert grid.shape[1] > 2 * 128 and grid.shape[0] > 2 * 128 and grid.std() > 10  # 2×2 grid of 128 px tiles
    r = run_cli("visualize", "filters", "-l", "blocks.4", "-c", "0:3", "--steps", "3", "-o", out)
    assert r.exit_code == 1 and "exists" in r.stderr  # never replaced without --overwrite
    r = run_cli("visualize", "filters", "--class", "goldfish,281", "--steps", "2", "--size", "48",
                "--device", "cpu", "-o", f"{tmp_path}/")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "classes_efficientnet_lite0_1+281.png").exists()  # a list, not the range 1-281
    r = run_cli("visualize", "filters", "-l", "blocks.4", "-c", "0:99", "--steps", "1")
    assert r.exit_code == 1 and "40 channels (0-39); channels 40-98 do not exist" in r.stderr


def test_cli_activations_shows_each_asked_channel_in_its_tile(run_cli, tmp_path, lite0):
    """`-c 0:7` on the stem: the photo, then channels 0-6 in that order, each tile the channel's own
    map. Viridis gets lighter with the value, so within a tile the luma must rise with the
    activation (percentile scaling and the colour table's rounding are monotonic)."""
    from cvtools.io.decode import load_image
    from cvtools.visualize.colormaps import lookup_table
    from cvtools.visualize.explain import analysis_tensor

    r = run_cli("visualize", "activations", SAMPLES / "coffee.jpg", "-l", "stem", "-c", "0:7", "--size", "64",
                "--device", "cpu", "-o", f"{tmp_path}/")
    assert r.exit_code == 0, r.output
    picture = np.asarray(Image.open(tmp_path / "coffee_act-stem.png").convert("RGB")).astype(float)
    x = analysis_tensor(load_image(SAMPLES / "coffee.jpg").rgb, 64)
    with torch.no_grad():
        acts = lite0.features(x[None], ["stem"])["stem"][0].float().clamp_min(0).numpy()
    assert acts.shape[1:] == (32, 48)  # the 64 px short side of a 3:2 photo through the stride-2 stem
    # the grid's arithmetic (visualize.render.grid): 8 tiles -> 3 columns, 3 rows; 112 px on the
    # map's short side -> 112×168 tiles with a 38 px caption (font min(16, round(168 / 9)): 2 * 8
    # padding + a 22 px line), 4 px gaps
    gap, tile_h, tile_w, cell_h = 4, 112, 168, 112 + 38
    assert picture.shape[1] == 3 * tile_w + 4 * gap
    title_h = picture.shape[0] - 3 * cell_h - 4 * gap
    assert 0 < title_h < 60
    # the colour table's luma may fall by this much between a lower and a higher entry, plus one
    # level for rounding the two pixels' colours to 8 bits
    luma_of = np.array([0.299, 0.587, 0.114])
    table = lookup_table("viridis") * 255 @ luma_of
    slack = max(0.0, max(table[i] - table[i:].min() for i in range(len(table)))) + 1.0
    def nearest(out, size):  # torch's nearest-neighbour enlargement: pixel -> map cell (float32 scale)
        return np.minimum(np.floor(np.arange(out, dtype=np.float32) * np.float32(size / out)).astype(int), size - 1)

    for channel in range(7):
        row, col = divmod(channel + 1, 3)
        y0, x0 = title_h + gap + row * (cell_h + gap), gap + col * (tile_w + gap)
        luma = picture[y0:y0 + tile_h, x0:x0 + tile_w] @ luma_of

        def worst_inversion(c):
            values = acts[c][np.ix_(nearest(tile_h, 32), nearest(tile_w, 48))].ravel()
            ordered = luma.ravel()[np.argsort(values, kind="stable")]
            return float((np.maximum.accumulate(ordered) - ordered).max())

        assert worst_inversion(channel) <= slack, channel
        assert worst_inversion((channel + 1) % 7) > 10 * slack  # another channel's map does not fit
