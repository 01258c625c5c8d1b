"""Fast style transfer: network, losses, tiling, stylize API and CLI, bundled styles, weights."""

import copy
import json

import pytest
import torch
from conftest import SAMPLES
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from cvtools.errors import WeightsError
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style import tiling
from cvtools.style.losses import content_distance, gram_matrix
from cvtools.style.network import TransformerNet, count_flops
from cvtools.style.records import bundled_records, load_style_weights, resolve_style, save_style_weights
from cvtools.style.stylize import Stylizer, luminance, resize_long_side

REQUIRED = {"mona", "starry_night", "great_wave", "scream", "composition_vii"}


def psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a.float() - b.float()) ** 2).mean()))


def sample(name="astronaut", size=128):
    return pil_to_tensor(resize_long_side(load_image(SAMPLES / f"{name}.jpg").rgb, size))


@pytest.fixture(scope="module")
def starry():
    return Stylizer("starry_night", device="cpu")


def randomised_net(width=0.25, seed=0):
    """A network whose instance norms are not the identity (a fresh one would hide mistakes)."""
    torch.manual_seed(seed)
    net = TransformerNet(width).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net


# ----------------------------------------------------------------------------- network


def test_output_has_the_input_size_for_odd_sizes():
    net = randomised_net()
    with torch.no_grad():
        for h, w in [(37, 53), (64, 64), (9, 130)]:
            y = net(torch.rand(2, 3, h, w))
            assert y.shape == (2, 3, h, w)
            assert 0 <= float(y.min()) and float(y.max()) <= 1


def test_subpixel_decoder_computes_the_same_function():
    net = randomised_net()
    fast = net.for_inference()
    assert not any(isinstance(m, torch.nn.Upsample) for m in fast.modules())
    with torch.no_grad():
        for shape in [(1, 3, 64, 64), (2, 3, 37, 53)]:
            x = torch.rand(*shape)
            assert float((net(x) - fast(x)).abs().max()) < 1e-5


def test_space_to_depth_convolutions_compute_the_same_function():
    # the GPU form: 9x9 input/output convolutions as 3x3 ones on 4x4 pixel blocks
    from cvtools.style.network import SpaceToDepthConv

    net = randomised_net()
    fast = net.for_inference(space_to_depth=True)
    assert sum(isinstance(m, SpaceToDepthConv) for m in fast.modules()) == 2
    with torch.no_grad():
        for shape in [(1, 3, 64, 64), (2, 3, 37, 53), (1, 3, 17, 90)]:  # sizes not multiples of 4 too
            x = torch.rand(*shape)
            assert float((net(x) - fast(x)).abs().max()) < 1e-5
            # channels-last in, channels-last through (the instance norms' fast path) and out
            xc = x.contiguous(memory_format=torch.channels_last)
            fc = copy.deepcopy(fast).to(memory_format=torch.channels_last)
            y = fc(xc)
            assert float((net(x) - y).abs().max()) < 1e-5


def test_training_view_has_the_same_function_and_gradients():
    # GPU training runs through net.for_training(): rearranged weights computed live from the
    # shared parameters, so the optimizer, checkpoints and DDP all see the plain network
    net = randomised_net()
    view = net.for_training()
    assert {id(p) for p in view.parameters()} == {id(p) for p in net.parameters()}
    x = torch.rand(2, 3, 37, 53)
    ref = net(x)
    net.zero_grad()
    ref.square().sum().backward()
    g_ref = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    out = view(x)
    out.square().sum().backward()
    assert float((out - ref).detach().abs().max()) < 1e-5
    scale = max(float(g.abs().max()) for g in g_ref.values())
    for n, p in net.named_parameters():
        assert float((p.grad - g_ref[n]).abs().max()) < 1e-5 * scale, n


