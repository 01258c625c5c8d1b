"""Errors that the CLI reports as one line (no traceback)."""

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_path(path) -> str:
    """A path as text that is always one printable line: control characters (a newline in a
    file name, an escape sequence) are shown escaped, so they cannot split or forge messages."""
    text = str(path)
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def one_line(text, limit: int = 500) -> str:
    """Collapse a message onto one line (line breaks become '; '), at most ``limit`` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    joined = "; ".join(lines)
    joined = _CONTROL.sub(" ", joined)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


class CvtoolsError(Exception):
    """An error the user can act on; its message is shown as one line."""


class ImageError(CvtoolsError):
    """A problem with one input or output image; names the file."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = one_line(reason)
        super().__init__(f"{safe_path(self.path)}: {self.reason}")


class WeightsError(CvtoolsError):
    """Weights that are missing, damaged or not what they claim to be."""


class UsageError(CvtoolsError):
    """Options that do not make sense together."""
