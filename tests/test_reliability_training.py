"""train-style, style records and checkpoints against hostile and careless inputs (issue 15 items
1, 2, 5, 8, 9, 11; issue 13 item 3): an earlier run is never clobbered, a resumed run is the
same run or says what differs, names from files never leave -o, every size a file declares is
bounded before anything is allocated, every failure is one line. Made in code: 48x40 photos,
32 px crops, width 0.125, 2-4 steps on the CPU."""

import json
import math
import os
import re
import shutil
import signal
import zipfile

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cvtools.errors import UsageError, WeightsError
from cvtools.style.records import load_style_weights, read_record, save_style_weights
from cvtools.style.train import TrainConfig, TrainingStopped, train_style
from cvtools.style.train_checkpoint import content_digest, load_checkpoint
from cvtools.style.train_config import default_preview_every
from cvtools.style.trainer import Trainer

STYLE = SAMPLES / "rocket.jpg"


@pytest.fixture(autouse=True)
def shared_backbone(monkeypatch, lite0):
    """Every run gets the session's EfficientNet-Lite0 (loading it is the slow part)."""
    import cvtools.backbones

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: lite0)


def make_photos(d, n=3, broken=()):
    d.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:40, 0:48] / 40.0
    for i in range(n):
        rgb = np.stack([np.sin(xx * (i + 2) * 3 + c) * 0.5 + 0.5 for c in range(3)], -1) * 255
        Image.fromarray(rgb.astype(np.uint8)).save(d / f"p{i}.png")
    for name in broken:
        (d / name).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


@pytest.fixture
def photos(tmp_path):
    return make_photos(tmp_path / "photos")


def config(photos, out, **kw):
    base = dict(style_image=str(STYLE), photos=str(photos), name="t", output=str(out), batch_size=1,
                image_size=32, style_size=32, width=0.125, device="cpu", workers=0, preview_every=0,
                checkpoint_every=0, log_every=1, steps=2)
    base.update(kw)
    return TrainConfig(**base)


CLI_TINY = ["--batch-size", 1, "--image-size", 32, "--style-size", 32, "--width", 0.125, "--workers", 0,
            "--device", "cpu", "-q"]


def cli_args(photos, out, *more, steps=2):
    return ["train-style", STYLE, "--photos", photos, "--name", "t", "-o", out, "--steps", steps,
            "--preview-every", 0, *CLI_TINY, *more]


