"""A new user's usual mistakes: each answers at once (before torch is imported) with one line,
and a close name is suggested instead of a list of everything."""

import subprocess
import sys

import pytest

from cvtools.errors import close_matches, did_you_mean

_RUN = ("import sys\nfrom cvtools.cli import main\nsys.argv = ['cvtools'] + sys.argv[1:]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
        "print('torch' in sys.modules, code)")


def run_fresh(*args, cwd=None):
    """The command in a new interpreter: (exit code, stderr, whether torch was imported)."""
    p = subprocess.run([sys.executable, "-c", _RUN, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       timeout=300)
    torch_loaded, code = p.stdout.strip().splitlines()[-1].split()
    return int(code or 0), p.stderr, torch_loaded == "True"


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
