"""``cvtools export`` and ``--engine onnxruntime`` on a tiny random style (width 0.125, 1 residual block).

onnxruntime is the reference runtime for these checks (the ``test`` extra installs it with onnx
and onnxscript). Bounds: fp32 outputs in [0, 1] within 1e-4 of PyTorch (the two runtimes differ by
summation order only: ~1e-6 measured, the remaining factor covers instance-norm variance
formulas on flat images); fp16 within :func:`cvtools.export.check_bound` (twice PyTorch's own
fp16 error on the same image).
"""

import json
import sys

import pytest
import torch
from fresh import in_fresh_process

from cvtools.errors import CvtoolsError, ImageError, UsageError
from cvtools.style.network import TransformerNet
from cvtools.style.records import StyleRecord, save_style_weights

PROVENANCE = {"source": "a test pattern", "terms": "made by the test"}


def _tiny_style(d, seed=0):
    """A narrow random style with instance norms that are not the identity, and its record."""
    torch.manual_seed(seed)
    net = TransformerNet(width=0.125, residual_blocks=1).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    d.mkdir(parents=True, exist_ok=True)
    sha = save_style_weights(net, d / "tiny.safetensors", name="tiny")
    rec = StyleRecord(name="tiny", title="Noise", artist="pytest", year="2026", provenance=dict(PROVENANCE),
                      weights={"file": "tiny.safetensors", "sha256": sha},
                      network={"width": 0.125, "residual_blocks": 1})
    rec.save(d / "tiny.json")
    return d / "tiny.json"


def _images(seed=1):
    g = torch.Generator().manual_seed(seed)
    # three sizes: a multiple of 4, odd sizes (the in-graph padding), the smallest side allowed
    return [(f"img{i}", torch.rand(3, h, w, generator=g)) for i, (h, w) in enumerate([(48, 64), (37, 53), (16, 23)])]