def one_error(result, *needles):
    """Exit 1, exactly one `cvtools: error:` line (no traceback, no internal error) containing
    every needle."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("cvtools: error:")]
    assert result.exit_code == 1, result.output
    assert len(errors) == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr, lines
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def stop_at(monkeypatch, step):
    """SIGTERM the process right after ``step`` (handled between steps, like Ctrl-C)."""
    real = Trainer.step

    def step_then_sigterm(self, batch):
        parts = real(self, batch)
        if self.step_count == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return parts

    monkeypatch.setattr(Trainer, "step", step_then_sigterm)
    return real


@pytest.fixture(scope="module")
def finished(tmp_path_factory, lite0):
    """One finished 2-step run (t.json, t.safetensors, t.ckpt) to copy from."""
    import cvtools.backbones

    mp = pytest.MonkeyPatch()
    mp.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: lite0)
    try:
        root = tmp_path_factory.mktemp("finished")
        photos = make_photos(root / "photos")
        train_style(config(photos, root / "out"))
    finally:
        mp.undo()
    return root / "out"


def copy_run(finished, dest):
    shutil.copytree(finished, dest)
    return dest


def rewrite_checkpoint(src, dest, change, rehash=True):
    """A crafted checkpoint: ``change(obj)`` edits the loaded contents; with ``rehash`` its
    SHA-256 is recomputed (anyone can: it guards against damage, so validation must hold too)."""
    obj = torch.load(src, weights_only=True)
    obj.pop("sha256")
    change(obj)
    if rehash:
        obj["sha256"] = content_digest(obj)
    torch.save(obj, dest)
    return dest


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- 1: no clobbering


def test_second_run_with_the_same_name_is_refused_and_overwrite_replaces(photos, tmp_path, run_cli, finished):
    out = copy_run(finished, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    r = run_cli(*cli_args(photos, out))
    one_error(r, "t.ckpt", "at step 2", "--resume", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # a record without a checkpoint is protected as well
    (out / "t.ckpt").unlink()
    one_error(run_cli(*cli_args(photos, out)), "t.json", "exists", "--overwrite")
    r = run_cli(*cli_args(photos, out, "--overwrite", steps=3))
    assert r.exit_code == 0, r.output
    assert load_checkpoint(out / "t.ckpt")["step"] == 3
    assert json.loads((out / "t.json").read_text())["recipe"]["steps"] == 3


def test_rerun_after_ctrl_c_without_resume_keeps_the_checkpoint(photos, tmp_path, monkeypatch):
    """The realistic path: interrupted at step 3, the same command again must not replace the
    step-3 checkpoint with an earlier one; it says to --resume."""
    out = tmp_path / "out"
    real = stop_at(monkeypatch, 3)
    with pytest.raises(TrainingStopped):
        train_style(config(photos, out, steps=6))
    monkeypatch.setattr(Trainer, "step", real)
    saved = (out / "t.ckpt").read_bytes()
    with pytest.raises(UsageError, match=r"at step 3.*`resume` .*t\.ckpt.*`overwrite`") as err:
        train_style(config(photos, out, steps=6, checkpoint_every=1))
    assert "--" not in str(err.value)  # the library names parameters; the CLI shows --resume (below)
    assert (out / "t.ckpt").read_bytes() == saved
    result = train_style(config(photos, out, steps=6), resume=out / "t.ckpt")
    assert result.steps == 6


def test_resume_into_another_folder_does_not_replace_its_run(photos, tmp_path, finished):
    out = copy_run(finished, tmp_path / "a")
    other = copy_run(finished, tmp_path / "b")
    with pytest.raises(UsageError, match="exists"):
        train_style(config(photos, other, steps=3), resume=out / "t.ckpt")


# ---------------------------------------------------------------------------- 2: names


@pytest.mark.parametrize("name", ["../pwn", "/tmp/pwn", "..", "a\nb", ".hidden", "x" * 101, ""])
def test_checkpoint_naming_a_path_is_refused_and_writes_nothing(photos, tmp_path, run_cli, finished, name):
    out = copy_run(finished, tmp_path / "out")
    bad = tmp_path / "bad.ckpt"

    def rename(obj):
        c = json.loads(obj["config"])
        c["name"] = name
        obj["config"] = json.dumps(c)

    rewrite_checkpoint(out / "t.ckpt", bad, rename)
    with pytest.raises(WeightsError, match="name"):
        load_checkpoint(bad)
    before = files_under(tmp_path)
    r = run_cli("train-style", STYLE, "--photos", photos, "--resume", bad, "-o", out, "--steps", 3, *CLI_TINY)
    one_error(r, "bad.ckpt", "name")
    assert files_under(tmp_path) == before
    assert not os.path.exists("/tmp/pwn.json")


@pytest.mark.parametrize("name", ["../x", "/abs/x", "a/b", "a\\b", "..", "", "x\ty"])
def test_record_name_must_be_one_file_name(tmp_path, name):
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps({"name": name, "weights": {"file": "r.safetensors"}}))
    with pytest.raises(WeightsError, match="r.json: not a valid style record"):
        read_record(rec)


def test_record_name_with_dotdot_cannot_steer_stylize_output(tmp_path, run_cli):
    from cvtools.style.network import TransformerNet

    sha = save_style_weights(TransformerNet(0.125), tmp_path / "s.safetensors", name="s")
    (tmp_path / "s.json").write_text(json.dumps(
        {"name": "../../escaped", "weights": {"file": "s.safetensors", "sha256": sha}}))
    photo = tmp_path / "in" / "p.png"
    make_photos(tmp_path / "in", n=1)
    before = files_under(tmp_path)
    for extra in (["-o", tmp_path / "out/"], []):
        r = run_cli("stylize", photo, "--style", tmp_path / "s.json", "--device", "cpu", *extra)
        one_error(r, "s.json", "style name")
    assert files_under(tmp_path) == before


def test_record_weights_file_must_be_a_file_name_beside_it(tmp_path):
    rec = tmp_path / "r.json"
    for file in ("../../etc/passwd", "/etc/passwd", "sub/w.safetensors"):
        rec.write_text(json.dumps({"name": "r", "weights": {"file": file}}))
        with pytest.raises(WeightsError, match="weights file name"):
            read_record(rec)


def test_cli_name_with_a_path_is_refused(photos, tmp_path, run_cli):
    r = run_cli("train-style", STYLE, "--photos", photos, "--name", "../up", "-o", tmp_path / "out",
                "--steps", 2, *CLI_TINY)
    one_error(r, "style name")
    assert not (tmp_path / "up.json").exists() and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- 5: bounded sizes


def fake_style_weights(path, width, blocks, tensors_width=0.125, tensors_blocks=1):
    """A safetensors file whose metadata declares (width, blocks) but holding a small network."""
    from safetensors.torch import save_file

    from cvtools.style.network import TransformerNet

    state = {k: v.half().contiguous() for k, v in TransformerNet(tensors_width, tensors_blocks).state_dict().items()}
    save_file(state, str(path), metadata={"cvtools_style": "1", "width": str(width),
                                          "residual_blocks": str(blocks), "name": "x"})
    return path


@pytest.mark.parametrize("width, blocks, reason", [
    ("4.0", "300", "residual_blocks 300 is outside 0-16"),
    ("1e6", "5", "width 1e+06 is outside 0.125-4"),
    ("nan", "5", "width nan is not a number"),
    ("0.5", "1e9", "no usable network"),
    ("4.0", "16", "do not fit"),  # within bounds, but the file's tensors are not that network
])
def test_declared_network_is_bounded_and_checked_before_loading(tmp_path, monkeypatch, width, blocks, reason):
    import cvtools.weights

    path = fake_style_weights(tmp_path / "w.safetensors", width, blocks)

    def no_tensors(*a, **k):
        raise AssertionError("tensors were loaded before the declared network was checked")

    monkeypatch.setattr(cvtools.weights, "load_state_dict_file", no_tensors)
    with pytest.raises(WeightsError, match=re.escape(reason)):
        load_style_weights(path)


def test_record_declaring_a_huge_network_is_refused(tmp_path):
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps({"name": "r", "network": {"width": 4.0, "residual_blocks": 300}}))
    with pytest.raises(WeightsError, match="residual_blocks 300"):
        read_record(rec)


def test_checkpoint_tensors_must_fit_the_declared_network(tmp_path, finished):
    def wider(obj):
        c = json.loads(obj["config"])
        c["width"] = 0.25
        obj["config"] = json.dumps(c)

    with pytest.raises(WeightsError, match="does not fit width 0.25"):
        load_checkpoint(rewrite_checkpoint(finished / "t.ckpt", tmp_path / "w.ckpt", wider))

    def adam_mismatch(obj):
        state = obj["optimizer"]["state"]
        state[0]["exp_avg"] = torch.zeros(3)

    with pytest.raises(WeightsError, match="optimizer state"):
        load_checkpoint(rewrite_checkpoint(finished / "t.ckpt", tmp_path / "o.ckpt", adam_mismatch))


# ---------------------------------------------------------------------------- 8: one line, never "internal error"


def test_deeply_nested_record_is_one_line(tmp_path, run_cli):
    rec = tmp_path / "deep.json"
    rec.write_text('{"name": "d", "quality": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(WeightsError, match="nested too deeply"):
        read_record(rec)
    shallow = tmp_path / "shallow.json"  # parses, but nests past what a record may hold
    shallow.write_text('{"name": "d", "quality": {"a": ' + "[" * 50 + "]" * 50 + "}}")
    with pytest.raises(WeightsError, match="nested too deeply"):
        read_record(shallow)
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", rec, "-o", tmp_path / "o.png", "--device", "cpu")
    one_error(r, "deep.json", "nested too deeply")


@pytest.mark.parametrize("field, value, reason", [
    ("weights", "w.safetensors", "'weights' must be an object"),
    ("weights", [1, 2], "'weights' must be an object"),
    ("network", 3, "'network' must be an object"),
    ("title", {"a": 1}, "'title' must be text"),
    ("name", 7, "not text"),
])
def test_record_fields_of_the_wrong_type_are_one_line(tmp_path, run_cli, field, value, reason):
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps(dict({"name": "r", "weights": {"file": "r.safetensors"}}, **{field: value})))
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", rec, "-o", tmp_path / "o.png", "--device", "cpu")
    one_error(r, "r.json", reason)


def _set_config(key, value):
    def change(obj):
        c = json.loads(obj["config"])
        c[key] = value
        obj["config"] = json.dumps(c)
    return change


@pytest.mark.parametrize("change, reason", [
    (lambda o: o.update(config="{not json"), "config is not JSON"),
    (lambda o: o.update(config="[1, 2]"), "not a JSON object"),
    (lambda o: o.update(step=float("nan")), "step nan"),
    (lambda o: o.update(step=-4), "step -4"),
    (lambda o: o.update(step="11"), "step '11'"),
    (_set_config("width", 1e6), "width 1e+06 is outside"),
    (_set_config("residual_blocks", 10 ** 6), "residual_blocks 1000000"),
    (_set_config("batch_size", 0), "batch_size 0"),
    (_set_config("lr", float("nan")), "lr nan"),
    (_set_config("crop_scale", [0.9, 0.1]), "crop_scale"),
    (lambda o: o.update(history="{"), "Expecting"),
    (lambda o: o.update(model=[1, 2]), "model is not a table"),
    (lambda o: o.pop("optimizer"), "no 'optimizer'"),
])
def test_crafted_checkpoints_are_one_line(photos, tmp_path, run_cli, finished, change, reason):
    bad = rewrite_checkpoint(finished / "t.ckpt", tmp_path / "bad.ckpt", change)
    r = run_cli("train-style", STYLE, "--photos", photos, "--resume", bad, "-o", tmp_path / "o", "--steps", 4,
                *CLI_TINY)
    one_error(r, "bad.ckpt", reason)
    assert not (tmp_path / "o").exists()


def test_other_files_as_checkpoints_are_one_line(tmp_path):
    cases = {"empty.ckpt": b"", "text.ckpt": b"hello", "dir.ckpt": None}
    for name, data in cases.items():
        p = tmp_path / name
        p.mkdir() if data is None else p.write_bytes(data)
        with pytest.raises(WeightsError, match=name.replace(".", r"\.")):
            load_checkpoint(p)
    torch.save({"format": "cvtools-train-style-1", "step": 3}, tmp_path / "old.ckpt")
    with pytest.raises(WeightsError, match="another version of cvtools"):
        load_checkpoint(tmp_path / "old.ckpt")
    with pytest.raises(WeightsError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_compressed_zip_entries_are_refused_before_unpacking(tmp_path, finished):
    """torch.load inflates deflated entries: a 200 KB file held a 200 MB tensor (measured). Such a
    file is not what torch.save writes, and is refused unread, as a checkpoint and as weights."""
    from cvtools.weights import load_state_dict_file

    def deflated(src, dest):
        with zipfile.ZipFile(src) as z, zipfile.ZipFile(dest, "w") as out:
            for info in z.infolist():
                out.writestr(info.filename, z.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
        return dest

    with pytest.raises(WeightsError, match="compressed entry"):
        load_checkpoint(deflated(finished / "t.ckpt", tmp_path / "z.ckpt"))
    torch.save({"w": torch.zeros(1000)}, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="compressed entry"):
        load_state_dict_file(deflated(tmp_path / "w.pth", tmp_path / "wz.pth"))
    assert load_state_dict_file(tmp_path / "w.pth")["w"].shape == (1000,)  # as torch.save writes it: fine


# ---------------------------------------------------------------------------- 9, 11: photos


def test_every_photo_undecodable_is_one_line(tmp_path, run_cli):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"\xff\xd8\xff junk")
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n junk")
    r = run_cli(*cli_args(bad, tmp_path / "out"))
    one_error(r, "none of its 2 photos can be decoded", "a.jpg")
    assert not (tmp_path / "out").exists()


def test_undecodable_first_photo_is_not_the_preview(tmp_path, run_cli):
    d = make_photos(tmp_path / "ph", n=2, broken=["a_first.jpg"])
    out = tmp_path / "out"
    r = run_cli("train-style", STYLE, "--photos", d, "--name", "t", "-o", out, "--steps", 2, "--preview-every", 1,
                *CLI_TINY)
    assert r.exit_code == 0, r.output
    assert "a_first.jpg" in r.stderr and r.stderr.count("a_first.jpg") == 1  # one warning, not one per worker
    assert sorted(p.name for p in (out / "t_previews").iterdir()) == ["step_000001.jpg", "step_000002.jpg"]
    one_error(run_cli("train-style", STYLE, "--photos", d, "--name", "u", "-o", out, "--steps", 2,
                      "--preview", d / "a_first.jpg", *CLI_TINY), "a_first.jpg")


@pytest.mark.slow
def test_output_in_the_photo_folder_never_feeds_training(tmp_path, monkeypatch):
    """-o is the photo folder: previews land in it, yet a resume trains on the same 3 photos (it
    would be refused as 'the photos differ' if the previews were counted)."""
    d = make_photos(tmp_path / "ph")
    real = stop_at(monkeypatch, 2)
    with pytest.raises(TrainingStopped):
        train_style(config(d, d, steps=4, preview_every=1))
    monkeypatch.setattr(Trainer, "step", real)
    assert len(list((d / "t_previews").glob("*.jpg"))) == 2
    result = train_style(config(d, d, steps=4, preview_every=1), resume=d / "t.ckpt")
    assert result.steps == 4
    assert json.loads(result.record_path.read_text())["recipe"]["photos"].startswith("3 photos")


def tensor_data_offset(path, entry_suffix="data/0"):
    """Byte offset of a tensor's data inside a torch zip checkpoint."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(entry_suffix))
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        n, m = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    return info.header_offset + 30 + n + m, info.file_size


