"""Parsers for the small option languages the commands share, written once.

>>> parse_tile("1024", minimum=256)        # -> 1024   ("auto" -> "auto", "off"/"none"/"0" -> None)
>>> spec = parse_channel_spec("0-3,8:10")  # -> ChannelSpec, resolved once the layer is known
>>> spec.resolve(16)                       # -> [0, 1, 2, 3, 8, 9]

The CLI's parameter types (``cvtools.cli.params``) call these, so a command line and a Python
caller get the same values and the same checks. Errors are :class:`~cvtools.errors.UsageError`
naming the value, never a command-line option (the CLI adds those).

Channel specs: comma-separated parts, each a channel ``N``, an inclusive range ``a-b``
(``0-15`` is 16 channels, as written in the layer targets ``blocks.10:0-15``) or a Python slice
``a:b`` / ``a:b:step`` (end excluded: ``0:16`` is the same 16 channels; ``:8`` and ``8:`` run
from the first / to the last channel), or ``all``. Repeats are dropped, the order is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

from cvtools.errors import UsageError

#: A tile setting as the library takes it: "auto" (tile only what would not fit in memory), a
#: tile side in pixels (an int at least the effect's minimum), or None (never tile).
TileSpec = Union[str, int, None]

_OFF = ("off", "none", "no", "0")


def parse_tile(value, minimum: int) -> TileSpec:
    """``"auto"``/None-ish/number text or values -> ``"auto"``, None (never tile) or an int side.

    Accepts "auto" (any case), "off"/"none"/"0"/0/None/False for never, and a side in pixels
    (int or digit text) of at least ``minimum``."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text in _OFF:
            return None
        try:
            side = int(text)
        except ValueError:
            raise UsageError(f"tile {value!r}: use auto, off, or a tile side in pixels (e.g. 1024)") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        side = value
    else:
        raise UsageError(f"tile {value!r}: use auto, off, or a tile side in pixels (e.g. 1024)")
    if side == 0:
        return None
    if side < minimum:
        raise UsageError(f"tile {side} is too small; use at least {minimum} pixels (or auto)")
    return side


def compact_channels(channels) -> str:
    """``[0, 1, 2, 3, 7, 9, 10]`` -> ``"0-3,7,9-10"`` (runs of consecutive numbers as inclusive ranges)."""
    parts: List[str] = []
    run: List[int] = []
    for c in list(channels) + [None]:
        if run and (c is None or c != run[-1] + 1):
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
            run = []
        if c is not None:
            run.append(c)
    return ",".join(parts)


# A part of a channel spec: one channel, or a slice (start, stop, step) whose None stop means
# "to the last channel" (resolved when the layer's channel count is known).
_Part = Union[int, Tuple[int, Optional[int], int]]


@dataclass(frozen=True)
class ChannelSpec:
    """Parsed channels of a layer; :meth:`resolve` turns them into indices for a channel count.

    ``text`` is the spec as given (errors quote it); ``parts`` the channels and half-open
    ranges in order; ``everything`` is ``all``."""

    text: str
    parts: Tuple[_Part, ...] = ()
    everything: bool = False

    def __str__(self) -> str:
        return self.text

    @property
    def closed(self) -> bool:
        """True when the channels do not depend on the layer's size (no ``all``, no ``8:``)."""
        return not self.everything and all(isinstance(p, int) or p[1] is not None for p in self.parts)

    def indices(self, count: Optional[int] = None) -> List[int]:
        """The channels in order, repeats dropped; ``count`` fills in open ends (not checked)."""
        if self.everything:
            if count is None:
                raise ValueError("'all' needs the layer's channel count")
            return list(range(count))
        out: List[int] = []
        for p in self.parts:
            if isinstance(p, int):
                out.append(p)
            else:
                start, stop, step = p
                if stop is None:
                    if count is None:
                        raise ValueError(f"{self.text!r} needs the layer's channel count")
                    stop = count
                out.extend(range(start, stop, step))
        return list(dict.fromkeys(out))

    def resolve(self, count: int, layer: Optional[str] = None, label: Optional[str] = None) -> List[int]:
        """The channel indices for a layer of ``count`` channels; a UsageError naming the spec
        (or ``label``), the layer's channels and the missing ones when some do not exist, or
        when none is left."""
        out = self.indices(count)
        what = f"{layer} has" if layer else "the layer has"
        label = label or f"channels {self.text}"
        missing = [c for c in out if c >= count]
        if missing:
            raise UsageError(f"{label}: {what} {count} channels (0-{count - 1}); "
                             f"{'channel' if len(missing) == 1 else 'channels'} {compact_channels(missing)} "
                             f"{'does' if len(missing) == 1 else 'do'} not exist")
        if not out:
            raise UsageError(f"{label}: selects no channel ({what} {count}: 0-{count - 1})")
        return out


def parse_channel_spec(text, label: Optional[str] = None) -> ChannelSpec:
    """``"0-15"``, ``"0:16"``, ``"3,7,12"``, ``"8:"``, ``"0:64:4"`` or ``"all"`` -> ChannelSpec
    (see the module's docstring for the grammar); a ChannelSpec is returned as it is. Errors
    start with ``label`` (default ``channels 'SPEC'``)."""
    if isinstance(text, ChannelSpec):
        return text
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):  # a list of channel numbers from Python
        try:
            channels = [int(c) for c in text]
        except (TypeError, ValueError):
            raise UsageError(f"{label or 'channels'}: give numbers, ranges like 0-15 or 0:16, or all") from None
        if any(c < 0 for c in channels):
            raise UsageError(f"{label or 'channels'}: channel numbers start at 0")
        return ChannelSpec(",".join(map(str, channels)), tuple(channels))
    spec = text.strip()
    label = label or f"channel spec {spec!r}"
    if spec.lower() == "all":
        return ChannelSpec(spec, everything=True)
    parts: List[_Part] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if ":" in part:
                fields = part.split(":")
                if len(fields) > 3:
                    raise ValueError
                start = int(fields[0]) if fields[0].strip() else 0
                stop = int(fields[1]) if fields[1].strip() else None
                step = int(fields[2]) if len(fields) == 3 and fields[2].strip() else 1
                if start < 0 or (stop is not None and stop < 0) or step < 1:
                    raise ValueError
                parts.append((start, stop, step))
            elif "-" in part:
                lo, _, hi = part.partition("-")
                a, b = int(lo), int(hi)
                if a < 0 or b < 0:
                    raise ValueError
                if a > b:
                    raise UsageError(f"{label}: the range {part} runs backwards (write {b}-{a})")
                parts.append((a, b + 1, 1))
            else:
                c = int(part)
                if c < 0:
                    raise ValueError
                parts.append(c)
        except ValueError:
            raise UsageError(f"{label}: channels must be numbers (3,7), ranges like 0-15 (end included) "
                             f"or slices like 0:16 (end excluded), or all (got {part!r})") from None
    return ChannelSpec(spec, tuple(parts))
