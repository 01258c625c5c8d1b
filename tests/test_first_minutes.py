"""A new user's usual mistakes: each answers at once (before torch is imported) with one line,
and a close name is suggested instead of a list of everything."""

import pytest
from fresh import run_fresh

from cvtools.errors import close_matches, did_you_mean


def test_close_matches_prefers_prefixes_then_spelling():
    assert close_matches("starry", ["scream", "starry_night"]) == ["starry_night"]
    assert close_matches("Scream", ["scream", "starry_night"]) == ["scream"]
    assert close_matches("gradcamm", ["gradcam", "saliency"]) == ["gradcam"]
    assert close_matches("tenis ball", ["tennis ball", "tench"]) == ["tennis ball"]
    assert close_matches("qqq", ["gradcam", "saliency"]) == []
    assert did_you_mean("qqq", ["gradcam"]) == ""
    assert did_you_mean("gradcamm", ["gradcam"]) == "; did you mean 'gradcam'?"


@pytest.mark.parametrize("args, expected", [
    (["stylise", "x.jpg"], "did you mean 'stylize'"),
    (["visualize", "gradcamm", "x.jpg"], "did you mean 'gradcam'"),
    (["visualize", "gradcam,smothgrad", "x.jpg"], "no method or command 'smothgrad'; did you mean 'smoothgrad'"),
    (["visualize", "gradcam", "x.jpg", "--target", "tenis ball"], "did you mean 'tennis ball'"),
])
def test_a_typo_gets_a_suggestion_before_torch_loads(args, expected):
    code, err, torch_loaded = run_fresh(*args)
    assert code == 2 and expected in err, err
    assert not torch_loaded


def _photo(path, w=96, h=72, seed=0):
    from badinputs import photo

    photo(w, h, seed).save(path, quality=95)
    return path


@pytest.mark.parametrize("command", [["classify"], ["visualize", "gradcam"]])
def test_broken_inputs_answer_before_torch_loads(tmp_path, command):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    for args, expected in [([tmp_path / "missing.jpg"], "missing.jpg: no such file"),
                           ([text], "notes.jpg: not a recognised image file"),
                           ([text, "--weights", tmp_path / "none.pth"], "--weights .*none.pth: no such file"),
                           ([text, "--backbone", "resnet5"], "did you mean 'resnet50'")]:
        code, err, torch_loaded = run_fresh(*command, *args)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        import re

        assert re.search(expected, err), err
        assert not torch_loaded, args


def test_device_without_a_driver_answers_before_torch_loads(tmp_path):
    from cvtools.device import _no_gpu_driver

    if not _no_gpu_driver():
        pytest.skip("this machine has a GPU driver: torch decides whether cuda works")
    code, err, torch_loaded = run_fresh("classify", _photo(tmp_path / "p.jpg"), "--device", "cuda")
    assert code == 1 and "--device cuda asked for, but this machine has no CUDA GPU driver" in err, err
    assert not torch_loaded


def test_a_mistyped_layer_answers_before_torch_loads(tmp_path):
    code, err, torch_loaded = run_fresh("visualize", "gradcam", _photo(tmp_path / "p.jpg"), "--layer", "blocks.99")
    assert code == 1 and "unknown layer 'blocks.99' for efficientnet_lite0; did you mean 'blocks.9'" in err, err
    assert not torch_loaded


@pytest.mark.slow
def test_a_rerun_with_every_output_done_never_loads_the_network(tmp_path, run_cli):
    p = _photo(tmp_path / "p.jpg")
    first = run_cli("visualize", "gradcam", p, "--weights", "random")
    assert first.exit_code == 0, first.output
    code, err, torch_loaded = run_fresh("visualize", "gradcam", p, "--weights", "random")
    assert code == 0 and "already done" in err, err
    assert not torch_loaded


