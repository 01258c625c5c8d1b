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
