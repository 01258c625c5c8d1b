"""The any-painting network exported to ONNX (encoder + transformer) and run by onnxruntime
(issue 28, deliverable 4), against the PyTorch network.

Tolerances: the export's own checks hold the transformer to 1e-4 on outputs in [0, 1] and the
encoder to 1e-4 of the embedding's scale (export.embedding_bound). End to end, the onnxruntime
result with its own embedding e_o, against PyTorch's with e_t, splits by the triangle inequality:
|ort(e_o) - torch(e_t)| <= |ort(e_o) - torch(e_o)| + |torch(e_o) - torch(e_t)|: the first term is
the transformer's bound, the second is computed here exactly, in PyTorch.
"""

import importlib.util

import pytest

# slow: every test but the last shares one real export (73 s on 2 busy cores), the last makes its own (20 s)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs onnx, onnxscript and onnxruntime (pip install 'cvtools[onnx]')")]

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The bundled network exported once into a fresh cache (checked on the sample photos)."""
    import os

    from cvtools.export import cached_arbitrary_export

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("CVTOOLS_CACHE_DIR")
    os.environ["CVTOOLS_CACHE_DIR"] = str(cache)
    try:
        yield cached_arbitrary_export()
    finally:
        if old is None:
            os.environ.pop("CVTOOLS_CACHE_DIR")
        else:
            os.environ["CVTOOLS_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def torch_net():
    from cvtools.style.arbitrary import ArbitraryStylizer

    return ArbitraryStylizer(device="cpu")


def _photo(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
    return (smooth + 0.1 * torch.rand(3, h, w, generator=g)).clamp(0, 1)


def test_files_metadata_and_shapes(exported, torch_net):
    import onnxruntime as ort

    from cvtools.export import read_metadata
    from cvtools.weights import sha256_file

    encoder, transformer = exported
    assert encoder.name.endswith("_encoder.onnx") and transformer.name.endswith("_transformer.onnx")
    for path, kind in ((encoder, "arbitrary_encoder"), (transformer, "arbitrary_transformer")):
        meta = read_metadata(path)
        assert meta["cvtools_kind"] == kind
        assert meta["weights_sha256"] == sha256_file(torch_net_weights())
        assert set(meta) >= {"config", "embedding_dim", "encoder_size", "style_embeddings", "input", "output"}
    assert "outside the graph" in read_metadata(encoder)["resize"]
    s = ort.InferenceSession(str(transformer), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == ["image", "embedding"]
    # any batch and size from 16 px, odd sizes included: the output has the input's size
    x = _photo(17, 23, 0)[None].repeat(2, 1, 1, 1).numpy()
    e = torch.randn(2, torch_net.config.embedding_dim).numpy()
    assert s.run(None, {"image": x, "embedding": e})[0].shape == (2, 3, 17, 23)


def test_stylizer_checks_its_input_as_every_stylizer_does(exported):
    """QA: OnnxArbitraryStylizer took 0-255 floats and NaN without a word (a wrong picture) and
    clipped a 16-bit PIL image near-white: it now goes through one_image like the rest."""
    import numpy as np
    from PIL import Image

    from cvtools.errors import UsageError
    from cvtools.style.onnx_arbitrary import OnnxArbitraryStylizer

    st = OnnxArbitraryStylizer([("mona", 1.0)], device="cpu")
    photo = _photo(40, 48, 3)
    with pytest.raises(UsageError, match="divide 8-bit values by 255"):
        st(photo * 255)
    with pytest.raises(UsageError, match="NaN or infinite"):
        st(torch.full((3, 24, 32), float("nan")))
    u8 = (photo * 255).round().to(torch.uint8)
    assert torch.equal(st(u8), st(u8.float() / 255))
    grey = np.asarray(u8[0])
    wide = Image.fromarray(grey.astype(np.uint16) * 257)  # mode I;16
    assert wide.mode.startswith("I;16")
    assert torch.equal(st(wide, as_uint8=True), st(Image.fromarray(grey).convert("RGB"), as_uint8=True))


def torch_net_weights():
    from cvtools.style.arbitrary import bundled_weights

    return bundled_weights()[0]


def test_transformer_matches_pytorch_on_odd_sizes(exported, torch_net):
    """Sizes the export never saw (not multiples of the stride 8), a painting's style.

    At 16 px the bottleneck's instance norms see 2×2 values of a smooth photo: a tiny variance
    that magnifies every rounding, so fp32 itself is far from exact there (PyTorch's own fp32
    picture lies 2.4e-4 from the float64 one with the 2026-12-07 weights, ~1e-5 before). Both
    runtimes round fp32 in their own order, so by the triangle inequality through the float64
    picture the file may differ from PyTorch by its own error plus PyTorch's: held to FP32_BOUND
    plus twice PyTorch's measured fp32 error (~1e-6 at the other sizes: FP32_BOUND governs)."""
    import copy

    from cvtools.export import FP32_BOUND, cpu_session

    session = cpu_session(exported[1])
    emb = torch_net.encode(_photo(300, 220, 9))
    exact = copy.deepcopy(torch_net.net.transformer).double()
    params = torch_net.net.style_params(emb[None]).double()
    for i, (h, w) in enumerate([(16, 16), (37, 61), (96, 130)]):
        x = _photo(h, w, i)
        ref = torch_net.stylize(x, emb)
        with torch.no_grad():
            fp32_error = float((ref.double() - exact(x[None].double(), params)[0]).abs().max())
        ours = session.run(None, {"image": x[None].numpy(), "embedding": emb[None].numpy()})[0][0]
        assert float((torch.from_numpy(ours) - ref).abs().max()) <= FP32_BOUND + 2 * fp32_error


