"""Parsed once: the tile, channel, layer-target and class-target specs (cvtools.specs and the
click types of cvtools.cli.params), one grammar and one set of checks for the CLI and the API."""

from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from conftest import SAMPLES
from PIL import Image

from cvtools.cli.params import Channels, LayerTargetType, Target, Tile
from cvtools.dream.objective import parse_layer_target, resolve_layer_targets
from cvtools.errors import UsageError
from cvtools.specs import ChannelSpec, parse_channel_spec, parse_tile

# ----------------------------------------------------------------------------- tiles


@pytest.mark.parametrize("value, expected", [
    ("auto", "auto"), ("AUTO", "auto"), (" auto ", "auto"),
    (None, None), ("off", None), ("none", None), ("0", None), (0, None), (False, None),
    ("1024", 1024), (1024, 1024), ("256", 256),
])
def test_parse_tile(value, expected):
    assert parse_tile(value, minimum=256) == expected


@pytest.mark.parametrize("value, match", [
    ("255", "too small; use at least 256"), (100, "too small"), ("big", "use auto, off"), (1.5, "use auto, off"),
    (True, "use auto, off"),
])
def test_parse_tile_rejects(value, match):
    with pytest.raises(UsageError, match=match) as err:
        parse_tile(value, minimum=256)
    assert "--" not in str(err.value)


def test_the_library_checks_tiles_with_the_same_parser():
    from cvtools.dream import DreamSettings
    from cvtools.dream.tiling import MIN_TILE
    from cvtools.style.stylize import TILE_OVERLAP, Stylizer

    assert DreamSettings(tile="OFF").validated().tile is None
    assert DreamSettings(tile="256").validated().tile == 256
    with pytest.raises(UsageError, match=f"at least {MIN_TILE}") as err:
        DreamSettings(tile=MIN_TILE - 1).validated()
    assert "--" not in str(err.value)
    fake = SimpleNamespace(overlap=TILE_OVERLAP, auto_tile=lambda h, w: "auto-chosen")
    assert Stylizer.tile_side(fake, "auto", 900, 900) == "auto-chosen"
    assert Stylizer.tile_side(fake, "off", 900, 900) is None
    assert Stylizer.tile_side(fake, "512", 900, 900) == 512
    assert Stylizer.tile_side(fake, 1024, 900, 900) is None  # one tile holds the whole image
    with pytest.raises(UsageError, match=f"at least {2 * TILE_OVERLAP}") as err:
        Stylizer.tile_side(fake, "64", 900, 900)
    assert "--" not in str(err.value)


def test_cli_tile_minimums_are_the_libraries():
    """The CLI states the minimums as numbers (importing the effects would load torch for
    --help); they must stay those of the library."""
    import cvtools.cli.dream as cli_dream
    import cvtools.cli.stylize as cli_stylize
    from cvtools.dream.tiling import MIN_TILE
    from cvtools.style.stylize import TILE_OVERLAP

    assert cli_dream.MIN_TILE == MIN_TILE
    assert cli_stylize.MIN_TILE == 2 * TILE_OVERLAP


# ----------------------------------------------------------------------------- channels


@pytest.mark.parametrize("spec, count, expected", [
    ("0-3", 10, [0, 1, 2, 3]),           # a range includes its end
    ("0:4", 10, [0, 1, 2, 3]),           # a slice excludes it
    ("3,7, 8:10", 10, [3, 7, 8, 9]),
    ("8:", 10, [8, 9]), (":2", 10, [0, 1]), ("0:10:4", 10, [0, 4, 8]),
    ("5", 10, [5]), ("all", 3, [0, 1, 2]), ("ALL", 2, [0, 1]),
    ("9,2-4,3", 10, [9, 2, 3, 4]),       # order kept, repeats dropped
    ([4, 1, 4], 10, [4, 1]),             # a Python list of channels
])
def test_channel_specs(spec, count, expected):
    assert parse_channel_spec(spec).resolve(count) == expected


@pytest.mark.parametrize("spec", ["x", "5-2", "-1", "1:2:0", "", "1:2:3:4", "3,,4", "0-x", "2:-1"])
def test_bad_channel_specs(spec):
    with pytest.raises(UsageError) as err:
        parse_channel_spec(spec)
    assert "--" not in str(err.value) and "\n" not in str(err.value)


