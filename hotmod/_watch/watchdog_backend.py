"""The event backend, on watchdog (inotify on Linux, FSEvents, kqueue, ReadDirectoryChangesW).

Only folders that hold tracked modules are watched, one non-recursive watch each, so a
project inside a large tree (or beside a virtualenv) costs a handful of inotify watches.
A folder whose watch cannot be placed (the per-user inotify limit, a permission) is
announced with a warning and polled instead: never silent partial coverage.

A watch belongs to the folder it was placed on, not to its path. A watched folder that is
deleted and made again, or renamed away with another one put in its place (a checkout, a
sync tool, a build step), is found by the health check and watched again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from .. import _threads
from .._changes import ChangeQueue
from ..errors import HotmodWarning
from ._inotify import PendingSaves, SavesReader
from .polling import PollingWatcher

__all__ = ["EVENT_FILTER", "WatchdogWatcher"]

logger = logging.getLogger(__name__)

# watchdog 7.1.1 tells handlers that events were lost (a kernel queue overflow) with a
# public event, delivered when the watch's filter lists it. 7.1.0 has no such event; there
# the inotify reader is hooked instead (``_tell_overflows``).
_EventsLost: type[FileSystemEvent] | None
try:
    from watchdog.events import EventsLostEvent as _EventsLost
except ImportError:  # watchdog 7.1.0
    _EventsLost = None

# Read-only activity (open, close-without-write, access) never enters the kernel queue.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    *([_EventsLost] if _EventsLost is not None else []),
]


def _make_observer(on_overflow: Callable[[], None]) -> tuple[BaseObserver, str | None]:
    """A new observer, and how it reports lost events (None: it cannot)."""
    if sys.platform.startswith("linux"):
        from watchdog.observers.inotify import InotifyObserver

        # Full events keep an unpaired rename-onto-the-path a *move* (a finished file,
        # as JetBrains' safe write produces) instead of turning it into a *create*.
        observer = InotifyObserver(generate_full_events=True)
        if _EventsLost is not None:
            return observer, "events-lost event"
        return observer, "inotify reader hook" if _tell_overflows(observer, on_overflow) else None
    return Observer(), "events-lost event" if _EventsLost is not None else None


def _tell_overflows(observer: BaseObserver, on_overflow: Callable[[], None]) -> bool:
    """Call ``on_overflow`` when the kernel's inotify queue overflows (watchdog 7.1.0).

    That release logs the overflow and drops the lost events without telling its
    handlers. Its reader thread hands every kernel event to ``handle_event`` on the
    observer's own inotify descriptor object; this wraps that one method on that one
    instance. False when the layout is not the one expected.
    """
    reader: Any = getattr(observer, "_inotify_fd", None)
    handle = getattr(reader, "handle_event", None)
    if handle is None:
        logger.warning("hotmod: this watchdog release cannot report lost file events; overflows go unnoticed")
        return False

    def handle_event(event: object) -> None:
        handle(event)
        if getattr(event, "is_queue_overflow", False):
            on_overflow()

    reader.handle_event = handle_event
    return True


def _identity(directory: Path) -> tuple[int, int] | None:
    """The folder at ``directory`` now, as (device, inode); None when there is none."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        queue: ChangeQueue,
        accept_name: Callable[[str], bool],
        tracked: dict[Path, set[Path]],
        on_lost: Callable[[], None],
        read_directly: Callable[[Path], bool],
    ) -> None:
        self._queue = queue
        self._accept = accept_name
        self._tracked = tracked
        self._on_lost = on_lost
        self._read_directly = read_directly

    def _path(self, raw: bytes | str) -> Path | None:
        text = os.fsdecode(raw)
        if not text:
            return None
        if self._accept(os.path.basename(text)):
            return Path(text)
        # A tracked file whatever its name: a data file a module depends on, or a
        # module the host excluded (its changes are declined, not ignored).
        path = Path(text)
        return path if path in self._tracked.get(path.parent, ()) else None

    def accepts(self, path: Path) -> bool:
        return self._path(str(path)) is not None

    def dispatch(self, event: FileSystemEvent) -> None:
        if _EventsLost is not None and isinstance(event, _EventsLost):
            self._on_lost()
            return
        # A folder the pending-saves reader watches had this event from the kernel
        # already, in order. Pushed again, late, a save's first "modified" would mark the
        # save unfinished after its "closed" marked it finished, and a rename onto a file
        # would be applied twice (twice refused, when it is broken).
        src = self._path(event.src_path)
        if src is not None and self._read_directly(src.parent):
            src = None
        if isinstance(event, FileMovedEvent):
            dest = self._path(event.dest_path)
            if dest is not None and self._read_directly(dest.parent):
                dest = None
            if src is not None:  # moved away: maybe deleted, maybe vim's backup rename
                self._queue.push((src,), settled=False)
            if dest is not None:  # renamed onto the path: the new content is complete
                self._queue.push((dest,), settled=True)
        elif src is not None:
            # Close-after-write ends a save; create/modify/delete may be mid-save.
            self._queue.push((src,), settled=isinstance(event, FileClosedEvent))