def test_encoder_matches_pytorch(exported, torch_net):
    from cvtools.export import cpu_session, embedding_bound
    from cvtools.style.arbitrary import encoder_input

    session = cpu_session(exported[0])
    for seed, (h, w) in enumerate([(256, 256), (300, 517), (600, 257)]):
        painting = _photo(h, w, 20 + seed)
        ref = torch_net.encode(painting)
        x = encoder_input(painting[None], torch_net.config)
        ours = torch.from_numpy(session.run(None, {"painting": x.numpy()})[0][0])
        assert float((ours - ref).abs().max()) <= embedding_bound(ref)


@pytest.mark.parametrize("strength,preserve", [(1.0, False), (0.5, False), (0.8, True)])
def test_stylizer_matches_pytorch_network(exported, torch_net, strength, preserve):
    """OnnxArbitraryStylizer (a blend of a bundled name and a painting) against the PyTorch
    network fed the same sources, within the bound derived in the module docstring."""
    from cvtools.export import FP32_BOUND, embedding_bound
    from cvtools.style.arbitrary import bundled_style_embedding
    from cvtools.style.onnx_arbitrary import OnnxArbitraryStylizer
    from cvtools.style.stylize import finish_pixels

    painting = _photo(200, 260, 5)
    st = OnnxArbitraryStylizer([("mona", 0.7), (painting, 0.3)], device="cpu")
    assert st.name == "mona+painting" and st.last_tiles == 0
    torch_blend = 0.7 * bundled_style_embedding("mona") + 0.3 * torch_net.encode(painting)
    assert float((st.embedding - torch_blend).abs().max()) <= embedding_bound(torch_blend)

    photo = _photo(72, 100, 7)
    ours = st(photo, strength=strength, preserve_color=preserve)
    own_o, own_t = st.encode(photo), torch_net.encode(photo)
    mix_o = (1 - strength) * own_o + strength * st.embedding if strength < 1 else st.embedding
    mix_t = (1 - strength) * own_t + strength * torch_blend if strength < 1 else torch_blend
    ref = finish_pixels(torch_net.stylize(photo, mix_t), photo, 1.0, preserve)
    sensitivity = float((finish_pixels(torch_net.stylize(photo, mix_o), photo, 1.0, preserve) - ref).abs().max())
    diff = float((ours - ref).abs().max())
    assert diff <= FP32_BOUND + sensitivity, (diff, sensitivity)
    assert ours.shape == photo.shape


def test_stylizer_edges(exported):
    from cvtools.errors import UsageError
    from cvtools.style.onnx_arbitrary import OnnxArbitraryStylizer

    st = OnnxArbitraryStylizer("starry_night")
    tiny = _photo(5, 9, 3)
    out = st(tiny)  # painted at 32 px and brought back
    assert out.shape == tiny.shape and bool(((out >= 0) & (out <= 1)).all())
    assert torch.equal(st(tiny, strength=0.0), tiny)
    assert st(_photo(20, 24, 1), as_uint8=True).dtype == torch.uint8
    with pytest.raises(UsageError, match="strength"):
        st(tiny, strength=1.5)
    with pytest.raises(UsageError, match="embedding must be"):
        OnnxArbitraryStylizer(torch.zeros(7))
    # an embedding saved before the style tokens: zeros in their places, as the PyTorch class does
    d, tokens = st.config.embedding_dim, st.style_tokens
    old = torch.linspace(-1, 1, d - tokens)
    assert tokens > 0 and torch.equal(OnnxArbitraryStylizer(old).embedding, torch.cat([old, torch.zeros(tokens)]))
    with pytest.raises(UsageError, match="weight"):
        OnnxArbitraryStylizer([("mona", -1.0)])
    with pytest.raises(UsageError, match="onnxruntime"):
        OnnxArbitraryStylizer("mona", precision="fp16")