def test_a_flipped_byte_in_a_checkpoint_is_refused(photos, tmp_path, run_cli, finished):
    ckpt = copy_run(finished, tmp_path / "out") / "t.ckpt"
    data = bytearray(ckpt.read_bytes())
    offset, size = tensor_data_offset(ckpt)
    data[offset + size // 2] ^= 0x10
    ckpt.write_bytes(bytes(data))
    assert torch.load(ckpt, weights_only=True)["step"] == 2  # torch itself does not notice
    with pytest.raises(WeightsError, match="do not match its SHA-256"):
        load_checkpoint(ckpt)
    r = run_cli("train-style", STYLE, "--photos", photos, "--resume", ckpt, "--steps", 4, *CLI_TINY)
    one_error(r, "t.ckpt", "SHA-256")


# ---------------------------------------------------------------------------- issue 13.3: resume settings


@pytest.mark.parametrize("option, value, said", [
    ("--batch-size", 2, "--batch-size 2 (the run: 1)"),
    ("--lr", 0.01, "--lr 0.01 (the run: 0.001)"),
    ("--style-weight", 30, "--style-weight 30.0 (the run: 10.0)"),
])
def test_resume_with_changed_settings_says_what_and_refuses(photos, tmp_path, run_cli, finished, option, value, said):
    out = copy_run(finished, tmp_path / "out")
    base = ["train-style", STYLE, "--photos", photos, "--resume", out / "t.ckpt", "--steps", 4, *CLI_TINY]
    one_error(run_cli(*base, option, value), said, "--resume-with-new-settings")
    assert load_checkpoint(out / "t.ckpt")["step"] == 2


def test_resume_with_another_painting_or_photos_is_refused(photos, tmp_path, run_cli, finished):
    out = copy_run(finished, tmp_path / "out")
    r = run_cli("train-style", SAMPLES / "chelsea.jpg", "--photos", photos, "--resume", out / "t.ckpt",
                "--steps", 4, *CLI_TINY)
    one_error(r, "the painting (chelsea.jpg")
    more = make_photos(tmp_path / "more", n=4)
    r = run_cli("train-style", STYLE, "--photos", more, "--resume", out / "t.ckpt", "--steps", 4, *CLI_TINY)
    one_error(r, "the photos (4 photos now, 3 in the run)")
    r = run_cli("train-style", STYLE, "--photos", more, "--resume", out / "t.ckpt", "--steps", 4, *CLI_TINY,
                "--width", 0.25)
    one_error(r, "--width 0.125 (asked: 0.25)")


@pytest.mark.slow
def test_resume_with_new_settings_continues_and_records_the_change(tmp_path, run_cli, finished):
    out = copy_run(finished, tmp_path / "out")
    photos = make_photos(tmp_path / "ph", n=3)  # a moved copy of the same photos: the same run
    r = run_cli("train-style", STYLE, "--photos", photos, "--resume", out / "t.ckpt", "--steps", 3, *CLI_TINY)
    assert r.exit_code == 0, r.output
    r = run_cli("train-style", STYLE, "--photos", photos, "--resume-with-new-settings", out / "t.ckpt",
                "--steps", 4, *CLI_TINY, "--style-weight", 30, "--batch-size", 2)
    assert r.exit_code == 0, r.output
    record = json.loads((out / "t.json").read_text())
    changes = {c["setting"]: (c["step"], c["was"], c["now"]) for c in record["recipe"]["resumed_with_new_settings"]}
    assert changes == {"style_weight": (3, 10.0, 30.0), "batch_size": (3, 1, 2)}
    assert record["recipe"]["style_weight"] == 30.0 and load_checkpoint(out / "t.ckpt")["step"] == 4


@pytest.mark.slow
def test_resume_takes_the_runs_settings_and_folder_when_left_out(tmp_path, run_cli, photos):
    """Options left out on resume are the run's (not click's defaults), and -o is the checkpoint's folder."""
    out = tmp_path / "out"
    r = run_cli("train-style", STYLE, "--photos", photos, "--name", "t", "-o", out, "--steps", 2, "--lr", 0.004,
                "--style-weight", 3, *CLI_TINY)
    assert r.exit_code == 0, r.output
    r = run_cli("train-style", STYLE, "--photos", photos, "--resume", out / "t.ckpt", "--steps", 3, *CLI_TINY)
    assert r.exit_code == 0, r.output
    recipe = json.loads((out / "t.json").read_text())["recipe"]
    assert (recipe["lr"], recipe["style_weight"], recipe["steps"]) == (0.004, 3.0, 3)


@pytest.mark.slow
def test_preview_interval_scales_with_the_run(photos, tmp_path, run_cli):
    assert [default_preview_every(n) for n in (1, 3, 8, 16, 100, 4000)] == [1, 1, 1, 2, 12, 500]
    out = tmp_path / "out"
    r = run_cli("train-style", STYLE, "--photos", photos, "--name", "t", "-o", out, "--steps", 4, *CLI_TINY)
    assert r.exit_code == 0, r.output
    assert len(list((out / "t_previews").glob("step_*.jpg"))) == 4  # a 4-step run still shows its progress


# ---------------------------------------------------------------------------- issue 13: --style NAME.ckpt


def test_style_given_a_checkpoint_names_the_record(tmp_path, run_cli, finished):
    out = copy_run(finished, tmp_path / "out")
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", out / "t.ckpt", "-o", tmp_path / "o.png",
                "--device", "cpu")
    one_error(r, "train-style checkpoint", str(out / "t.json"))
    (out / "t.json").unlink()
    one_error(run_cli("stylize", SAMPLES / "chelsea.jpg", "--style", out / "t.ckpt", "-o", tmp_path / "o.png",
                      "--device", "cpu"), "train-style checkpoint", "--resume")
    with pytest.raises(WeightsError, match="train-style checkpoint"):
        from cvtools.weights import load_state_dict_file
        load_state_dict_file(out / "t.ckpt")


