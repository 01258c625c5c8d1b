import os
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def _pin_subprocesses_to_this_cvtools():
    """Tests that run ``python -m cvtools`` in a subprocess (torchrun, Ctrl-C, pipes) from
    another folder must run the cvtools these tests import, not an older installed copy."""
    import cvtools

    here = str(Path(cvtools.__file__).resolve().parents[1])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([here] + paths)


_pin_subprocesses_to_this_cvtools()


def shared_dir():
    """The shared data folder ($CVTOOLS_SHARED or ../shared), or None when absent."""
    env = os.environ.get("CVTOOLS_SHARED")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture
def shared():
    d = shared_dir()
    if d is None:
        pytest.skip("shared data not found (set CVTOOLS_SHARED or place it at ../shared)")
    return d


@pytest.fixture(scope="session")
def lite0():
    """The embedded EfficientNet-Lite0, fused, fp32 on the CPU (loaded once per session)."""
    from cvtools.backbones import load_backbone

    return load_backbone("efficientnet_lite0", device="cpu", precision="fp32")


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process with click's CliRunner; returns the click Result."""
    from click.testing import CliRunner

    from cvtools.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="cvtools")

    return run


def noise_effect(sigma, seed=0):
    """A toy style that flickers like a network: the frame, dimmed, plus fresh noise of std
    ``sigma`` on every call (nothing of it moves with the scene). For the stabilizer's tests."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def effect(x):
        x = x.float() if x.dim() == 4 else x.float()[None]
        return (0.8 * x + 0.1 + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)

    return effect


# ----------------------------------------------------------------------------- the web page

#: How long a page action (a click, a selector) waits by default in the browser tests of the
#: web page: the stricter of the 30 s and 60 s the QA modules had; a test that waits for a
#: dream or an explain on the CPU says its own longer wait (tests/test_ui.py's ``_wait``).
UI_PAGE_TIMEOUT_MS = 30_000


class UiServer(NamedTuple):
    url: str  # http://127.0.0.1:PORT, no trailing slash
    workdir: Path  # the server's temporary folder (uploads and outputs)


@pytest.fixture(scope="module")
def ui_server():
    """``cvtools ui --no-browser --device cpu`` in a subprocess for the module (as
    tests/test_ui.py starts it); skipped, saying so, without the ui extra."""
    from test_ui import UI_EXTRA, _start_server, _stop

    if not UI_EXTRA:
        pytest.skip('the ui extra is not installed (pip install "cvtools[ui]")')
    proc, url, workdir = _start_server()
    yield UiServer(url.rstrip("/"), workdir)
    _stop(proc)


@pytest.fixture(scope="module")
def ui_page(request):
    """One headless Chromium page on :func:`ui_server`'s page for the module, loaded and ready;
    skipped with tests/test_ui.py's reason (no ui extra, Playwright or Chromium) before any
    server starts."""
    from test_ui import BROWSER_SKIP, CHROMIUM

    if BROWSER_SKIP:
        pytest.skip(BROWSER_SKIP)
    server = request.getfixturevalue("ui_server")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.set_default_timeout(UI_PAGE_TIMEOUT_MS)
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        yield page
        browser.close()
