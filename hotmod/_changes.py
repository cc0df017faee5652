"""The queue between the watcher backends (which only detect) and the reloader.

Editors save in bursts: vim renames the old file away and writes a new one, JetBrains
writes a temp file and renames it over the original, others truncate, pause and write.
A path becomes *ready* either when the kernel tells us the write is complete (a
close-after-write or a rename onto the path) or when no event has touched it for the
settle time. Anything else would reload a half-written file.

While a save is on its way to the code that runs, the interpreter's switch interval is
shortened (see :class:`SwitchInterval`): each hand-off between the threads that carry it
(watcher, applying thread, the application's own threads) would otherwise wait up to
5 ms for a thread that never blocks to give up the GIL.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import HotmodError

__all__ = [
    "APPLY_SWITCH_INTERVAL",
    "BOOST_LIMIT",
    "PUSH_TIMEOUT",
    "SWITCH",
    "WAIT_SWITCH_INTERVAL",
    "ChangeQueue",
    "SwitchInterval",
]

# The switch interval while a save is being applied (the default is 5 ms). Short enough
# that the few hand-offs of an apply cost well under a millisecond; long enough that a
# busy thread and the applying thread do not spend their time swapping the GIL.
APPLY_SWITCH_INTERVAL = 1e-4
# The switch interval while an applying thread waits for saves. The first hand-off of a
# save (a thread woken by the kernel's event taking the GIL from a thread that never
# blocks) cannot be hurried by anything that runs after it: it waits one full interval.
# 0.5 ms keeps that wait short; it costs nothing while no two threads want the GIL, and
# little when they do (1 to 8 % for two CPU-bound threads: benchmarks, "B1 cost").
WAIT_SWITCH_INTERVAL = 5e-4
# A save that waits longer than this (a host that keeps refusing its safe point, a
# module whose top level runs for seconds) no longer holds the interval short.
BOOST_LIMIT = 1.0


class SwitchInterval:
    """``sys.setswitchinterval`` at the shortest value any holder asks for, then restored.

    Holders ask for a value each (an applying thread waiting: ``WAIT_SWITCH_INTERVAL``;
    applying a save: ``APPLY_SWITCH_INTERVAL``). The interval is never lengthened: a
    value the user set lower stays. When the last holder is gone, exactly what was there
    before comes back. A value someone else set while holders held it is theirs: it
    stays, and hotmod leaves the interval alone until every holder is gone.
    """

    def __init__(self, short: float) -> None:
        self.short = short  # the value a holder asks for when it names none
        self._lock = threading.Lock()
        # holder -> (the value it asks for, the thread that applies for it, since when)
        self._holders: dict[object, tuple[float, int | None, float]] = {}
        self._saved: float | None = None  # what to restore
        self._set: float | None = None  # what we set, as the interpreter reports it
        self._hands_off = False  # someone else set it while held

    def since(self, holder: object) -> float | None:
        """When ``holder`` started holding (``time.monotonic()``), or None."""
        held = self._holders.get(holder)
        return None if held is None else held[2]

    def hold(self, holder: object, thread: int | None = None, value: float | None = None) -> None:
        with self._lock:
            wanted = self.short if value is None else value
            held = self._holders.get(holder)
            if held is not None and held[0] == wanted:
                return
            self._holders[holder] = (wanted, thread, time.monotonic() if held is None else held[2])
            self._apply_locked()

    def release(self, holder: object) -> None:
        if holder not in self._holders:  # the idle path: no lock
            return
        with self._lock:
            if self._holders.pop(holder, None) is not None:
                self._apply_locked()

    def _apply_locked(self) -> None:
        current = sys.getswitchinterval()
        if self._set is not None and current != self._set:
            # Changed by someone else since we set it: theirs from now on.
            self._hands_off, self._saved, self._set = True, None, None
        if not self._holders:
            saved, self._saved, self._set, self._hands_off = self._saved, None, None, False
            if saved is not None:
                sys.setswitchinterval(saved)
            return
        if self._hands_off:
            return
        baseline = current if self._saved is None else self._saved
        wanted = min(baseline, *(value for value, _, _ in self._holders.values()))
        if wanted == current:
            return
        if self._saved is None:
            self._saved = current
        sys.setswitchinterval(wanted)
        self._set = sys.getswitchinterval()

    def release_thread(self, thread: int) -> None:
        """Release every holder whose applying thread is ``thread`` (it is ending)."""
        with self._lock:
            holders = [h for h, (_, t, _) in self._holders.items() if t == thread]
        for holder in holders:
            self.release(holder)

    def after_fork(self) -> None:
        """In a forked child: the threads that held it are gone; put the value back."""
        self._lock = threading.Lock()
        if self._holders:
            self._holders.clear()
            saved, mine = self._saved, self._set
            self._saved = self._set = None
            self._hands_off = False
            if saved is not None and sys.getswitchinterval() == mine:
                sys.setswitchinterval(saved)


SWITCH = SwitchInterval(APPLY_SWITCH_INTERVAL)

# The longest a push waits for the queue's lock, held for microseconds by a running thread.
PUSH_TIMEOUT = 2.0


class _WaitHold:
    """A queue's applying thread, waiting: its own holder, apart from the apply's."""

    __slots__ = ()


@dataclass(slots=True)
class _Entry:
    deadline: float
    settled: bool
    waited: bool = False


class ChangeQueue:
    """Thread-safe set of changed paths with per-path settle deadlines.

    The thread that :meth:`wait` s on it (a background applier) has the switch interval
    held short from the moment a complete save is pushed (or found ready) until it comes
    back to wait with nothing ready: the apply is done. A queue nobody waits on (changes
    applied by explicit ``poll()`` calls) never touches it.
    """

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._entries: dict[Path, _Entry] = {}
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0  # threads inside wait()
        self._consumer: int | None = None  # the last thread that waited: the applier
        self._boost_spent = False  # held past BOOST_LIMIT: not again until the queue empties
        self._waiter = _WaitHold()  # the switch-interval holder of a thread waiting here

    def push(self, paths: Iterable[Path], *, settled: bool) -> None:
        """Record changes; ``settled`` means the write is known to be complete.

        Raises :class:`HotmodError` rather than wait more than ``PUSH_TIMEOUT`` for the
        lock: its holder can only be a thread a debugger suspended (a debugger's prompt
        calling ``reload_now()`` must get an answer, not hang).
        """
        now = time.monotonic()
        if not self._cond.acquire(timeout=PUSH_TIMEOUT):
            raise HotmodError(
                f"the change queue has been locked for over {PUSH_TIMEOUT:g} s by a suspended thread "
                "(paused by a debugger?); resume it and try again"
            )
        try:
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
            if settled and self._waiting:
                self._boost_locked(now)
            self._cond.notify_all()
        finally:
            self._cond.release()

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
            if not self._entries:
                self._boost_spent = False
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
        """Block until something is pushed (or ``wake()``), at most ``timeout`` s.

        Called by the applying thread between applies: coming back here with nothing
        ready means the previous apply is finished, and the switch interval goes back.
        """
        with self._cond:
            self._consumer = threading.get_ident()
            # Held for as long as this thread keeps coming back here; released when it
            # ends (``SWITCH.release_thread``) or the queue is cleared.
            SWITCH.hold(self._waiter, self._consumer, WAIT_SWITCH_INTERVAL)
            now = time.monotonic()
            if self._ready_locked(now):
                self._boost_locked(now)
                return
            self._unboost_locked()
            self._waiting += 1
            try:
                end = now + timeout
                while True:
                    left = end - time.monotonic()
                    if left <= 0 or self._cond.wait(min(left, BOOST_LIMIT)):
                        break
                    if self._ready_locked(time.monotonic()):
                        break
                    # A hold taken for something that is not ready yet: give it back.
                    self._unboost_locked()
            finally:
                self._waiting -= 1
            now = time.monotonic()
            if self._ready_locked(now):
                self._boost_locked(now)  # a deadline passed: apply it quickly too
            else:
                self._unboost_locked()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()
            self._boost_spent = False
            self._unboost_locked()
            SWITCH.release(self._waiter)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's copy may be held by a thread
        that does not exist here)."""
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0
        SWITCH.after_fork()

    def _ready_locked(self, now: float) -> bool:
        return any(e.settled or e.deadline <= now for e in self._entries.values())

    def _boost_locked(self, now: float) -> None:
        if self._boost_spent:
            return
        since = SWITCH.since(self)
        if since is None:
            SWITCH.hold(self, self._consumer)
        elif now - since > BOOST_LIMIT:
            # Still not applied (a host refusing its safe point, a slow module): this
            # save no longer justifies a process-wide change.
            self._boost_spent = True
            self._unboost_locked()

    def _unboost_locked(self) -> None:
        SWITCH.release(self)