@pytest.fixture(scope="module", autouse=True)
def one_export_per_network():
    """torch.onnx.export runs once per distinct network in this module (30-130 s of the module's
    time on 2 cores was the same tiny network exported again by the tests of naming, overwriting,
    the CLI's report, the failed check and the engine's cache): a later export of a module with the
    same structure, weights, dtypes, sizes and opset gets a copy of the ModelProto the real exporter
    made. Everything after the exporter (metadata, the ONNX checker, onnxruntime's check against
    PyTorch, the atomic write) still runs in every test."""
    import hashlib

    import cvtools.export as ex

    real, made = ex._to_onnx, {}

    def key(module, *args, **kwargs):
        digest = hashlib.sha256(repr(module).encode())
        for name, tensor in module.state_dict().items():
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return (digest.hexdigest(), type(module).__qualname__) + args + tuple(sorted(kwargs.items()))

    def once(module, *args, **kwargs):
        import onnx

        ex.require_exporter()  # a missing exporter is still said, as the real function says it
        k = key(module, *args, **kwargs)
        if k not in made:
            made[k] = real(module, *args, **kwargs)
        copy = onnx.ModelProto()
        copy.CopyFrom(made[k])  # _write adds the metadata to the proto it is given
        return copy

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "_to_onnx", once)
        yield made


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_style(tmp_path_factory.mktemp("style"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the engine tests (an export costs seconds)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    from cvtools.export import export_style

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return export_style(tiny, path, check_images=_images())


@pytest.mark.slow
def test_export_matches_pytorch_for_any_size_and_batch(exported, tiny):
    import onnx
    import onnxruntime as ort

    from cvtools.style.stylize import Stylizer
    from cvtools.weights import sha256_file

    report = exported
    assert report.ok and len(report.checks) == 3
    assert all(c.max_abs_diff <= 1e-4 for c in report.checks)
    assert [c.size for c in report.checks] == [(64, 48), (53, 37), (23, 16)]
    assert report.sha256 == sha256_file(report.path)
    # an independent run of the file: a batch of 2 at a size not seen during export or check
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 29, 70, generator=torch.Generator().manual_seed(5))
    out = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    ref = Stylizer(tiny, device="cpu", precision="fp32").stylize_tensor(x).float()
    assert out.shape == (2, 3, 29, 70) and out.dtype == torch.float32
    assert float((out - ref).abs().max()) <= 1e-4
    # dynamic axes and the opset are what the report says
    model = onnx.load(str(report.path))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert report.opset == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18


@pytest.mark.slow
def test_metadata_carries_the_record(exported, tiny):
    from cvtools.export import read_metadata

    meta = read_metadata(exported.path)
    record = json.loads(tiny.read_text())
    assert meta["cvtools_kind"] == "style" and meta["name"] == "tiny" and meta["artist"] == "pytest"
    assert json.loads(meta["provenance"]) == PROVENANCE
    assert meta["weights_sha256"] == record["weights"]["sha256"]
    assert json.loads(meta["record"])["weights"]["sha256"] == record["weights"]["sha256"]
    assert meta["precision"] == "fp32" and meta["opset"] == str(exported.opset)
    assert meta["torch_version"] == torch.__version__


@pytest.mark.slow
def test_fp16_export_is_within_its_bound(tiny, tmp_path):
    import onnx

    from cvtools.export import FP16_FLOOR, export_style

    report = export_style(tiny, tmp_path / "tiny16.onnx", precision="fp16", check_images=_images())
    assert report.ok
    for c in report.checks:
        own = float(c.note.split(":")[1])  # PyTorch's own fp16 error on that image
        assert c.bound == pytest.approx(max(2 * own, FP16_FLOOR), rel=0.02)
        assert c.max_abs_diff <= c.bound
    model = onnx.load(str(report.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert halves, "fp16 weights expected"


@pytest.mark.slow
def test_failed_check_writes_nothing(tiny, tmp_path, monkeypatch):
    import cvtools.export as ex

    monkeypatch.setattr(ex, "FP32_BOUND", 0.0)  # nothing can pass: exact equality is not expected
    target = tmp_path / "out" / "tiny.onnx"
    with pytest.raises(CvtoolsError, match="differs from PyTorch"):
        ex.export_style(tiny, target, check_images=_images()[:1])
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file left


@pytest.mark.slow
def test_outputs_are_never_overwritten_without_overwrite(exported, tiny, tmp_path):
    from cvtools.export import export_style

    existing = tmp_path / "tiny.onnx"
    existing.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="pass overwrite=True"):
        export_style(tiny, existing, check=False)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(UsageError, match=r"\.onnx"):
        export_style(tiny, tmp_path / "tiny.png", check=False)
    with pytest.raises(UsageError, match="precision"):
        export_style(tiny, tmp_path / "x.onnx", precision="bf16", check=False)
    report = export_style(tiny, existing, overwrite=True, check=False)
    assert existing.read_bytes()[:8] != b"keep me" and report.checks == []


@pytest.mark.slow
def test_cli_prints_checks_and_sha256(tiny, tmp_path, run_cli):
    out = tmp_path / "t.onnx"
    imgs = []
    from PIL import Image

    for i, (w, h) in enumerate([(40, 32), (33, 17)]):
        p = tmp_path / f"p{i}.png"
        Image.effect_noise((w, h), 60).convert("RGB").save(p)
        imgs += ["--check-image", p]
    r = run_cli("export", "--style", tiny, "-o", out, *imgs)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum(line.startswith("check p") for line in lines) == 2
    from cvtools.weights import sha256_file

    assert lines[-1] == f"sha256 {sha256_file(out)}"
    # again: refused in one line, the file untouched
    before = out.read_bytes()
    r = run_cli("export", "--style", tiny, "-o", out, "--no-check")
    assert r.exit_code == 1 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == before
    for args, text in [(("--style", "no_such_style"), "unknown style"), ((), "--style NAME or --backbone"),
                       (("--style", tiny, "--backbone", "resnet18"), "one of them")]:
        r = run_cli("export", *args, "-o", tmp_path / "z.onnx")
        assert r.exit_code != 0 and text in r.stderr, r.stderr


def test_missing_packages_give_one_line_install_hints(monkeypatch, tiny, tmp_path, run_cli):
    from cvtools.export import require_exporter, require_onnxruntime

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(UsageError, match=r"pip install 'cvtools\[onnx\]'"):
        require_onnxruntime()
    r = run_cli("stylize", "x.jpg", "--engine", "onnxruntime", "-s", tiny)
    assert r.exit_code == 1 and "pip install" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(UsageError, match="onnxscript"):
        require_exporter()


@pytest.mark.slow
def test_onnxruntime_engine_matches_and_caches(tiny, cache, monkeypatch):
    import cvtools.export as ex
    from cvtools.style.onnxruntime_engine import OnnxRuntimeStylizer
    from cvtools.style.stylize import Stylizer

    monkeypatch.setenv("CVTOOLS_CACHE_DIR", str(cache))
    for f in cache.rglob("*.onnx*"):  # start from an empty cache, whatever ran before
        f.unlink()
    notes = []
    engine = OnnxRuntimeStylizer(tiny, on_note=notes.append)
    assert len(notes) == 1 and "exporting tiny" in notes[0] and engine.onnx_path.is_file()
    torch_path = Stylizer(tiny, device="cpu", precision="fp32")
    x = torch.rand(3, 45, 61, generator=torch.Generator().manual_seed(3))
    for kwargs in ({}, {"strength": 0.5, "preserve_color": True}):
        assert float((engine(x, **kwargs) - torch_path(x, **kwargs)).abs().max()) <= 1e-4
    # tiled images go through the PyTorch network (shared statistics): the same as the torch engine
    engine.overlap = torch_path.overlap = 8
    a = engine(torch.rand(3, 40, 70), tile=32)
    assert engine.last_tiles > 1 and a.shape == (3, 40, 70)
    # a second engine reuses the file; a damaged cache file is exported again
    monkeypatch.setattr(ex, "export_style", lambda *a, **k: pytest.fail("exported again"))
    OnnxRuntimeStylizer(tiny, on_note=notes.append)
    assert len(notes) == 1
    monkeypatch.undo()
    monkeypatch.setenv("CVTOOLS_CACHE_DIR", str(cache))
    engine.onnx_path.write_bytes(engine.onnx_path.read_bytes()[:-100])
    again = OnnxRuntimeStylizer(tiny, on_note=notes.append)
    assert len(notes) == 2 and float((again(x) - torch_path(x)).abs().max()) <= 1e-4
    with pytest.raises(UsageError, match="CPU"):
        OnnxRuntimeStylizer(tiny, device="cuda")


@pytest.mark.slow
def test_cli_stylize_with_onnxruntime(tiny, tmp_path, cache, monkeypatch, run_cli):
    from PIL import Image

    monkeypatch.setenv("CVTOOLS_CACHE_DIR", str(cache))  # exported by the test above, or now
    src = tmp_path / "photo.png"
    Image.effect_noise((40, 30), 50).convert("RGB").save(src)
    r1 = run_cli("stylize", src, "-s", tiny, "--engine", "onnxruntime", "-o", tmp_path / "a.png", "-q")
    # the PyTorch engine in fp32 (its CPU default is bf16 where the CPU has it natively)
    r2 = run_cli("stylize", src, "-s", tiny, "--precision", "fp32", "-o", tmp_path / "b.png", "-q")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.stderr + r2.stderr
    import numpy as np

    a = torch.from_numpy(np.asarray(Image.open(tmp_path / "a.png").convert("RGB"), dtype=np.int16))
    b = torch.from_numpy(np.asarray(Image.open(tmp_path / "b.png").convert("RGB"), dtype=np.int16))
    # 8-bit results of outputs within 1e-4: a pixel may round the other way, by one level at most
    assert int((a - b).abs().max()) <= 1
    r = run_cli("stylize", src, "-s", tiny, "--engine", "onnxruntime", "--device", "cuda", "-o", tmp_path / "c.png")
    assert r.exit_code == 1 and "CPU" in r.stderr


@pytest.mark.slow
def test_backbone_export_matches_pytorch(tmp_path):
    """--backbone: resnet18 with random weights (no download), BatchNorm folded, normalisation
    inside; logits within 1e-4 of their scale."""
    import json

    from cvtools.export import export_backbone, read_metadata

    report = export_backbone("resnet18", tmp_path / "r18.onnx", weights="random", check_images=_images()[:2])
    assert report.ok and len(report.checks) == 2 and all(c.bound >= 1e-4 for c in report.checks)
    meta = read_metadata(report.path)
    assert meta["cvtools_kind"] == "backbone" and meta["fused"] == "True"
    assert len(json.loads(meta["categories"])) == 1000


# ----------------------------------------------------------------------------- the output, checked first


def _one_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, (result.exit_code, result.stderr)
    return lines[0]


def test_export_never_overwrites_an_input(tmp_path, run_cli):
    from PIL import Image

    pics = tmp_path
    check = pics / "photo.onnx"  # a PNG inside, whatever its name says
    Image.effect_noise((40, 32), 60).convert("RGB").save(check, "PNG")
    before = check.read_bytes()
    line = _one_line(run_cli("export", "--style", "mona", "--check-image", check, "-o", check, "--overwrite"))
    assert "photo.onnx: is a check image, an input of this export" in line
    assert check.read_bytes() == before
    # a record whose weights file is named like the output: refused before the weights are read
    from cvtools.style.records import resolve_style

    record = json.loads(resolve_style("mona").path.read_text())
    record["weights"]["file"] = "w.onnx"
    (pics / "w.json").write_text(json.dumps(record))
    (pics / "w.onnx").write_bytes(b"weights")
    line = _one_line(run_cli("export", "--style", pics / "w.json", "-o", pics / "w.onnx", "--overwrite", "--no-check"))
    assert "is the style's weights, an input of this export" in line
    assert (pics / "w.onnx").read_bytes() == b"weights"


@pytest.mark.slow
def test_export_takes_the_projects_record_by_path(tmp_path, run_cli, monkeypatch):
    """QA: `export -s styles/mona.json` looked for styles/mona.safetensors (it is in weights/)."""
    from conftest import ROOT

    monkeypatch.chdir(ROOT)
    r = run_cli("export", "-s", "styles/mona.json", "-o", tmp_path / "mona.onnx", "--no-check")
    assert r.exit_code == 0 and (tmp_path / "mona.onnx").stat().st_size > 100_000, r.output


def test_export_to_an_unwritable_place_is_refused_before_torch(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    calls = [["export", "--style", "mona", "-o", str(tmp_path / "file" / "mona.onnx")],
             ["export", "--backbone", "efficientnet_lite0", "-o", str(tmp_path / "file" / "sub" / "b.onnx")]]
    results, torch_loaded = in_fresh_process(calls)
    for code, lines in results:
        assert code == 1 and len(lines) == 1 and "cannot create the output directory" in lines[0], lines
    assert not torch_loaded


def test_export_into_a_read_only_folder_is_refused_first(tmp_path):
    import os

    from cvtools.export import check_target

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="not writable"):
            check_target(folder / "new" / "x.onnx")
    finally:
        folder.chmod(0o755)


def test_export_into_a_folder_that_takes_no_files_is_refused_before_torch():
    """QA: `-o /proc/x.onnx` failed with "cannot write" only after ~16 s of exporting: root's
    os.access says yes to /proc; a probe file says no, at once."""
    import os

    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    results, torch_loaded = in_fresh_process([["export", "--style", "mona", "-o", "/proc/x.onnx"]])
    code, lines = results[0]
    assert code == 1 and len(lines) == 1 and "/proc/x.onnx" in lines[0] and "cannot write there" in lines[0], lines
    assert not torch_loaded
    assert not [name for name in os.listdir("/proc") if name.startswith(".cvtools-")]


def test_export_into_a_folder_writes_the_styles_name_there(tiny, tmp_path, run_cli):
    """QA: `-o d/` (an existing folder, or a path ending in /) said "the output must be a .onnx
    file"; it writes d/NAME.onnx and says so."""
    folder = tmp_path / "d"
    folder.mkdir()
    for given, made in [(str(folder), folder / "tiny.onnx"), (str(tmp_path / "new") + "/", tmp_path / "new" / "tiny.onnx")]:
        result = run_cli("export", "-s", tiny, "-o", given, "--no-check")
        assert result.exit_code == 0, result.output
        assert made.is_file() and f"\n{made}: style tiny, fp32" in result.stdout, result.stdout
    result = run_cli("export", "-s", tiny, "-o", str(folder) + "/", "--no-check")  # there now: refused as before
    assert result.exit_code != 0 and "tiny.onnx: exists" in result.stderr, result.output


def test_an_onnx_file_as_style_says_how_to_run_one(tmp_path):
    """QA: `stylize photo.png -s ex/mona.onnx` (a file from `cvtools export`) was read as a
    painting: "not a recognised image file (cvtools reads JPEG, ...)". One line naming it says
    an .onnx file is not a style and how --engine onnxruntime runs one."""
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 24), (90, 120, 150)).save(photo)
    (tmp_path / "mona.onnx").write_bytes(b"\x08\x07 an ONNX protobuf")
    (tmp_path / "mine_fp16.onnx").write_bytes(b"\x08\x07 an ONNX protobuf")
    calls = [["stylize", photo, "-s", tmp_path / "mona.onnx", "-o", tmp_path / "out.jpg"],
             ["stylize", photo, "-s", tmp_path / "mine_fp16.onnx:0.5", "-s", "mona", "-o", tmp_path / "out.jpg"]]
    results, torch_loaded = in_fresh_process(calls)
    for (code, lines), (onnx_file, name) in zip(results, [("mona.onnx", "-s mona "), ("mine_fp16.onnx", "-s NAME ")]):
        assert code != 0 and len(lines) == 1, lines
        line = lines[0]
        assert str(tmp_path / onnx_file) in line and "an .onnx file is not a style" in line, line
        assert "--engine onnxruntime" in line and name in line and "not a recognised image" not in line, line
    assert not torch_loaded and not (tmp_path / "out.jpg").exists()
