"""Library errors name parameters as the Python API does (never a command-line option) and say
which words are parameters; the command line shows those as its options (cvtools.cli.errors)."""

import click
import pytest
import torch
from conftest import SAMPLES

from cvtools.cli.errors import cli_message, flag_text
from cvtools.errors import ImageError, UsageError


def _context(command, *names):
    """A click context of ``cvtools COMMAND [SUBCOMMAND]`` (the command a message is shown under)."""
    ctx = click.Context(command)
    for name in names:
        ctx = click.Context(ctx.command.get_command(ctx, name), parent=ctx)
    return ctx


@pytest.mark.parametrize("setting, api, cli", [
    ({"octaves": 0}, "octaves must be at least 1", "--octaves must be at least 1"),
    ({"octave_scale": 1.0}, "octave_scale must be above 1", "--octave-scale must be above 1"),
    ({"step_size": 0.0}, "step_size must be positive", "--step-size must be positive"),
    ({"jitter": -1}, "jitter must be 0 or more", "--jitter must be 0 or more"),
])
def test_dream_settings_errors_name_the_parameter_and_the_cli_its_option(setting, api, cli):
    from cvtools.cli.dream import dream
    from cvtools.dream import DreamSettings

    with pytest.raises(UsageError) as err:
        DreamSettings(**setting).validated()
    assert str(err.value).startswith(api) and "--" not in str(err.value)
    assert cli_message(err.value, _context(dream)).startswith(cli)


def test_stylize_strength_error_names_the_parameter_and_the_cli_its_option():
    from cvtools.cli.stylize import stylize
    from cvtools.style.stylize import Stylizer

    stylizer = Stylizer("mona", device="cpu", precision="fp32")
    with pytest.raises(UsageError) as err:
        stylizer(torch.rand(3, 16, 16), strength=1.5)
    assert str(err.value) == "strength must be between 0 and 1, not 1.5"
    assert cli_message(err.value, _context(stylize)) == "--strength must be between 0 and 1, not 1.5"


def test_cam_layer_error_names_the_parameter_and_the_cli_its_option(lite0, monkeypatch):
    """A layer whose output is no feature map (the classifier's logits, N×1000)."""
    from cvtools.cli.visualize import visualize
    from cvtools.visualize.cam import layer_activation, layer_gradients

    monkeypatch.setitem(lite0.layer_paths, "logits", "_fc")
    x = torch.rand(1, 3, 64, 64)
    for compute in (lambda: layer_gradients(lite0, x, layer="logits"), lambda: layer_activation(lite0, x, "logits")):
        with pytest.raises(UsageError) as err:
            compute()
        assert str(err.value) == "layer='logits' does not output a feature map; pick another"
        shown = cli_message(err.value, _context(visualize, "gradcam"))
        assert shown == "--layer logits does not output a feature map; pick another"
        assert cli_message(err.value, _context(visualize)).startswith("--layer logits ")  # the group alone


def test_integrated_gradients_steps_error_has_no_option(lite0):
    from cvtools.visualize.attribution import IntegratedGradients

    with pytest.raises(UsageError) as err:
        IntegratedGradients(lite0, steps="many")
    assert str(err.value) == "steps must be auto or a number (got 'many')"
    assert flag_text(str(err.value), err.value.params) == "--steps must be auto or a number (got 'many')"


def test_cli_end_to_end_shows_the_options(run_cli, tmp_path):
    pytest.importorskip("onnxruntime")
    r = run_cli("stylize", SAMPLES / "chelsea.jpg", "--engine", "onnxruntime", "--device", "cuda",
                "-o", tmp_path / "x.jpg")
    assert r.exit_code == 1
    assert r.stderr.strip() == "cvtools: error: --engine onnxruntime runs on the CPU; use --device cpu (not 'cuda')"


def test_only_the_named_parameters_are_rewritten_and_never_a_file_name():
    exc = ImageError("steps/overwrite.jpg", "output exists; pass overwrite=True to replace it (steps: 3)",
                     param="overwrite")
    assert "--" not in str(exc)
    assert cli_message(exc) == "steps/overwrite.jpg: output exists; pass --overwrite to replace it (steps: 3)"
    # values: strings unquoted (quoted when they need it), False as the --no- form where there is one
    assert flag_text("device='cpu', name='a b', size=64", ("device", "name", "size")) == \
        "--device cpu, --name 'a b', --size 64"
    stable = click.Command("x", params=[click.Option(["--stable/--no-stable"])])
    assert flag_text("stable=False", ("stable",), stable) == "--no-stable"
    assert flag_text("backbone_weights", ("backbone_weights",)) == "--weights"
    # the name as a plain word past the first, inside another word, a value or a quoted word stays
    assert flag_text("layer='layer4' layers 'layer' sublayer", ("layer",)) == "--layer layer4 layers 'layer' sublayer"
    assert flag_text("x.jpg: its name cannot name a style; pass `name`", ("name",)) == \
        "x.jpg: its name cannot name a style; pass --name"
    assert flag_text("steps must be auto or a number of steps", ("steps",)) == \
        "--steps must be auto or a number of steps"
    train = click.Command("t", params=[click.Argument(["style_image"]), click.Option(["-o", "--output"])])
    assert flag_text("`style_image` differs; use another `output`", ("style_image", "output"), train) == \
        "STYLE_IMAGE differs; use another --output"
    assert cli_message(ValueError("octaves")) == "octaves"  # no params: as it is


def test_train_style_messages_show_its_options():
    from cvtools.cli.train_style import train_style
    from cvtools.style.train import TrainingStopped

    ctx = _context(train_style)
    stopped = TrainingStopped("stopped by Ctrl-C at step 3; checkpoint saved: out/t.ckpt (continue with `resume` "
                              "out/t.ckpt)", "out/t.ckpt", exit_code=130, param="resume")
    assert cli_message(stopped, ctx).endswith("(continue with --resume out/t.ckpt)")
    changed = UsageError("t.ckpt: this is not the run the checkpoint holds: style_layer_weights=1,2 (the run: "
                         "default); residual_blocks=3 (the run: 5). Continue with `new_settings` t.ckpt",
                         param=("style_layer_weights", "residual_blocks", "new_settings"))
    assert cli_message(changed, ctx) == (
        "t.ckpt: this is not the run the checkpoint holds: --layer-weights 1,2 (the run: default); "
        "residual_blocks (Python API) 3 (the run: 5). Continue with --resume-with-new-settings t.ckpt")
