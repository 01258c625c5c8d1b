"""Arbitrary-style network (issue #28): shapes, style-space interpolation, training, exact resume
and weights checks. CPU, tiny networks, a randomly initialised Lite0 trunk, 32-px crops."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cvtools.errors import UsageError, WeightsError
from cvtools.style.arbitrary import (
    ArbitraryConfig,
    ArbitraryStyleNet,
    ArbitraryStylizer,
    StyleTransformer,
    conditional_instance_norm,
    count_flops,
    encoder_input,
    encoder_shape,
    load_network,
    save_weights,
)
from cvtools.style.train_arbitrary import (
    ArbitraryTrainConfig,
    load_checkpoint,
    seeded_holdout,
    train_arbitrary,
)

TINY = dict(channels=(8, 16, 24), residual_blocks=1, embedding_dim=6, encoder_hidden=12, encoder_size=64)


@pytest.fixture(scope="module")
def trunk():
    from cvtools.backbones import load_backbone

    return load_backbone("efficientnet_lite0", weights="random", device="cpu", precision="fp32")


@pytest.fixture(autouse=True)
def shared_trunk(monkeypatch, trunk):
    """Every trainer gets the module's random Lite0 (building one is the slow part)."""
    import cvtools.backbones

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: trunk)


def tiny_net(seed=0, **fields):
    torch.manual_seed(seed)
    return ArbitraryStyleNet(ArbitraryConfig(**dict(TINY, **fields)).check()).eval()


@pytest.fixture
def weights(tmp_path):
    net = tiny_net()
    with torch.no_grad():  # a network whose heads react to the embedding
        net.heads.weight.normal_(0, 0.3)
    path = tmp_path / "net.safetensors"
    save_weights(net, path)
    return path


@pytest.fixture
def stylizer(weights, trunk):
    return ArbitraryStylizer(weights, device="cpu", backbone=trunk)


