"""What changed, and when to look: a reloader's watcher and change queue, together.

The watcher only detects and pushes paths; the queue holds them until their writes
settle. This module keeps the two in step for the reloader: started and stopped together,
the watcher's threads checked for life, saves still in the kernel's queue read before
each look, a full comparison queued whenever events may have been missed (a restart
after a stop, a fork).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ._changes import ChangeQueue
from ._watch import BackendName, Watcher, make_watcher

__all__ = ["Detection"]

# How often the watcher's threads are checked for life (a dead one is restarted).
HEALTH_EVERY = 1.0


class Detection:
    def __init__(self, backend: BackendName, debounce: float, accept_name: Callable[[str], bool]) -> None:
        self.queue = ChangeQueue(debounce)
        self.watcher: Watcher = make_watcher(backend, self.queue, accept_name)
        self.watching = False
        self._next_health_check = 0.0

    def resume(self, files: Iterable[Path], *, rescan: bool) -> None:
        """Watch again; with ``rescan``, queue ``files`` for a comparison (the events of
        the time it was stopped were not seen)."""
        if self.watching:
            return
        self.watcher.start()
        self.watching = True
        if rescan:
            self.queue.push(list(files), settled=True)

    def pause(self) -> None:
        if self.watching:
            self.watcher.stop()
            self.watching = False

    def check(self) -> None:
        """Restart a watcher thread that died (it says so, and queues a full compare)."""
        now = time.monotonic()
        if self.watching and now >= self._next_health_check:
            self._next_health_check = now + HEALTH_EVERY
            self.watcher.ensure_running()

    def take(self) -> tuple[list[Path], set[Path]]:
        """The paths ready now (and which of them waited once), with every save made
        before this call among them."""
        self.check()
        if self.watching:
            self.watcher.flush()  # saves still in the kernel's queue
        if self.watcher.needs_scan:
            self.watcher.scan()
        return self.queue.take_ready()

    def has_work(self) -> bool:
        return self.queue.has_ready() or self.watcher.needs_scan

    def wait(self, poll_interval: float) -> None:
        """Block until something may be ready: a push, a deadline, or ``poll_interval``."""
        timeout = poll_interval
        deadline = self.queue.next_deadline()
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.monotonic()))
        self.queue.wait(timeout)

    def notify(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Queue these files as changed, each under every name it may be tracked by."""
        found: list[Path] = []
        for p in paths:
            absolute = os.path.abspath(os.fspath(p))
            real = os.path.realpath(absolute)
            found.append(Path(real))
            # A tracked file that became a dangling symlink resolves to its missing target:
            # name it the way it is tracked too (its folder resolved, not itself), or the
            # change would go unheard. A name that is not tracked is ignored.
            own = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
            if own != real:
                found.append(Path(own))
        self.queue.push(found, settled=True)

    def after_fork(self, files: Iterable[Path]) -> None:
        """In a forked child: fresh locks and watcher threads; the parent's unread events
        are lost to this process, so ``files`` are compared once."""
        self.queue.after_fork()
        if self.watching:
            self.watcher.after_fork()
            self.queue.push(list(files), settled=True)
