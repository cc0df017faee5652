"""Watcher backends: they only detect changes and push paths to a ChangeQueue.

Reloading is never a backend's job; the reloader drains the queue on its own terms.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from .._changes import ChangeQueue
from ..errors import HotmodError, HotmodWarning

__all__ = ["BackendName", "Watcher", "make_watcher"]

BackendName = Literal["auto", "watchdog", "polling", "manual"]


class Watcher(Protocol):
    """What the reloader needs from a backend."""

    name: str

    @property
    def needs_scan(self) -> bool:
        """True when some changes are only found by calling :meth:`scan`."""

    def add(self, path: Path) -> None:
        """Start watching a tracked file (and, for event backends, its folder)."""

    def discard(self, path: Path) -> None:
        """Stop watching a file that is no longer tracked."""

    def scan(self) -> None:
        """Find changes by looking (polling backends); a no-op for event backends."""

    def ensure_running(self) -> bool:
        """Restart a watcher thread that died; True when it had to (and a rescan is queued)."""

    def start(self) -> None: ...

    def flush(self) -> None:
        """Push the changes already made that are still on their way (kernel events
        not read yet), without blocking: a poll then sees every save made before it."""

    def after_fork(self) -> None:
        """In a forked child, where only the forking thread exists: fresh locks, and the
        watcher's threads started again if it was running."""

    def stop(self) -> None: ...

    @property
    def watched_dirs(self) -> int:
        """Folders watched through kernel events."""

    @property
    def polled_dirs(self) -> int:
        """Folders watched by stat polling."""


def make_watcher(backend: BackendName, queue: ChangeQueue, accept_name: Callable[[str], bool]) -> Watcher:
    """The backend called ``backend``; "auto" is watchdog's kernel events."""
    from .notified import NotifiedWatcher
    from .polling import PollingWatcher

    if backend == "manual":
        return NotifiedWatcher()
    if backend == "polling":
        return PollingWatcher(queue)
    try:
        from .watchdog_backend import WatchdogWatcher
    except ImportError as exc:  # pragma: no cover - watchdog is a dependency
        if backend == "watchdog":
            raise HotmodError(f"the watchdog backend is unavailable: {exc}") from exc
        warnings.warn(f"watchdog unavailable ({exc}); polling instead", HotmodWarning, stacklevel=3)
        return PollingWatcher(queue)
    return WatchdogWatcher(queue, accept_name)
