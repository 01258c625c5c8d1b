"""Several processes with torchrun, on the CPU (gloo): training and folder runs give what one
process gives."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SAMPLES

from cvtools.distributed import shard, strip_gpus_option


def _torchrun(nproc, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cvtools", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_shard_covers_every_item_once():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_strip_gpus_option():
    assert strip_gpus_option(["train-style", "a.jpg", "--gpus", "2", "--steps=3"]) == ["train-style", "a.jpg", "--steps=3"]
    assert strip_gpus_option(["--gpus=4", "x"]) == ["x"]


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        Image.open(SAMPLES / f"{name}.jpg").resize((96, 80)).save(d / f"{name}.png")
    return d


def test_two_process_training_matches_one_process(tmp_path, photos):
    common = ["train-style", SAMPLES / "rocket.jpg", "--photos", photos, "--name", "t", "--steps", "4",
              "--batch-size", "4", "--image-size", "64", "--style-size", "64", "--width", "0.25",
              "--workers", "0", "--preview-every", "0", "--checkpoint-every", "0", "--device", "cpu", "-q"]
    one = _torchrun(1, *common, "-o", tmp_path / "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _torchrun(2, *common, "-o", tmp_path / "two", cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "t.ckpt", weights_only=True)
    b = torch.load(tmp_path / "two" / "t.ckpt", weights_only=True)
    assert a["step"] == b["step"] == 4
    # the logged losses are the global batch's on both, and the runs follow the same curve
    import json
    ha, hb = json.loads(a["history"]), json.loads(b["history"])
    assert abs(ha[-1]["total"] - hb[-1]["total"]) <= 1e-5 * abs(ha[-1]["total"])
    # Weights: the same up to summation order. Adam's first steps move each weight by about
    # lr·sign(gradient), so a weight whose gradient is ~0 can step either way on rounding noise:
    # require almost all weights equal and the difference tiny against how far training moved them.
    from cvtools.style.network import TransformerNet

    torch.manual_seed(0)
    init = TransformerNet(0.25, 5).state_dict()
    keys = list(init)
    diff = sum(((a["model"][k] - b["model"][k]).float() ** 2).sum() for k in keys).sqrt()
    moved = sum(((a["model"][k] - init[k]).float() ** 2).sum() for k in keys).sqrt()
    n = sum(init[k].numel() for k in keys)
    off = sum(int(((a["model"][k] - b["model"][k]).abs() > 1e-4).sum()) for k in keys)
    assert moved > 0.1, "training did not move the weights: the comparison would prove nothing"
    assert diff / moved < 0.06, (diff, moved)
    assert off / n < 0.01, off


def test_sharded_folder_stylize_matches_one_process(tmp_path, photos):
    r1 = _torchrun(1, "stylize", photos, "--style", "mona", "-o", tmp_path / "one/", "--device", "cpu", cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = _torchrun(2, "stylize", photos, "--style", "mona", "-o", tmp_path / "two/", "--device", "cpu", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "4 of 4 inputs done on 2 processes" in r2.stderr
    names = sorted(os.listdir(tmp_path / "one"))
    assert len(names) == 4 and names == sorted(os.listdir(tmp_path / "two"))
    for n in names:
        x = np.asarray(Image.open(tmp_path / "one" / n), dtype=np.int16)
        y = np.asarray(Image.open(tmp_path / "two" / n), dtype=np.int16)
        assert x.shape == y.shape and np.abs(x - y).max() <= 1, n