def test_channel_errors_show_the_resolved_range():
    with pytest.raises(UsageError) as err:
        parse_channel_spec("30:50").resolve(40)
    assert str(err.value) == "channels 30:50: the layer has 40 channels (0-39); channels 40-49 do not exist"
    with pytest.raises(UsageError, match="selects no channel"):
        parse_channel_spec("5:5").resolve(40)
    with pytest.raises(UsageError, match="runs backwards .write 2-5."):
        parse_channel_spec("5-2")


def test_layer_targets_take_both_spellings(lite0):
    assert parse_layer_target("blocks.10:0:16") == parse_layer_target("blocks.10:0-15")
    assert parse_layer_target("blocks.10:0:16").channels == tuple(range(16))
    open_ended = parse_layer_target("blocks.10:100:")
    assert open_ended.channels is None and str(open_ended) == "blocks.10:100:"
    (t,) = resolve_layer_targets(lite0, [open_ended])
    assert t.channels == tuple(range(100, 112))  # blocks.10 has 112 channels
    (t,) = resolve_layer_targets(lite0, "blocks.10:all")
    assert t.channels is None  # the whole layer
    with pytest.raises(UsageError) as err:
        resolve_layer_targets(lite0, "blocks.10:100:120")
    assert str(err.value) == ("blocks.10:100:120: blocks.10 has 112 channels (0-111); "
                              "channels 112-119 do not exist")


# ----------------------------------------------------------------------------- click types


def _command(**types):
    @click.command()
    @click.option("--value", type=types["value"])
    def command(value):
        click.echo(repr(value))

    return command


@pytest.mark.parametrize("ptype, given, shown", [
    (Tile(256), "auto", "'auto'"), (Tile(256), "off", "None"), (Tile(256), "512", "512"),
])
def test_click_types_give_library_values(ptype, given, shown):
    r = CliRunner().invoke(_command(value=ptype), ["--value", given])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == shown


def test_class_targets_are_imagenet_classes_or_the_models_own():
    """--target is resolved once the options are known: ImageNet names at once (a typo is a
    usage error), a --model's names when it has loaded."""
    import click

    from cvtools.cli.params import class_target

    imagenet = {"model": None}
    assert [class_target(t, imagenet) for t in ("top1", "281", "tabby", None)] == [None, 281, 281, None]
    with pytest.raises(click.BadParameter, match="no ImageNet class named 'no such class at all'"):
        class_target("no such class at all", imagenet)
    own = {"model": "ft.pth"}
    assert [class_target(t, own) for t in ("top1", "3", " defect 3 ")] == [None, 3, "defect 3"]
    assert Target().convert("tabby", None, None) == "tabby"  # kept as text until then


def test_channel_and_layer_types_give_parsed_specs():
    r = CliRunner().invoke(_command(value=Channels()), ["--value", "0-3,8:"])
    assert r.exit_code == 0 and "ChannelSpec" in r.output
    r = CliRunner().invoke(_command(value=LayerTargetType()), ["--value", "blocks.10:0:4"])
    assert r.exit_code == 0 and "channels=(0, 1, 2, 3)" in r.output
    assert isinstance(Channels().convert("3", None, None), ChannelSpec)


@pytest.mark.parametrize("ptype, given, match", [
    (Tile(256), "100", "too small; use at least 256"),
    (Channels(), "1-x", "channels must be numbers"),
    (LayerTargetType(), "blocks.10:9-2", "runs backwards"),
])
def test_click_types_name_the_option_on_bad_values(ptype, given, match):
    r = CliRunner().invoke(_command(value=ptype), ["--value", given])
    assert r.exit_code == 2  # a usage error, before any work
    assert "Invalid value for '--value'" in r.output and match in r.output


@pytest.mark.slow
def test_dream_cli_names_the_option_for_a_channel_the_layer_lacks(run_cli, tmp_path):
    photo = tmp_path / "cat.jpg"
    Image.open(SAMPLES / "chelsea.jpg").resize((48, 32)).save(photo)
    r = run_cli("dream", photo, "--layer", "blocks.10:200-300", "--device", "cpu")
    assert r.exit_code == 1
    assert r.stderr.strip().endswith("--layer: blocks.10:200-300: blocks.10 has 112 channels (0-111); "
                                     "channels 200-300 do not exist")
    r = run_cli("dream", photo, "--tile", "64", "--device", "cpu")
    assert r.exit_code == 2 and "Invalid value for '--tile'" in r.output and "at least 128" in r.output
