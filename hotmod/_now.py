"""``hotmod.reload_now()``: apply every active reloader's pending changes, now.

Meant for a debugger's prompt. A debugger may have suspended every other thread,
the watcher's included, so nothing is taken from the event queues: every tracked file
is compared with what runs. That costs a read per tracked file, which an explicit
request can afford.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Protocol

from .errors import HotmodError
from .result import ReloadResult, combine


class _Applier(Protocol):
    def _apply_now(self) -> ReloadResult: ...


# Reloaders and plugin folders register when created and leave on close; each maps to
# its creation number, so reload_now() applies them in the order they were made.
_ACTIVE: weakref.WeakKeyDictionary[_Applier, int] = weakref.WeakKeyDictionary()
_COUNTER = itertools.count()
_LOCK = threading.Lock()


def register(applier: _Applier) -> None:
    with _LOCK:
        _ACTIVE[applier] = next(_COUNTER)


def unregister(applier: _Applier) -> None:
    with _LOCK:
        _ACTIVE.pop(applier, None)


def reload_now(timeout: float = 5.0) -> ReloadResult:
    """Apply the pending changes of every open Reloader and PluginFolder, on this thread.

    Every tracked file is compared with the version running, so changes are found even
    while a debugger holds the watcher threads. Returns one result whose counters add
    up every reloader's (``result.report()`` prints them all). Functions on a paused
    stack keep running the code they started with; their next call runs the new code.

    Raises :class:`HotmodError` if another thread holds the reload lock for longer
    than ``timeout`` seconds (a thread paused by the debugger in the middle of a reload:
    resume it, then try again).
    """
    from ._state import RELOAD_LOCK

    if not RELOAD_LOCK.acquire(timeout=timeout):
        raise HotmodError(
            f"another thread has been applying a reload for over {timeout:g} s "
            "(paused by the debugger?); resume it and call reload_now() again"
        )
    try:
        with _LOCK:
            appliers = sorted(_ACTIVE.items(), key=lambda item: item[1])
        return combine([applier._apply_now() for applier, _ in appliers])
    finally:
        RELOAD_LOCK.release()