def test_export_cli_writes_the_pair(tmp_path, run_cli, exported, monkeypatch):
    """`cvtools export --arbitrary`: the CLI hands its options to export_arbitrary and prints each
    check; a second run refuses to overwrite. (The export itself, checks included, is the module
    fixture's: a second real export would add ~3 minutes on 2 cores and test nothing new.)"""
    import shutil

    from cvtools import export as export_module

    real = export_module.export_arbitrary
    calls = []

    def fake(path, weights=None, **kwargs):
        calls.append((path, weights, kwargs))
        if kwargs.get("overwrite") is False:  # the real refusal, before any export work
            for target in export_module.arbitrary_paths(path):
                export_module.check_target(target, False, [])
        encoder, transformer = export_module.arbitrary_paths(path)
        shutil.copy(exported[0], encoder)
        shutil.copy(exported[1], transformer)
        return reports

    reports = [export_module.ExportReport(path=p, kind=k, name="any", precision="fp32", opset=18, sha256="0" * 64,
                                          bytes=1024,
                                          seconds=0.0,
                                          checks=[export_module.CheckResult(image="p.png", size=(64, 48),
                                                                            max_abs_diff=1e-6, bound=1e-4, note="ok")])
               for p, k in zip(exported, ("arbitrary_encoder", "arbitrary_transformer"))]
    monkeypatch.setattr(export_module, "export_arbitrary", fake)
    target = tmp_path / "any.onnx"
    check = _write(tmp_path / "p.png", _photo(48, 64, 2))
    result = run_cli("export", "--arbitrary", "-o", str(target), "--check-image", str(check))
    assert result.exit_code == 0, result.stderr
    assert calls[0][0] == str(target) and calls[0][1] is None
    assert calls[0][2]["check"] is True and [str(p) for p in calls[0][2]["check_images"]] == [str(check)]
    assert (tmp_path / "any_encoder.onnx").is_file() and (tmp_path / "any_transformer.onnx").is_file()
    assert result.stdout.count("max |onnxruntime - PyTorch|") == 2
    monkeypatch.setattr(export_module, "export_arbitrary", real)
    again = run_cli("export", "--arbitrary", "-o", str(target), "--no-check")
    assert again.exit_code != 0 and "exists" in again.stderr


def _write(path, tensor):
    from cvtools.io.atomic import save_image

    save_image(path, tensor)
    return path


def test_cli_engine_onnxruntime_with_a_painting(tmp_path, run_cli, exported):
    """`stylize photo -s painting.png --engine onnxruntime`: the exported network writes the photo;
    --refine is refused with it."""
    photo = _write(tmp_path / "photo.png", _photo(40, 56, 11))
    painting = _write(tmp_path / "art.png", _photo(120, 90, 12))
    result = run_cli("stylize", str(photo), "-s", str(painting), "--engine", "onnxruntime", "--strength", "0.7")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "photo_art.png").is_file()
    refused = run_cli("stylize", str(photo), "-s", str(painting), "--engine", "onnxruntime", "--refine")
    assert refused.exit_code != 0 and "--refine" in refused.stderr


def test_a_network_with_decoder_blocks_exports_its_transformer(tmp_path):
    """``decoder_blocks`` 1 (a tiny random network, no cached export): the exported transformer
    graph runs the blocks after each upsampling stage as PyTorch does, within FP32_BOUND."""
    from cvtools.export import FP32_BOUND, _arbitrary_transformer_form, _to_onnx_inputs, cpu_session
    from cvtools.style.arbitrary import ArbitraryConfig, ArbitraryStyleNet

    torch.manual_seed(0)
    config = ArbitraryConfig(channels=(8, 16, 24), residual_blocks=1, embedding_dim=6, encoder_hidden=12,
                             decoder_blocks=1).check()
    net = ArbitraryStyleNet(config).eval()
    with torch.no_grad():  # the blocks' second norms not at zero: the blocks are not the identity
        net.heads.weight.normal_(0, 0.3)
    batch = torch.export.Dim("batch", min=1)
    proto = _to_onnx_inputs(
        _arbitrary_transformer_form(net), [torch.rand(2, 3, 35, 39), torch.randn(2, 6)], ["image", "embedding"],
        {"image": {0: batch, 2: torch.export.Dim("height", min=16), 3: torch.export.Dim("width", min=16)},
         "embedding": {0: batch}}, "stylized", None)
    path = tmp_path / "deep_transformer.onnx"
    path.write_bytes(proto.SerializeToString())
    session = cpu_session(path)
    x, e = torch.stack([_photo(37, 61, 1), _photo(37, 61, 2)]), torch.randn(2, 6)
    with torch.no_grad():
        ref = net(x, e)
    ours = torch.from_numpy(session.run(None, {"image": x.numpy(), "embedding": e.numpy()})[0])
    assert ours.shape == ref.shape and float((ours - ref).abs().max()) <= FP32_BOUND
