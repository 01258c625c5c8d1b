"""The tree stays clean under the project's ruff configuration (pyproject.toml: pyflakes and
import order), so a stray unused import or an undefined name fails CI, not a user."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")  # in the test extra; a bare checkout without it skips, saying so
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "cvtools", "tests", "tools", "benchmarks"]
    if shutil.which("ruff") is None and subprocess.run(cmd[:3] + ["--version"], capture_output=True).returncode:
        pytest.skip("ruff is installed but cannot run here")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


#: Modules whose note callback still has its old name (none left: issue 30 took one name)
_OLD_NOTE_NAMES: set = set()


def test_one_name_for_the_note_callback():
    """The callback that tells the user a one-line note is ``on_note`` everywhere in the library:
    no function takes it as ``notes``, ``notify`` or ``note_fn``."""
    import ast

    found = []
    for path in sorted((ROOT / "cvtools").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in _OLD_NOTE_NAMES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                args = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
                found += [f"{name}:{node.lineno} {a.arg}" for a in args if a.arg in ("notes", "notify", "note_fn")]
    assert not found, found


def test_every_function_is_one_screen_or_says_why():
    """Issue 30: a function longer than 60 lines (its docstring aside) says in a comment that
    starts '# Over one screen' why it is not split."""
    import ast

    long = []
    for path in sorted((ROOT / "cvtools").rglob("*.py")):
        name, text = str(path.relative_to(ROOT)), path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text, name)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            first = node.body[0]
            doc = first.end_lineno - first.lineno + 1 if isinstance(first, ast.Expr) and isinstance(
                getattr(first, "value", None), ast.Constant) and isinstance(first.value.value, str) else 0
            body = lines[node.lineno - 1:node.end_lineno]
            if len(body) - doc > 60 and not any(line.strip().startswith("# Over one screen") for line in body):
                long.append(f"{name}:{node.lineno} {node.name} ({len(body) - doc} lines)")
    assert not long, long
