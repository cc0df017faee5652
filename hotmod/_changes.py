"""The queue between the watcher backends (which only detect) and the reloader.

Editors save in bursts: vim renames the old file away and writes a new one, JetBrains
writes a temp file and renames it over the original, others truncate, pause and write.
A path becomes *ready* either when the kernel tells us the write is complete (a
close-after-write or a rename onto the path) or when no event has touched it for the
settle time. Anything else would reload a half-written file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True)
class _Entry:
    deadline: float
    settled: bool
    waited: bool = False


class ChangeQueue:
    """Thread-safe set of changed paths with per-path settle deadlines."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._entries: dict[Path, _Entry] = {}
        self._cond = threading.Condition(threading.Lock())

    def push(self, paths: Iterable[Path], *, settled: bool) -> None:
        """Record changes; ``settled`` means the write is known to be complete."""
        now = time.monotonic()
        with self._cond:
            for path in paths:
                entry = self._entries.get(path)
                if entry is None:
                    self._entries[path] = _Entry(now + self.settle, settled)
                    continue
                if settled:
                    entry.settled = True
                else:
                    # A new write started: wait for it to finish, whatever came before,
                    # and give its own transient states (empty, missing) their own wait.
                    entry.settled = False
                    entry.waited = False
                    entry.deadline = now + self.settle
            self._cond.notify_all()

    def defer(self, path: Path) -> None:
        """Look at ``path`` again after the settle time (it was missing or empty)."""
        with self._cond:
            self._entries[path] = _Entry(time.monotonic() + self.settle, False, waited=True)
            self._cond.notify_all()

    def take_ready(self) -> tuple[list[Path], set[Path]]:
        """Remove and return the ready paths, and which of them already waited once."""
        if not self._entries:  # the idle path: no lock, no allocation
            return [], set()
        now = time.monotonic()
        ready: list[Path] = []
        waited: set[Path] = set()
        with self._cond:
            for path, entry in list(self._entries.items()):
                if entry.settled or entry.deadline <= now:
                    del self._entries[path]
                    ready.append(path)
                    if entry.waited or (not entry.settled and self.settle > 0):
                        waited.add(path)
        return ready, waited

    def has_ready(self) -> bool:
        """True when :meth:`take_ready` would return something now."""
        if not self._entries:
            return False
        now = time.monotonic()
        with self._cond:
            return any(e.settled or e.deadline <= now for e in self._entries.values())

    def next_deadline(self) -> float | None:
        with self._cond:
            if not self._entries:
                return None
            return min(e.deadline for e in self._entries.values())

    def wait(self, timeout: float) -> None:
        """Block until something is pushed (or ``wake()``), at most ``timeout`` s."""
        with self._cond:
            if any(e.settled for e in self._entries.values()):
                return
            self._cond.wait(timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()
