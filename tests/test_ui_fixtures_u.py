"""The web page's QA tests (tests/test_ui_qa_s.py, tests/test_ui_qa_t.py) start their server and
their Chromium page through one pair of fixtures (tests/conftest.py: ``ui_server``, ``ui_page``)
instead of a copy each, which had drifted (30 s and 60 s default timeouts, a URL and a
(URL, folder) pair); without Chromium their browser tests skip with tests/test_ui.py's reason."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
QA_MODULES = ("test_ui_qa_s.py", "test_ui_qa_t.py")


def _fixtures(path: Path):
    """Names of the functions ``path`` decorates with ``pytest.fixture``."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                if isinstance(target, ast.Attribute) and target.attr == "fixture":
                    names.append(node.name)
    return names


@pytest.mark.parametrize("module", QA_MODULES)
def test_the_qa_modules_use_the_shared_server_and_page(module):
    path = TESTS / module
    assert not {"server", "page"} & set(_fixtures(path)), _fixtures(path)
    assert "chromium.launch" not in path.read_text()
    tests = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)
             and n.name.startswith("test_")]
    used = {a.arg for t in tests for a in t.args.args}
    assert "ui_page" in used and not {"server", "page"} & used, used


def test_conftest_holds_the_one_chromium_start():
    assert {"ui_server", "ui_page"} <= set(_fixtures(TESTS / "conftest.py"))
    assert (TESTS / "conftest.py").read_text().count("chromium.launch") == 1


def test_without_chromium_the_browser_tests_skip_with_the_same_reason(tmp_path):
    """Run with no Chromium to be found (PATH without it, no CVTOOLS_CHROMIUM): the browser tests
    of both modules skip, each with tests/test_ui.py's reason, and no server is started for them."""
    from test_ui import BROWSER_SKIP

    if BROWSER_SKIP and "Chromium" not in BROWSER_SKIP:
        pytest.skip(BROWSER_SKIP)  # no ui extra or Playwright: another reason, tested where it is
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CVTOOLS_CHROMIUM"}
    env["PATH"] = str(bare)
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
                        *(str(TESTS / m) for m in QA_MODULES), "-k", "hidden or painting"],
                       cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    skips = [line for line in r.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 2, r.stdout[-3000:]
    reason = "no Chromium (apt-get install chromium, or set CVTOOLS_CHROMIUM)"
    assert all(line.endswith(reason) for line in skips), skips
