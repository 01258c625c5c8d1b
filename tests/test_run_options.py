"""Options reach the library as arguments (issue 30): --max-pixels and --tune never travel
through the environment, and the cuDNN autotuning flag is set per call and put back."""

from __future__ import annotations

import os

from PIL import Image


def test_cudnn_benchmark_is_set_for_the_block_and_put_back():
    import torch

    from cvtools.device import cudnn_benchmark

    before = torch.backends.cudnn.benchmark
    with cudnn_benchmark(not before, "cuda"):
        assert torch.backends.cudnn.benchmark is (not before)
        with cudnn_benchmark(None, "cuda"):  # None: left as it is
            assert torch.backends.cudnn.benchmark is (not before)
    assert torch.backends.cudnn.benchmark is before
    with cudnn_benchmark(not before, "cpu"):  # not CUDA: nothing to set
        assert torch.backends.cudnn.benchmark is before


def test_max_pixels_is_an_argument_of_every_decode(tmp_path, monkeypatch, run_cli):
    """--max-pixels reaches load_image as max_pixels=, and without the option the user's
    CVTOOLS_MAX_PIXELS is read once by the command line; the environment is never written."""
    import cvtools.io.decode as decode

    Image.new("RGB", (40, 30), (90, 120, 150)).save(tmp_path / "a.png")
    seen = []
    real = decode.load_image

    def spy(path, max_pixels=-1):
        seen.append((max_pixels, os.environ.get("CVTOOLS_MAX_PIXELS")))
        return real(path, max_pixels=max_pixels)

    monkeypatch.setattr(decode, "load_image", spy)
    monkeypatch.delenv("CVTOOLS_MAX_PIXELS", raising=False)
    args = ["classify", str(tmp_path / "a.png"), "--weights", "random", "--device", "cpu"]
    assert run_cli(*args, "--max-pixels", "5000").exit_code == 0
    assert run_cli(*args, "--max-pixels", "0").exit_code == 0
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "7000")
    assert run_cli(*args).exit_code == 0
    assert seen == [(5000, None), (None, None), (7000, "7000")]
