"""--style names against the files around them (QA sweep s): a folder or file named like a
bundled style does not replace it, the advice for a trained style in a blend does not loop,
options that do nothing here say so, a painting given to export is pointed at --arbitrary, and
a name beside its file suggests the file. Tiny images made in code; the trained style is a
narrow random network saved as train-style saves one."""

import numpy as np
import pytest
from PIL import Image

from cvtools.errors import UsageError


def noise(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def lines_of(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


def one_error(result):
    lines = lines_of(result)
    assert result.exit_code != 0 and len(lines) == 1, (result.exit_code, result.stderr)
    assert lines[0].startswith("cvtools: error: ")
    return lines[0]


def trained_style(folder, name="monet"):
    """A style as train-style writes it (NAME.safetensors + NAME.json), random and narrow."""
    import torch

    from cvtools.style.network import TransformerNet
    from cvtools.style.records import StyleRecord, save_style_weights

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_style_weights(TransformerNet(width=0.125, residual_blocks=1).eval(), folder / f"{name}.safetensors",
                             name=name)
    StyleRecord(name=name, weights={"file": f"{name}.safetensors", "sha256": sha},
                network={"width": 0.125, "residual_blocks": 1}).save(folder / f"{name}.json")
    return folder / f"{name}.json"


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A folder with a 40x32 photo, the current directory for the test."""
    noise(40, 32).save(tmp_path / "p.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


# ------------------------------------------------------------------ 1: a file or folder named like a style


def test_a_folder_named_like_the_style_does_not_break_the_same_command_run_again(here, run_cli):
    for _ in range(2):  # last run's -o scream/ is a folder named scream
        r = run_cli("stylize", "p.png", "-s", "scream", "-o", "scream/", "--device", "cpu")
        assert r.exit_code == 0, r.stderr
        assert "directory" not in r.stderr and "note: --style" not in r.stderr  # a folder is no file to mean
    assert (here / "scream" / "p_scream.png").is_file()
    for _ in range(2):
        r = run_cli("stylize", "p.png", "-s", "mona:0.5", "-s", "scream:0.5", "-o", "scream/", "--device", "cpu")
        assert r.exit_code == 0, r.stderr
    assert (here / "scream" / "p_mona+scream.png").is_file()


def test_a_file_named_like_a_bundled_style_is_not_used_as_its_painting(here, run_cli):
    r = run_cli("stylize", "p.png", "-s", "mona", "-o", "clean.png", "--device", "cpu")
    assert r.exit_code == 0 and not lines_of(r), r.stderr
    noise(64, 64, 5).save(here / "mona", "PNG")  # a painting with no extension, named like the style
    r = run_cli("stylize", "p.png", "-s", "mona", "-o", "bare.png", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    notes = [line for line in lines_of(r) if line.startswith("cvtools: note:")]
    assert len(notes) == 1 and "bundled style mona was used" in notes[0] and "./mona" in notes[0], r.stderr
    assert np.array_equal(pixels("bare.png"), pixels("clean.png"))
    r = run_cli("stylize", "p.png", "-s", "./mona", "-o", "file.png", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr  # ./mona is the file: painted from it
    assert np.abs(pixels("file.png") - pixels("clean.png")).mean() > 5


@pytest.mark.slow
def test_a_file_named_like_a_bundled_style_stays_out_of_a_blend(here, run_cli, monkeypatch):
    monkeypatch.setenv("CVTOOLS_TORCH_FREE", "0")  # the same network for both runs
    blend = ("-s", "mona:0.5", "-s", "scream:0.5", "--device", "cpu", "--precision", "fp32")
    r = run_cli("stylize", "p.png", *blend, "-o", "clean.png")
    assert r.exit_code == 0, r.stderr
    noise(64, 64, 5).save(here / "mona", "PNG")
    r = run_cli("stylize", "p.png", *blend, "-o", "bare.png")
    assert r.exit_code == 0, r.stderr
    assert sum("bundled style mona was used" in line for line in lines_of(r)) == 1, r.stderr
    assert np.abs(pixels("bare.png") - pixels("clean.png")).max() <= 1


def test_the_library_blends_the_bundled_style_not_the_file_of_its_name(here):
    import torch

    from cvtools.style.arbitrary import bundled_style_embedding
    from cvtools.style.job import _styles_of

    noise(64, 64).save(here / "mona", "PNG")
    record, sources, name, _ = _styles_of(["mona:0.5", "scream:0.5"])
    assert record is None and name == "mona+scream"
    assert torch.equal(sources[0][0], bundled_style_embedding("mona")) and sources[1] == ("scream", 0.5)


def test_the_library_reads_a_bare_bundled_name_as_the_style(here):
    from cvtools.style.records import bare_bundled_name, is_painting, resolve_style, shadowed_file_note

    (here / "scream").mkdir()
    noise(64, 64).save(here / "mona", "PNG")
    assert resolve_style("scream").name == "scream" and resolve_style("Mona").name == "mona"
    assert not is_painting("mona") and is_painting("./mona")
    assert bare_bundled_name("mona.png") is None and bare_bundled_name("./mona") is None
    assert shadowed_file_note("scream") is None and "./mona" in shadowed_file_note("mona")


# ------------------------------------------------------------------ 2, 3: trained styles


def test_a_trained_style_in_a_blend_is_told_to_go_alone_without_a_looping_hint(here, run_cli):
    record = trained_style(here / "mystyles")
    for extra in ((), ("--strength-mode", "pixels"), ("--strength", "0.5", "--strength-mode", "pixels")):
        line = one_error(run_cli("stylize", "p.png", "-s", f"{record}:0.5", "-s", "mona:0.5", *extra))
        assert "cannot be blended" in line and "use it alone" in line, line
        assert "--strength-mode pixels" not in line and "weakened" not in line, line


def test_strength_mode_style_on_a_trained_style_says_it_mixes_pixels(here, run_cli):
    record = trained_style(here / "mystyles")
    r = run_cli("stylize", "p.png", "-s", record, "--strength", "0.5", "--strength-mode", "style", "-o", "t.png",
                "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    notes = [line for line in lines_of(r) if line.startswith("cvtools: note: --strength-mode style")]
    assert len(notes) == 1 and "mixes its pixels" in notes[0], r.stderr
    r = run_cli("stylize", "p.png", "-s", record, "--strength", "0.5", "-o", "u.png", "--device", "cpu")
    assert r.exit_code == 0 and "note" not in r.stderr, r.stderr  # not asked for: nothing to say
    assert np.array_equal(pixels("t.png"), pixels("u.png"))


# ------------------------------------------------------------------ 4: export a painting


def test_export_of_a_painting_points_at_the_any_painting_network(here, run_cli):
    noise(64, 64).save(here / "painting.jpg")
    line = one_error(run_cli("export", "-s", "painting.jpg", "-o", "paint.onnx"))
    assert "painting.jpg" in line and "export --arbitrary" in line and "--engine onnxruntime" in line, line
    assert ".safetensors" not in line
    assert not (here / "paint.onnx").exists()


# ------------------------------------------------------------------ 5: video options on photos


@pytest.mark.parametrize("options, named", [(("--stable",), "--stable only applies"),
                                            (("--start", "1"), "--start only applies"),
                                            (("--duration", "2", "--stable"), "--duration and --stable only apply")])
def test_video_options_on_photos_say_they_do_nothing(here, run_cli, options, named):
    r = run_cli("stylize", "p.png", "-s", "mona", *options, "-o", "a.png", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    notes = [line for line in lines_of(r) if line.startswith("cvtools: note:")]
    assert len(notes) == 1 and named in notes[0] and "videos" in notes[0], r.stderr
    r = run_cli("stylize", "p.png", "-s", "mona", *options, "-o", "b.png", "--device", "cpu", "-q")
    assert r.exit_code == 0 and not lines_of(r), r.stderr


def test_video_options_with_a_video_among_the_inputs_give_no_note(here, run_cli):
    frames = [noise(40, 32, seed) for seed in range(2)]
    frames[0].save(here / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    r = run_cli("stylize", "p.png", "anim.gif", "-s", "mona", "--stable", "-o", "out/", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert "only appl" not in r.stderr, r.stderr


# ------------------------------------------------------------------ 6: a weight too large to be finite


def test_an_infinite_weight_is_told_to_be_finite(here, run_cli):
    from cvtools.style.records import normalized_weights, parse_style_spec

    line = one_error(run_cli("stylize", "p.png", "-s", "mona:1e400", "-s", "scream"))
    assert "mona:1e400: a style's weight must be a positive finite number, not 1e400" in line, line
    with pytest.raises(UsageError, match="positive finite number, not inf"):
        normalized_weights([1.0, float("inf")])
    with pytest.raises(UsageError, match="must be a positive number, not 0"):
        parse_style_spec("mona:0")  # a finite one is only told to be positive


# ------------------------------------------------------------------ 7: a name beside its file


def test_a_style_path_without_its_extension_suggests_the_file(here, run_cli):
    trained_style(here / "mystyles")
    line = one_error(run_cli("stylize", "p.png", "-s", "mystyles/monet"))
    assert "mystyles/monet: no such style file; did you mean mystyles/monet.json?" in line, line


def test_a_name_beside_its_record_suggests_the_record_before_bundled_names(here, run_cli, monkeypatch):
    trained_style(here / "mystyles")
    monkeypatch.chdir(here / "mystyles")
    line = one_error(run_cli("stylize", "../p.png", "-s", "monet"))
    assert "did you mean 'monet.json' or 'mona'?" in line, line
