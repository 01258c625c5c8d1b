"""Any painting through the bundled any-painting network (cvtools.style.painting) and the CLI's
--style PAINTING / blends / --strength / --refine (issue #28). CPU, tiny images."""

import numpy as np
import pytest
import torch
from PIL import Image

from cvtools.errors import UsageError


@pytest.fixture(scope="module")
def network():
    from cvtools.style.painting import NetworkPaintingStylizer

    torch.manual_seed(0)
    return NetworkPaintingStylizer([(stripes_painting(), 1.0)], device="cpu")


def stripes_painting(h=64, w=64):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    s = ((x + y) // 6 % 2).float()
    return torch.stack([0.9 * s + 0.05, 0.3 * s + 0.2, 0.7 - 0.5 * s])


def photo_tensor(h=40, w=52, seed=1):
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 5, 6, generator=g), size=(h, w), mode="bilinear",
                                           align_corners=False)[0]
    return base.clamp(0, 1)


def test_bundled_names_use_their_stored_embeddings_and_blends_are_weighted_means(network):
    from cvtools.style.arbitrary import bundled_embedding_names, bundled_style_embedding
    from cvtools.style.painting import NetworkPaintingStylizer

    names = bundled_embedding_names()
    assert {"mona", "starry_night"} <= set(names)
    mona, starry = bundled_style_embedding("mona"), bundled_style_embedding("starry_night")
    assert mona.shape == (network.network.config.embedding_dim,) and not torch.equal(mona, starry)
    blend = NetworkPaintingStylizer([("mona", 3.0), ("starry_night", 1.0)], device="cpu")
    # weights normalised to 0.75 / 0.25; float32 sums of two terms: a few ulps of the values' scale
    expected = 0.75 * mona + 0.25 * starry
    assert torch.allclose(blend.embedding, expected, rtol=0, atol=4 * torch.finfo(torch.float32).eps * 10)
    assert blend.name == "mona+starry_night"


@pytest.mark.slow
def test_a_painting_is_encoded_once_for_any_number_of_photos(network, monkeypatch):
    calls = []
    original, photos = network.network.encode, network.network.encode_photos
    monkeypatch.setattr(network.network, "encode", lambda x, side=None: calls.append(1) or original(x, side))
    monkeypatch.setattr(network.network, "encode_photos", lambda x: calls.append(len(x)) or photos(x))
    outs = [network(photo_tensor(seed=k)) for k in range(3)]
    assert calls == []  # the painting's embedding was made in the constructor
    assert all(o.shape == (3, 40, 52) and 0 <= float(o.min()) and float(o.max()) <= 1 for o in outs)
    network(photo_tensor(), strength=0.5)
    assert calls == [1]  # below full strength the photo's own style is encoded (once per photo)


@pytest.mark.slow
def test_strength_mixes_in_style_space(network):
    photo = photo_tensor()
    assert torch.equal(network(photo, strength=0.0), photo)  # 0 is the input itself, exactly
    half = network(photo, strength=0.5)
    # the same arithmetic done by hand: the embedding half-way between the photo's and the painting's
    own = network.network.encode(photo)
    by_hand = network.network.stylize(photo, 0.5 * own + 0.5 * network.embedding)
    assert torch.allclose(half, by_hand.clamp(0, 1), rtol=0, atol=1e-5)
    full = network(photo)
    pixel_blend = photo + 0.5 * (full - photo)
    assert float((half - pixel_blend).abs().mean()) > 1e-3  # not a pixel mix in disguise


def test_preserve_color_keeps_the_photos_colour(network):
    from cvtools.style.stylize import luminance

    photo = photo_tensor()
    out = network(photo, preserve_color=True)
    # chroma (RGB minus luma) is the photo's, luma the network's: exactly (fp32 rounding), where
    # no channel was clipped to [0, 1] (there the clip takes some of both)
    inside = ((out > 1e-4) & (out < 1 - 1e-4)).all(0)
    assert float(inside.float().mean()) > 0.3
    chroma_out, chroma_photo = out - luminance(out), photo - luminance(photo)
    assert torch.allclose(chroma_out[:, inside], chroma_photo[:, inside], atol=1e-5)
    assert torch.allclose(luminance(out)[:, inside], luminance(network(photo))[:, inside], atol=1e-5)