def test_uint8_result_is_what_saving_the_float_result_writes():
    # the CLI asks for 8-bit results (rounded on the device); they must be the very bytes the
    # float result would have been saved as
    import numpy as np

    from cvtools.io.decode import tensor_to_pil
    from cvtools.style.stylize import Stylizer

    st = Stylizer("mona", device="cpu")
    photo = Image.open(SAMPLES / "chelsea.jpg").convert("RGB").resize((96, 64))
    for kw in (dict(), dict(strength=0.6, preserve_color=True)):
        as_float = st(photo, tile=None, **kw)
        as_bytes = st(photo, tile=None, as_uint8=True, **kw)
        assert as_bytes.dtype == torch.uint8
        assert np.array_equal(np.asarray(tensor_to_pil(as_bytes)), np.asarray(tensor_to_pil(as_float)))


def test_flop_count_matches_the_published_reference():
    # issue 9: the full Johnson network is 638 GFLOP per 1920x1080 frame
    flops = count_flops(TransformerNet(1.0), 1080, 1920)
    assert abs(flops / 638e9 - 1) < 0.001
    assert count_flops(TransformerNet(0.5), 1080, 1920) < flops / 3.5  # the bundled width


# ----------------------------------------------------------------------------- losses


def test_gram_matrix_against_float64_reference():
    f = torch.randn(2, 5, 7, 3)
    ref = torch.einsum("nchw,ndhw->ncd", f.double(), f.double()) / 21
    assert torch.allclose(gram_matrix(f).double(), ref, atol=1e-5)
    assert float(content_distance(f, f)[0]) == 0.0


# ----------------------------------------------------------------------------- tiling


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 3000), tile=st.integers(64, 1024), overlap=st.integers(0, 60))
@example(length=257, tile=256, overlap=0).via("a tile only a few pixels short of the image")
@example(length=1000, tile=64, overlap=59)
def test_tile_windows_cover_every_pixel_and_sum_to_one(length, tile, overlap):
    assume(overlap < tile - 4)  # tile_starts refuses an overlap that leaves no room to advance
    windows = tiling.axis_windows(length, tile, overlap)
    total = torch.zeros(length, dtype=torch.float64)
    for start, size, w in windows:
        assert start % 4 == 0 and size <= tile + 3 and start + size <= length
        total[start:start + size] += w.double()
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), atol=1e-5)


def test_tiled_equals_untiled_when_the_statistics_are_exact(starry):
    img = sample("astronaut", 128)
    whole = starry(img, tile=None)
    starry.overlap = 48
    try:
        tiled = starry._tiled(img, 96, 1.0, False, None)
    finally:
        starry.overlap = 128
    assert starry.last_tiles == 4
    assert psnr(tiled, whole) >= 30


def test_tiled_with_sampled_statistics_stays_close(starry):
    # too large for the statistics budget: crops spread over the image stand in for it
    img = sample("coffee", 128)
    whole = starry(img, tile=None)
    starry.overlap, starry.guide_pixels, starry.guide_crop = 32, 4 * 40 * 40, 40
    try:
        assert len(starry.guide_crops(*img.shape[1:])) == 4
        tiled = starry._tiled(img, 72, 1.0, False, None)
    finally:
        starry.overlap, starry.guide_pixels, starry.guide_crop = 128, None, 512
    assert psnr(tiled, whole) >= 20


# ----------------------------------------------------------------------------- stylize API


def test_strength_zero_returns_the_input_and_half_is_halfway(starry):
    img = sample("chelsea", 96)
    assert torch.equal(starry(img, strength=0.0), img)
    full = starry(img)
    half = starry(img, strength=0.5)
    assert torch.allclose(half, (img + full) / 2, atol=1e-5)
    assert psnr(full, img) < 20  # the style really changed the picture


