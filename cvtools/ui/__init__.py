"""``cvtools ui``: a local web page over the library (stylize, video, dream, explain, webcam).

Needs the optional extra: ``pip install "cvtools[ui]"`` (Starlette, uvicorn, python-multipart).
:func:`serve` runs it; :mod:`cvtools.ui.server` is the web side, :mod:`cvtools.ui.library` the
one module that calls cvtools' effects.

Why a small Starlette page and not Gradio (the ML convention), decided for issue #32:

- install: the extra is starlette, uvicorn and python-multipart (wheels of 79, 87 and 30 kB; with
  anyio and h11 about 3 MB installed). ``pip install --dry-run gradio`` here (gradio 6.31,
  2026-12-04) resolves 52 packages, among them pandas (an 11 MB wheel), huggingface_hub,
  hf-xet, fastapi, pydantic, httpx, orjson, pydub and rich, for CI and for every user;
- privacy: Gradio sends usage analytics unless ``GRADIO_ANALYTICS_ENABLED`` is turned off and
  its pages load fonts from elsewhere; this page has no outside request at all (its CSP says so);
- control: upload and pixel limits, the Host check, the token, the temporary folder and the
  files served (only by ids handed out) are this package's code, small enough to read and test;
- testing: plain HTML with stable ids and ``data-`` flags for the headless-Chromium tests;
- latency: the photo is one multipart POST and the result one GET of the written file (1080p on
  2 CPU cores: 1.08x the library call, :mod:`cvtools.ui.latency`).
"""

from __future__ import annotations

import logging
import socket
from contextlib import contextmanager
from typing import Callable, Optional, Tuple

MISSING = 'cvtools ui needs the ui extra: pip install "cvtools[ui]"'


def require() -> None:
    """A one-line error when the extra is not installed."""
    import importlib.util

    from cvtools.errors import UsageError

    for module in ("starlette", "uvicorn", "multipart"):
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"{MISSING} (no {module})")


WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # listen on every interface of this machine


def addresses(host: str, port: int, token: Optional[str] = None) -> Tuple[str, str]:
    """(the page's address to open on this machine, the text that says where it listens).

    A wildcard host (0.0.0.0, ::) is no address to open: the page opens here at the loopback
    one (127.0.0.1, or [::1] for ::), and other machines reach it by this machine's name or
    address. Any other host is the address itself (IPv6 in brackets)."""
    query = f"?token={token}" if token else ""
    if host in WILDCARD_HOSTS:
        url = f"http://{'[::1]' if host == '::' else '127.0.0.1'}:{port}/{query}"
        others = f"http://{socket.gethostname() or 'THIS-MACHINE'}:{port}/{query}"
        return url, (f"{url} on this machine; listening on all interfaces ({host or '0.0.0.0'}): other machines "
                     f"use {others} (or this machine's address)")
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/{query}"
    return url, url


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from cvtools.errors import UsageError

        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})", param="port") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(settings, open_browser: bool = True, say: Callable[[str], None] = print,
          ready: Optional[Callable[[str], None]] = None) -> None:
    """Run the page until Ctrl-C or SIGTERM, then remove its temporary folder.

    settings: :class:`cvtools.ui.server.Settings` (port 0: a free one). The address is said
    through ``say`` (and given to ``ready``) once the socket listens; the browser is opened
    unless ``open_browser`` is False."""
    require()
    import threading
    import webbrowser

    import uvicorn

    from cvtools.ui.server import App, loopback

    sock = bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    if loopback(settings.host):
        names = {shown, "localhost", "127.0.0.1", "[::1]"}
        settings.allowed_hosts = tuple(f"{n}:{port}" for n in names)
    app = App(settings)
    url, where = addresses(settings.host, port, settings.token)
    quiet = _ShutdownLine()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    try:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3)
        server = uvicorn.Server(config)
        say(f"cvtools ui: {where}  (Ctrl-C stops it; files go to {app.workdir}, removed then)")
        if ready is not None:
            ready(url)
        if open_browser:
            threading.Timer(0.3, webbrowser.open, [url]).start()
        with _stop_on_signals():
            server.run(sockets=[sock])  # uvicorn shuts down on SIGINT/SIGTERM, then raises it again
    except _Stopped:
        pass
    finally:
        logging.getLogger("uvicorn.error").removeFilter(quiet)
        app.close()
        sock.close()
    say("cvtools ui: stopped; its temporary files are removed")


class _Stopped(Exception):
    pass


class _ShutdownLine(logging.Filter):
    """uvicorn's ERROR "Cancel N running task(s), timeout graceful shutdown exceeded" on a Ctrl-C
    during a Dream said as what it means to the user: a warning, not an error of the page."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Cancel %s running task(s)"):
            count = record.args[0] if isinstance(record.args, tuple) and record.args else "some"
            record.msg, record.args = "cvtools ui: %s request(s) still running were cut short", (count,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


@contextmanager
def _stop_on_signals():
    """Ctrl-C and SIGTERM end the page normally (exit 0, the temporary folder removed): uvicorn
    re-raises the signal it stopped on once it has shut down, which lands here."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _Stopped()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