@pytest.mark.slow
def test_classify_and_visualize_give_one_answer(run_cli):
    """visualize reads the class and probability from the evaluation crop, as classify does."""
    import json

    from conftest import SAMPLES

    c = run_cli("classify", SAMPLES / "astronaut.jpg", "--json", "--top", "1")
    assert c.exit_code == 0, c.output
    top = json.loads(c.stdout)["top"][0]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        v = run_cli("visualize", "gradcam", SAMPLES / "astronaut.jpg", "--json", "-o", f"{d}/a.jpg")
    assert v.exit_code == 0, v.output
    answer = json.loads(v.stdout)
    assert answer["target"] == top["index"]
    # the same crop through the same fp32 network, batch of one each: equal up to rounding
    assert answer["probability"] == pytest.approx(top["probability"], abs=2e-6)


@pytest.mark.slow
def test_other_commands_outputs_are_left_out_of_a_folder(tmp_path, run_cli):
    _photo(tmp_path / "a.jpg", seed=1)
    _photo(tmp_path / "b.jpg", seed=2)
    made = run_cli("visualize", "gradcam", tmp_path / "a.jpg", "--weights", "random", "-q")
    assert made.exit_code == 0 and (tmp_path / "a_gradcam.jpg").exists(), made.output
    r = run_cli("classify", tmp_path, "--weights", "random", "--top", "1")
    assert r.exit_code == 0, r.output
    assert sorted(line.rstrip(":").split("/")[-1] for line in r.stdout.splitlines() if line.endswith(":")) == \
        ["a.jpg", "b.jpg"]
    assert "left out 1 earlier output of cvtools" in r.stderr, r.stderr
    alone = run_cli("classify", tmp_path / "a_gradcam.jpg", "--weights", "random", "--top", "1")
    assert alone.exit_code == 0 and "a_gradcam.jpg:" in alone.stdout  # named alone: an input


def test_dream_mistakes_answer_before_torch_loads(tmp_path):
    p = _photo(tmp_path / "p.jpg")
    for args, expected in [(["--layer", "blocks.99"], "--layer: unknown layer 'blocks.99'"),
                           (["--guide", tmp_path / "nope.jpg"], "--guide .*nope.jpg: no such file")]:
        code, err, torch_loaded = run_fresh("dream", p, *args)
        import re

        assert code == 1 and re.search(expected, err), err
        assert not torch_loaded


def test_a_network_that_cannot_be_built_ends_the_batch_with_one_line(tmp_path, run_cli):
    """A channel the layer lacks is known once the network is built (at the first photo): the
    run stops with one line instead of failing every photo with the same message."""
    a, b = _photo(tmp_path / "a.jpg", seed=1), _photo(tmp_path / "b.jpg", seed=2)
    r = run_cli("dream", a, b, "--layer", "blocks.10:200", "--weights", "random", "--octaves", "1", "--steps", "1")
    assert r.exit_code == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "--layer: blocks.10:200: blocks.10 has 112 channels" in r.stderr
    assert not list(tmp_path.glob("*_dream*"))


def test_deferred_builds_once_and_keeps_its_failure():
    from cvtools.deferred import Deferred

    calls = []
    d = Deferred(lambda: calls.append(1) or {"x": 1})
    assert not d.built and calls == []
    assert d.get() == {"x": 1} and d.get() is d.get() and calls == [1] and d.built

    def broken():
        calls.append(2)
        raise ValueError("no")

    bad = Deferred(broken)
    for _ in range(2):
        with pytest.raises(ValueError) as err:
            bad.keys()
        assert err.value.ends_batch
    assert calls == [1, 2]  # not retried


def test_stylize_of_broken_or_finished_inputs_never_loads_the_network(tmp_path, run_cli):
    p = _photo(tmp_path / "p.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    for args, expected in [([tmp_path / "missing.jpg"], "missing.jpg: no such file"),
                           ([text], "notes.jpg: not a recognised image file")]:
        code, err, torch_loaded = run_fresh("stylize", *args, "-s", "mona")
        assert code == 1 and expected in err and not torch_loaded, err
    assert run_cli("stylize", p, "-s", "mona").exit_code == 0
    code, err, torch_loaded = run_fresh("stylize", p, "-s", "mona")
    assert code == 0 and "already done" in err and not torch_loaded, err
