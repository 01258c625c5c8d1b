"""The library's notes on the terminal.

Library code never prints: what it has to tell the user (a fallback taken, a photo skipped)
goes to a ``on_note`` callback with one line of plain text, and is dropped when there is none.
A command passes :func:`note_printer` as that callback.
"""

from __future__ import annotations

import sys
from typing import Callable, Optional


def note_printer(quiet: bool = False) -> Optional[Callable[[str], None]]:
    """The ``on_note`` callback for a command: ``cvtools: note: MESSAGE`` on stderr, written above
    any progress bar; None with ``-q`` (the library then says nothing)."""
    if quiet:
        return None

    def note(message: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"cvtools: note: {message}", file=sys.stderr)

    return note
