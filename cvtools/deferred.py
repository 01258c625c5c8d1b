"""An object built the first time it is used: how commands put off loading torch and a network
until an input actually needs them.

A command builds its model through ``Deferred(lambda: load_backbone(...))`` and hands it to its
work. A run whose inputs all fail before the device step (a missing file, a text file named
``.jpg``) or are already done (a re-run) then answers in a fraction of a second instead of
paying for importing torch and loading the network first (seconds on a laptop).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

_UNBUILT = object()


class Deferred:
    """A stand-in for ``factory()``: attribute access and calls go to the object, built on the
    first one (once, also when threads race). An exception from ``factory`` propagates to that
    use and is raised again on every later use (the factory is not retried); it is marked
    ``ends_batch``, so :func:`cvtools.batch.run` stops with it once instead of failing every
    input with the same message."""

    __slots__ = ("_factory", "_value", "_error", "_lock")

    def __init__(self, factory: Callable[[], Any]):
        object.__setattr__(self, "_factory", factory)
        object.__setattr__(self, "_value", _UNBUILT)
        object.__setattr__(self, "_error", None)
        object.__setattr__(self, "_lock", threading.Lock())

    @property
    def built(self) -> bool:
        """Whether the object exists yet (reading this builds nothing)."""
        return self._value is not _UNBUILT

    def get(self) -> Any:
        """The object, built now if it was not yet."""
        if self._value is _UNBUILT:
            with self._lock:
                if self._error is not None:
                    raise self._error
                if self._value is _UNBUILT:
                    try:
                        object.__setattr__(self, "_value", self._factory())
                    except BaseException as exc:
                        if isinstance(exc, Exception):
                            # What every input needs could not be built: each input would fail
                            # alike, so the runner ends the batch with this one error.
                            try:
                                exc.ends_batch = True
                            except AttributeError:  # an exception type with __slots__
                                pass
                        object.__setattr__(self, "_error", exc)
                        raise
        return self._value

    def __getattr__(self, name):
        return getattr(self.get(), name)

    def __setattr__(self, name, value):
        setattr(self.get(), name, value)

    def __call__(self, *args, **kwargs):
        return self.get()(*args, **kwargs)


def resolve(obj: Any) -> Any:
    """``obj`` itself, or the object a :class:`Deferred` stands for (built now)."""
    return obj.get() if isinstance(obj, Deferred) else obj