class WatchdogWatcher:
    name = "watchdog"

    def __init__(self, queue: ChangeQueue, accept_name: Callable[[str], bool]) -> None:
        self._queue = queue
        self._lock = threading.Lock()
        self._observer: BaseObserver | None = None
        self._files_in: dict[Path, set[Path]] = {}
        self._handler = _Handler(queue, accept_name, self._files_in, self._overflowed, self._read_directly)
        #: how lost kernel events reach us ("events-lost event", "inotify reader hook"),
        #: None when they cannot (known once started)
        self.loss_detection: str | None = None
        self._watches: dict[Path, ObservedWatch] = {}
        # folder -> the folder its watch was placed on (None: none was there; the health
        # check watches one when it appears). Folders that could not be watched are not here.
        self._placed: dict[Path, tuple[int, int] | None] = {}
        self._fallback = PollingWatcher(queue)
        # Saves the kernel queued that watchdog's thread has not handed over yet, and
        # the thread that hands them over as they come (Linux).
        self._pending: PendingSaves | None = None
        self._reader: SavesReader | None = None
        self._flush_lock = threading.Lock()

    @property
    def needs_scan(self) -> bool:
        return self._fallback.files > 0

    def add(self, path: Path) -> None:
        directory = path.parent
        with self._lock:
            files = self._files_in.setdefault(directory, set())
            files.add(path)
            if self._observer is not None and directory not in self._placed:
                self._watch(directory)
            if directory not in self._placed and self._observer is not None:
                self._fallback.add(path)

    def discard(self, path: Path) -> None:
        directory = path.parent
        with self._lock:
            self._fallback.discard(path)
            files = self._files_in.get(directory)
            if files is None:
                return
            files.discard(path)
            if not files:
                del self._files_in[directory]
                self._placed.pop(directory, None)
                if self._pending is not None:
                    self._pending.discard(directory)
                watch = self._watches.pop(directory, None)
                if watch is not None and self._observer is not None:
                    self._observer.unschedule(watch)

    def _watch(self, directory: Path) -> None:
        assert self._observer is not None
        # Taken before the watch is placed: a folder replaced in between costs one restart.
        identity = _identity(directory)
        if identity is None:
            # Not there (being replaced, or its package removed): nothing to watch or poll.
            self._placed[directory] = None
            return
        try:
            self._watches[directory] = self._observer.schedule(
                self._handler, str(directory), recursive=False, event_filter=EVENT_FILTER
            )
            _threads.mark_watchdog(self._observer)  # its new emitter thread
            self._placed[directory] = identity
            if self._pending is not None:
                self._pending.add(directory)
        except OSError as exc:
            message = (
                f"hotmod cannot watch {directory} ({exc.strerror or exc}); polling its "
                "tracked files instead. On Linux, raise fs.inotify.max_user_watches."
            )
            logger.warning("%s", message)
            warnings.warn(message, HotmodWarning, stacklevel=2)
            for file in self._files_in.get(directory, ()):
                self._fallback.add(file)

    def scan(self) -> None:
        self._fallback.scan()

    def start(self) -> None:
        with self._lock:
            if self._observer is None:
                self._start_locked()

    def _start_locked(self) -> None:
        observer, self.loss_detection = _make_observer(self._overflowed)
        observer.daemon = True
        observer.name = "hotmod-watchdog"
        _threads.mark(observer)  # a debugger must not suspend it holding the queue's lock
        # Start first, then schedule: a watch that fails then fails alone.
        observer.start()
        self._observer = observer
        self._watches.clear()
        self._placed.clear()
        self._close_pending()
        self._pending = PendingSaves()
        for directory in list(self._files_in):
            self._watch(directory)
        _threads.mark_watchdog(observer)
        if self._pending.active:
            self._reader = SavesReader(self._pending, self.flush)

    def _read_directly(self, directory: Path) -> bool:
        """Whether the pending-saves reader delivers the events of ``directory``."""
        reader, pending = self._reader, self._pending
        return reader is not None and reader.alive and pending is not None and pending.watches(directory)

    def _close_pending(self) -> None:
        # The reader first: it must not be waiting on a descriptor that is closed.
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self._pending is not None:
            self._pending.close()
            self._pending = None

    def _overflowed(self) -> None:
        logger.warning(
            "hotmod: the kernel dropped file events (inotify queue overflow); comparing every tracked file"
        )
        self._rescan()

    def _rescan(self) -> None:
        with self._lock:
            files = [file for files in self._files_in.values() for file in files]
        self._queue.push(files, settled=True)  # contents are compared: only real edits apply

    def ensure_running(self) -> bool:
        """Restart the observer if one of its threads died or a watched folder was replaced;
        True when it had to (and a rescan is queued).

        A folder missing right now is left alone until one appears at its path (deleting a
        folder also ends the thread that watched it).
        """
        with self._lock:
            observer = self._observer
            if observer is None:
                return False
            now = {directory: _identity(directory) for directory in self._placed}
            replaced = [
                d for d, identity in now.items() if identity is not None and identity != self._placed[d]
            ]
            if replaced:
                logger.warning(
                    "hotmod: watched folder %s was replaced (deleted or moved away, then made again); "
                    "watching the new one and comparing every tracked file",
                    ", ".join(str(d) for d in sorted(replaced)),
                )
            elif not observer.is_alive():
                logger.warning(
                    "hotmod: the file watcher thread stopped unexpectedly; restarting it and comparing "
                    "every tracked file"
                )
            else:
                ended = sorted(
                    Path(emitter.watch.path)
                    for emitter in observer.emitters
                    if not emitter.is_alive() and now.get(Path(emitter.watch.path), ()) is not None
                )
                if not ended:
                    _threads.mark_watchdog(observer)  # threads its reader started since
                    return False
                # A folder deleted and made again may get its old inode number back.
                logger.warning(
                    "hotmod: the watch on %s ended (its folder deleted and made again, or its thread "
                    "failed); watching it again and comparing every tracked file",
                    ", ".join(str(d) for d in ended),
                )
            with contextlib.suppress(Exception):  # it is dead or dying: do not wait on it
                observer.stop()
            self._start_locked()
        self._rescan()
        return True

    def flush(self) -> None:
        """Push every save the kernel queued until now, without waiting for watchdog."""
        pending = self._pending
        if pending is None:
            return
        # One drainer at a time, its pushes done before another flush returns: a poll()
        # must find every save made before it in the queue, even one the reader thread
        # took from the kernel a moment ago and is handing over now.
        with self._flush_lock:
            if pending.ready():
                found, lost = pending.drain()
                self._push_found(found, lost)

    def _push_found(self, found: list[tuple[Path, bool]], lost: bool) -> None:
        if lost:
            self._overflowed()
        complete = [path for path, done in found if done and self._handler.accepts(path)]
        started = [path for path, done in found if not done and self._handler.accepts(path)]
        if started:
            self._queue.push(started, settled=False)
        if complete:
            self._queue.push(complete, settled=True)

    def after_fork(self) -> None:
        # The observer's threads and the lock's holder (if any) stayed in the parent. The
        # old observer object is dropped without a stop: there is nothing to stop here.
        # The pending-saves descriptor is shared with the parent: reading it here would
        # take the parent's events, so the child closes its copy and opens its own.
        self._lock = threading.Lock()
        if self._reader is not None:
            self._reader.forget()
            self._reader = None
        if self._pending is not None:
            self._pending.close()
            self._pending = None
        if self._observer is not None:
            self._observer = None
            with self._lock:
                self._start_locked()

    def stop(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
            self._watches.clear()
            self._placed.clear()
            self._close_pending()
            for files in self._files_in.values():
                for file in files:
                    self._fallback.discard(file)
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    @property
    def watched_dirs(self) -> int:
        return len(self._watches)

    @property
    def polled_dirs(self) -> int:
        return self._fallback.polled_dirs