# ---------------------------------------------------------------------------- properties (hypothesis)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
record_keys = st.sampled_from(["name", "title", "artist", "year", "provenance", "weights", "network", "recipe",
                               "training", "quality", "other"])
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPS
@given(data=st.dictionaries(record_keys, json_values | st.dictionaries(
    st.sampled_from(["file", "sha256", "width", "residual_blocks"]), json_values, max_size=4), max_size=6))
def test_any_json_record_gives_a_record_or_one_weights_error(tmp_path, data):
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps(data))
    try:
        r = read_record(rec)
    except WeightsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(rec))
        return
    # what is accepted is safe to use: a plain name, a weights file beside the record, a bounded network
    assert "/" not in r.name and r.name not in (".", "..")
    if r.weights.get("file"):
        assert r.weights_path.parent == tmp_path
    for key in ("provenance", "weights", "network", "recipe", "training", "quality"):
        assert isinstance(getattr(r, key), dict)


CONFIG_KEYS = list(TrainConfig.__dataclass_fields__)


@PROPS
@given(changes=st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, min_size=1, max_size=3))
@pytest.mark.slow
def test_any_checkpoint_config_is_checked_or_refused(finished, changes):
    """A checkpoint's config with any fields replaced by any JSON values: either refused with a
    ValueError/TypeError naming the problem, or a config whose every field is usable."""
    good = json.loads(load_checkpoint(finished / "t.ckpt")["config"])
    text = json.dumps(dict(good, **changes))
    try:
        c = TrainConfig.from_json(text)
    except (ValueError, TypeError):
        return
    assert isinstance(c.steps, int) and 1 <= c.steps and 0.125 <= c.width <= 4 and 0 <= c.residual_blocks <= 16
    assert c.name is None or "/" not in c.name  # (None: the painting's name; a checkpoint must name it)
    assert isinstance(c.batch_size, int) and math.isfinite(c.lr)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3),
       cut=st.none() | st.floats(0, 1))
def test_damaged_checkpoint_loads_identical_or_is_refused(tmp_path_factory, finished, flips, cut):
    """Any flipped bytes (or a cut) anywhere in a checkpoint: it is refused with a WeightsError,
    or what loads is exactly what was saved (a flip in zip padding or metadata that nothing reads)."""
    data = bytearray((finished / "t.ckpt").read_bytes())
    for where, bits in flips:
        data[int(where * len(data))] ^= bits
    if cut is not None:
        data = data[: int(cut * len(data))]
    p = tmp_path_factory.mktemp("dmg") / "t.ckpt"
    p.write_bytes(bytes(data))
    try:
        obj = load_checkpoint(p)
    except WeightsError as exc:
        assert "\n" not in str(exc)
        return
    ref = load_checkpoint(finished / "t.ckpt")
    assert content_digest(obj) == content_digest(ref)
