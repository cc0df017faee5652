"""The process-wide state every reloader shares, in one place.

- the reload lock: a module must never be re-executed by two threads at once, and two
  reloaders may track the same module;
- what each module object runs: the exact source its import compiled (recorded by the
  import recorder) or the last version a reloader applied to it. It is keyed by the module
  object itself and held weakly, so nothing outlives the module: a module imported again
  is a new object that starts with no history, whatever a closed reloader once applied;
- the open reloaders, so an import can tell them at once and a fork can reset them.

Nothing here does anything until a reloader exists; ``os.register_at_fork`` is called
once, when the first reloader opens.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

__all__ = [
    "RELOAD_LOCK",
    "ForkSafeLock",
    "Member",
    "Running",
    "any_open",
    "close_member",
    "members",
    "on_open_change",
    "open_member",
    "running",
    "set_running",
]


class ForkSafeLock:
    """A re-entrant lock that a forked child gets back free.

    ``os.fork`` copies a lock held by another thread into the child as held, by a thread
    that does not exist there: every reload in the child would wait forever. The child
    is given a new lock (the fork hook below), behind the same object, so modules that
    imported this one keep a valid reference.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def reset(self) -> None:
        self._lock = threading.RLock()


# One lock for every reloader in the process. Re-entrant so a module whose code polls a
# reloader while being reloaded does not deadlock itself.
RELOAD_LOCK = ForkSafeLock()


@dataclass(frozen=True, slots=True)
class Running:
    """The exact source a module object is running, and how we know it."""

    data: bytes
    digest: bytes
    how: str  # "imported" (recorded at import) or "applied" (a reload applied it)


_RUNNING: weakref.WeakKeyDictionary[ModuleType, Running] = weakref.WeakKeyDictionary()


def running(module: ModuleType) -> Running | None:
    """What ``module`` runs, when known exactly."""
    try:
        return _RUNNING.get(module)
    except TypeError:  # an object in sys.modules that cannot be weakly referenced
        return None


def set_running(module: ModuleType, data: bytes, digest: bytes, how: str) -> None:
    with contextlib.suppress(TypeError):  # not weakly referenceable: nothing is known of it
        _RUNNING[module] = Running(data, digest, how)


class Member(Protocol):
    """What the shared state asks of an open reloader."""

    def _wants_import(self, origin: str) -> bool: ...

    def _imported(self, module: ModuleType, origin: str) -> None: ...

    def _after_fork_in_child(self) -> None: ...


_OPEN: weakref.WeakSet[Member] = weakref.WeakSet()
_OPEN_LOCK = threading.Lock()
_listeners: list[Callable[[bool], None]] = []  # told when the first opens / the last closes
_fork_hook_installed = False


def on_open_change(callback: Callable[[bool], None]) -> None:
    """Call ``callback(True)`` when the first reloader opens, ``callback(False)`` after the last."""
    _listeners.append(callback)


def open_member(member: Member) -> None:
    global _fork_hook_installed
    with _OPEN_LOCK:
        first = not _OPEN
        _OPEN.add(member)
        if not _fork_hook_installed:
            # Registered once per process and never removable; it does nothing while no
            # reloader is open.
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True
    if first:
        for callback in list(_listeners):
            callback(True)


def close_member(member: Member) -> None:
    with _OPEN_LOCK:
        was_open = member in _OPEN
        _OPEN.discard(member)
        last = was_open and not _OPEN
    if last:
        for callback in list(_listeners):
            callback(False)


def members() -> list[Member]:
    with _OPEN_LOCK:
        return list(_OPEN)


def any_open() -> bool:
    return bool(_OPEN)


def _after_fork_in_child() -> None:
    # Only the thread that forked exists here: every lock another thread held is held
    # forever in this copy. Give each a fresh one before anything else runs.
    global _OPEN_LOCK
    RELOAD_LOCK.reset()
    _OPEN_LOCK = threading.Lock()
    for member in list(_OPEN):
        member._after_fork_in_child()