def pictures(folder, count, seed):
    """Smooth random colour fields with stripes, 40-70 px."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = rng.integers(40, 70, size=2)
        yy, xx = np.mgrid[0:h, 0:w]
        base = rng.uniform(0, 255, size=3)
        img = base + 60 * np.sin(xx[..., None] / rng.uniform(2, 9) + rng.uniform(0, 6, size=3))
        img = img + 40 * np.cos(yy[..., None] / rng.uniform(2, 9))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"p{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("arbitrary_data")
    return pictures(root / "photos", 3, 0), pictures(root / "paintings", 4, 1)


def config(data, out, **fields):
    photos, paintings = data
    base = dict(photos=str(photos), paintings=str(paintings), output=str(out), holdout=["p03"], steps=4,
                batch_size=2, image_size=32, painting_size=32, warmup_steps=2, log_every=1, checkpoint_every=0,
                workers=0, device="cpu", backbone_weights="random", architecture=dict(TINY),
                photo_style_fraction=0.5)
    base.update(fields)
    return ArbitraryTrainConfig(**base)


# ---------------------------------------------------------------------------- network


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (33, 18), (37, 51)])
def test_output_has_the_input_size(size):
    net = tiny_net()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x, torch.randn(2, net.config.embedding_dim))
    assert y.shape == x.shape and bool(((y >= 0) & (y <= 1)).all())


def test_inference_form_and_one_image_norm_match_the_training_form():
    net = tiny_net()
    x, params = torch.rand(2, 3, 29, 38), torch.randn(2, net.transformer.param_count)
    with torch.no_grad():
        a = net.transformer(x, params)
        b = net.transformer.for_inference()(x, params)
        each = torch.cat([net.transformer(x[i:i + 1], params[i:i + 1]) for i in range(2)])  # N=1 fast path
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, each, atol=1e-5)
    f = torch.randn(3, 5, 9, 11).contiguous(memory_format=torch.channels_last)
    g, bias = torch.rand(3, 5), torch.randn(3, 5)
    ref = torch.nn.functional.instance_norm(f.contiguous()) * g[..., None, None] + bias[..., None, None]
    assert torch.allclose(conditional_instance_norm(f, g, bias), ref, atol=1e-5)


def test_flops_are_counted_per_convolution():
    net = StyleTransformer(ArbitraryConfig(**TINY).check())
    assert count_flops(net, 64, 64) * 4 == pytest.approx(count_flops(net, 128, 128), rel=1e-6)
    assert count_flops(net, 64, 64) > 0


def test_a_network_grown_a_full_resolution_stage_starts_as_it_was_and_learns_there():
    """``fine_channels``: the old network's weights copied in (train_arbitrary.load_overlapping,
    as ``init_partial`` does) give the same pictures, because the stage's residual convolution
    starts at zero (the output convolution's new channels are random, but nothing reads them yet);
    one backward pass reaches the stage's weights, and the ONNX form computes the same function."""
    from cvtools.export import _arbitrary_transformer_form
    from cvtools.style.train_arbitrary import load_overlapping

    old = tiny_net(seed=3)
    grown = tiny_net(seed=4, fine_channels=4)
    exact, part, untouched = load_overlapping(grown, old.state_dict())
    assert part == 2 and untouched == 2  # output conv weight/bias grown; the stage's own conv new
    x, e = torch.rand(2, 3, 29, 38), torch.randn(2, old.config.embedding_dim)
    with torch.no_grad():  # the output conv's first channels: the same dot products, maybe blocked differently
        assert (grown(x, e) - old(x, e)).abs().max() < 1e-5
    grown.train().requires_grad_(True)
    grown(x, e).square().mean().backward()
    assert float(grown.transformer.fine[-1].weight.grad.abs().sum()) > 0
    with torch.no_grad():
        grown.transformer.fine[-1].weight.normal_(0, 0.1)  # a trained stage: not the identity any more
        grown.eval()
        form = _arbitrary_transformer_form(grown)
        assert (form(x, e) - grown(x, e)).abs().max() < 1e-5  # fp32, the inference form's sub-pixel convs
    assert count_flops(grown.transformer, 64, 64) > count_flops(old.transformer, 64, 64)
    with pytest.raises(ValueError, match="fine_channels"):
        ArbitraryConfig(**dict(TINY, fine_channels=-1)).check()


def test_no_decoder_blocks_is_the_network_as_it_was():
    """``decoder_blocks`` 0 (the default) adds no tensor and no style parameter: the shipped
    file's tensors (names and shapes, its heads' rows = the parameter count) are what the
    architecture builds, and a config with the field 0 builds, from the same seed, the same
    weights and pictures as one built without it."""
    from cvtools.style.arbitrary import bundled_record, bundled_weights, parameter_shapes
    from cvtools.weights import read_safetensors_header

    header = read_safetensors_header(bundled_weights()[0])
    shipped = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    arch = ArbitraryConfig(**bundled_record()["architecture"]).check()
    assert arch.decoder_blocks == 0 and parameter_shapes(arch) == shipped
    assert StyleTransformer(arch).param_count == shipped["heads.weight"][0] == 2496
    without, zero = tiny_net(seed=5), tiny_net(seed=5, decoder_blocks=0)
    assert "decoder_blocks" not in TINY
    a, b = without.state_dict(), zero.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert without.transformer.param_count == zero.transformer.param_count
    assert not any("up_residuals" in k for k in a)
    x, e = torch.rand(2, 3, 32, 40), torch.randn(2, TINY["embedding_dim"])
    with torch.no_grad():
        assert torch.equal(without(x, e), zero(x, e))


def test_a_network_grown_decoder_blocks_starts_exactly_as_it_was(data, tmp_path):
    """``decoder_blocks`` 1 grown from a network without them through the trainer's own path
    (``init_weights`` + ``init_partial``: load_overlapping): the old tensors copied, the heads'
    old rows copied, the new blocks' second norms at gamma = beta = 0 for every embedding, so
    each block adds exact zeros and the pictures are the old network's. Tolerance: the same
    arithmetic except those added zeros; the one thing that may differ is the heads' matrix
    product blocked differently for more rows (an ulp or so of a parameter, ~3e-7, the sigmoid's
    slope at most 1/4): 3e-6 absolute on outputs in [0, 1] is ample. Then one backward pass
    reaches the new blocks (their second norm's gamma gets a gradient, so they learn)."""
    from cvtools.export import _arbitrary_transformer_form
    from cvtools.style.train_arbitrary import ArbitraryTrainer

    old = tiny_net(seed=6)
    with torch.no_grad():  # heads that react to the embedding
        old.heads.weight.normal_(0, 0.3)
        old.heads.bias.add_(0.1 * torch.randn_like(old.heads.bias))
    path = tmp_path / "old.safetensors"
    save_weights(old, path)
    old = load_network(path)  # the fp16-rounded weights the trainer starts from
    notes = []
    c = config(data, tmp_path / "run", architecture=dict(TINY, decoder_blocks=1), init_weights=str(path),
               init_partial=True)
    trainer = ArbitraryTrainer(c, on_note=notes.append)
    grown = trainer.net.eval()
    assert grown.config.decoder_blocks == 1 and len(grown.transformer.up_residuals) == 1
    # heads weight and bias in part; two blocks (1/2 and 1/4 of the tiny net's resolution) × 4 conv tensors new
    assert any("2 in part, 8 new" in n for n in notes), notes
    p_old, p_new = old.transformer.param_count, grown.transformer.param_count
    assert p_new == p_old + 2 * 2 * sum(TINY["channels"][:-1])  # per block: two norms, each gamma + beta
    zeroed = grown.transformer.decoder_identity_norms()
    assert [n.channels for n in zeroed] == list(TINY["channels"][-2::-1]) and min(n.offset for n in zeroed) >= p_old
    x = torch.rand(3, 3, 29, 38)
    embeddings = [torch.zeros(3, 6), torch.randn(3, 6), 5 * torch.randn(3, 6), torch.randn(1, 6).expand(3, 6)]
    with torch.no_grad():
        for e in embeddings:
            params = grown.style_params(e)
            for norm in zeroed:
                assert torch.equal(params[:, norm.offset:norm.offset + 2 * norm.channels],
                                   torch.zeros(3, 2 * norm.channels))
            torch.testing.assert_close(params[:, :p_old], old.style_params(e), rtol=0, atol=1e-6)
            torch.testing.assert_close(grown(x, e), old(x, e), rtol=0, atol=3e-6)
            torch.testing.assert_close(grown.transformer.for_inference()(x, params), old(x, e), rtol=0, atol=1e-5)
            torch.testing.assert_close(_arbitrary_transformer_form(grown)(x, e), old(x, e), rtol=0, atol=1e-5)
    grown.train().requires_grad_(True)
    grown(x, embeddings[1]).square().mean().backward()
    rows = slice(zeroed[0].offset, zeroed[0].offset + zeroed[0].channels)
    assert float(grown.heads.bias.grad[rows].abs().sum()) > 0
    assert count_flops(grown.transformer, 64, 64) > count_flops(old.transformer, 64, 64)


def test_a_second_round_of_decoder_blocks_appends():
    """Rounds, not stages, are outermost: 1 → 2 decoder blocks keeps the first round's tensor
    names and style-parameter offsets, so a grown network starts as the trained one."""
    from cvtools.style.train_arbitrary import load_overlapping

    one = tiny_net(seed=7, decoder_blocks=1)
    with torch.no_grad():  # trained: the first round is no longer the identity
        one.heads.weight.normal_(0, 0.3)
    two = tiny_net(seed=8, decoder_blocks=2)
    assert set(one.state_dict()) < set(two.state_dict())
    exact, part, new = load_overlapping(two, one.state_dict())
    assert part == 2 and new == 8
    x, e = torch.rand(2, 3, 32, 48), torch.randn(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(two(x, e), one(x, e), rtol=0, atol=3e-6)
        assert float((one(x, e) - tiny_net(seed=7)(x, e)).abs().max()) > 1e-3  # the blocks do something


def test_a_run_grown_decoder_blocks_trains_them_and_saves_them(data, tmp_path, monkeypatch):
    """Two steps of a run grown ``decoder_blocks`` 1 from a network without them: the new
    blocks' head rows leave zero (they learn), and the weights file loads with the field."""
    from cvtools.style import train_arbitrary as module

    monkeypatch.setattr(module, "EVAL_SIZE", 64)
    monkeypatch.setattr(module, "SHEET_CELL", 48)
    path = tmp_path / "old.safetensors"
    save_weights(tiny_net(seed=10), path)
    out = tmp_path / "run"
    c = config(data, out, steps=2, warmup_steps=1, architecture=dict(TINY, decoder_blocks=1), init_weights=str(path),
               init_partial=True)
    result = train_arbitrary(c, eval_photos=[next(data[0].iterdir())], eval_paintings=[data[1] / "p03.png"])
    assert result.steps == 2
    net = load_network(out / "arbitrary.safetensors")
    assert net.config.decoder_blocks == 1
    rows = [slice(n.offset, n.offset + 2 * n.channels) for n in net.transformer.decoder_identity_norms()]
    assert all(float(net.heads.weight[r].abs().sum()) > 0 for r in rows)


@pytest.mark.parametrize("value", [-1, 5, True, "1", 1.0, None])
def test_a_bad_decoder_blocks_is_refused(value):
    with pytest.raises(ValueError, match="decoder_blocks"):
        ArbitraryConfig(**dict(TINY, decoder_blocks=value)).check()
    with pytest.raises(ValueError, match="decoder_blocks"):
        ArbitraryConfig.from_json(json.dumps(dict(TINY, decoder_blocks=value)))


def test_a_network_with_decoder_blocks_is_saved_loaded_and_painted_with(tmp_path, trunk):
    net = tiny_net(seed=9, decoder_blocks=1)
    with torch.no_grad():  # not the identity: the blocks' second norms react to the embedding
        net.heads.weight.normal_(0, 0.3)
    path = tmp_path / "deep.safetensors"
    save_weights(net, path)
    back = load_network(path)
    assert back.config == net.config and back.config.decoder_blocks == 1
    rounded = {k: v.half().float() for k, v in net.state_dict().items()}  # saved as fp16
    assert list(back.state_dict()) == list(rounded)
    assert all(torch.equal(back.state_dict()[k], rounded[k]) for k in rounded)
    stylizer = ArbitraryStylizer(path, device="cpu", backbone=trunk)  # its inference form
    photo, e = torch.rand(3, 40, 52), torch.randn(6)
    with torch.no_grad():
        expected = back(photo[None], e[None])[0]
    torch.testing.assert_close(stylizer.stylize(photo, e), expected, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------- style space


def test_style_parameters_are_linear_in_the_embedding():
    net = tiny_net()
    with torch.no_grad():
        net.heads.weight.normal_()
    a, b = torch.randn(6), torch.randn(6)
    mixed = net.style_params(0.3 * a + 0.7 * b)
    assert torch.allclose(mixed, 0.3 * net.style_params(a) + 0.7 * net.style_params(b), atol=1e-5)


@pytest.mark.parametrize("h, w, long_side, expected", [
    (640, 1024, 0, (256, 410)),    # the short side (encoder_size 256)
    (640, 1024, 512, (320, 512)),  # a landscape painting's long side
    (960, 686, 512, (512, 366)),   # a portrait painting's long side
    (100, 2000, 512, (64, 1280)),  # a panorama: the short side is kept at 64, not 26
    (40, 60, 512, (341, 512)),     # a tiny painting is enlarged to the same scale
])
def test_the_encoder_sees_the_painting_at_its_configured_size(h, w, long_side, expected):
    config = ArbitraryConfig(encoder_size=256, encoder_long_side=long_side).check()
    assert encoder_shape(h, w, config) == expected
    assert encoder_input(torch.rand(1, 3, h, w), config).shape[-2:] == expected


@pytest.mark.parametrize("value", [-1, 16, 5000, 1.5, True])
def test_a_bad_encoder_long_side_is_refused(value):
    with pytest.raises(ValueError, match="encoder_long_side"):
        ArbitraryConfig(encoder_long_side=value).check()


def test_a_long_side_network_encodes_as_the_short_side_one_at_the_equivalent_size(weights, tmp_path):
    """The rule only chooses the encoder's input size: a 120×80 painting at a 180-px long side is
    the same input as at a 120-px short side, so the embeddings are equal."""
    net = load_network(weights)
    net.config.encoder_long_side = 180
    long_path = tmp_path / "long.safetensors"
    save_weights(net, long_path)
    painting = torch.rand(3, 80, 120)
    by_long = ArbitraryStylizer(str(long_path), device="cpu").encode(painting)
    short = ArbitraryStylizer(str(weights), device="cpu")
    short.config.encoder_size = 120
    assert load_network(long_path).config.encoder_long_side == 180  # kept in the file's metadata
    assert torch.allclose(by_long, short.encode(painting), atol=1e-6)


def test_blend_of_one_style_is_that_style(stylizer):
    painting, photo = torch.rand(3, 40, 60), torch.rand(3, 24, 31)
    style = stylizer.encode(painting)
    assert torch.equal(stylizer.blend([(style, 1.0)]), style)
    assert torch.allclose(stylizer.blend([(style, 2.0), (style, 3.0)]), style, atol=1e-6)
    assert torch.equal(stylizer.stylize(photo, stylizer.blend([(style, 1.0)])), stylizer.stylize(photo, style))


def test_strength_interpolates_between_the_photos_own_style_and_the_painting(stylizer):
    painting, photo = torch.rand(3, 40, 60), torch.rand(3, 24, 31)
    style, own = stylizer.encode(painting), stylizer.encode(photo)
    assert not torch.allclose(style, own)
    # strength 0: the network's reconstruction of the photo in its own style
    assert torch.allclose(stylizer.stylize(photo, style, strength=0.0), stylizer.stylize(photo, own), atol=1e-6)
    half = stylizer.stylize(photo, style, strength=0.5)
    assert torch.allclose(half, stylizer.stylize(photo, stylizer.blend([(own, 1), (style, 1)])), atol=1e-6)
    assert stylizer.stylize(photo.unsqueeze(0), style).shape == (1, 3, 24, 31)


@pytest.mark.parametrize("call", [
    lambda st, e: st.stylize(torch.rand(3, 8, 8), e, strength=1.5),
    lambda st, e: st.stylize(torch.rand(4, 8, 8), e),
    lambda st, e: st.stylize(torch.rand(3, 8, 8), e[:3]),
    lambda st, e: st.blend([(e, -1.0)]),
    lambda st, e: st.blend([]),
    lambda st, e: st.encode(torch.full((3, 8, 8), float("nan"))),
])
def test_bad_arguments_are_one_line_usage_errors(stylizer, call):
    with pytest.raises(UsageError) as info:
        call(stylizer, stylizer.encode(torch.rand(3, 16, 16)))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- weights files


def _rewrite(path, state=None, metadata=None):
    from safetensors.torch import load_file, save_file

    from cvtools.weights import read_safetensors_header

    meta = read_safetensors_header(path)["__metadata__"]
    save_file(state if state is not None else load_file(str(path)), str(path), metadata=metadata or meta)


@pytest.mark.parametrize("damage, message", [
    ("shape", "has shape"),
    ("missing", "is missing"),
    ("nan", "NaN or infinite"),
    ("metadata", "not an arbitrary-style network"),
    ("architecture", "architecture is not usable"),
    ("text", "not a safetensors file"),
])
def test_damaged_weights_are_one_line_weights_errors(weights, damage, message):
    from safetensors.torch import load_file

    state = load_file(str(weights))
    if damage == "shape":
        state["heads.bias"] = state["heads.bias"][:-1].clone()
        _rewrite(weights, state)
    elif damage == "missing":
        del state["heads.bias"]
        _rewrite(weights, state)
    elif damage == "nan":
        state["heads.bias"][0] = float("inf")
        _rewrite(weights, state)
    elif damage == "metadata":
        _rewrite(weights, metadata={"format": "something else"})
    elif damage == "architecture":
        _rewrite(weights, metadata={"format": "cvtools-arbitrary-style-1", "config": '{"channels": [8, 9999]}'})
    else:
        weights.write_text("not weights")
    with pytest.raises(WeightsError) as info:
        load_network(weights)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_wrong_sha256_is_refused(weights):
    with pytest.raises(WeightsError, match="checksum"):
        load_network(weights, sha256="0" * 64)


# ---------------------------------------------------------------------------- training


def test_a_short_run_writes_every_output(data, tmp_path, monkeypatch):
    from cvtools.style import train_arbitrary as module
    from cvtools.weights import sha256_file

    monkeypatch.setattr(module, "EVAL_SIZE", 64)
    monkeypatch.setattr(module, "SHEET_CELL", 48)

    photo = next(data[0].iterdir())
    result = train_arbitrary(config(data, tmp_path), eval_photos=[photo], eval_paintings=[data[1] / "p03.png"])
    assert result.steps == 4 and result.stopped_by == "steps"
    record = json.loads((tmp_path / "arbitrary.json").read_text())
    assert record["sha256"] == sha256_file(tmp_path / "arbitrary.safetensors")
    assert record["held_out"]["paintings"] == ["p03"] and "SOURCES.md" in record["provenance"]["paintings"]
    assert set(record["evaluation"]["style_reduction"]) == {"p03"}
    losses = [json.loads(line) for line in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == [1, 2, 3, 4] and all(np.isfinite(r["total"]) for r in losses)
    assert Image.open(tmp_path / "sheet.jpg").size == (2 * 48, 3 * 48)
    assert load_checkpoint(tmp_path / "arbitrary.ckpt")["step"] == 4
    load_network(tmp_path / "arbitrary.safetensors", sha256=record["sha256"])


def test_training_lowers_the_loss_on_one_pair(data, tmp_path):
    """One photo, one painting, the same crops every step: the loss must go down."""
    photos, paintings = data
    one_photo, one_painting = tmp_path / "ph", tmp_path / "pa"
    one_photo.mkdir(), one_painting.mkdir()
    (one_photo / "a.png").write_bytes((photos / "p00.png").read_bytes())
    (one_painting / "b.png").write_bytes((paintings / "p01.png").read_bytes())
    c = config((one_photo, one_painting), tmp_path / "out", holdout=[], steps=20, warmup_steps=1, lr=5e-3,
               photo_scale=(1.0, 1.0), painting_scale=(1.0, 1.0), photo_style_fraction=0.0)
    train_arbitrary(c)
    losses = [json.loads(line)["total"] for line in (tmp_path / "out" / "losses.jsonl").read_text().splitlines()]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


@pytest.mark.parametrize("objective", [{}, {"style_transform": "gram", "stats_weight": 0.0},
                                       {"extra_backbones": {"efficientnet_lite0": ["blocks.1", "blocks.3"]}},
                                       {"strength_fraction": 0.5}, {"painting_augment": 0.5},
                                       {"synthetic_paintings": 0.5}, {"collage_paintings": 0.5},
                                       {"style_transform": "swag+gram"}])
def test_resume_gives_the_uninterrupted_run(data, tmp_path, objective):
    straight = train_arbitrary(config(data, tmp_path / "a", steps=4, **objective))
    train_arbitrary(config(data, tmp_path / "b", steps=2, **objective))
    resumed = train_arbitrary(config(data, tmp_path / "b", steps=4, **objective),
                              resume=tmp_path / "b" / "arbitrary.ckpt")
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert b["step"] == 4
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert json.loads(a["history"]) == json.loads(b["history"])


def test_swag_and_plain_grams_together_are_the_mean_of_each_relative_distance():
    """"swag+gram": per sample, half the swag distance plus half the plain Gram distance, the latter
    recomputed here from raw products (the relative distance does not depend on the Gram's scale);
    zero for the painting itself; the stats term added once."""
    from cvtools.style.arbitrary_loss import ArbitraryStyleDistance

    g = torch.Generator().manual_seed(3)
    f, painting = torch.randn(3, 8, 5, 6, generator=g), torch.randn(3, 8, 5, 6, generator=g).abs() * 2
    feats, refs = {"l": f, "m": f * 0.5}, {"l": painting, "m": painting.flip(-1)}
    both = ArbitraryStyleDistance("swag+gram", stats_weight=0.0)(feats, refs, ["l", "m"])
    swag = ArbitraryStyleDistance("swag", stats_weight=0.0)(feats, refs, ["l", "m"])

    def plain(a, b):
        ga, gb = (x.flatten(2) @ x.flatten(2).transpose(1, 2) for x in (a, b))
        return (ga - gb).pow(2).sum((1, 2)) / gb.pow(2).sum((1, 2))

    by_hand = 0.5 * swag + 0.5 * (plain(f, painting) + plain(f * 0.5, painting.flip(-1))) / 2
    assert both.shape == (3,) and (both - swag).abs().min() > 1e-3  # the plain term does count
    torch.testing.assert_close(both, by_hand, rtol=1e-5, atol=0)  # fp32 sums over 8x30 products
    assert float(ArbitraryStyleDistance("swag+gram", 0.0)(refs, refs, ["l", "m"]).abs().max()) < 1e-6
    stats = ArbitraryStyleDistance("swag+gram", 0.5)(feats, refs, ["l"]) - ArbitraryStyleDistance(
        "swag+gram", 0.0)(feats, refs, ["l"])
    torch.testing.assert_close(stats, ArbitraryStyleDistance("swag", 0.5)(feats, refs, ["l"])
                               - ArbitraryStyleDistance("swag", 0.0)(feats, refs, ["l"]), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="swag\\+gram"):
        ArbitraryStyleDistance("swag-gram")


def test_an_extra_style_network_is_averaged_into_the_style_term(data, tmp_path):
    """The style term through two networks is the mean of each one's: recomputed here from the
    trainer's own pieces on one batch."""
    import torch

    from cvtools.style.train_arbitrary import ArbitraryTrainer

    c = config(data, tmp_path, extra_backbones={"efficientnet_lite0": ["blocks.1", "blocks.3"]})
    trainer = ArbitraryTrainer(c)
    assert len(trainer.extra) == 1 and trainer.extra[0][1] == ["blocks.1", "blocks.3"]
    torch.manual_seed(1)
    x, styles = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        _, parts = trainer._loss(x, styles)
        y = trainer._transform(x, trainer.net.style_params(trainer.net.encoder(
            trainer.backbone.features(styles, trainer.painting_layers))))

        def through(bb, layers):
            pf, f = bb.features(styles, layers), bb.features(y, layers)
            return trainer._layers_distance(f, pf, layers).mean()

        main = through(trainer.backbone, c.style_layers)
        extra = through(*trainer.extra[0])
    # the same operations in the same order on CPU fp32: equal up to the last bits of one sum
    assert torch.allclose(parts["style"], (main + extra) / 2, rtol=1e-5, atol=0)
    # and the extra term counts: another network on other layers gives another value (random
    # weights put the two anywhere; fp32 rounding of these sums is ~1e-6 relative, so 1e-4 apart
    # is a real difference, not noise)
    assert abs(float(extra - main)) > 1e-4 * float(main)


@pytest.mark.parametrize("extra", [{}, {"extra_backbones": {"efficientnet_lite0": ["blocks.1", "blocks.3"]}}])
def test_strength_samples_span_photo_as_style_to_plain(data, tmp_path, extra):
    """A strength sample at 1 is a plain sample; at 0 it is the photo taken as its own painting
    (the embedding is the photo's and the style target the photo's); with the photo as the
    painting every strength is that same sample. Same operations on CPU fp32, so equal up to
    the reduction order of a few sums (1e-5 relative)."""
    import torch

    from cvtools.style.train_arbitrary import ArbitraryTrainer

    trainer = ArbitraryTrainer(config(data, tmp_path, strength_fraction=0.5, **extra))
    torch.manual_seed(2)
    x, styles = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        plain = trainer._loss(x, styles)[0]
        photo_as_style = trainer._loss(x, x)[0]
        at_one = trainer._loss(x, styles, torch.ones(3))[0]
        at_zero = trainer._loss(x, styles, torch.zeros(3))[0]
        halfway = trainer._loss(x, styles, torch.full((3,), 0.5))[0]
        own_halfway = trainer._loss(x, x, torch.full((3,), 0.5))[0]
    assert torch.allclose(at_one, plain, rtol=1e-5) and torch.allclose(at_zero, photo_as_style, rtol=1e-5)
    assert torch.allclose(own_halfway, photo_as_style, rtol=1e-5)
    # and half-way is neither end (random weights: the ends differ by far more than rounding)
    assert abs(float(plain - photo_as_style)) > 1e-3 * float(plain)
    assert float(halfway) not in (pytest.approx(float(plain), rel=1e-4), pytest.approx(float(photo_as_style), rel=1e-4))


def test_strength_as_a_style_weight_scales_the_painting_term_alone(data, tmp_path):
    """strength_target "weight": a sample at strength s is trained with s·(the painting's style
    term) and the whole content term, no pull towards the photo's texture. At 1 it is a plain
    sample; at 0 its style term is 0; with the photo as the painting (the embedding is then the
    photo's at every s) the style term is linear in s. CPU fp32, the same operations: 1e-5."""
    import torch

    from cvtools.style.train_arbitrary import ArbitraryTrainer

    trainer = ArbitraryTrainer(config(data, tmp_path, strength_fraction=0.5, strength_target="weight"))
    torch.manual_seed(2)
    x, styles = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    c = trainer.config
    with torch.no_grad():
        plain = trainer._loss(x, styles)[0]
        at_one = trainer._loss(x, styles, torch.ones(3))[0]
        at_zero, zero_parts = trainer._loss(x, styles, torch.zeros(3))
        own_one = trainer._loss(x, x, torch.ones(3))[1]["style"]
        own_half = trainer._loss(x, x, torch.full((3,), 0.5))[1]["style"]
    assert torch.allclose(at_one, plain, rtol=1e-5)
    assert float(zero_parts["style"]) == 0.0
    assert torch.allclose(at_zero, c.content_weight * zero_parts["content"] + c.tv_weight * zero_parts["tv"], rtol=1e-5)
    assert float(own_one) > 0 and torch.allclose(own_half, 0.5 * own_one, rtol=1e-5)
    with pytest.raises(ValueError, match="strength_target"):
        config(data, tmp_path, strength_target="pixels").check()


def test_a_new_painting_keeps_its_strokes_and_light_in_another_direction_and_palette():
    """painting_augment's crops: turned by 90° steps exactly, hue and saturation changed with each
    pixel's luma kept (YIQ's luma row; exact where no channel clips, fp32 rounding ~1e-6), and at
    no turn, no hue and saturation 1 the crop itself."""
    from cvtools.style.train_arbitrary import new_painting

    torch.manual_seed(3)
    crop = 0.25 + 0.5 * torch.rand(3, 16, 16)  # mid-range: a hue turn of these stays in [0, 1]
    torch.testing.assert_close(new_painting(crop, 0, 0.0, 1.0), crop, atol=1e-5, rtol=0)
    torch.testing.assert_close(new_painting(crop, 3, 0.0, 1.0), torch.rot90(crop, 3, dims=(-2, -1)), atol=1e-5, rtol=0)
    turned = new_painting(crop, 0, 1.2, 0.8)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    unclipped = ((turned > 0) & (turned < 1)).all(0)
    assert unclipped.float().mean() > 0.5
    torch.testing.assert_close((turned * luma).sum(0)[unclipped], (crop * luma).sum(0)[unclipped], atol=1e-5, rtol=0)
    assert (turned - crop).abs().max() > 0.05  # the colours did move
    assert float(turned.min()) >= 0 and float(turned.max()) <= 1
    with pytest.raises(ValueError, match="square"):
        new_painting(torch.rand(3, 8, 9), 1, 0.0, 1.0)


def test_a_collage_is_made_of_quarters_of_other_paintings_in_their_places():
    """collage_paintings: each chosen crop's four quarters come from the same places in other
    painting crops of the batch (never from itself, never from a photo-as-style sample, never from
    another collage); the crops not chosen are untouched; fewer than two sources: no collage."""
    from cvtools.style.train_arbitrary import collaged

    styles = torch.rand(6, 3, 8, 8)
    sources = np.array([True, True, True, True, False, True])  # sample 4 is its own photo
    chosen = np.array([True, False, True, False, False, False])
    out = collaged(styles, chosen, sources, np.random.default_rng(3))
    quarters = [(slice(0, 4), slice(0, 4)), (slice(0, 4), slice(4, 8)), (slice(4, 8), slice(0, 4)), (slice(4, 8), slice(4, 8))]
    for i in range(6):
        if not chosen[i]:
            assert torch.equal(out[i], styles[i])
            continue
        for rows, cols in quarters:
            origin = [j for j in range(6) if torch.equal(out[i, :, rows, cols], styles[j, :, rows, cols])]
            assert len(origin) == 1 and origin[0] != i and sources[origin[0]], (i, origin)
    alone = np.array([True, False, False, False, False, False])
    assert torch.equal(collaged(styles, alone, alone, np.random.default_rng(3)), styles)


@pytest.mark.parametrize("option", ["painting_augment", "synthetic_paintings", "collage_paintings"])
def test_new_paintings_change_only_the_chosen_crops_and_leave_the_stream_alone(data, tmp_path, option):
    """painting_augment, synthetic_paintings and collage_paintings: a run without them draws what it drew before the
    options existed; with one, some painting crops of a step differ and the photo-as-style ones
    never do."""
    from cvtools.style.train_arbitrary import ArbitraryTrainer, PaintingBank, painting_files

    seen = {}
    batch = (torch.rand(4, 3, 32, 32) * 255).to(torch.uint8)
    for fraction in (0.0, 1.0):
        trainer = ArbitraryTrainer(config(data, tmp_path / str(fraction), **{option: fraction},
                                          photo_style_fraction=0.5))
        bank = PaintingBank(painting_files(data[1]), "cpu")
        captured = []
        original = trainer._loss
        trainer._loss = lambda x, styles, strength=None: (captured.append(styles.clone()), original(x, styles, strength))[1]
        trainer.step(batch, bank)
        seen[fraction] = captured[0]
    rng = np.random.default_rng([0, 0, 0xA27])
    bank = PaintingBank(painting_files(data[1]), "cpu")
    c = config(data, tmp_path / "x").check()
    plain = bank.crops(rng, 4, c.painting_size, c.painting_scale)
    own = rng.random(4) < 0.5
    for i in range(4):
        if own[i]:
            torch.testing.assert_close(seen[1.0][i], seen[0.0][i], atol=0, rtol=0)  # a photo: never changed
        else:
            torch.testing.assert_close(seen[0.0][i], plain[i], atol=0, rtol=0)  # off: the same crops as before
            assert (seen[1.0][i] - seen[0.0][i]).abs().max() > 1e-3


@pytest.mark.parametrize("value", [(0.5,), (0.8, 0.2), (-0.1, 0.5), (0.2, 1.5), ("a", 1)])
def test_bad_strength_range_is_refused(data, tmp_path, value):
    with pytest.raises(ValueError, match="strength_range"):
        config(data, tmp_path, strength_range=value).check()


@pytest.mark.parametrize("value", [{"efficientnet_lite0": []}, {"efficientnet_lite0": "blocks.1"}, ["blocks.1"]])
def test_bad_extra_backbones_are_refused(data, tmp_path, value):
    with pytest.raises(ValueError, match="extra_backbones"):
        config(data, tmp_path, extra_backbones=value).check()


def test_deadline_stops_cleanly_with_a_checkpoint(data, tmp_path):
    import time

    from cvtools.style import train_arbitrary as module

    result = train_arbitrary(config(data, tmp_path, steps=1000), deadline=time.monotonic() + module.FINISH_SECONDS)
    assert result.stopped_by == "deadline" and result.steps < 1000
    assert load_checkpoint(result.checkpoint)["step"] == result.steps


def test_a_damaged_checkpoint_is_refused(data, tmp_path):
    result = train_arbitrary(config(data, tmp_path, steps=1))
    raw = bytearray(result.checkpoint.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    result.checkpoint.write_bytes(bytes(raw))
    with pytest.raises(WeightsError) as info:
        load_checkpoint(result.checkpoint)
    assert "\n" not in str(info.value)


def test_the_held_out_paintings_are_fixed_by_seed():
    names = [f"painting_{i:03d}.jpg" for i in range(186)]
    picked = seeded_holdout(names)
    assert len(picked) == 10 and picked == seeded_holdout(list(reversed(names)))
    assert picked == seeded_holdout([n.replace(".jpg", ".png") for n in names])


def test_the_gpu_script_splits_and_joins_checkpoints(tmp_path, monkeypatch):
    """The lent machine returns files of at most 16 MiB: the checkpoint travels in parts."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_arbitrary.py"
    spec = importlib.util.spec_from_file_location("train_arbitrary_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "PART_BYTES", 1000)
    whole = bytes(np.random.default_rng(0).integers(0, 256, 2500, dtype=np.uint8))
    (tmp_path / "arbitrary.ckpt").write_bytes(whole)
    parts = script.split_checkpoint(tmp_path)
    assert [p.name for p in parts] == ["arbitrary.ckpt.001", "arbitrary.ckpt.002", "arbitrary.ckpt.003"]
    assert not (tmp_path / "arbitrary.ckpt").exists()
    for source in (tmp_path, parts[0]):
        joined = script.joined_checkpoint(source, tmp_path / "scratch" / "arbitrary.ckpt")
        assert joined.read_bytes() == whole


def test_fine_tuning_starts_from_the_given_weights(data, tmp_path):
    from cvtools.style.arbitrary import load_network

    first = train_arbitrary(config(data, tmp_path / "a", steps=1))
    weights = tmp_path / "a" / "arbitrary.safetensors"
    # one step at a negligible learning rate: the network written is the one it started from
    again = train_arbitrary(config(data, tmp_path / "b", steps=1, lr=1e-12, warmup_steps=0,
                                   init_weights=str(weights)))
    a, b = load_network(weights).state_dict(), load_network(again.weights).state_dict()
    for key in a:
        # an lr of 1e-12 moves no fp16-stored weight by more than one of its rounding steps
        assert torch.allclose(a[key], b[key], rtol=2 ** -10, atol=1e-7), key
    other = tmp_path / "other.safetensors"
    save_weights(tiny_net(embedding_dim=7), other)
    with pytest.raises(UsageError, match="architecture"):
        train_arbitrary(config(data, tmp_path / "c", steps=1, init_weights=str(other)))
    assert first.steps == 1


def test_partial_start_copies_the_overlapping_block_of_a_wider_network():
    from cvtools.style.train_arbitrary import load_overlapping

    small, wide = tiny_net(), tiny_net(channels=(8, 16, 32))
    torch.manual_seed(1)
    for p in small.parameters():
        p.data.normal_()
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    exact, part, fresh = load_overlapping(wide, small.state_dict())
    got, src = wide.state_dict(), small.state_dict()
    assert exact + part + fresh == len(got) and part > 0 and exact > 0
    for key, dst in got.items():
        s = src.get(key)
        if s is None or s.dim() != dst.dim():
            assert torch.equal(dst, before[key]), key  # nothing of another rank is touched
            continue
        block = tuple(slice(0, min(a, b)) for a, b in zip(s.shape, dst.shape))
        assert torch.equal(dst[block], s[block]), key
        if s.shape != dst.shape:  # outside the shared block: the wide network's own values,
            rest = torch.ones_like(dst, dtype=torch.bool)  # zero from new inputs
            rest[block] = False
            new_inputs = torch.zeros_like(rest)
            if dst.dim() >= 2 and dst.shape[1] > s.shape[1]:
                new_inputs[:, s.shape[1]:] = True
            assert torch.equal(dst[rest & ~new_inputs], before[key][rest & ~new_inputs]), key
            assert not dst[new_inputs].any(), key


def test_a_wider_embedding_starts_as_the_narrower_network():
    from cvtools.style.train_arbitrary import load_overlapping

    small = tiny_net()
    torch.manual_seed(2)
    for p in small.parameters():
        p.data.normal_(0, 0.3)
    wide = tiny_net(embedding_dim=small.config.embedding_dim + 9, encoder_hidden=small.config.encoder_hidden + 5)
    load_overlapping(wide, small.state_dict())
    torch.manual_seed(3)
    features = torch.randn(2, small.encoder.mlp[0].in_features)
    photo = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        narrow_emb, wide_emb = small.encoder.mlp(features), wide.encoder.mlp(features)
        d = small.config.embedding_dim
        # the old embedding numbers are the same sums of the same terms (the new hidden units
        # add exact zeros), so equal to fp32 rounding; the heads ignore the new numbers
        assert torch.allclose(wide_emb[:, :d], narrow_emb, rtol=1e-5, atol=1e-6)
        assert torch.allclose(wide.style_params(wide_emb), small.style_params(narrow_emb), rtol=1e-5, atol=1e-5)
        assert torch.allclose(wide(photo, wide_emb), small(photo, narrow_emb), rtol=1e-4, atol=1e-5)
    # and the new inputs' weights can learn: their gradient is not zero
    wide(photo, wide.encoder.mlp(features)).mean().backward()
    assert wide.heads.weight.grad[:, d:].abs().sum() > 0


@pytest.mark.parametrize("value", [(), ("dots", "dots"), ("oils",), "dots", (1,)])
def test_bad_synthetic_kinds_are_refused(data, tmp_path, value):
    with pytest.raises(ValueError, match="synthetic_kinds"):
        config(data, tmp_path, synthetic_kinds=value).check()


def test_synthetic_kinds_choose_the_renderers(data, tmp_path, monkeypatch):
    """Only the named kinds are drawn; a list (as a JSON record holds it) is taken as a tuple."""
    from cvtools.style import synthetic_paintings
    from cvtools.style.train_arbitrary import ArbitraryTrainer, PaintingBank, painting_files

    drawn = []
    original = synthetic_paintings.synthesize
    monkeypatch.setattr(synthetic_paintings, "synthesize",
                        lambda crops, kinds, rng: (drawn.extend(kinds), original(crops, kinds, rng))[1])
    c = config(data, tmp_path, synthetic_paintings=1.0, synthetic_kinds=["hatching", "watercolour"],
               photo_style_fraction=0.0)
    trainer = ArbitraryTrainer(c)
    assert trainer.config.synthetic_kinds == ("hatching", "watercolour")
    bank = PaintingBank(painting_files(data[1]), "cpu")
    for _ in range(3):
        trainer.step((torch.rand(4, 3, 32, 32) * 255).to(torch.uint8), bank)
    assert len(drawn) == 12 and set(drawn) <= {"hatching", "watercolour"}


def test_bundled_style_tokens_carry_parameters_and_leave_paintings_alone():
    """The shipped network's embedding ends in one style token per bundled name (tools/bundled_style_tokens.py):
    the encoder never writes them (a painting paints as without them), each name's stored embedding holds its own
    token, and because the heads are affine a blend of names mixes their parameters with the blend's weights."""
    from cvtools.style.arbitrary import (
        bundled_embedding_names,
        bundled_record,
        bundled_style_embedding,
        bundled_weights,
    )

    net = load_network(*bundled_weights())
    tokens = bundled_record()["style_tokens"]["names"]
    assert sorted(tokens) == bundled_embedding_names()
    d = net.config.embedding_dim - len(tokens)
    stats = torch.randn(5, net.encoder.mlp[0].in_features, generator=torch.Generator().manual_seed(0))
    assert float(net.encoder.mlp(stats)[:, d:].abs().max()) == 0.0  # zero rows: exact
    for i, name in enumerate(tokens):
        token = bundled_style_embedding(name)[d:]
        assert token.tolist() == [1.0 if j == i else 0.0 for j in range(len(tokens))]
        # the token moves the name's parameters (else it carries nothing)
        without = bundled_style_embedding(name).clone()
        without[d:] = 0
        assert float((net.style_params(bundled_style_embedding(name)) - net.style_params(without)).abs().max()) > 1e-2
    stylizer = ArbitraryStylizer(device="cpu")
    a, b = bundled_style_embedding(tokens[0]), bundled_style_embedding(tokens[1])
    mixed = net.style_params(stylizer.blend([(a, 3.0), (b, 7.0)]))
    # fp32 sums of 406 products of values below ~10: far below 1e-4
    torch.testing.assert_close(mixed, 0.3 * net.style_params(a) + 0.7 * net.style_params(b), atol=1e-4, rtol=0)


def test_an_embedding_saved_before_the_style_tokens_paints_as_it_did():
    """An embedding a library user saved from the shipped network before it grew its style tokens has 400 values:
    the token places are added as zeros (what the encoder writes there), in the PyTorch class, the painting stylizer
    and therefore blends; another network's embeddings are never padded, and other lengths stay refused."""
    from cvtools.style.arbitrary import bundled_record, with_token_places
    from cvtools.style.painting import NetworkPaintingStylizer

    tokens = len(bundled_record()["style_tokens"]["names"])
    stylizer = ArbitraryStylizer(device="cpu")
    d = stylizer.config.embedding_dim
    assert stylizer.style_tokens == tokens
    old = torch.randn(d - tokens, generator=torch.Generator().manual_seed(1))
    full = torch.cat([old, torch.zeros(tokens)])
    assert torch.equal(stylizer.style_params(old), stylizer.style_params(full))  # the same numbers: exact
    assert torch.equal(NetworkPaintingStylizer([old], device="cpu").network.style_params(old),
                       stylizer.style_params(full))
    assert torch.equal(NetworkPaintingStylizer([old], device="cpu").embedding, full)
    with pytest.raises(UsageError, match="embedding"):
        stylizer.style_params(old[:-1])
    # a network with no tokens (any weights file given) pads nothing
    assert with_token_places(old, d, 0) is old
