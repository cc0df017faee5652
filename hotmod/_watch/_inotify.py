"""A second, non-blocking inotify descriptor: the saves made before *now*, without waiting.

watchdog reads kernel events on its own thread, so a save made a millisecond before a
notebook cell (or a REPL prompt, or any ``poll()``) may still sit in the kernel's queue
when the cell starts: the cell would run the old code. The kernel queues an inotify event
before the writing call returns, so a descriptor of our own, watching the same folders
and read without blocking, has every save made so far. ``drain()`` reads it and returns
the paths; the watcher pushes them to the change queue (watchdog's later events for the
same paths are folded into the same entries).

Linux only, through libc's ``inotify_init1``/``inotify_add_watch`` (no private API of
watchdog). Asking whether anything is queued is one ``select(2)`` with no timeout, about
two microseconds; only then is the descriptor read.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .. import _threads

__all__ = [
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "PendingSaves",
    "SavesReader",
]

logger = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_ONLYDIR = 0x01000000
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ONLYDIR
_COMPLETE = IN_CLOSE_WRITE | IN_MOVED_TO  # the write is known to be finished
_HEADER = struct.Struct("iIII")
_BUFFER = 64 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


def _readable(fd: int) -> bool:
    # A fresh select(2) each time: a ``select.poll`` object refuses concurrent callers, and
    # the reader thread and a host's poll() may both ask at once.
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):  # closed under us
        return False


class PendingSaves:
    """The folders' saves the kernel has queued and nobody read yet."""

    def __init__(self) -> None:
        self._libc = _libc()
        self._fd = -1
        self._wd_by_dir: dict[Path, int] = {}
        self._dir_by_wd: dict[int, Path] = {}
        if self._libc is not None:
            fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                logger.debug("no inotify descriptor for pending saves: %s", os.strerror(ctypes.get_errno()))
            self._fd = fd

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def fileno(self) -> int:
        return self._fd

    def watches(self, directory: Path) -> bool:
        return directory in self._wd_by_dir

    def add(self, directory: Path) -> None:
        if self._fd < 0 or directory in self._wd_by_dir or self._libc is None:
            return
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK)
        if wd < 0:  # the per-user limit, a folder gone: the watcher's own events still come
            logger.debug("no pending-save watch on %s: %s", directory, os.strerror(ctypes.get_errno()))
            return
        self._wd_by_dir[directory] = wd
        self._dir_by_wd[wd] = directory

    def discard(self, directory: Path) -> None:
        wd = self._wd_by_dir.pop(directory, None)
        if wd is not None:
            self._dir_by_wd.pop(wd, None)
            if self._libc is not None and self._fd >= 0:
                self._libc.inotify_rm_watch(self._fd, wd)

    def ready(self) -> bool:
        """Whether events are queued (the idle path: one ``select(2)``, nothing else)."""
        return self._fd >= 0 and _readable(self._fd)

    def drain(self) -> tuple[list[tuple[Path, bool]], bool]:
        """(path, write complete) of every event queued so far, and whether some were lost."""
        if self._fd < 0 or not _readable(self._fd):
            return [], False
        found: list[tuple[Path, bool]] = []
        lost = False
        while True:
            try:
                data = os.read(self._fd, _BUFFER)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                break
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                if mask & IN_Q_OVERFLOW:
                    lost = True
                    continue
                directory = self._dir_by_wd.get(wd)
                if directory is not None and name:
                    found.append((directory / os.fsdecode(name), bool(mask & _COMPLETE)))
        return found, lost

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1
        self._wd_by_dir.clear()
        self._dir_by_wd.clear()


class SavesReader:
    """A thread that hands saves over the moment the kernel queues them.

    watchdog carries an event through three of its threads before our handler sees it;
    in a process whose own thread never blocks, each of those hand-offs waits for the
    interpreter's switch interval (5 ms). This thread blocks in ``poll(2)`` on the
    pending-saves descriptor (no timeout: an idle process never wakes it) and calls
    ``on_ready`` as soon as something is queued: one hand-off instead of three. watchdog's
    own events still arrive afterwards and are folded into the same queue entries.

    The thread owns its wake-up pipe and closes it when it ends; the descriptor it watches
    belongs to the caller, who stops this thread before closing it.
    """

    def __init__(self, pending: PendingSaves, on_ready: Callable[[], None]) -> None:
        self._on_ready = on_ready
        self._lock = threading.Lock()  # guards the pipe's descriptors against a late stop()
        self._stopped = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poller = select.poll()
        self._poller.register(pending.fileno(), select.POLLIN)
        self._poller.register(self._wake_r, select.POLLIN)
        self._thread = _threads.mark(threading.Thread(target=self._run, name="hotmod-saves", daemon=True))
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopped:
                events = self._poller.poll()
                if self._stopped or any(
                    fd == self._wake_r or flags & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
                    for fd, flags in events
                ):
                    return
                self._on_ready()
        except Exception:
            # watchdog's own threads still deliver every event, only later.
            logger.exception("hotmod: the pending-saves reader stopped; saves arrive through watchdog")
        finally:
            self._close_pipe()

    @property
    def alive(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def _close_pipe(self) -> None:
        with self._lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._wake_r = self._wake_w = -1

    def stop(self) -> None:
        """Ask the thread to end; it does at once (it never holds a lock while it waits)."""
        self._stopped = True
        with self._lock:
            if self._wake_w >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def forget(self) -> None:
        """In a forked child: the thread stayed in the parent; close this copy of the pipe
        without writing to it (the parent's thread reads the other end)."""
        self._stopped = True
        self._close_pipe()