def test_out_of_gpu_memory_falls_back_to_tiles_and_says_so(starry, monkeypatch, capsys):
    """A whole-image pass that runs out of device memory is redone in tiles (the same result as
    asking for those tiles), with a note to the notes callback, and none without one; a tile
    size the caller chose is not second-guessed. (The device is faked: the CPU never raises.)"""
    photo = resize_long_side(load_image(SAMPLES / "coffee.jpg").rgb, 320)
    img = pil_to_tensor(photo)
    _, h, w = img.shape
    expected = starry(img, tile=256)
    tiles = starry.last_tiles

    def no_memory(images):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(starry, "stylize_tensor", no_memory)
    assert starry.on_note is None
    assert torch.equal(starry(img), expected) and starry.last_tiles == tiles > 1
    assert capsys.readouterr().err == ""  # the library prints nothing
    notes = []
    monkeypatch.setattr(starry, "on_note", notes.append)
    assert torch.equal(starry(photo), expected)  # the 8-bit path falls back the same way
    assert notes == [f"out of GPU memory at {w}x{h}; stylizing in 256px tiles instead"]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        starry(img, tile=4096)


def test_preserve_color_keeps_the_input_chroma(starry):
    img = sample("astronaut", 96)
    full = starry(img)
    kept = starry(img, preserve_color=True)

    def chroma(x):  # BT.601 Cb, Cr
        y = luminance(x)
        return torch.cat([(x[2:3] - y) * 0.564, (x[0:1] - y) * 0.713])

    inside = ((kept > 0.002) & (kept < 0.998)).all(0)  # unclipped pixels keep chroma exactly
    assert inside.float().mean() > 0.8
    assert float((chroma(kept) - chroma(img))[:, inside].abs().max()) < 1e-4
    assert float((luminance(kept) - luminance(full))[:, inside].abs().max()) < 1e-4
    assert float((chroma(full) - chroma(img)).abs().mean()) > 0.02  # the full style does change colour


# ----------------------------------------------------------------------------- bundled styles, weights


def test_bundled_styles_are_listed_and_verified():
    records = {r.name: r for r in bundled_records()}
    assert REQUIRED <= set(records)
    for r in records.values():
        assert r.title and r.artist and r.year and r.provenance.get("source")
        assert r.recipe["seed"] == 0 and r.recipe["steps"] > 0
        q = r.quality
        assert q["photos"] == 20 and q["gram_reduction_mean"] >= 0.5, r.name
        assert r.weights_path.stat().st_size < 4_000_000  # compact: fp16
        r.load_network(verify=True)  # checks the pinned SHA-256


def test_fp16_weights_change_the_image_invisibly(tmp_path):
    net = randomised_net(0.5)
    path = tmp_path / "n.safetensors"
    save_style_weights(net, path, name="n")
    back = load_style_weights(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert psnr(back(x), net(x)) > 45


def test_a_record_by_path_finds_its_weights_in_the_sibling_weights_folder(tmp_path, run_cli, monkeypatch):
    """QA: `stylize photo.jpg -s styles/mona.json` said 'its weights file styles/mona.safetensors
    is missing': the project keeps weights in weights/ beside styles/, and so may a user."""
    import shutil

    from conftest import ROOT

    from cvtools.style.records import BUNDLED_RECORDS, BUNDLED_WEIGHTS

    monkeypatch.chdir(ROOT)
    rec = resolve_style("styles/mona.json")
    assert rec.weights_path.resolve() == (BUNDLED_WEIGHTS / "mona.safetensors").resolve()
    rec.load_network()  # the pinned SHA-256 checked
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "-s", "styles/mona.json", "-o", tmp_path / "o.jpg")
    assert r.exit_code == 0 and (tmp_path / "o.jpg").exists(), r.output
    monkeypatch.chdir(ROOT / "styles")  # a bare name in the records' folder
    assert resolve_style("mona.json").weights_path.is_file()
    # a user's project laid out the same way; the checksum pin still holds there
    (tmp_path / "styles").mkdir()
    (tmp_path / "weights").mkdir()
    shutil.copy(BUNDLED_RECORDS / "mona.json", tmp_path / "styles" / "mona.json")
    good = (BUNDLED_WEIGHTS / "mona.safetensors").read_bytes()
    (tmp_path / "weights" / "mona.safetensors").write_bytes(good[:-10] + bytes([good[-10] ^ 0xFF]) + good[-9:])
    with pytest.raises(WeightsError, match="checksum"):
        resolve_style(tmp_path / "styles" / "mona.json").load_network()
    (tmp_path / "styles" / "mona.safetensors").write_bytes(good)  # beside the record comes first
    assert resolve_style(tmp_path / "styles" / "mona.json").weights_path.parent == tmp_path / "styles"
    resolve_style(tmp_path / "styles" / "mona.json").load_network()


