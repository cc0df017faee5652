"""Watcher backends: they only detect changes and push paths to a ChangeQueue.

Reloading is never a backend's job; the reloader drains the queue on its own terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

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

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def watched_dirs(self) -> int:
        """Folders watched through kernel events."""

    @property
    def polled_dirs(self) -> int:
        """Folders watched by stat polling."""