def test_tiny_pil_and_uint8_inputs(network):
    tiny = network(torch.rand(3, 1, 1))
    assert tiny.shape == (3, 1, 1)
    im = Image.fromarray((photo_tensor().permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    u8 = network(im, as_uint8=True)
    assert u8.dtype == torch.uint8 and u8.shape == (3, 40, 52)


def test_bad_styles_and_weights_are_one_line(tmp_path):
    from cvtools.style.painting import NetworkPaintingStylizer

    for styles in ([("mona", 0.0)], [("mona", -1.0)], [("mona", float("nan"))], []):
        with pytest.raises(UsageError):
            NetworkPaintingStylizer(styles, device="cpu")
    with pytest.raises(UsageError, match="embedding"):
        NetworkPaintingStylizer([torch.zeros(7)], device="cpu")
    with pytest.raises(UsageError, match="embedding"):
        NetworkPaintingStylizer([torch.full((100,), float("nan"))], device="cpu")


def test_refine_starts_the_optimisation_from_the_networks_picture(network, lite0):
    from cvtools.style.painting import RefinedPaintingStylizer

    refined = RefinedPaintingStylizer(network, [stripes_painting()], steps=0, extra_backbones={})
    refined.optimizer.backbone = lite0
    photo = photo_tensor()
    # one level (the photo is smaller than the coarsest size) and no steps: the start, unchanged
    # apart from the sigmoid/logit round trip none of it takes at 0 steps
    assert torch.allclose(refined(photo), network(photo), atol=1e-6)
    seen = {}
    original = refined.optimizer.optimize

    def spy(x, seed=0, callback=None, init=None):
        seen["init"] = init
        return original(x, seed=seed, callback=callback, init=init)

    refined.optimizer.optimize = spy
    refined.optimizer.settings.steps = 1
    out = refined(photo)
    assert torch.equal(seen["init"], network(photo))
    assert out.shape == photo.shape


def test_optimize_refuses_a_start_of_another_shape(lite0):
    from cvtools.style.optimize import PaintingStylizer

    ps = PaintingStylizer(stripes_painting(), backbone=lite0, steps=1, extra_backbones={})
    with pytest.raises(UsageError, match="init"):
        ps.optimize(photo_tensor(), init=torch.rand(3, 10, 10))


# ------------------------------------------------------------------ the CLI


@pytest.fixture
def files(tmp_path):
    from cvtools.io.atomic import save_image

    for k in range(3):
        save_image(tmp_path / f"photo{k}.png", photo_tensor(seed=k))
    save_image(tmp_path / "painting.png", stripes_painting())
    return tmp_path


def test_cli_painting_folder_runs_the_network_and_encodes_once(run_cli, files, monkeypatch):
    from cvtools.style import arbitrary, optimize

    monkeypatch.setenv("CVTOOLS_TORCH_FREE", "0")  # the PyTorch network (tests/test_torch_free_painting.py: the other)
    calls = []
    original = arbitrary.ArbitraryStylizer.encode
    monkeypatch.setattr(arbitrary.ArbitraryStylizer, "encode",
                        lambda self, x, side=None: calls.append(1) or original(self, x, side))
    monkeypatch.setattr(optimize.PaintingStylizer, "optimize", lambda *a, **k: pytest.fail("optimised"))
    out = files / "out"
    r = run_cli("stylize", *(files / f"photo{k}.png" for k in range(3)), "-s", files / "painting.png", "-o", out,
                "-q")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == [f"photo{k}_painting.png" for k in range(3)]
    assert calls == [1]
    assert (files / "painting.png").exists()


def test_cli_blends_and_strength_modes(run_cli, files):
    photo = files / "photo0.png"
    r = run_cli("stylize", photo, "-s", "mona:0.5", "-s", "starry_night:0.5", "-q")
    assert r.exit_code == 0, r.output
    blend = np.asarray(Image.open(files / "photo0_mona+starry_night.png"), dtype=np.float32)
    r = run_cli("stylize", photo, "-s", "mona:0.7", "-s", f"{files / 'painting.png'}:0.3", "-o", files / "mix.png",
                "-q")
    assert r.exit_code == 0, r.output
    outs = {}
    for mode in ("style", "pixels"):
        target = files / f"{mode}.png"
        r = run_cli("stylize", photo, "-s", "mona", "--strength", "0.5", "--strength-mode", mode, "-o", target,
                    "-q")
        assert r.exit_code == 0, r.output
        outs[mode] = np.asarray(Image.open(target), dtype=np.float32)
    # a bundled style alone mixes pixels by default (its trained network, then the pixel mix)
    r = run_cli("stylize", photo, "-s", "mona", "--strength", "0.5", "-o", files / "default.png", "-q")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(files / "default.png"), dtype=np.float32), outs["pixels"])
    original = np.asarray(Image.open(photo), dtype=np.float32)
    mix = np.asarray(Image.open(files / "mix.png"), dtype=np.float32)
    for a, b in ((outs["style"], outs["pixels"]), (outs["style"], original), (blend, original), (mix, blend)):
        assert np.abs(a - b).mean() > 1.0  # 8-bit levels: clearly different pictures


