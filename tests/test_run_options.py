"""Options reach the library as arguments (issue 30): --max-pixels and --tune never travel
through the environment, and the cuDNN autotuning flag is set per call and put back."""

from __future__ import annotations

import os

import pytest
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


@pytest.mark.slow
def test_a_tuned_network_autotunes_its_own_calls_only(monkeypatch):
    """load_backbone(tune=True) leaves the process's cuDNN flag alone; the network asks for
    autotuning around its own calls (forward, and the engines' whole steps), an untuned one
    leaves the setting as it is."""
    import contextlib

    import torch

    from cvtools import device
    from cvtools.backbones import load_backbone
    from cvtools.dream import DreamEngine, DreamSettings
    from cvtools.visualize.explain import Explainer

    asked = []

    @contextlib.contextmanager
    def recording(enabled, dev=None):
        asked.append(enabled)
        yield

    monkeypatch.setattr(device, "cudnn_benchmark", recording)
    before = torch.backends.cudnn.benchmark
    tuned = load_backbone(device="cpu", tune=True)
    assert tuned.tune and torch.backends.cudnn.benchmark is before and asked == []
    x = torch.rand(1, 3, 40, 40)
    tuned(x)
    assert asked == [True]
    load_backbone(device="cpu", weights="random")(x)
    assert asked == [True, None]  # untuned: the setting stays as it is
    asked.clear()
    DreamEngine(tuned, DreamSettings(octaves=1, steps=1, tile=None))(x[0])
    Explainer(tuned, ["gradcam"]).explain(x)
    assert asked and set(asked) == {True}


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_a_tuned_network_sets_cudnn_autotuning_for_its_calls_and_puts_it_back(monkeypatch):
    import torch

    from cvtools.backbones import load_backbone

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    tuned = load_backbone(device="cuda", tune=True)
    assert torch.backends.cudnn.benchmark is False  # loading it changes no other network's speed
    during = []
    tuned.model.register_forward_hook(lambda *args: during.append(torch.backends.cudnn.benchmark))
    tuned(torch.rand(1, 3, 64, 64))
    assert during == [True] and torch.backends.cudnn.benchmark is False


@pytest.mark.slow
def test_train_style_max_pixels_is_an_argument_of_every_decode(tmp_path, monkeypatch, run_cli):
    """train-style's --max-pixels (else the user's CVTOOLS_MAX_PIXELS, read once) reaches the
    painting, every photo and the preview as max_pixels=: nothing reads it from the environment
    on the way (the DataLoader's photos included)."""
    import cvtools.io.decode as decode

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.new("RGB", (48, 40), (40 * i, 120, 200)).save(photos / f"p{i}.png")
    seen = []
    real = decode.load_image

    def spy(path, max_pixels=-1):
        seen.append(max_pixels)
        return real(path, max_pixels=max_pixels)

    monkeypatch.setattr(decode, "load_image", spy)
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "7000")
    args = ["train-style", str(photos / "p0.png"), "--photos", str(photos), "-o", str(tmp_path / "out"), "--steps", "1",
            "--batch-size", "1", "--image-size", "32", "--style-size", "32", "--width", "0.25", "--workers", "0",
            "--device", "cpu", "--preview-every", "1", "-q"]
    r = run_cli(*args)
    assert r.exit_code == 0, r.stderr
    assert len(seen) >= 4 and set(seen) == {7000}  # the painting, two photos, the preview
    seen.clear()
    r = run_cli(*args, "--max-pixels", "0", "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert len(seen) >= 4 and set(seen) == {None} and os.environ["CVTOOLS_MAX_PIXELS"] == "7000"


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


def test_inputs_are_expanded_once_per_command(tmp_path, monkeypatch, run_cli):
    """The command finds its inputs once and hands them to the batch (it used to search twice)."""
    import cvtools.io.discover as discover

    for k in range(2):
        Image.new("RGB", (40, 30), (40 * k, 90, 150)).save(tmp_path / f"p{k}.png")
    calls = []
    real = discover.expand_inputs

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(discover, "expand_inputs", counted)
    r = run_cli("visualize", "gradcam", str(tmp_path), "--weights", "random", "--device", "cpu",
                "-o", str(tmp_path / "out") + "/", "-q")
    assert r.exit_code == 0, r.stderr
    assert len(calls) == 1 and len(list((tmp_path / "out").iterdir())) == 2


def test_library_messages_name_parameters_not_options(tmp_path):
    """What the library says names the Python API's parameters; the command line shows them as
    its options (cvtools/cli/errors.py)."""
    from cvtools.batch import OUT_OF_MEMORY, BatchReport
    from cvtools.cli.errors import flag_text

    report = BatchReport(done=["a"], skipped=["b"], total=2, files=2)
    line = report.summary_line()
    assert "--" not in OUT_OF_MEMORY + line and "overwrite=True redoes them" in line
    assert "--overwrite redoes them" in flag_text(line, ("overwrite",))
    assert flag_text(OUT_OF_MEMORY, ("size", "tile")) == "out of memory; try a smaller --size or --tile"


def test_stylize_files_is_the_commands_job_in_python(tmp_path):
    """The Python API runs the same job as `cvtools stylize`: the same pixels, a marker, and a
    re-run that skips what is done."""
    import numpy as np

    from cvtools import stylize_files
    from cvtools.io.markers import read_marker

    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "a.png")
    notes = []
    report = stylize_files(tmp_path / "a.png", style="mona", output=f"{tmp_path}/out/", device="cpu",
                           on_note=notes.append)
    out = tmp_path / "out" / "a_mona.png"
    assert report.done == [str(tmp_path / "a.png")] and out.is_file() and read_marker(out) is not None
    again = stylize_files([tmp_path / "a.png"], style="mona", output=f"{tmp_path}/out/", device="cpu",
                          on_note=notes.append)
    assert again.skipped == [str(tmp_path / "a.png")] and "already done" in notes[-1]
    assert np.asarray(Image.open(out)).shape == (48, 64, 3)


