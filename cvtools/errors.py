"""Errors that the CLI reports as one line (no traceback)."""

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


#: Characters that look like a path separator (or a backslash) but are not one: shown escaped,
#: so a name like ``a\u2215b.jpg`` cannot pass for a file ``b.jpg`` in a folder ``a``.
_LOOKALIKES = "\u2044\u2215\u2571\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c"


def safe_path(path) -> str:
    """A path as text that is always one printable line naming the file.

    Ordinary names are shown as they are. A name with anything odd in it (a newline or other
    control character, an invisible or direction-changing character, a slash look-alike,
    leading or trailing spaces) is quoted repr-style, ``'evil\\nname.jpg'``, so it cannot split
    a message, forge another line or pass for another path.
    """
    text = str(path)
    if text.isprintable() and text == text.strip() and not any(c in _LOOKALIKES for c in text):
        return text
    shown = repr(text)
    for c in _LOOKALIKES:
        shown = shown.replace(c, f"\\u{ord(c):04x}")
    return shown


def one_line(text, limit: int = 500) -> str:
    """Collapse a message onto one line (line breaks become '; '), at most ``limit`` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    joined = "; ".join(lines)
    joined = _CONTROL.sub(" ", joined)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def first_line(exc, limit: int = 200) -> str:
    """The first non-blank line of an exception's message (or of any text), at most ``limit``
    characters; the exception's type name when the message is empty (never an IndexError)."""
    text = str(exc)
    for line in text.splitlines():
        line = _CONTROL.sub(" ", line).strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return type(exc).__name__ if isinstance(exc, BaseException) else ""


class CvtoolsError(Exception):
    """An error the user can act on; its message is shown as one line.

    The message names parameters as the Python API spells them, never as command-line options,
    and ``param`` (a name or a tuple of names) lists the parameters it names, each as the
    message's first word (``octaves must be at least 1``), as ``name=value`` (``pass
    overwrite=True``) or quoted as ```name``` (``try a lower `lr```). The
    command line shows each as its option (``--octaves must be at least 1``, ``pass
    --overwrite``): :func:`cvtools.cli.errors.cli_message`.
    """

    params: tuple = ()

    def __init__(self, *args, param=None):
        super().__init__(*args)
        if param:
            self.params = (param,) if isinstance(param, str) else tuple(param)


class ImageError(CvtoolsError):
    """A problem with one input or output image; names the file."""

    def __init__(self, path, reason, param=None):
        self.path = str(path)
        self.reason = one_line(reason)
        super().__init__(f"{safe_path(self.path)}: {self.reason}", param=param)


class WeightsError(CvtoolsError):
    """Weights that are missing, damaged or not what they claim to be."""


class UsageError(CvtoolsError):
    """Options that do not make sense together."""


def close_matches(word: str, choices, n: int = 3) -> list:
    """The choices a mistyped ``word`` most likely meant: case-insensitive prefix matches
    first (``starry`` -> ``starry_night``), then difflib's close matches (``gradcamm`` ->
    ``gradcam``, ``tenis ball`` -> ``tennis ball``); at most ``n``, best first."""
    import difflib

    choices = [str(c) for c in choices]
    key = str(word).strip().lower()
    if not key:
        return []
    lowered = {}
    for c in choices:
        lowered.setdefault(c.lower(), c)
    prefixed = [c for low, c in lowered.items() if low.startswith(key)]
    close = [lowered[m] for m in difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.7)]
    return list(dict.fromkeys(prefixed[:n] + close))[:n]


def did_you_mean(word: str, choices, n: int = 3) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``) for a mistyped ``word``, else ``""``:
    appended to an "unknown ..." message instead of listing every choice."""
    matches = close_matches(word, choices, n)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"
