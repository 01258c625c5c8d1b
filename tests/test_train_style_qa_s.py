"""train-style for a user on a laptop (QA, session s): pictures cvtools made in the photo folder
are not learned from (a stylized copy would teach the style a style), a run projected to take
hours gets one note with settings for a quick try, and a run without a terminal prints plain
progress lines instead of nothing until the end. Made in code: 48x40 photos, 32 px crops."""

import json
import re

import pytest
from PIL import Image
from test_reliability_training import STYLE, make_photos  # the same tiny photos

from cvtools.io.atomic import save_image
from cvtools.io.markers import read_marker
from cvtools.io.naming import Outputs, output_path_for
from cvtools.style.job import stylize_provenance
from cvtools.style.train import TrainConfig, train_style
from cvtools.style.train_data import photo_files


@pytest.fixture(autouse=True)
def shared_backbone(monkeypatch, lite0):
    import cvtools.backbones

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: lite0)


def add_outputs(folder, n):
    """n pictures written beside the first n photos as cvtools writes its outputs (named by the
    run, with the provenance marker)."""
    outputs = Outputs(stylize_provenance("mona"))
    for i in range(n):
        photo = folder / f"p{i}.png"
        target = output_path_for(photo, None, "mona", ext=".png", inputs=[photo], outputs=outputs)
        save_image(target, Image.new("RGB", (48, 40), (200, 30, 30)), outputs=outputs)
        assert read_marker(target) is not None


def test_photo_files_leave_out_what_cvtools_made_and_say_so(tmp_path):
    d = make_photos(tmp_path / "photos", n=3)
    add_outputs(d, 2)
    notes = []
    files = photo_files(d, on_note=notes.append)
    assert sorted(p.name for p in files) == ["p0.png", "p1.png", "p2.png"]
    assert len(notes) == 1 and "left out 2 pictures cvtools made" in notes[0] and "_mona.png" in notes[0], notes
    notes.clear()
    assert len(photo_files(make_photos(tmp_path / "plain", n=2), on_note=notes.append)) == 2 and notes == []


def test_a_run_records_only_the_photos(tmp_path):
    d = make_photos(tmp_path / "photos", n=3)
    add_outputs(d, 2)
    notes = []
    config = TrainConfig(style_image=str(STYLE), photos=str(d), name="t", output=str(tmp_path / "out"),
                         batch_size=1, image_size=32, style_size=32, width=0.125, device="cpu", workers=0,
                         preview_every=0, checkpoint_every=0, log_every=1, steps=2)
    result = train_style(config, on_note=notes.append)
    assert json.loads(result.record_path.read_text())["recipe"]["photos"].startswith("3 photos")
    assert any("left out 2 pictures cvtools made" in n for n in notes), notes


class _Config:
    name, batch_size = "wave", 16


def test_a_run_of_hours_gets_one_note_with_a_quick_try(capsys):
    from cvtools.cli.train_style import QUICK_TRY, TrainBar

    bar = TrainBar(_Config())
    bar(0, 4000, None)
    losses = {"style": 0.5, "content": 0.25, "total": 1.0, "images_per_second": 0.5}  # 32 s a step
    bar(2, 4000, losses)  # too few steps to judge the speed by
    assert "quick try" not in capsys.readouterr().err
    bar(10, 4000, losses)
    bar(20, 4000, losses)
    err = capsys.readouterr().err
    assert err.count("quick try") == 1, err
    # (4000 - 10) steps x 16 images / 0.5 images/s = 127,680 s = 35 h
    assert "the 3990 steps left take about 35 h here" in err and QUICK_TRY in err, err
    bar.close()

    quick = TrainBar(_Config())
    quick(0, 300, None)
    quick(10, 300, dict(losses, images_per_second=16.0))  # 290 steps x 1 s: minutes
    assert "quick try" not in capsys.readouterr().err


def test_without_a_terminal_progress_is_plain_lines(capsys, monkeypatch):
    """Under pytest stderr is not a terminal: tqdm draws nothing, so the bar prints a line at the
    first log step and then at most every PLAIN_LINE_SECONDS (time is stepped here)."""
    from cvtools.cli import train_style as cli

    clock = iter([100.0, 110.0, 131.0])
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    bar = cli.TrainBar(_Config())
    bar(0, 400, None)
    losses = {"style": 0.123, "content": 0.456, "total": 1.0, "images_per_second": 160.0}
    for step in (10, 20, 30):
        bar(step, 400, losses)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("train wave:")]
    assert len(lines) == 2, lines  # at 100 s and at 131 s, not at 110 s
    assert re.fullmatch(r"train wave: step 10/400, style 0\.123 content 0\.456 160 img/s, about 39 s left",
                        lines[0]), lines[0]
    assert lines[1].startswith("train wave: step 30/400"), lines
    bar.close()