@pytest.mark.slow
def test_dream_files_is_the_commands_job_in_python(tmp_path):
    from cvtools import dream_files
    from cvtools.io.markers import read_marker

    Image.new("RGB", (48, 40), (60, 140, 90)).save(tmp_path / "a.png")
    report = dream_files(tmp_path / "a.png", device="cpu", octaves=1, steps=1)
    out = tmp_path / "a_dream.png"
    assert report.done == [str(tmp_path / "a.png")] and read_marker(out) is not None
    assert dream_files(tmp_path / "a.png", device="cpu", octaves=1, steps=1).skipped == [str(tmp_path / "a.png")]


@pytest.mark.slow
def test_classify_folders_batch_and_answer_as_one_photo_at_a_time(tmp_path):
    """Photos of one size go through the network together, decoded on loader threads, and each
    gets the answer it gets alone (CPU fp32: a batch changes only the reduction order, ~1e-6)."""
    from cvtools.backbones import load_backbone
    from cvtools.batch import run
    from cvtools.classify import classify_images, classify_work

    colours = [(200, 120, 40), (30, 90, 200), (90, 160, 60), (240, 240, 240), (20, 20, 20)]
    for i, c in enumerate(colours):
        Image.new("RGB", (64, 48), c).save(tmp_path / f"p{i}.png")
    bb = load_backbone("efficientnet_lite0", device="cpu", precision="fp32", weights="random")
    sizes, results = [], []
    work = classify_work(bb, top_k=3, on_result=lambda path, preds: results.append((path, preds)), batch_size=4)
    real = work.compute
    work.compute = lambda items: sizes.append(len(items)) or real(items)
    report = run([str(tmp_path)], work)
    assert len(report.done) == 5 and sizes == [4, 1] and work.workers(5) > 0
    assert [str(p) for p, _ in results] == [str(tmp_path / f"p{i}.png") for i in range(5)]
    for (path, preds), alone in zip(results, [classify_images(bb, [Image.open(p)], 3)[0] for p, _ in results]):
        assert [p.index for p in preds] == [p.index for p in alone]
        assert all(abs(p.probability - q.probability) < 1e-5 for p, q in zip(preds, alone))


def test_classify_files_is_the_commands_job_in_python(tmp_path, run_cli):
    import json

    from cvtools import classify_files

    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    notes = []
    results, report = classify_files(tmp_path, top_k=3, device="cpu", on_note=notes.append)
    assert [p for p, _ in results] == [str(tmp_path / "a.png")] and report.failed == [str(tmp_path / "b.png")]
    r = run_cli("classify", str(tmp_path / "a.png"), "--top", "3", "--device", "cpu", "--json")
    shown = json.loads(r.stdout)["top"]
    assert [(p.index, round(p.probability, 6)) for p in results[0][1]] == [(t["index"], t["probability"]) for t in shown]
    assert len(notes) == 1 and "b.png" in notes[0]