def _one_line_error(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.stderr
    return lines[0]


def test_damaged_and_foreign_weights_are_refused(tmp_path, run_cli):
    rec = resolve_style("mona")
    good = rec.weights_path.read_bytes()
    # a flipped byte in a copy with the bundled record: the pinned checksum catches it
    (tmp_path / "mona.safetensors").write_bytes(good[:-10] + bytes([good[-10] ^ 0xFF]) + good[-9:])
    (tmp_path / "mona.json").write_text(rec.path.read_text())
    with pytest.raises(WeightsError, match="checksum"):
        resolve_style(tmp_path / "mona.json").load_network()
    # truncated, foreign (no cvtools metadata) and not-a-file-at-all
    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) // 2])
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    (tmp_path / "text.safetensors").write_text("hello")
    for name, words in [("cut", "safetensors"), ("foreign", "not a cvtools style"), ("text", "safetensors")]:
        with pytest.raises(WeightsError, match=words):
            resolve_style(tmp_path / f"{name}.safetensors").load_network()
        line = _one_line_error(run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", tmp_path / f"{name}.safetensors",
                                       "-o", tmp_path / "x.png"))
        assert f"{name}.safetensors" in line
    assert not (tmp_path / "x.png").exists()


# ----------------------------------------------------------------------------- CLI


def test_cli_stylize_batch_writes_decodable_images(run_cli, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    out = tmp_path / "out"
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", bad, SAMPLES / "rocket.jpg", "--style", "great_wave",
                "--size", 96, "-o", out, "--device", "cpu")
    assert r.exit_code == 1
    assert [line for line in r.stderr.splitlines() if "bad.jpg" in line and "error" in line]
    for name, src in [("chelsea_great_wave.jpg", "chelsea"), ("rocket_great_wave.jpg", "rocket")]:
        im = load_image(out / name).rgb
        assert max(im.size) == 96
        original = pil_to_tensor(resize_long_side(load_image(SAMPLES / f"{src}.jpg").rgb, 96))
        assert im.size == (original.shape[2], original.shape[1])
        assert psnr(pil_to_tensor(im), original) < 20


