"""Watching static files and templates: not modules, but the browser shows them.

The folders are walked once at start and every file in them is watched through the
same backends as modules (kernel events per folder, polling where a watch cannot be
placed), so editor scratch files and bursts of writes are handled the same way. A file
counts as changed when its size or modification time moved: a save that rewrote the
same bytes still refreshes the page, which is what the person saving expects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .._apply_thread import ApplyThread
from .._changes import ChangeQueue
from .._filters import DEFAULT_EXCLUDE, PathFilter
from .._watch import BackendName, make_watcher

__all__ = ["AssetWatcher"]

logger = logging.getLogger(__name__)

_Signature = tuple[int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class AssetWatcher:
    """Calls ``on_change(paths)`` on its own thread when files under ``folders`` change."""

    def __init__(
        self,
        folders: Iterable[str | os.PathLike[str]],
        on_change: Callable[[list[Path]], None],
        *,
        backend: BackendName = "auto",
        poll_interval: float = 0.5,
        settle: float = 0.05,
    ) -> None:
        self.folders = tuple(Path(os.path.realpath(os.fspath(f))) for f in folders)
        self._on_change = on_change
        self._poll_interval = poll_interval
        self._filter = PathFilter(self.folders, include=("*",), exclude=DEFAULT_EXCLUDE)
        self._queue = ChangeQueue(settle)
        self._watcher = make_watcher(backend, self._queue, self._filter.name_accepted)
        self._seen: dict[Path, _Signature] = {}  # touched by the watching thread only
        self._thread = ApplyThread("hotmod-assets", self._run, self._queue.wake)

    @property
    def files(self) -> int:
        return len(self._seen)

    def start(self) -> None:
        for folder in self.folders:
            for directory, subdirs, names in os.walk(folder):
                here = Path(directory)
                subdirs[:] = [d for d in subdirs if self._filter.accepts(here / d, check_name=False)]
                for name in names:
                    path = here / name
                    if self._filter.accepts(path):
                        self._seen[path] = _signature(path)
                        self._watcher.add(path)
        self._watcher.start()
        self._thread.start()
        logger.debug("watching %d asset files under %s", len(self._seen), ", ".join(map(str, self.folders)))

    def stop(self) -> None:
        self._thread.stop()
        self._watcher.stop()

    def check(self) -> list[Path]:
        """Take what the watcher found and return the files that really changed."""
        if self._watcher.needs_scan:
            self._watcher.scan()
        ready, _ = self._queue.take_ready()
        changed: list[Path] = []
        for path in ready:
            if not self._filter.accepts(path):
                continue
            signature = _signature(path)
            if path in self._seen and self._seen[path] == signature:
                continue
            if path not in self._seen:
                self._watcher.add(path)  # a new file in a watched folder
            self._seen[path] = signature
            changed.append(path)
        return changed

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            timeout = self._poll_interval
            deadline = self._queue.next_deadline()
            if deadline is not None:  # a write is settling: look again when it may be done
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
            self._queue.wait(timeout)
            if stopping.is_set():
                break
            try:
                changed = self.check()
                if changed:
                    self._on_change(changed)
            except Exception:
                logger.exception("hotmod: unexpected error while watching assets; still watching")
