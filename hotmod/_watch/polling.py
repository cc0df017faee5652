"""The polling backend: one ``stat`` per tracked file per scan.

A scan costs O(tracked files), never O(files in the folders): untracked files are not
modules yet, and a new module is tracked when it is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._changes import ChangeQueue

__all__ = ["PollingWatcher"]

# What a save can change. ``st_ino`` catches a rename-over that keeps mtime and size
# (``cp -p``, ``git checkout``); ``st_ctime_ns`` catches an mtime moved backwards.
_Signature = tuple[int, int, int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class PollingWatcher:
    name = "polling"

    @property
    def needs_scan(self) -> bool:
        return True

    def __init__(self, queue: ChangeQueue) -> None:
        self._queue = queue
        self._signatures: dict[Path, _Signature] = {}

    def add(self, path: Path) -> None:
        if path not in self._signatures:
            self._signatures[path] = _signature(path)

    def discard(self, path: Path) -> None:
        self._signatures.pop(path, None)

    def scan(self) -> None:
        changed = []
        # A copy: an import on another thread may add a file meanwhile.
        for path, old in list(self._signatures.items()):
            new = _signature(path)
            if new != old:
                self._signatures[path] = new
                changed.append(path)
        if changed:
            # A stat seen by polling is complete as far as we can tell; the reloader
            # still defers a missing or empty file once before believing it.
            self._queue.push(changed, settled=True)

    def ensure_running(self) -> bool:
        return False  # no thread of its own: the reloader's scan is the watcher

    def start(self) -> None:
        # Changes made while stopped are found by the next scan: signatures are kept.
        pass

    def stop(self) -> None:
        pass

    def after_fork(self) -> None:
        pass  # no thread, no lock

    def flush(self) -> None:
        pass  # nothing is on its way: a scan (or notify) is the only input

    @property
    def files(self) -> int:
        return len(self._signatures)

    @property
    def watched_dirs(self) -> int:
        return 0

    @property
    def polled_dirs(self) -> int:
        return len({p.parent for p in self._signatures})