def test_cli_strength_zero_and_never_overwrites(run_cli, tmp_path):
    src = tmp_path / "p.png"
    Image.open(SAMPLES / "coffee.jpg").resize((80, 60)).save(src)
    r = run_cli("stylize", src, "--style", "scream", "--strength", 0, "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = tmp_path / "p_scream.png"
    assert torch.equal(pil_to_tensor(Image.open(out).convert("RGB")), pil_to_tensor(Image.open(src).convert("RGB")))
    before = out.read_bytes()
    r = run_cli("stylize", src, "--style", "scream", "--device", "cpu")  # other options: kept, a new name
    assert r.exit_code == 0 and "--strength 0.0" in r.stderr and (tmp_path / "p_scream-2.png").exists(), r.stderr
    assert out.read_bytes() == before
    r = run_cli("stylize", src, "--style", "scream", "-o", src, "--device", "cpu")
    assert r.exit_code == 1 and "overwrite an input" in r.stderr


def test_cli_styles_lists_the_bundled_styles(run_cli):
    r = run_cli("styles")
    assert r.exit_code == 0
    for name in REQUIRED:
        assert name in r.stdout
    assert "Starry Night" in r.stdout and "Hokusai" in r.stdout
    data = json.loads(run_cli("styles", "--json").stdout)
    assert {d["name"] for d in data} >= REQUIRED
    # -v says per style whether its network was trained steady (the stability term) for video
    verbose = run_cli("styles", "-v").stdout
    steady = [r for r in data if (r.get("recipe") or {}).get("temporal_weight")]
    assert verbose.count("video: a steady network") == len(steady) > 0
    assert verbose.count("video: ") == len(data)
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", "no_such_style")
    assert "unknown style 'no_such_style'" in _one_line_error(r)


def test_tiny_images_stylize_at_their_own_size():
    """1×1 and 3-pixel-wide images would break the network's reflection padding; they are
    stylized larger and brought back."""
    import torch

    from cvtools.style.stylize import Stylizer

    st = Stylizer("mona", device="cpu")
    for h, w in [(1, 1), (40, 3)]:
        x = torch.rand(3, h, w)
        y = st(x)
        assert y.shape == (3, h, w) and torch.isfinite(y).all() and 0 <= y.min() and y.max() <= 1


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (4, 4, 4, 4), (0, 3, 0, 2), (2, 0, 1, 0)])
def test_channels_last_pad_is_f_pad_exactly(mode, pads):
    """The CUDA path of network.pad2d (run here on the CPU) writes the same values as F.pad, into
    a channels-last result; copies only, so equal to the bit."""
    import torch.nn.functional as F

    from cvtools.style.network import _pad_channels_last

    x = torch.randn(2, 5, 7, 9).contiguous(memory_format=torch.channels_last)
    got = _pad_channels_last(x, pads, mode)
    assert torch.equal(got, F.pad(x, pads, mode=mode))
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_pad2d_leaves_cpu_and_channels_first_maps_to_f_pad(monkeypatch):
    from cvtools.style import network

    calls = []
    monkeypatch.setattr(network, "_pad_channels_last", lambda *a: calls.append(a))
    x = torch.randn(1, 4, 6, 6)
    for t in (x, x.contiguous(memory_format=torch.channels_last)):  # CPU tensors: F.pad keeps the layout
        assert torch.equal(network.pad2d(t, (1, 1, 1, 1), "reflect"),
                           torch.nn.functional.pad(t, (1, 1, 1, 1), mode="reflect"))
    assert not calls


@pytest.mark.parametrize("space_to_depth", [False, True])
def test_inference_form_drops_only_the_biases_an_instance_norm_cancels(space_to_depth):
    """Every convolution feeding an instance norm loses its bias in the inference form (the norm
    subtracts the channel mean), the output convolution keeps its own, and the function is the
    same: with biases of size 1 the only difference left is fp32 rounding (~1e-6 here, bound 1e-5;
    dropping the output's bias would move pixels by ~0.1)."""
    from cvtools.style.network import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(width=0.5).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.normal_(0, 1.0)
        x = torch.rand(2, 3, 40, 56)
        fast = net.for_inference(space_to_depth=space_to_depth)
        without = [m for m in fast.modules() if isinstance(getattr(m, "bias", 0), type(None))]
        assert len(without) == 3 + 2 * net.residual_blocks + 2  # encoder, residual bodies, decoder
        assert fast.output.bias is not None if space_to_depth else fast.output[1].bias is not None
        assert torch.allclose(fast(x), net(x), atol=1e-5, rtol=0)


def test_a_users_record_with_missing_or_other_weights_is_named(tmp_path):
    """A record train-style wrote names its weights and their SHA-256: weights missing or damaged
    beside it are reported with the record (the user's files), not as a damaged install."""
    import shutil

    from cvtools.errors import WeightsError
    from cvtools.style.records import BUNDLED_RECORDS, BUNDLED_WEIGHTS, resolve_style

    record = tmp_path / "mine.json"
    data = json.loads((BUNDLED_RECORDS / "mona.json").read_text())
    data["weights"]["file"] = "mine.safetensors"
    record.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match=r"mine.json: its weights file .*mine.safetensors is missing"):
        resolve_style(record).load_network()
    shutil.copy(BUNDLED_WEIGHTS / "mona.safetensors", tmp_path / "mine.safetensors")
    with open(tmp_path / "mine.safetensors", "r+b") as f:
        f.seek(-64, 2)
        f.write(b"\\0" * 64)
    with pytest.raises(WeightsError, match=r"checksum mismatch.*mine.json was written for other weights"):
        resolve_style(record).load_network()
