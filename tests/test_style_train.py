"""train-style: the loss goes down, resume continues the same run, interruptions and NaNs keep
a good checkpoint, the written style loads in stylize. CPU, 64 px, width 0.25, few steps."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from PIL import Image

from cvtools.style.records import resolve_style
from cvtools.style.train import TrainConfig, TrainingStopped, train_style
from cvtools.style.train_checkpoint import load_checkpoint
from cvtools.style.train_data import PhotoCrops, sample_indices
from cvtools.style.trainer import Trainer


@pytest.fixture(autouse=True)
def shared_backbone(monkeypatch, lite0):
    """Every Trainer gets the session's already-loaded EfficientNet-Lite0 (loading is the slow part)."""
    import cvtools.backbones

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: lite0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Generated photos: smooth colour fields with shapes, one grayscale, one tiny, one broken."""
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:90, 0:120] / 90.0
    for i in range(4):
        base = np.stack([np.sin(xx * (i + 1) * 3 + c) * 0.5 + 0.5 for c in range(3)], -1) * 255
        base[20 + i * 5:50, 30:70 + i * 5] = rng.integers(0, 255, 3)
        Image.fromarray(base.astype(np.uint8)).save(d / f"p{i}.jpg")
    Image.open(d / "p0.jpg").convert("L").save(d / "gray.png")
    Image.open(d / "p1.jpg").resize((40, 30)).save(d / "small.jpg")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return d


def config(photos, out, **kw):
    base = dict(style_image=str(SAMPLES / "rocket.jpg"), photos=str(photos), name="t", output=str(out),
                batch_size=2, image_size=64, style_size=64, width=0.25, device="cpu", workers=0,
                preview_every=0, checkpoint_every=0, log_every=1, lr=5e-3, steps=4)
    base.update(kw)
    return TrainConfig(**base)


def test_data_order_is_a_function_of_the_step(photos):
    assert list(sample_indices(2, 4, 3)) == list(range(6, 12))
    # two ranks take disjoint halves of each global batch
    assert sorted(list(sample_indices(0, 2, 4, 0, 2)) + list(sample_indices(0, 2, 4, 1, 2))) == list(range(8))
    files = sorted(photos.glob("*"))
    a, b = PhotoCrops(files, 64, seed=3), PhotoCrops(files, 64, seed=3)
    for k in (0, 5, 17):
        x = a[k]
        assert x.shape == (3, 64, 64) and x.dtype == torch.uint8
        assert torch.equal(x, b[k])
    assert not torch.equal(a[0], PhotoCrops(files, 64, seed=4)[0])


@pytest.mark.slow
def test_a_few_steps_lower_the_loss(photos, tmp_path):
    trainer = Trainer(config(photos, tmp_path, steps=6, lr=3e-3))
    batch = torch.stack([PhotoCrops(sorted(photos.glob("p*.jpg")), 64, seed=0)[k] for k in range(2)])

    def loss():
        with torch.no_grad():
            x = batch.float() / 255
            return float(trainer.loss_fn(trainer.net(x), x)[0])

    before = loss()
    for _ in range(6):
        trainer.step(batch)
    assert loss() < 0.75 * before  # measured: 11.3 -> 6.8


@pytest.mark.slow
def test_train_writes_a_style_that_stylize_loads(photos, tmp_path, run_cli):
    r = run_cli("train-style", SAMPLES / "rocket.jpg", "--photos", photos, "--name", "mine", "-o", tmp_path,
                "--steps", 3, "--batch-size", 2, "--image-size", 64, "--style-size", 64, "--width", 0.25,
                "--workers", 0, "--device", "cpu", "--preview-every", 2, "--preview", SAMPLES / "chelsea.jpg",
                "--title", "Rocket", "--artist", "NASA", "-q")
    assert r.exit_code == 0, r.output
    assert "broken.jpg" in r.stderr  # skipped with a warning, training went on
    record = json.loads((tmp_path / "mine.json").read_text())
    assert record["recipe"]["steps"] == 3 and record["title"] == "Rocket"
    assert set(record["training"]["final_losses"]) >= {"style", "content", "tv"}
    assert (tmp_path / "mine_previews" / "step_000002.jpg").exists()
    out = tmp_path / "styled.png"
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", tmp_path / "mine.json", "--size", 64, "-o", out,
                "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert max(Image.open(out).size) == 64
    # the weights file alone works too (shape from its metadata)
    assert resolve_style(tmp_path / "mine.safetensors").load_network().width == 0.25


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_continues_the_same_run(photos, tmp_path, monkeypatch):
    straight = train_style(config(photos, tmp_path / "a"))

    real_step = Trainer.step

    def step_then_sigterm(self, batch):
        parts = real_step(self, batch)
        if self.step_count == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # handled between steps
        return parts

    monkeypatch.setattr(Trainer, "step", step_then_sigterm)
    with pytest.raises(TrainingStopped) as info:
        train_style(config(photos, tmp_path / "b"))
    assert info.value.exit_code == 130 and "SIGTERM" in str(info.value)
    ckpt = info.value.checkpoint
    assert load_checkpoint(ckpt)["step"] == 2
    monkeypatch.setattr(Trainer, "step", real_step)

    resumed = train_style(config(photos, tmp_path / "b"), resume=str(ckpt))
    assert resumed.steps == 4
    a = resolve_style(straight.record_path).load_network().state_dict()
    b = resolve_style(resumed.record_path).load_network().state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # same data order, same optimizer state: same weights


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(photos, tmp_path, monkeypatch):
    from cvtools.style import losses

    real_call = losses.PerceptualLoss.__call__
    calls = {"n": 0}

    def poisoned(self, stylized, photos_):
        total, parts = real_call(self, stylized, photos_)
        calls["n"] += 1
        if calls["n"] >= 4:
            total = total * float("nan")
        return total, parts

    monkeypatch.setattr(losses.PerceptualLoss, "__call__", poisoned)
    with pytest.raises(TrainingStopped, match="NaN or infinite") as info:
        train_style(config(photos, tmp_path, steps=6, checkpoint_every=2))
    assert info.value.checkpoint is not None
    saved = load_checkpoint(info.value.checkpoint)
    assert saved["step"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    assert not (tmp_path / "t.safetensors").exists()


def test_notes_and_progress_go_to_callbacks_and_the_library_prints_nothing(photos, tmp_path, monkeypatch, capsys):
    """What training has to say (a photo skipped, a failed compilation: training goes on eager)
    reaches the notes callback once each; progress hears the start and every step, with the
    losses at log steps (every step here); without callbacks nothing is written anywhere."""
    def no_compiler(model, **kwargs):
        def compiled(x):
            raise RuntimeError("no compiler here\nsecond line")
        return compiled

    monkeypatch.setattr(torch, "compile", no_compiler)
    notes, calls = [], []
    result = train_style(config(photos, tmp_path / "a", steps=2, compile=True), on_note=notes.append,
                         progress=lambda *args: calls.append(args))
    assert result.steps == 2
    assert [c[:2] for c in calls] == [(0, 2), (1, 2), (2, 2)] and calls[0][2] is None
    for _, _, losses in calls[1:]:
        assert set(losses) >= {"style", "content", "tv", "total", "images_per_second"}
    history = json.loads(load_checkpoint(result.checkpoint)["history"])
    assert [c[2]["total"] for c in calls[1:]] == [h["total"] for h in history]  # what was reported is what was kept
    skipped = [n for n in notes if n.startswith("skipping ")]
    assert len(skipped) == 1 and "broken.jpg" in skipped[0]
    assert [n for n in notes if n not in skipped] == ["torch.compile failed (no compiler here); training without it"]
    capsys.readouterr()
    train_style(config(photos, tmp_path / "b", steps=2, compile=True))
    assert capsys.readouterr() == ("", "")


def test_foreign_checkpoint_is_refused(tmp_path):
    from cvtools.errors import WeightsError

    bad = tmp_path / "x.ckpt"
    torch.save({"step": 3}, bad)
    with pytest.raises(WeightsError, match="not a cvtools train-style checkpoint"):
        load_checkpoint(bad)


def test_preloaded_photos_give_the_same_samples(tmp_path):
    """Preloading (decode once per process, before workers fork) must not change the data."""
    import torch
    from PIL import Image

    from cvtools.style.train_data import PhotoCrops

    files = []
    for i, name in enumerate(("astronaut", "chelsea", "coffee")):
        p = tmp_path / f"{i}.png"
        Image.open(SAMPLES / f"{name}.jpg").save(p)
        files.append(p)
    bad = tmp_path / "3.jpg"
    bad.write_text("not an image")
    files.append(bad)
    plain = PhotoCrops(files, 64, seed=5)
    pre = PhotoCrops(files, 64, seed=5)
    assert pre.preload(threads=2) == 3  # the undecodable file is left to be skipped as before
    for k in range(12):
        assert torch.equal(plain[k], pre[k]), k


# ---------------------------------------------------------------- the stability (temporal) term
def test_stability_pair_moves_by_pixels():
    from cvtools.style.train_objective import stability_pair

    x = torch.rand(3, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    still = stability_pair(x, torch.Generator().manual_seed(1), {"shift": 0, "zoom": 0, "turn": 0})
    # no move: bilinear sampling at the pixel centres, exact up to the grid's fp32 rounding
    # (coordinates ~1 with ulp 1.2e-7, times a pixel step of at most 1 intensity unit)
    assert float((still.image - x).abs().max()) < 1e-4
    # a shift moves the content by the generator's draw, in pixels: a dot's bilinear centre of
    # mass lands exactly there
    dot = torch.zeros(1, 1, 48, 64)
    dot[..., 24, 32] = 1.0
    dot = dot.expand(1, 3, 48, 64).contiguous()
    for seed in range(5):
        p = stability_pair(dot, torch.Generator().manual_seed(seed), {"shift": 2.0, "zoom": 0, "turn": 0})
        r = torch.rand(1, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
        img = p.image[0, 0].double()
        ys, xs = torch.meshgrid(torch.arange(48.0, dtype=torch.float64), torch.arange(64.0, dtype=torch.float64),
                                indexing="ij")
        cx, cy = float((img * xs).sum() / img.sum()), float((img * ys).sum() / img.sum())
        # sampling x(p + d) moves the content by −d
        assert abs(cx - (32 - 2.0 * float(r[0, 2]))) < 1e-3 and abs(cy - (24 - 2.0 * float(r[0, 3]))) < 1e-3


def test_stability_distance_is_zero_for_a_moving_network_and_not_for_a_grid_pattern():
    from cvtools.style.train_objective import stability_pair

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    pair = stability_pair(x, torch.Generator().manual_seed(3))
    # an effect that commutes with moves (a pointwise colour change): distance at rounding level
    assert float(pair.distance(pair.image * 0.5 + 0.1, x * 0.5 + 0.1)) < 1e-10
    # an effect tied to the pixel grid (a fixed checkerboard added) does not move with the photo
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float() * 0.2
    assert float(pair.distance(pair.image + checker, x + checker)) > 1e-3


def test_stability_pair_moving_object_moves_a_disc_on_its_own():
    from cvtools.style.train_objective import MOVING_OBJECT, stability_pair

    h, w = 64, 96
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    # a linear ramp: bilinear sampling reproduces it exactly away from the borders, so a move
    # by (dx, dy) shows as the constant difference −(0.5·dx/95 + 0.4·dy/63)
    ramp = (0.5 * xs / (w - 1) + 0.4 * ys / (h - 1)).expand(4, 3, h, w).contiguous()
    still = {"shift": 0, "zoom": 0, "turn": 0}
    pair = stability_pair(ramp, torch.Generator().manual_seed(4), still, local_fraction=1.0)
    g = torch.Generator().manual_seed(4)
    torch.rand(4, 4, generator=g, dtype=torch.float64)  # the camera's draws come first
    r = torch.rand(4, 6, generator=g, dtype=torch.float64)
    o = MOVING_OBJECT
    for i in range(4):
        radius = (o["radius"][0] + (o["radius"][1] - o["radius"][0]) * float(r[i, 1])) * h
        cx, cy = float(r[i, 2]) * (w - 1), float(r[i, 3]) * (h - 1)
        dx, dy = (float(r[i, 4]) * 2 - 1) * o["shift"], (float(r[i, 5]) * 2 - 1) * o["shift"]
        dist = ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt() - radius
        interior = (xs >= 4) & (xs < w - 4) & (ys >= 4) & (ys < h - 4)
        diff = pair.image[i, 0] - ramp[i, 0]
        inside, outside = (dist < -1) & interior, (dist > 1) & interior
        expected = -(0.5 * dx / (w - 1) + 0.4 * dy / (h - 1))
        # fp32 grid coordinates (~1, ulp 1.2e-7) times a ramp slope below 1 per pixel
        assert inside.any() and float((diff[inside] - expected).abs().max()) < 1e-4
        assert float(diff[outside].abs().max()) < 1e-4
        rim = dist.abs() < o["edge"] + max(abs(dx), abs(dy))
        assert torch.equal(pair.weight[i, 0], (~rim).float())
    # a pointwise effect moves with the object too: distance at rounding level; a grid-tied one not
    assert float(pair.distance(pair.image * 0.5 + 0.1, ramp * 0.5 + 0.1)) < 1e-10
    # (the camera stands still: only the discs' sub-pixel moves can make a grid-tied pattern
    # differ, and without discs it cannot)
    checker = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2).float() * 0.2
    assert float(pair.distance(pair.image + checker, ramp + checker)) > 1e-5
    none = stability_pair(ramp, torch.Generator().manual_seed(4), still, local_fraction=0.0)
    assert float(none.distance(none.image + checker, ramp + checker)) < 1e-10
    # without moving objects the pair is the camera's move alone, as before
    plain = stability_pair(ramp, torch.Generator().manual_seed(4))
    assert plain.weight is None and torch.equal(
        plain.grid, stability_pair(ramp, torch.Generator().manual_seed(4), local_fraction=0.0).grid)


@pytest.mark.parametrize("local", [0.0, 1.0])
def test_training_with_the_stability_term_lowers_it_and_records_it(photos, tmp_path, local):
    c = config(photos, tmp_path, steps=8, lr=5e-3, temporal_weight=1000.0, style_weight=0.0, content_weight=0.0,
               tv_weight=0.0, temporal_local=local)
    trainer = Trainer(c)
    batch = torch.stack([PhotoCrops(sorted(photos.glob("p*.jpg")), 64, seed=0)[k] for k in range(2)])
    first = [float(trainer.step(batch)["temporal"]) for _ in range(8)]
    # the term alone, weighted up: Adam must bring it down (the moves are random per step, so
    # compare the mean of the first and last three steps rather than two single steps)
    assert np.mean(first[-3:]) < 0.7 * np.mean(first[:3]), first
    with pytest.raises(ValueError):
        config(photos, tmp_path, temporal_weight=-1.0).check()
    with pytest.raises(ValueError):
        config(photos, tmp_path, temporal_local=1.5).check()


def test_fine_tuning_starts_from_the_given_weights(photos, tmp_path):
    from cvtools.errors import UsageError
    from cvtools.style.network import TransformerNet
    from cvtools.style.records import save_style_weights

    torch.manual_seed(7)
    start = TransformerNet(0.125, 1)
    for p in start.parameters():
        p.data.normal_(0, 0.1)
    path = tmp_path / "start.safetensors"
    save_style_weights(start, path)
    trainer = Trainer(config(photos, tmp_path, width=0.125, residual_blocks=1, init_weights=str(path)))
    for key, value in trainer.net.state_dict().items():
        # the file holds fp16: the run starts from exactly those values
        assert torch.equal(value.cpu(), start.state_dict()[key].half().float()), key
    fresh = Trainer(config(photos, tmp_path, width=0.125, residual_blocks=1))
    assert any(not torch.equal(a, b) for a, b in zip(fresh.net.state_dict().values(),
                                                     trainer.net.state_dict().values()))
    with pytest.raises(UsageError, match="width"):
        Trainer(config(photos, tmp_path, width=0.25, residual_blocks=1, init_weights=str(path)))


# ---------------------------------------------------------------- QA fixes (signals, outputs, inputs)


class _WorkerSignals(torch.utils.data.Dataset):
    """Each item: whether the DataLoader worker that made it ignores SIGTERM and SIGINT."""

    def __len__(self):
        return 2

    def __getitem__(self, i):
        ignored = all(signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGTERM, signal.SIGINT))
        return torch.tensor([1 if ignored else 0], dtype=torch.uint8)


def test_dataloader_workers_leave_stop_signals_to_the_main_process():
    from cvtools.style.train_data import make_loader

    loader = make_loader(_WorkerSignals(), 0, 1, 2, 1, False)
    assert all(bool(b.all()) for b in loader)  # a group-wide SIGTERM cannot kill a worker first


def test_an_unwritable_output_folder_is_refused_before_training(photos, tmp_path, monkeypatch):
    from pathlib import Path

    from cvtools.errors import UsageError

    def refuse(self, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", refuse)
    monkeypatch.setattr(Trainer, "__init__", lambda *a, **k: pytest.fail("trained into an unwritable folder"))
    with pytest.raises(UsageError, match="cannot write to the output folder"):
        train_style(config(photos, tmp_path / "out"))


def test_a_full_disk_while_saving_says_so(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from cvtools.errors import CvtoolsError
    from cvtools.style.train_checkpoint import saving

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 0))
    with pytest.raises(CvtoolsError, match="no space left on device"):
        with saving(tmp_path / "t.ckpt", "checkpoint"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 123")
    with pytest.raises(OSError, match="other"):  # with room on the disk the error is not hidden
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 0, 10 << 30))
        with saving(tmp_path / "t.ckpt", "checkpoint"):
            raise OSError("other")


def test_overwrite_never_replaces_the_painting_and_clears_old_previews(photos, tmp_path):
    from cvtools.errors import UsageError

    out = tmp_path / "out"
    previews = out / "t_previews"
    previews.mkdir(parents=True)
    painting = previews / "step_000002.jpg"
    Image.open(SAMPLES / "rocket.jpg").save(painting)
    with pytest.raises(UsageError, match="input of this run"):
        train_style(config(photos, out, style_image=str(painting)), overwrite=True)
    assert painting.exists()
    (previews / "notes.txt").write_text("kept")
    train_style(config(photos, out, steps=2, preview_every=1), overwrite=True)
    assert sorted(p.name for p in previews.iterdir()) == ["notes.txt", "step_000001.jpg", "step_000002.jpg"]


def test_gpus_without_cuda_gpus_is_one_line(monkeypatch):
    from cvtools.cli.train_style import _check_gpus
    from cvtools.errors import UsageError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="gpus 2 needs 2 CUDA GPUs; this machine has 0"):
        _check_gpus(2)


@pytest.mark.parametrize("what", ["tiny", "transparent"])
def test_a_tiny_or_transparent_painting_is_refused(photos, tmp_path, what):
    from cvtools.errors import ImageError

    painting = tmp_path / "p.png"
    if what == "tiny":
        Image.new("RGB", (8, 6), "red").save(painting)
    else:
        Image.new("RGBA", (96, 96), (20, 40, 60, 0)).save(painting)
    with pytest.raises(ImageError, match="only 8x6|fully transparent"):
        train_style(config(photos, tmp_path / "out", style_image=str(painting)))


def test_the_record_counts_used_photos_and_a_resumed_run_its_own_steps(photos, tmp_path):
    first = train_style(config(photos, tmp_path, steps=2))
    assert first.first_step == 0
    used = len([p for p in photos.iterdir() if p.name != "broken.jpg"])
    record = json.loads(first.record_path.read_text())
    assert record["recipe"]["photos"].startswith(f"{used} photos from")
    resumed = train_style(config(photos, tmp_path, steps=3), resume=str(first.checkpoint))
    assert (resumed.steps, resumed.first_step) == (3, 2)