def test_explain_files_is_the_commands_job_in_python(tmp_path, run_cli):
    """cvtools.explain_files runs `cvtools visualize METHOD`'s job: the same pixels and raw maps,
    the --json record through on_result, a marker, and a re-run that skips what is done."""
    import json

    import numpy as np

    from cvtools import explain_files
    from cvtools.errors import UsageError
    from cvtools.io.markers import read_marker

    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    records, notes = [], []
    report = explain_files(tmp_path, f"{tmp_path}/api/", methods=["gradcam"], raw=True, device="cpu",
                           on_result=records.append, on_note=notes.append)
    assert report.done == [str(tmp_path / "a.png")] and report.failed == [str(tmp_path / "b.png")]
    r = run_cli("visualize", "gradcam", str(tmp_path / "a.png"), "--raw", "--device", "cpu", "--json",
                "-o", f"{tmp_path}/cli/")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert {k: v for k, v in records[0].items() if k not in ("path", "outputs")} == \
        {k: v for k, v in shown.items() if k not in ("path", "outputs")}
    api, cli = tmp_path / "api" / "a_gradcam.png", tmp_path / "cli" / "a_gradcam.png"
    assert records[0]["outputs"] == [str(api), str(api.with_suffix(".npy"))] and read_marker(api) is not None
    assert np.array_equal(np.asarray(Image.open(api)), np.asarray(Image.open(cli)))
    assert np.array_equal(np.load(api.with_suffix(".npy")), np.load(cli.with_suffix(".npy")))
    again = explain_files(tmp_path / "a.png", f"{tmp_path}/api/", methods="gradcam", raw=True, device="cpu",
                          on_note=notes.append)
    assert again.skipped == [str(tmp_path / "a.png")] and "already done" in notes[-1]
    with pytest.raises(UsageError):  # answered before any file is read
        explain_files(tmp_path / "a.png", methods="gradcam", target="tabby", truth="folders")


def _without_timings(scores):
    """A scorecard's JSON without its seconds (the one column that differs from run to run)."""
    if isinstance(scores, dict):
        return {k: _without_timings(v) for k, v in scores.items() if k not in ("seconds", "s_per_image")}
    if isinstance(scores, list):
        return [_without_timings(v) for v in scores]
    return scores


@pytest.mark.slow
def test_visualize_score_activations_and_filters_are_the_commands_jobs_in_python(tmp_path, run_cli):
    """score_files, activations_files and render_filters run the jobs of `cvtools visualize
    score / activations / filters`: the same scores, the same pixels, the same file names; the
    activations re-run skips what is done."""
    import json

    import numpy as np

    from cvtools import activations_files, render_filters, score_files
    from cvtools.io.markers import read_marker

    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "a.png")
    Image.new("RGB", (48, 64), (30, 90, 160)).save(tmp_path / "b.png")
    card, report = score_files(tmp_path, "gradcam", size=48, sanity_images=0, device="cpu")
    r = run_cli("visualize", "score", tmp_path, "-m", "gradcam", "--size", "48", "--sanity", "0", "--json",
                "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert len(report.done) == 2 and _without_timings(card.to_json()) == _without_timings(json.loads(r.stdout))

    notes = []
    report = activations_files(tmp_path / "a.png", f"{tmp_path}/api/", layer="stem", channels="0:5", size=48,
                               device="cpu", on_note=notes.append)
    r = run_cli("visualize", "activations", tmp_path / "a.png", "-l", "stem", "-c", "0:5", "--size", "48",
                "--device", "cpu", "-o", f"{tmp_path}/cli/")
    assert r.exit_code == 0, r.stderr
    api, cli = tmp_path / "api" / "a_act-stem.png", tmp_path / "cli" / "a_act-stem.png"
    assert report.done == [str(tmp_path / "a.png")] and read_marker(api) is not None
    assert np.array_equal(np.asarray(Image.open(api)), np.asarray(Image.open(cli)))
    again = activations_files(tmp_path / "a.png", f"{tmp_path}/api/", layer="stem", channels="0:5", size=48,
                              device="cpu", on_note=notes.append)
    assert again.skipped == [str(tmp_path / "a.png")] and "already done" in notes[-1]

    steps = []
    made = render_filters(output=f"{tmp_path}/api/", layer="blocks.4", channels="0:3", steps=2, size=32,
                          batch_size=2, device="cpu", progress=lambda done, total: steps.append((done, total)))
    r = run_cli("visualize", "filters", "-l", "blocks.4", "-c", "0:3", "--steps", "2", "--size", "32",
                "--batch-size", "2", "--device", "cpu", "-o", f"{tmp_path}/cli/")
    assert r.exit_code == 0, r.stderr
    assert made == tmp_path / "api" / "filters_efficientnet_lite0_blocks.4_0-2.png"  # channels 0, 1 and 2
    assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(tmp_path / "cli" / made.name)))
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # two chunks of two steps


