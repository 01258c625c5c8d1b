"""Several processes with torchrun, on the CPU (gloo): training and folder runs give what one
process gives."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from PIL import Image

from cvtools.distributed import shard, strip_gpus_option


def _torchrun(nproc, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cvtools", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _why(r) -> str:
    """What the ranks said (their own lines come first in torchrun's stderr, before the agent's
    long report, which a plain tail would show instead)."""
    own = [line for line in r.stderr.splitlines() if line.startswith("[rank") or "what()" in line
           or "terminate" in line]
    return "\n".join(own[-30:]) + "\n...\n" + r.stderr[-1500:]


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


_TRAIN_SCRIPT = """
import sys
from cvtools.style.train import TrainConfig, train_style
photos, style, out = sys.argv[1:4]
train_style(TrainConfig(style_image=style, photos=photos, name="t", output=out, steps=4, batch_size=4,
                        image_size=64, style_size=64, width=0.25, workers=0, preview_every=0,
                        checkpoint_every=0, device="cpu", log_every=1))
"""


@pytest.mark.slow
def test_two_process_training_matches_one_process(tmp_path, photos):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    runs = {}
    for nproc, name in ((1, "one"), (2, "two")):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc-per-node={nproc}", str(script), str(photos), str(SAMPLES / "rocket.jpg"),
                            str(tmp_path / name)], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, _why(r)
        runs[name] = torch.load(tmp_path / name / "t.ckpt", weights_only=True)
    a, b = runs["one"], runs["two"]
    assert a["step"] == b["step"] == 4
    import json
    ha, hb = json.loads(a["history"]), json.loads(b["history"])
    assert [h["step"] for h in ha] == [h["step"] for h in hb] == [1, 2, 3, 4]
    # Step 1 starts from the same weights on the same global batch: the only difference is the
    # order of fp32 sums (each rank reduces half the batch, then an all-reduce adds the halves).
    # A sum of n fp32 terms in another order moves by about log2(n)·2^-24 relative (blocked /
    # pairwise sums: n ≤ 2^20 elements per loss term here, so ≤ 20 · 6e-8 = 1.2e-6); 1e-5 leaves
    # an 8x margin for the products and means around the sums.
    first_a, first_b = ha[0]["total"], hb[0]["total"]
    assert abs(first_a - first_b) <= 1e-5 * abs(first_a), (first_a, first_b)
    # Later steps are not bitwise comparable: Adam's first steps move each weight by about
    # lr·sign(gradient), so a weight whose gradient is at rounding level can step either way.
    # What must hold is that both runs follow the same curve: the gap between them is a small
    # fraction of how far training moved the loss.
    moved_loss = abs(ha[-1]["total"] - first_a)
    assert moved_loss > 1e-3 * abs(first_a), "the loss did not move: the comparison would prove nothing"
    for x, y in zip(ha[1:], hb[1:]):
        assert abs(x["total"] - y["total"]) <= 0.05 * moved_loss, (x, y, moved_loss)
    # Weights are compared as functions, not parameter by parameter: the biases of convolutions
    # followed by instance norm have an exactly zero gradient (the norm removes them), so Adam
    # steps them by ±lr on rounding noise alone, without any effect on the output. Both networks
    # must stylize an image alike: their gap a small fraction of how far training moved the output
    # (measured 0.018 on a 2-core AVX512 machine, torch 2.14; a fifth of that movement would mean
    # the runs trained differently).
    from cvtools.style.network import TransformerNet

    torch.manual_seed(0)
    nets = [TransformerNet(0.25, 5) for _ in range(3)]
    nets[1].load_state_dict(a["model"])
    nets[2].load_state_dict(b["model"])
    image = np.asarray(Image.open(SAMPLES / "chelsea.jpg").convert("RGB").resize((96, 64)), dtype=np.float32)
    x = torch.from_numpy(image / 255).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        y_init, y_a, y_b = (net.eval()(x) for net in nets)
    moved_out = (y_a - y_init).norm()
    assert moved_out > 1e-2 * y_init.norm(), "training did not change the output: the comparison would prove nothing"
    assert (y_a - y_b).norm() < 0.2 * moved_out, ((y_a - y_b).norm(), moved_out)


@pytest.mark.slow
def test_sharded_folder_stylize_matches_one_process(tmp_path, photos):
    r1 = _torchrun(1, "stylize", photos, "--style", "mona", "-o", tmp_path / "one/", "--device", "cpu", cwd=tmp_path)
    assert r1.returncode == 0, _why(r1)
    r2 = _torchrun(2, "stylize", photos, "--style", "mona", "-o", tmp_path / "two/", "--device", "cpu", cwd=tmp_path)
    assert r2.returncode == 0, _why(r2)
    assert "4 of 4 inputs done on 2 processes" in r2.stderr
    names = sorted(os.listdir(tmp_path / "one"))
    assert len(names) == 4 and names == sorted(os.listdir(tmp_path / "two"))
    for n in names:
        x = np.asarray(Image.open(tmp_path / "one" / n), dtype=np.int16)
        y = np.asarray(Image.open(tmp_path / "two" / n), dtype=np.int16)
        assert x.shape == y.shape and np.abs(x - y).max() <= 1, n


_COUNTING_CLI = """
import json, os, sys
import cvtools.visualize.explain as explain
computed, prepared = [], []
real_explain, real_tensor = explain.Explainer.explain, explain.analysis_tensor

