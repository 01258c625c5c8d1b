"""Any-painting stylization by optimisation (cvtools.style.optimize): tiny images, few steps, CPU."""

import math

import pytest
import torch

from cvtools.errors import UsageError


def smooth_photo(h=40, w=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 4, 5, generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]


def stripes(h=64, w=64, period=8, colour=(0.9, 0.2, 0.1)):
    """A painting with a strong texture and a colour the photo lacks."""
    x = torch.arange(w).float()
    wave = 0.5 + 0.5 * torch.sign(torch.sin(2 * math.pi * x / period))
    c = torch.tensor(colour).view(3, 1, 1)
    return (c * wave.view(1, 1, w)).expand(3, h, w).clone()


def dots(h=64, w=64):
    y, x = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    d = ((torch.sin(y / 2) * torch.sin(x / 2)) > 0.5).float()
    return torch.stack([0.1 + 0.8 * d, 0.1 + 0.8 * d, 0.9 - 0.6 * d])


def make(lite0, paintings, **kw):
    from cvtools.style.optimize import PaintingStylizer

    kw.setdefault("steps", 12)
    return PaintingStylizer(paintings, backbone=lite0, **kw)


def test_loss_decreases_and_output_is_a_picture_of_the_photo_size(lite0):
    photo = smooth_photo(41, 57)  # odd sizes
    ps = make(lite0, stripes(), steps=15, jitter=0)  # jitter makes each step's loss a random draw
    out = ps(photo)
    assert out.shape == photo.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and bool(torch.isfinite(out).all())
    (level,) = ps.last_losses  # one level at this size
    # 15 Adam steps of 0.05 in logit units move pixels by up to ~0.2: the style term, which
    # starts far off (the photo has no stripes), must fall by a clear margin, not by rounding
    assert level["total"] < 0.9 * level["start"]
    before = ps.losses(photo, photo)
    after = ps.losses(out, photo)
    assert before["content"] == pytest.approx(0.0, abs=1e-6)  # the photo is its own content
    assert after["style"] < before["style"]


def test_coarse_to_fine_levels_and_progress_reach_the_total(lite0):
    from cvtools.style.optimize import level_sizes

    assert level_sizes(512, 512, 256) == [(256, 256), (512, 512)]
    assert level_sizes(1080, 1920, 256) == [(270, 480), (540, 960), (1080, 1920)]
    assert level_sizes(500, 400, 256) == [(500, 400)]
    assert level_sizes(300, 200, 256) == [(300, 200)]
    photo = smooth_photo(72, 100)
    ps = make(lite0, stripes(), steps=4, coarse_side=32)
    calls = []
    ps.callback = lambda done, total, loss: calls.append((done, total, loss))
    out = ps(photo)
    sizes = level_sizes(72, 100, 32)
    assert len(sizes) == 2 and out.shape == photo.shape
    total = ps.total_steps(72, 100)
    assert total == 4 + 2  # finer levels get half the steps
    assert [c[0] for c in calls] == list(range(1, total + 1)) and {c[1] for c in calls} == {total}
    assert calls[-1][2] is not None and math.isfinite(calls[-1][2])
    assert [d["side"] for d in ps.last_losses] == [max(s) for s in sizes]


def test_same_seed_same_result_other_seed_differs(lite0):
    photo = smooth_photo()
    ps = make(lite0, stripes(), steps=3, noise=0.2)
    a, b = ps(photo, seed=1), ps(photo, seed=1)
    c = ps(photo, seed=2)
    assert torch.equal(a, b)
    # different noise (amplitude 0.2) stays visible after 3 small steps
    assert float((a - c).abs().max()) > 0.05


def test_blend_weights_weigh_the_style_distances(lite0):
    photo = smooth_photo(48, 48)
    x = smooth_photo(48, 48, seed=5)
    a, b = stripes(), dots()
    sa = make(lite0, a).losses(x, photo)["style"]
    sb = make(lite0, b).losses(x, photo)["style"]
    blend = make(lite0, [(a, 3.0), (b, 1.0)])  # weights are normalised: 0.75 / 0.25
    assert [w for _, w in blend.paintings] == [0.75, 0.25]
    s = blend.losses(x, photo)["style"]
    # the same fp32 sums, combined in another order: agreement to fp32 rounding of a few terms
    assert s == pytest.approx(0.75 * sa + 0.25 * sb, rel=1e-5)
    # the test can tell the weights apart: 0.5/0.5 would be off by |sa - sb| / 4, far beyond rel=1e-5
    assert abs(sa - sb) / 4 > 1e-3 * sa