def test_painting_size_is_the_long_side_the_painting_is_read_at(network):
    """encode(painting, long_side) reads the painting as the network's own rule would at that long
    side (the same resize, the same numbers); another side is another style; bad sizes are one line."""
    from cvtools.style.arbitrary import PAINTING_SIZE_RANGE

    arb, painting = network.network, stripes_painting(96, 128)
    own = arb.config.encoder_long_side
    try:
        arb.config.encoder_long_side = 256
        expected = arb.encode(painting)
    finally:
        arb.config.encoder_long_side = own
    assert torch.equal(arb.encode(painting, 256), expected)
    assert float((arb.encode(painting) - expected).abs().max()) > 1e-3
    for bad in (PAINTING_SIZE_RANGE[0] - 1, PAINTING_SIZE_RANGE[1] + 1, 300.0, True):
        with pytest.raises(UsageError, match="painting size"):
            arb.encode(painting, bad)


def test_cli_painting_size(run_cli, files):
    photo, painting = files / "photo0.png", files / "painting.png"
    outs = {}
    for side in (None, 128):
        target = files / f"side{side}.png"
        extra = [] if side is None else ["--painting-size", str(side)]
        r = run_cli("stylize", photo, "-s", painting, *extra, "-o", target, "-q")
        assert r.exit_code == 0, r.output
        outs[side] = np.asarray(Image.open(target), dtype=np.float32)
    assert np.abs(outs[None] - outs[128]).mean() > 0.5  # 8-bit levels: the strokes changed
    for args, message in ((["-s", "mona"], "not a trained style"),
                          (["-s", "mona", "-s", "scream"], "bundled styles keep their own scale")):
        r = run_cli("stylize", photo, *args, "--painting-size", "1024", "-o", files / "x.png", "-q")
        assert r.exit_code != 0 and message in r.output and not (files / "x.png").exists()


