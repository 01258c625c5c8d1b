"""Bundled styles on the CPU without torch (issue 28): the shipped ONNX graphs through
onnxruntime (cvtools.style.fast_cpu), against the PyTorch Stylizer.

Tolerance: each shipped graph was checked against the PyTorch fp32 Stylizer within 1e-4 (its
manifest records the measured difference, ~1e-5), and both paths then round x·255 to 8 bits the
same way, so a pixel can differ by at most one level (only where x·255 lies within 255e-4 of a
rounding boundary): max |difference| <= 1, and such pixels are rare.
"""

import importlib.util
import json
import subprocess
import sys

import pytest

from cvtools.style import fast_cpu

needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                               reason="needs onnxruntime (pip install 'cvtools[onnx]')")


def test_constants_equal_the_torch_modules():
    from cvtools.style import network, stylize

    assert fast_cpu.MIN_SIDE == stylize.MIN_SIDE
    assert fast_cpu.TILE_OVERLAP == stylize.TILE_OVERLAP
    assert fast_cpu.CPU_ACTIVATION_BUDGET == stylize.CPU_ACTIVATION_BUDGET
    assert fast_cpu.BASE_CHANNELS == network.BASE_CHANNELS
    assert stylize.cpu_has_native_bf16 is fast_cpu.cpu_has_native_bf16  # one definition, not two copies


def test_every_bundled_style_ships_a_pinned_graph():
    from cvtools.style.records import bundled_records

    manifest = fast_cpu.read_manifest()
    for record in bundled_records():
        entry = manifest[record.name]
        assert entry["weights_sha256"] == record.weights["sha256"].lower()
        assert entry["check_max_abs_diff"] <= 1e-4
        assert fast_cpu.bundled_graph(record) == fast_cpu.ONNX_DIR / entry["file"]


def test_a_changed_graph_or_weights_is_not_used(tmp_path, monkeypatch):
    import dataclasses

    from cvtools.style.records import resolve_style

    record = resolve_style("mona")
    other = dataclasses.replace(record, weights=dict(record.weights, sha256="0" * 64))
    assert fast_cpu.bundled_graph(other) is None  # exported from other weights than pinned
    entry = fast_cpu.read_manifest()["mona"]
    damaged = tmp_path / entry["file"]
    damaged.write_bytes((fast_cpu.ONNX_DIR / entry["file"]).read_bytes()[:-1] + b"x")
    monkeypatch.setattr(fast_cpu, "ONNX_DIR", tmp_path)
    assert fast_cpu.bundled_graph(record) is None  # not the pinned file
    assert fast_cpu.torch_free_stylizer(record, device="cpu") is None


@needs_ort
def test_routing():
    from cvtools.device import expects_gpu
    from cvtools.style.records import resolve_style

    record = resolve_style("scream")
    route = fast_cpu.torch_free_stylizer
    assert isinstance(route(record, device="cpu"), fast_cpu.OnnxBundledStylizer)
    assert isinstance(route(record, device="cpu", engine="onnxruntime", precision="fp32"), fast_cpu.OnnxBundledStylizer)
    assert (route(record, device="auto") is None) == expects_gpu("auto")
    for kwargs in ({"device": "cuda"}, {"precision": "bf16"}, {"precision": "fp16"}, {"compile": True},
                   {"inputs": ["clip.mp4"]}, {"inputs": ["a.jpg", "anim.gif"]}):
        assert route(record, **{"device": "cpu", **kwargs}) is None, kwargs
    assert route(None, device="cpu") is None


@needs_ort
def test_routing_switch(monkeypatch):
    from cvtools.style.records import resolve_style

    monkeypatch.setenv(fast_cpu.ENV_SWITCH, "0")
    assert fast_cpu.torch_free_stylizer(resolve_style("mona"), device="cpu") is None


def _photo(w, h, seed=0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.int16)
    return Image.fromarray(np.clip(smooth + rng.integers(-12, 13, (h, w, 3)), 0, 255).astype(np.uint8))


@needs_ort
@pytest.mark.parametrize("name,strength,preserve", [("mona", 1.0, False), ("great_wave", 0.6, False),
                                                    ("composition_vii", 1.0, True)])