def counting_explain(self, x, *args, **kwargs):
    computed.append(int(x.shape[0]))
    return real_explain(self, x, *args, **kwargs)

def counting_tensor(image, *args, **kwargs):
    prepared.append(image.size)
    return real_tensor(image, *args, **kwargs)

explain.Explainer.explain = counting_explain
explain.analysis_tensor = counting_tensor
from cvtools.cli import cli
try:
    cli.main(args=sys.argv[2:], prog_name="cvtools")
finally:
    with open(os.path.join(sys.argv[1], "rank%s.json" % os.environ.get("RANK", "0")), "w") as f:
        json.dump({"computed": computed, "prepared": len(prepared)}, f)
"""


@pytest.mark.slow
def test_sharded_folder_visualize_splits_the_work(tmp_path, photos):
    """Under torchrun each rank prepares and computes only its own files (the batched engine once
    looked ahead in the whole, unsharded list: rank 0 of 2 computed every file), and the two
    ranks together write every output once."""
    import json

    for i, name in enumerate(("astronaut", "chelsea")):  # 6 photos: 3 per rank, one batch each
        Image.open(SAMPLES / f"{name}.jpg").resize((96, 80)).transpose(Image.FLIP_LEFT_RIGHT).save(
            photos / f"flipped{i}.png")
    script = tmp_path / "count.py"
    script.write_text(_COUNTING_CLI)
    counts = tmp_path / "counts"
    counts.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(script), str(counts), "visualize", "gradcam", str(photos), "-o", str(tmp_path / "maps") + "/",
                        "--device", "cpu", "--size", "64"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, _why(r)
    assert "6 of 6 inputs done on 2 processes" in r.stderr, r.stderr[-2000:]
    ranks = [json.loads((counts / f"rank{k}.json").read_text()) for k in range(2)]
    for k, rank in enumerate(ranks):
        assert sum(rank["computed"]) == 3 and rank["prepared"] == 3, (k, rank)
    outputs = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert outputs == sorted(f"{p.stem}_gradcam.png" for p in photos.iterdir()), outputs


_OWN_GROUP_SCRIPT = """
import os
import torch.distributed as dist
from cvtools import distributed
dist.init_process_group("gloo")          # the caller's own group, not cvtools'
distributed.finish()                     # waits for the others, leaves the group alone
assert dist.is_initialized(), "finish() destroyed a group cvtools did not create"
dist.destroy_process_group()
with open(f"rank{os.environ['RANK']}.txt", "w") as f:  # (the ranks share stdout: lines interleave)
    f.write(f"ok {dist.is_initialized()}")
"""


@pytest.mark.slow
def test_finish_leaves_a_callers_own_group_alone(tmp_path):
    script = tmp_path / "own.py"
    script.write_text(_OWN_GROUP_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, _why(r)
    assert [(tmp_path / f"rank{k}.txt").read_text() for k in (0, 1)] == ["ok False"] * 2
