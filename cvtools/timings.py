"""Phase marks for measuring what a user waits for (``cvtools bench --cold``).

A command run with ``CVTOOLS_TIMINGS=FILE`` records the first time it reaches each phase
(imports done, device up, model loaded, first result written, ...) in seconds since
``CVTOOLS_TIMINGS_T0`` (the parent's clock when it started the process; the process start
otherwise) and writes them to FILE as JSON at exit. Without the variable every call is a
dictionary lookup and nothing else, so the marks can stay in the commands.
"""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("CVTOOLS_TIMINGS")
_T0 = float(os.environ.get("CVTOOLS_TIMINGS_T0") or time.time())
_marks: dict = {}


def mark(phase: str) -> None:
    """Record ``phase`` the first time it is reached (later calls keep the first time)."""
    if _PATH is not None and phase not in _marks:
        _marks[phase] = time.time() - _T0


def marks() -> dict:
    return dict(_marks)


def _write() -> None:
    import json

    _marks.setdefault("exit", time.time() - _T0)
    with open(_PATH, "w") as f:
        json.dump(_marks, f)


if _PATH is not None:
    import atexit

    atexit.register(_write)
