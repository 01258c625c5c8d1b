"""Paintings and blends on the CPU without torch (issue 28): the any-painting network's shipped
ONNX graphs through onnxruntime (cvtools.style.fast_cpu_painting), against the PyTorch
NetworkPaintingStylizer.

Tolerances, from the arithmetic:
- resizing: both sides compute a weighted mean of a few pixels in [0, 1]; PyTorch computes the
  source coordinates in fp32, so at up to 4096 px a coordinate is off by up to 4096·2^-24 px and
  a value by that times the step between neighbours (≤ 1): |difference| ≤ 3e-4.
- embeddings: the shipped encoder stores every weight rounded to fp16 (relative error 2^-11 =
  4.9e-4 per weight); the tool that made it refuses more than EMBEDDING_BOUND (2e-3 of the
  largest value) on its check images.
- pictures: the transformer is bit-identical to its fp32 export, which is within 1e-5 of PyTorch;
  the rounded encoder moves a picture by under PICTURE_BOUND (2 levels), which the tool that made
  it enforces (0.38 of a level measured on its check images). Before rounding to 8 bits the two
  differ by under two levels, so after it by at most two, and only where a value lies near a
  rounding boundary (for a difference of d < 1 levels, a fraction d of the values). This test's
  painting (random blotches and noise) is more sensitive than the check images: with the weights
  shipped 2026-12-06 16:30 UTC (G6) 55 of its 20,370 values moved by two levels.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from cvtools.style import fast_cpu
from cvtools.style import fast_cpu_painting as fcp

needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                               reason="needs onnxruntime (pip install 'cvtools[onnx]')")


def _image(w, h, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.int16)
    return Image.fromarray(np.clip(smooth + rng.integers(-24, 25, (h, w, 3)), 0, 255).astype(np.uint8))


def _levels(a, b):
    """|a - b| in 8-bit levels: a a PIL image, b a 3×H×W uint8 tensor or a PIL image."""
    from PIL import Image

    other = np.asarray(b) if isinstance(b, Image.Image) else b.permute(1, 2, 0).numpy()
    return np.abs(np.asarray(a, dtype=np.int16) - other.astype(np.int16))


def test_constants_equal_the_torch_modules():
    from cvtools.style import arbitrary, painting

    assert fcp.MIN_SIDE == painting.MIN_SIDE
    assert fcp.MIN_ENCODER_SHORT_SIDE == arbitrary.MIN_ENCODER_SHORT_SIDE
    assert fcp.HUGE_PAINTING_SIDE == painting.HUGE_PAINTING_SIDE
    assert fcp.BUNDLED_RECORD == arbitrary.BUNDLED_RECORD
    config = arbitrary.read_config(arbitrary.bundled_weights()[0])
    as_dict = __import__("json").loads(config.to_json())
    for h, w in [(683, 1024), (1024, 683), (40, 3000), (3000, 40), (512, 512), (97, 70)]:
        for long_side in (None, 256, 700):
            assert fcp.encoder_shape(h, w, as_dict, long_side) == arbitrary.encoder_shape(h, w, config, long_side)
    as_dict.pop("encoder_long_side")
    config.encoder_long_side = None  # the short-side rule of older networks
    assert fcp.encoder_shape(300, 500, as_dict) == arbitrary.encoder_shape(300, 500, config)


@pytest.mark.parametrize("src,dst", [((700, 1000), (358, 512)),   # shrink both
                                     ((300, 200), (512, 341)),    # enlarge both
                                     ((300, 100), (512, 64)),     # enlarge one side, shrink the other
                                     ((61, 70), (64, 73)),
                                     ((2048, 1500), (512, 375))])
def test_resize_matches_pytorch(src, dst):
    import torch

    from cvtools.ops import resize

    rgb = np.random.default_rng(sum(src)).random((*src, 3), dtype=np.float32)
    ours = fcp.resize_like_torch(rgb, dst)
    theirs = resize(torch.from_numpy(rgb).permute(2, 0, 1)[None], dst)[0].permute(1, 2, 0).numpy()
    assert ours.shape == (*dst, 3) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 3e-4
    assert fcp.resize_like_torch(rgb, src) is rgb


def test_the_shipped_graphs_are_pinned():
    import json

    from cvtools.style.arbitrary import bundled_weights

    entry = fcp.read_arbitrary_entry()
    assert entry is not None and entry["weights_sha256"] == bundled_weights()[1].lower()
    assert entry["encoder"]["check_max_abs_diff"] <= 1e-4 and entry["transformer"]["check_max_abs_diff"] <= 1e-4
    assert entry["encoder"]["rounding_embedding_rel_diff"] <= 2e-3
    assert entry["encoder"]["rounding_picture_max_abs_diff"] <= 2 / 255
    assert fcp.shipped_graphs() == (fast_cpu.ONNX_DIR / entry["encoder"]["file"],
                                    fast_cpu.ONNX_DIR / entry["transformer"]["file"])
    assert json.loads(fast_cpu.MANIFEST.read_text())["styles"].keys() == fast_cpu.read_manifest().keys()


def test_a_changed_graph_or_record_is_not_used(tmp_path, monkeypatch):
    import json

    entry = fcp.read_arbitrary_entry()
    for part in ("encoder", "transformer"):
        (tmp_path / entry[part]["file"]).write_bytes((fast_cpu.ONNX_DIR / entry[part]["file"]).read_bytes())
    monkeypatch.setattr(fcp, "ONNX_DIR", tmp_path)
    assert fcp.shipped_graphs() is not None
    damaged = tmp_path / entry["transformer"]["file"]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"x")
    assert fcp.shipped_graphs() is None  # not the pinned file
    monkeypatch.setattr(fcp, "ONNX_DIR", fast_cpu.ONNX_DIR)
    record = json.loads(fcp.BUNDLED_RECORD.read_text())
    other = tmp_path / "arbitrary.json"
    other.write_text(json.dumps(dict(record, sha256="0" * 64)))
    monkeypatch.setattr(fcp, "BUNDLED_RECORD", other)
    assert fcp.shipped_graphs() is None  # exported from other weights than the record pins
    assert fcp.torch_free_painting_stylizer([(_image(64, 64), 1.0)], device="cpu") is None


@needs_ort
def test_routing(monkeypatch):
    from cvtools.device import expects_gpu

    route = fcp.torch_free_painting_stylizer
    painting = _image(80, 64)
    sources = [(painting, 0.7), ("mona", 0.3)]
    assert isinstance(route(sources, device="cpu"), fcp.OnnxPaintingStylizer)
    assert isinstance(route(sources, device="cpu", engine="onnxruntime", precision="fp32",
                            inputs=["a.jpg"] * fcp.MAX_PHOTOS), fcp.OnnxPaintingStylizer)
    assert (route(sources, device="auto") is None) == expects_gpu("auto")
    for kwargs in ({"device": "cuda"}, {"precision": "bf16"}, {"precision": "fp16"}, {"compile": True},
                   {"fitting": True}, {"refining": True}, {"inputs": ["clip.mp4"]}, {"inputs": ["a.jpg", "anim.gif"]},
                   {"inputs": ["a.jpg"] * (fcp.MAX_PHOTOS + 1)}):
        assert route(sources, **{"device": "cpu", **kwargs}) is None, kwargs
    import torch

    assert route([(torch.zeros(400), 1.0)], device="cpu") is None  # embeddings: the PyTorch class
    assert route([("not_a_bundled_style", 1.0)], device="cpu") is None
    monkeypatch.setenv(fast_cpu.ENV_SWITCH, "0")
    assert route(sources, device="cpu") is None


@needs_ort
def test_embeddings_match_pytorch():
    from cvtools.style.arbitrary import ArbitraryStylizer
    from cvtools.style.painting import _painting_tensor

    fast = fcp.torch_free_painting_stylizer([("mona", 1.0)], device="cpu")
    reference = ArbitraryStylizer(device="cpu")
    # a panorama (the short-side floor), a large scan (box-filtered to 1024 px first, as PyTorch's path does)
    for seed, (w, h) in enumerate([(300, 200), (90, 700), (1200, 900), (2100, 2060)]):
        painting = _image(w, h, seed)
        for long_side in (None, 300):
            ours = fast.encode(painting, long_side)
            theirs = reference.encode(_painting_tensor(painting), long_side).numpy()  # as NetworkPaintingStylizer
            assert np.abs(ours - theirs).max() <= 2e-3 * np.abs(theirs).max()


@needs_ort
@pytest.mark.parametrize("styles,strength,preserve", [([("P", 1.0)], 1.0, False),
                                                      ([("P", 0.6), ("starry_night", 0.4)], 0.5, False),
                                                      ([("great_wave", 1.0)], 0.7, True)])
def test_matches_the_pytorch_stylizer_within_the_export_bound(styles, strength, preserve):
    from cvtools.style.painting import NetworkPaintingStylizer

    painting = _image(150, 120, seed=3)
    sources = [(painting if s == "P" else s, w) for s, w in styles]
    fast = fcp.torch_free_painting_stylizer(sources, device="cpu", precision="fp32")
    photo = _image(97, 70, seed=len(styles))
    ours = fast(photo, strength=strength, preserve_color=preserve, as_uint8=True)
    assert ours.mode == "RGB" and ours.size == photo.size and fast.last_tiles == 0
    ref = NetworkPaintingStylizer(sources, device="cpu", precision="fp32")(photo, strength=strength,
                                                                         preserve_color=preserve, as_uint8=True)
    diff = _levels(ours, ref)
    assert diff.max() <= 2  # PICTURE_BOUND before rounding (the module's docstring)
    # a value rounds differently with probability |difference before rounding| (in levels), which
    # the rounded encoder keeps under what the export tool measured on its check images
    assert (diff > 0).mean() <= fcp.read_arbitrary_entry()["encoder"]["rounding_picture_max_abs_diff"] * 255


@needs_ort
def test_what_torch_would_do_differently_goes_to_torch():
    import torch

    fast = fcp.torch_free_painting_stylizer([(_image(100, 80), 1.0)], device="cpu")
    assert torch.is_tensor(fast(_image(20, 12)))  # under MIN_SIDE: painted larger by the PyTorch path
    photo = _image(64, 48)
    assert fast(photo, as_uint8=False).dtype == torch.float32  # float results
    assert fast(photo, as_uint8=True).mode == "RGB"
    tensor = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 255  # a library user's tensor
    out = fast(tensor, as_uint8=True)
    assert torch.is_tensor(out) and out.dtype == torch.uint8 and _levels(fast(photo, as_uint8=True), out).max() <= 1
    assert fast(photo, strength=0.0, as_uint8=True).tobytes() == photo.tobytes()
    with pytest.raises(Exception, match="strength"):
        fast(photo, strength=1.5, as_uint8=True)


@needs_ort
def test_the_command_never_imports_torch(tmp_path):
    """`cvtools stylize photo.jpg -s painting.jpg:0.7 -s mona:0.3 --strength 0.8` as typed, in a
    new process: no torch; PyTorch's path (CVTOOLS_TORCH_FREE=0) then sees the output as done."""
    from fresh import run_fresh

    photo, painting = tmp_path / "p.jpg", tmp_path / "art.png"
    _image(80, 64).save(photo, quality=95)
    _image(120, 90, seed=5).save(painting)
    args = ("stylize", photo, "-s", f"{painting}:0.7", "-s", "mona:0.3", "--strength", "0.8", "-q")
    code, err, torch_loaded = run_fresh(*args)
    assert code == 0, err
    assert not torch_loaded
    out = tmp_path / "p_art+mona.jpg"
    assert out.is_file()
    done = subprocess.run([sys.executable, "-m", "cvtools", *map(str, args[:-1])], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CVTOOLS_TORCH_FREE": "0"})
    assert done.returncode == 0 and "already done" in done.stderr, done.stderr


@needs_ort
def test_the_web_pages_library_paints_without_torch_too(tmp_path):
    """cvtools ui's Library: a painting blended with a bundled style goes the same torch-free way
    on a CPU, in a new process (the page's first painting then answers without loading torch)."""
    photo, painting = tmp_path / "p.png", tmp_path / "art.png"
    _image(90, 70).save(photo)
    _image(120, 90, seed=5).save(painting)
    script = ("import json, sys\nfrom pathlib import Path\nfrom cvtools.ui.library import Library\n"
              "lib = Library(device='cpu')\n"
              f"styles = [({str(painting)!r}, 0.7), ('mona', 0.3)]\n"
              f"result = lib.stylize(Path({str(photo)!r}), styles, strength=0.8)\n"
              "print(json.dumps({'type': type(lib.stylizer(styles)).__name__, 'torch': 'torch' in sys.modules,"
              " 'out': str(result.path)}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CVTOOLS_TORCH_FREE": "1"})
    assert done.returncode == 0, done.stderr
    report = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert report["type"] == "OnnxPaintingStylizer" and not report["torch"]
    assert os.path.isfile(report["out"])