def test_strength_and_preserve_color(lite0):
    from cvtools.style.stylize import luminance

    photo = smooth_photo()
    ps = make(lite0, stripes(), steps=4)
    assert torch.equal(ps(photo, strength=0.0), photo)
    full = ps(photo)
    half = ps(photo, strength=0.5)
    # deterministic on the CPU (no noise): half is exactly halfway, up to fp32 rounding
    assert torch.allclose(half, (photo + 0.5 * (full - photo)).clamp(0, 1), atol=1e-6)
    kept = ps(photo, preserve_color=True)
    # the photo's chroma: kept - luma(kept) == photo - luma(photo) where nothing was clipped
    inside = ((kept > 0) & (kept < 1)).all(0)
    diff = (kept - luminance(kept)) - (photo - luminance(photo))
    assert float(diff[:, inside].abs().max()) < 1e-5


def test_parse_style_spec():
    from cvtools.style.optimize import parse_style_spec

    assert parse_style_spec("a.jpg") == ("a.jpg", 1.0)
    assert parse_style_spec("a.jpg:0.7") == ("a.jpg", 0.7)
    assert parse_style_spec("C:/art/a.jpg") == ("C:/art/a.jpg", 1.0)
    assert parse_style_spec("dir:x/a.jpg") == ("dir:x/a.jpg", 1.0)
    for bad in ("a.jpg:0", "a.jpg:-1", "a.jpg:nan", "a.jpg:inf"):
        with pytest.raises(UsageError):
            parse_style_spec(bad)


def test_bad_settings_are_refused(lite0):
    with pytest.raises(UsageError):
        make(lite0, stripes(), style_scale=0)
    with pytest.raises(UsageError):
        make(lite0, stripes(), optimizer="sgd")
    with pytest.raises(UsageError):
        make(lite0, [(stripes(), 0.0)])
    with pytest.raises(UsageError):
        make(lite0, torch.rand(1, 8, 8))


def test_lbfgs_also_lowers_the_loss(lite0):
    # L-BFGS's first steps are tiny (no curvature known yet): on this tiny problem it only
    # has to go down (a wrong sign or a broken closure would raise it or leave it unchanged)
    ps = make(lite0, stripes(), steps=10, optimizer="lbfgs")
    ps(smooth_photo())
    (level,) = ps.last_losses
    assert level["total"] < level["start"] - 0.01


# ------------------------------------------------------------------ CLI


@pytest.fixture
def files(tmp_path):
    from cvtools.imageio import save_image

    photo = tmp_path / "photo.png"
    save_image(photo, smooth_photo(40, 52))
    painting = tmp_path / "painting.png"
    save_image(painting, stripes(48, 48))
    second = tmp_path / "second.png"
    save_image(second, dots(48, 48))
    return tmp_path, photo, painting, second


def test_cli_image_style_goes_to_the_optimiser(run_cli, files):
    from PIL import Image

    tmp, photo, painting, second = files
    r = run_cli("stylize", photo, "--style", painting, "--steps", 2, "-q")
    assert r.exit_code == 0, r.output
    out = tmp / "photo_painting.png"
    assert Image.open(out).size == (52, 40)
    r = run_cli("stylize", photo, "-s", f"{painting}:0.7", "-s", f"{second}:0.3", "--steps", 2, "--seed", 3,
                "--style-scale", 2, "-o", tmp / "blend.png", "-q")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp / "blend.png").size == (52, 40)


def test_cli_style_name_goes_to_the_network(run_cli, files):
    tmp, photo, painting, _ = files
    r = run_cli("stylize", photo, "--style", "mona", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp / "photo_mona.png").exists()


@pytest.mark.parametrize("args, words", [
    (["--style", "mona", "--steps", "5"], "--steps"),
    (["--style", "mona", "--style", "scream"], "blended"),
    (["-s", "PAINTING", "-s", "mona"], "cannot mix"),
    (["-s", "PAINTING", "--tile", "512"], "--tile"),
])
def test_cli_options_that_do_not_fit_are_one_line_errors(run_cli, files, args, words):
    tmp, photo, painting, _ = files
    args = [str(painting) if a == "PAINTING" else a for a in args]
    r = run_cli("stylize", photo, *args, "-q")
    assert r.exit_code != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr


@pytest.mark.parametrize("content, reason", [(None, "no such file"), (b"\xff\xd8\xff\xe0 not really a jpeg", "")])
def test_cli_bad_painting_is_a_one_line_error_naming_it(run_cli, files, content, reason):
    tmp, photo, _, _ = files
    bad = tmp / "bad.jpg"
    if content is not None:
        bad.write_bytes(content)
    r = run_cli("stylize", photo, "--style", bad)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.jpg" in lines[0] and reason in lines[0] and "Traceback" not in r.output
    assert not list(tmp.glob("photo_bad*"))
