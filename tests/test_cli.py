"""The CLI through click's CliRunner: help, version, classify, errors."""

import json
import subprocess
import sys

import pytest
from conftest import SAMPLES

from cvtools.cli import COMMANDS, LazyGroup


def test_help_and_version(run_cli):
    r = run_cli("--help")
    assert r.exit_code == 0 and "classify" in r.output
    r = run_cli("--version")
    assert r.exit_code == 0 and "cvtools" in r.output


#: what no help page may import: torch and its family, the ONNX exporter and runtime, the web
#: page's server (each takes from a tenth of a second to seconds to import)
HEAVY = ("torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "starlette", "uvicorn", "multipart")
#: every command's help (the list is the CLI's own, so a new command is covered), the main help,
#: the styles listing and the help forms that parse something (a method list, a subcommand)
HELP_PAGES = [([name, "--help"], "Usage:") for name in COMMANDS if LazyGroup._available(name) and name != "stylize"] + [
    (["--help"], "classify"),
    (["styles"], "Starry Night"),
    (["stylize", "--help"], "onnxruntime"),
    (["visualize", "gradcam,smoothgrad", "--help"], "Usage:"),
    (["visualize", "filters", "-h"], "Usage:"),
]


@pytest.mark.parametrize("argv, shows", HELP_PAGES, ids=[" ".join(a) for a, _ in HELP_PAGES])
def test_help_and_listings_import_nothing_heavy(argv, shows):
    """The one test of this policy (copies were in test_visualize and test_export): every help
    page and the styles listing answer without importing torch, ONNX or the web server.
    (test_backbones keeps its own check that listing backbones imports no torchvision.)"""
    code = ("import sys; from cvtools.cli import main\n"
            f"sys.argv = ['cvtools'] + {argv!r}\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shows in out and out.strip().endswith("[]"), out


def test_classify_json_batch_with_a_bad_file(run_cli, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    r = run_cli("classify", SAMPLES / "chelsea.jpg", bad, SAMPLES / "coffee.jpg", "--json", "--top", "3")
    assert r.exit_code == 1
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    rows = [row for row in lines if "top" in row]
    assert [row["path"].split("/")[-1] for row in rows] == ["chelsea.jpg", "coffee.jpg"]
    # the bad file has its line too (a script reading the JSON sees every input), as well as stderr's
    errors = [row for row in lines if "error" in row]
    assert len(lines) == 3 and len(errors) == 1 and errors[0]["path"].endswith("bad.jpg")
    assert "not a recognised image" in errors[0]["error"]
    assert len(rows[0]["top"]) == 3
    assert "cat" in rows[0]["top"][0]["name"] or rows[0]["top"][0]["index"] in range(281, 294)
    assert "espresso" in rows[1]["top"][0]["name"] or "cup" in rows[1]["top"][0]["name"]
    err = [l for l in r.stderr.splitlines() if "bad.jpg" in l]
    assert len(err) == 1 and "not a recognised image" in err[0]


def test_unknown_backbone_is_one_line(run_cli):
    r = run_cli("classify", SAMPLES / "chelsea.jpg", "--backbone", "nope")
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "unknown backbone 'nope'" in r.stderr


def test_layers_and_backbones(run_cli):
    r = run_cli("layers", "efficientnet_lite0")
    assert r.exit_code == 0 and "blocks.15" in r.output and "cam" in r.output
    r = run_cli("layers", "resnet50")
    assert r.exit_code == 0 and "layer4" in r.output
    r = run_cli("backbones")
    assert r.exit_code == 0 and "embedded" in r.output
