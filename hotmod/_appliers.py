"""The open reloaders and plugin folders, in the order they were made.

``reload_now()`` applies them all; a debugpy session hears of each (``_debugpy``). They
register when created and leave on close. This module imports nothing of the engine, so
the reloader can register here and ``_now`` can build a reloader, with no import cycle.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from .result import ReloadResult

__all__ = ["Applier", "active", "register", "unregister"]


class Applier(Protocol):
    def _apply_now(self) -> ReloadResult: ...

    def notify(self, *paths: str | os.PathLike[str]) -> None: ...

    def poll(self) -> ReloadResult: ...

    def subscribe(self, listener: Callable[[ReloadResult], object]) -> Callable[[], None]: ...


# Each maps to its creation number, so reload_now() applies them in the order they were made.
_ACTIVE: weakref.WeakKeyDictionary[Applier, int] = weakref.WeakKeyDictionary()
_COUNTER = itertools.count()
_LOCK = threading.Lock()


def register(applier: Applier) -> None:
    with _LOCK:
        _ACTIVE[applier] = next(_COUNTER)
    if "pydevd" in sys.modules:  # inside a debugpy (pydevd) session: speak its protocol
        from . import _debugpy

        _debugpy.attach(applier)


def unregister(applier: Applier) -> None:
    with _LOCK:
        _ACTIVE.pop(applier, None)
    debugpy = sys.modules.get(f"{__package__}._debugpy")
    if debugpy is not None:
        debugpy.detach(applier)


def active() -> list[Applier]:
    """The open ones, oldest first."""
    with _LOCK:
        return [a for a, _ in sorted(_ACTIVE.items(), key=lambda item: item[1])]