def test_matches_the_pytorch_stylizer_within_one_level(name, strength, preserve):
    import numpy as np

    from cvtools.style.records import resolve_style
    from cvtools.style.stylize import Stylizer

    record = resolve_style(name)
    fast = fast_cpu.torch_free_stylizer(record, device="cpu", precision="fp32")
    photo = _photo(97, 70, seed=len(name))
    ours = fast(photo, strength=strength, preserve_color=preserve, tile="auto", as_uint8=True)
    assert ours.mode == "RGB" and ours.size == photo.size and fast.last_tiles == 0
    ref = Stylizer(record, device="cpu", precision="fp32")(photo, strength=strength, preserve_color=preserve,
                                                            as_uint8=True)
    diff = np.abs(np.asarray(ours, dtype=np.int16) - ref.permute(1, 2, 0).numpy().astype(np.int16))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.01


@needs_ort
def test_what_torch_would_do_differently_goes_to_torch():
    import torch

    from cvtools.style.records import resolve_style

    fast = fast_cpu.torch_free_stylizer(resolve_style("mona"), device="cpu", precision="fp32")
    big = _photo(300, 260)
    out = fast(big, tile=256, as_uint8=True)  # tiles: the PyTorch Stylizer's
    assert torch.is_tensor(out) and fast.last_tiles > 1
    assert torch.is_tensor(fast(_photo(12, 9)))  # tiny images
    assert fast(big, as_uint8=False).dtype == torch.float32  # float results
    tensor = torch.from_numpy(__import__("numpy").array(big)).permute(2, 0, 1).float() / 255
    assert torch.is_tensor(fast(tensor, as_uint8=True))  # tensors (a library user's)
    assert fast(big, tile="auto", as_uint8=True).mode == "RGB" and fast.last_tiles == 0
    assert fast(big, strength=0.0, as_uint8=True).tobytes() == big.tobytes()


_SCRIPT = """
import json, sys
from pathlib import Path
from cvtools.batch import run
from cvtools.io.markers import Provenance
from cvtools.io.naming import Outputs
from cvtools.style.job import stylize_work
from cvtools.style.fast_cpu import torch_free_stylizer
from cvtools.style.records import resolve_style
photo = Path(sys.argv[1])
st = torch_free_stylizer(resolve_style("mona"), device="cpu", inputs=[photo])
outputs = Outputs(Provenance("stylize", {"--style": "mona"}))
work = stylize_work(st, output=sys.argv[2], many=False, inputs=[photo], quiet=True, name=st.name, outputs=outputs)
report = run([photo], work, outputs=outputs)
print(json.dumps({"type": type(st).__name__, "torch": "torch" in sys.modules,
                  "onnxruntime": "onnxruntime" in sys.modules, "done": len(report.done)}))
"""


@needs_ort
def test_the_whole_photo_path_never_imports_torch(tmp_path):
    """Decode, route, stylize, write (marker, sRGB, atomic), in a new process: no torch."""
    from cvtools.io.markers import read_marker

    photo = tmp_path / "p.jpg"
    _photo(120, 90).save(photo, quality=95)
    out = tmp_path / "out.jpg"
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(photo), str(out)], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "CVTOOLS_TORCH_FREE": "1"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"type": "OnnxBundledStylizer", "torch": False, "onnxruntime": True, "done": 1}
    assert out.is_file() and read_marker(out) is not None


@needs_ort
def test_the_command_never_imports_torch(tmp_path):
    """`cvtools stylize photo.jpg -s mona` as typed, in a new process: the torch-free path; the
    same command with CVTOOLS_TORCH_FREE=0 (PyTorch) then sees the output as done (same marker)."""
    import os

    from fresh import run_fresh

    photo = tmp_path / "p.jpg"
    _photo(80, 64).save(photo, quality=95)
    code, err, torch_loaded = run_fresh("stylize", photo, "-s", "mona", "-q")
    assert code == 0, err
    assert not torch_loaded
    assert (tmp_path / "p_mona.jpg").is_file()
    done = subprocess.run([sys.executable, "-m", "cvtools", "stylize", str(photo), "-s", "mona"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CVTOOLS_TORCH_FREE": "0"})
    assert done.returncode == 0 and "already done" in done.stderr