def test_cli_video_with_a_painting_and_stable(run_cli, files):
    av = pytest.importorskip("av")
    from cvtools.video import synthetic

    clip = synthetic.make_clip("pan", frames=6, size=(48, 64))
    src = files / "clip.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for frame in clip.frames:
            rgb = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    r = run_cli("stylize", src, "-s", files / "painting.png", "--stable", "-q")
    assert r.exit_code == 0, r.output
    with av.open(str(files / "clip_painting.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)


@pytest.mark.slow
def test_huge_paintings_are_shrunk_before_they_become_tensors(monkeypatch):
    from cvtools.style import painting

    calls = []
    original = painting.NetworkPaintingStylizer.embedding_of
    big = Image.new("RGB", (300, 200), (200, 90, 40))
    monkeypatch.setattr(painting, "HUGE_PAINTING_SIDE", 100)  # "huge" from 101 px on, for the test

    import cvtools.style.optimize as optimize

    checked = optimize._painting_tensor
    monkeypatch.setattr(optimize, "_painting_tensor", lambda p: calls.append(getattr(p, "size", None)) or checked(p))
    st = painting.NetworkPaintingStylizer([big, stripes_painting()], device="cpu")
    # the PIL painting reached the tensor conversion at 1,024 px on its short side (box filter:
    # a flat colour stays that colour); the tensor painting went as it was
    assert calls[0] == (1536, 1024) and callable(calls[1])
    assert original is painting.NetworkPaintingStylizer.embedding_of
    assert st.embedding.shape == (st.network.config.embedding_dim,)


@pytest.mark.slow
def test_bundled_encodings_are_each_painting_at_its_networks_style_size(shared):
    """A blend naming a bundled style paints it at the scale its own network does: the stored
    encoding (what its embedding was fitted from) is the painting encoded with its long side at
    that network's style size (grande_jatte 1024: Seurat's dots; the others 512). Stored at 6
    decimals; fp32 sums on another machine move an encoding by ~1e-6 of its size, so 1e-3 is the
    tolerance."""
    import torch

    from cvtools.io.decode import pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer, bundled_embedding_names, bundled_record
    from cvtools.style.records import bundled_records, load_painting

    stylizer = ArbitraryStylizer(device="cpu")
    sizes = {r.name: int(r.recipe.get("style_size", 512)) for r in bundled_records()}
    assert sizes["grande_jatte"] == 1024
    encodings = bundled_record()["style_encodings"]
    assert sorted(encodings) == bundled_embedding_names()
    for name in bundled_embedding_names():
        stored = torch.tensor(encodings[name])
        painting = pil_to_tensor(load_painting(shared / "styles" / f"{name}.jpg"))
        stylizer.config.encoder_long_side = sizes[name]
        assert float((stored - stylizer.encode(painting)).abs().max()) < 1e-3, name
        if sizes[name] != 512:  # at 512 the same painting is another style: the test would see it
            stylizer.config.encoder_long_side = 512
            assert float((stored - stylizer.encode(painting)).abs().max()) > 0.1


@pytest.mark.slow
def test_fitted_bundled_embeddings_paint_closer_than_the_encodings(shared):
    """The embeddings blends use for bundled names were fitted (tools/fit_bundled_embeddings.py) on
    crops of the first free photos: on crops of free photos the fit never saw, the network's own
    loss (the fit's objective) is lower with them than with the plain encodings, for every style
    fitted. Both are scored on the same crops, so the comparison needs no tolerance; the gap was
    10-30 % of the loss where measured."""
    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.ops import resize_long_side
    from cvtools.style.arbitrary import ArbitraryStylizer, bundled_record, bundled_style_embedding
    from cvtools.style.arbitrary_fit import FIT_CROP, StyleFitter, _crop_pool
    from cvtools.style.records import bundled_records, load_painting

    record = bundled_record()
    fit = record.get("style_embeddings_fit")
    if not fit:
        pytest.skip("the record's embeddings are the plain encodings (not fitted)")
    stylizer = ArbitraryStylizer(device="cpu")
    fitter = StyleFitter(stylizer, extra=False)  # Lite0's term alone: Lite1 is optional
    seen = set(fit["photos"])
    unseen = [p for p in sorted((shared / "data" / "photos" / "free").glob("*.jpg")) if p.name not in seen][:3]
    pool = _crop_pool([pil_to_tensor(resize_long_side(load_image(p).rgb, 512, enlarge=False)) for p in unseen],
                      FIT_CROP, per_photo=2)
    x = pool.float().div(255)
    sizes = {r.name: int(r.recipe.get("style_size", 512)) for r in bundled_records()}
    with torch.no_grad():
        for name in fit["names"]:
            target = fitter._painting_features(pil_to_tensor(load_painting(shared / "styles" / f"{name}.jpg")),
                                               sizes[name])
            losses = []
            for embedding in (torch.tensor(record["style_encodings"][name]), bundled_style_embedding(name)):
                params = stylizer.net.style_params(embedding[None]).expand(x.shape[0], -1)
                losses.append(float(fitter._loss(x, stylizer.net.transformer(x, params), target)))
            assert losses[1] < losses[0], (name, losses)


@pytest.mark.slow
@pytest.mark.parametrize("torch_free", ["1", "0"])
def test_cli_pixel_strength_mode_mixes_pixels_for_paintings_too(run_cli, files, monkeypatch, torch_free):
    """`--strength 0.5 --strength-mode pixels` with a painting: the full picture mixed half-way with
    the photo (it used to paint at half strength in style space, the same as the default mode).
    Both sides round to 8 bits once, from floats within one level: at most one level apart."""
    monkeypatch.setenv("CVTOOLS_TORCH_FREE", torch_free)
    photo, painting = files / "photo0.png", files / "painting.png"
    outs = {}
    for name, extra in (("full", []), ("pixels", ["--strength", "0.5", "--strength-mode", "pixels"]),
                        ("style", ["--strength", "0.5"])):
        r = run_cli("stylize", photo, "-s", painting, *extra, "-o", files / f"{name}.png", "-q")
        assert r.exit_code == 0, r.output
        outs[name] = np.asarray(Image.open(files / f"{name}.png"), dtype=np.float32)
    original = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32)
    expected = original + 0.5 * (outs["full"] - original)
    assert np.abs(outs["pixels"] - expected).max() <= 1.0
    assert np.abs(outs["pixels"] - outs["style"]).mean() > 1.0  # another picture than style space's


@pytest.mark.slow
def test_a_batch_paints_each_photo_as_the_one_photo_path_does(network):
    """Folders and video frames on a GPU go through the network a batch at a time
    (``stylize_batch``, ``stylize_tensor``): each picture is the one-photo path's, strength in style
    space and colour keeping included. The batch's convolutions sum in another order than one
    photo's (fp32): a picture may differ by one 8-bit level where a value sits on a rounding edge."""
    from cvtools.video.process import stylize_frames_fn

    photos = [photo_tensor(seed=s) for s in range(3)]
    pixels = [(p.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() for p in photos]
    for kw in (dict(), dict(strength=0.5, preserve_color=True)):
        alone = [network(torch.from_numpy(x).permute(2, 0, 1).float().div(255), as_uint8=True, **kw) for x in pixels]
        together = network.stylize_batch(pixels, **kw)
        frames = stylize_frames_fn(network, **kw)(pixels)  # what a video's frames get
        for a, b, f in zip(alone, together, frames):
            assert b.dtype == torch.uint8 and b.shape == a.shape == (3, 40, 52)
            assert int((a.int() - b.int()).abs().max()) <= 1
            assert int((a.permute(1, 2, 0).int() - torch.from_numpy(f).int()).abs().max()) <= 1
    assert network.batchable(40, 52) and not network.batchable(20, 52) and not network.batchable(40, 52, strength=0)
    assert network.tile_side("auto", 4000, 4000) is None and network.batch_limit(40, 52, most=5) == 5
    with pytest.raises(UsageError, match="strength"):
        network.stylize_batch(pixels, strength=0.0)


def test_a_painting_folder_goes_through_the_network_in_batches_when_asked(network, tmp_path, monkeypatch):
    """``CVTOOLS_STYLIZE_BATCH`` (the GPU's default) batches a folder with a painting as it does a
    bundled style: same-size photos share a pass, a tiny one goes the one-photo way."""
    from cvtools import batch
    from cvtools.io.naming import Outputs
    from cvtools.style.job import stylize_provenance, stylize_work

    sizes = [(52, 40)] * 3 + [(20, 16)] + [(52, 40)]
    paths = []
    for i, (w, h) in enumerate(sizes):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray((photo_tensor(h, w, seed=i).permute(1, 2, 0) * 255).round().byte().numpy()).save(paths[-1])
    calls, real = [], network.stylize_batch
    monkeypatch.setattr(network, "stylize_batch", lambda images, **k: calls.append(len(images)) or real(images, **k))
    outputs = Outputs(stylize_provenance("painting"))
    work = stylize_work(network, output=str(tmp_path / "out"), many=True, inputs=paths, outputs=outputs, batch=3,
                        ext=".png", name="painting")
    report = batch.run([str(p) for p in paths], work, outputs=outputs)
    assert report.failed == [] and len(report.done) == 5
    assert calls == [3, 1], calls  # the tiny photo went alone, the way __call__ paints it larger
    for p in paths:
        out = np.asarray(Image.open(tmp_path / "out" / f"{p.stem}_painting.png")).astype(int)
        alone = network(Image.open(p).convert("RGB"), as_uint8=True).permute(1, 2, 0).numpy().astype(int)
        assert out.shape == alone.shape and np.abs(out - alone).max() <= 1, p.name


def test_one_image_calls_refuse_batches_and_take_numpy_arrays(network):
    """The one-image call would paint only the first of a batch: several images are refused in one
    line (a batch of one is unwrapped); an H×W×3 uint8 array is taken as a picture, as PIL is."""
    photo = photo_tensor()
    with pytest.raises(UsageError, match="one photo at a time"):
        network(torch.stack([photo, photo]))
    assert torch.equal(network(photo[None]), network(photo))
    pixels = (photo.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert torch.equal(network(pixels, as_uint8=True), network(Image.fromarray(pixels), as_uint8=True))
    with pytest.raises(UsageError, match="H×W×3 uint8"):
        network(pixels.astype(np.float32))
    with pytest.raises(UsageError, match="a photo must be"):
        network("photo.jpg")


def test_embeddings_with_nan_and_fits_without_paintings_are_refused(network):
    from cvtools.style.painting import NetworkPaintingStylizer

    bad = torch.full((network.network.config.embedding_dim,), float("nan"))
    with pytest.raises(UsageError, match="NaN or infinite"):
        network.network.stylize(photo_tensor(), bad)
    with pytest.raises(UsageError, match="NaN or infinite"):
        NetworkPaintingStylizer([bad], device="cpu")
    with pytest.raises(UsageError, match="numbers, not shape"):
        NetworkPaintingStylizer([bad[:7]], device="cpu")
    with pytest.raises(UsageError, match="these styles have none"):
        NetworkPaintingStylizer([network.embedding], device="cpu", fit_steps=3, fit_photos=[photo_tensor()])


def test_cli_paintings_obey_max_pixels_and_a_lone_weight_is_refused(run_cli, files):
    painting, photo = files / "painting.png", files / "photo0.png"
    w, h = Image.open(painting).size
    r = run_cli("stylize", photo, "-s", painting, "--max-pixels", w * h - 1, "-q")
    assert r.exit_code != 0 and "painting.png" in r.output and "limit" in r.output, r.output
    r = run_cli("stylize", photo, "-s", f"{painting}:0.5", "-q")
    assert r.exit_code != 0 and "only for blending" in r.output, r.output
    r = run_cli("stylize", photo, files / "photo1.png", "-s", painting, "-o", files / "both.png")
    assert r.exit_code != 0 and "names one file" in r.output and not (files / "both.png").exists(), r.output


@pytest.mark.slow
def test_stylize_files_takes_paintings_and_blends_as_the_command_does(files, tmp_path):
    """The library's stylize_files: a painting file and a blend of a painting with a bundled name
    run the any-painting network (a re-run skips what is done); a lone weight and a blend with a
    train-style record are one-line errors before any photo is read."""
    from cvtools.style.job import stylize_files
    from cvtools.style.painting import NetworkPaintingStylizer

    photo, painting = files / "photo0.png", files / "painting.png"
    out = tmp_path / "out"
    report = stylize_files([photo], style=str(painting), output=f"{out}/", device="cpu", precision="fp32")
    assert report.failed == [] and (out / "photo0_painting.png").exists()
    alone = NetworkPaintingStylizer([str(painting)], device="cpu", precision="fp32")(Image.open(photo), as_uint8=True)
    written = torch.from_numpy(np.array(Image.open(out / "photo0_painting.png"))).permute(2, 0, 1)
    assert int((written.int() - alone.int()).abs().max()) <= 1
    blend = [f"{painting}:0.7", ("mona", 0.3)]
    report = stylize_files(photo, style=blend, output=f"{out}/", device="cpu", strength=0.5)
    assert report.failed == [] and (out / "photo0_painting+mona.png").exists()
    assert stylize_files(photo, style=blend, output=f"{out}/", device="cpu", strength=0.5).skipped == [str(photo)]
    with pytest.raises(UsageError, match="only for blending"):
        stylize_files(photo, style=f"{painting}:0.5", output=f"{out}/")