def test_explain_files_takes_a_users_model_as_the_command_does(tmp_path, run_cli):
    """model= and model_options= are `--model FILE` and its options: the same network, the same
    picture and record, a target named among the model's own classes; mistakes answer before
    any file is read."""
    import json

    import numpy as np
    import torch
    import torchvision

    from cvtools import explain_files
    from cvtools.errors import UsageError
    from cvtools.io.markers import read_marker

    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=3).state_dict(), tmp_path / "net.pth")
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "a.png")
    options = {"architecture": "mobilenet_v3_small", "classes": str(tmp_path / "labels.txt")}
    records = []
    report = explain_files(tmp_path / "a.png", f"{tmp_path}/api/", "gradcam", target="dog",
                           model=tmp_path / "net.pth", model_options=options, device="cpu",
                           on_result=records.append)
    r = run_cli("visualize", "gradcam", tmp_path / "a.png", "--model", tmp_path / "net.pth", "--arch",
                "mobilenet_v3_small", "--classes", tmp_path / "labels.txt", "--target", "dog", "--json",
                "--device", "cpu", "-o", f"{tmp_path}/cli/")
    assert r.exit_code == 0, r.stderr
    assert report.done == [str(tmp_path / "a.png")]
    assert (records[0]["target"], records[0]["label"]) == (1, "dog")
    shown = json.loads(r.stdout)
    assert {k: v for k, v in records[0].items() if k not in ("path", "outputs")} == \
        {k: v for k, v in shown.items() if k not in ("path", "outputs")}
    api, cli = tmp_path / "api" / "a_gradcam.png", tmp_path / "cli" / "a_gradcam.png"
    assert np.array_equal(np.asarray(Image.open(api)), np.asarray(Image.open(cli)))
    assert read_marker(api)["digest"] == read_marker(cli)["digest"]  # the same run, either way
    with pytest.raises(UsageError, match="model .*nope.pth: no such file"):
        explain_files(tmp_path / "a.png", model=tmp_path / "nope.pth")
    with pytest.raises(UsageError, match="unknown option 'arch'; did you mean 'architecture'"):
        explain_files(tmp_path / "a.png", model=tmp_path / "net.pth", model_options={"arch": "resnet18"})
    with pytest.raises(UsageError, match="model_options go with model"):
        explain_files(tmp_path / "a.png", model_options=options)


@pytest.mark.slow
def test_python_api_and_command_line_mark_outputs_alike(tmp_path, run_cli):
    """The Python API records the marker the command records for the same settings, so a folder
    done by one is done for the other: each pair below writes the same marker, and a re-run
    through the other path skips instead of writing NAME_SUFFIX-2."""
    from cvtools import activations_files, dream_files, explain_files, stylize_files
    from cvtools.io.markers import read_marker

    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "a.png")
    photo, cpu = tmp_path / "a.png", ("--device", "cpu")
    pairs = [  # (the Python call writing into DIR, the command line's arguments, the output's name)
        (lambda d: stylize_files(photo, "mona", f"{d}/", size=40, strength=0.5, device="cpu"),
         ("stylize", photo, "-s", "mona", "--size", "40", "--strength", "0.5", *cpu), "a_mona.png"),
        (lambda d: stylize_files(photo, "mona", f"{d}/", ext=".jpg", preserve_color=True, device="cpu"),
         ("stylize", photo, "-s", "mona", "--format", "jpg", "--preserve-color", *cpu), "a_mona.jpg"),
        (lambda d: dream_files(photo, f"{d}/", size=40, seed=3, octaves=1, steps=1, layers=["blocks.4:0-3"],
                               device="cpu"),
         ("dream", photo, "--size", "40", "--seed", "3", "--octaves", "1", "--steps", "1", "-l", "blocks.4:0-3",
          *cpu), "a_dream.png"),
        (lambda d: explain_files(photo, f"{d}/", "gradcam,saliency", target=281, size=48, raw=True, device="cpu"),
         ("visualize", "gradcam,saliency", photo, "--target", "281", "--size", "48", "--raw", *cpu),
         "a_gradcam_saliency.png"),
        (lambda d: activations_files(photo, f"{d}/", layer="stem", channels="0:4", size=48, device="cpu"),
         ("visualize", "activations", photo, "-l", "stem", "-c", "0:4", "--size", "48", *cpu), "a_act-stem.png"),
    ]
    for k, (api, args, name) in enumerate(pairs):
        first, second = (tmp_path / f"api{k}", tmp_path / f"cli{k}")
        assert api(first).done == [str(photo)], args
        r = run_cli(*args, "-o", f"{second}/")
        assert r.exit_code == 0, r.stderr
        made, expected = read_marker(first / name), read_marker(second / name)
        assert (made["command"], made["options"], made["digest"]) == \
            (expected["command"], expected["options"], expected["digest"]), args
        r = run_cli(*args, "-o", f"{first}/")  # the command after the Python API: nothing to do
        assert r.exit_code == 0 and "already done" in r.stderr, (args, r.stderr)
        assert api(second).skipped == [str(photo)], args  # and the other way round
        assert sorted(p.name for p in first.iterdir() if p.suffix != ".npy") == [name], args
