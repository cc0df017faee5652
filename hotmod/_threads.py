"""hotmod's own threads, out of a debugger's way.

A debugger that suspends every thread at a breakpoint (debugpy/pydevd does by default)
suspends hotmod's too, wherever they are: holding the change queue's lock, or the
reload lock in the middle of running a module's code. The user's ``reload_now()`` on the
paused thread then waits for a thread that will never run again.

pydevd skips the threads it finds marked with two attributes on their ``threading.Thread``
objects (the ones it sets on its own threads): ``pydev_do_not_trace`` (never traced, never
suspended by "suspend all") and ``is_pydev_daemon_thread`` (not listed as a program
thread, no trace function set when it starts, even under ``sys.monitoring``). Setting an
attribute on a thread object costs nothing when no debugger runs.

pdb and the other ``bdb`` debuggers trace only the thread they were started on, so
hotmod's threads run untraced under them already.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from types import FrameType, FunctionType

__all__ = ["mark", "mark_all", "mark_watchdog"]


def mark(thread: threading.Thread) -> threading.Thread:
    """Mark ``thread`` as one a debugger must not trace or suspend; best before it starts."""
    # pydevd reads both with getattr(); threading.Thread objects accept new attributes.
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
    return thread


def mark_all(threads: Iterable[object]) -> None:
    for thread in threads:
        if isinstance(thread, threading.Thread):
            mark(thread)


def mark_watchdog(observer: object) -> None:
    """Mark a watchdog observer's threads: itself, one emitter per watched folder, and the
    inotify reader (whose own dispatching thread is found by what it runs)."""
    mark_all([observer])
    emitters = getattr(observer, "emitters", ())
    mark_all(list(emitters))
    reader = getattr(observer, "_inotify_fd", None)  # watchdog >= 7.1 on Linux
    if isinstance(reader, threading.Thread):
        mark(reader)
        _mark_running(reader)


def _mark_running(owner: object) -> None:
    """Mark the threads whose stack runs a method of ``owner`` (threads it started itself)."""
    codes = {f.__code__ for f in vars(type(owner)).values() if isinstance(f, FunctionType)}
    by_ident = {t.ident: t for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        thread = by_ident.get(ident)
        if thread is None or getattr(thread, "pydev_do_not_trace", False):
            continue
        walk: FrameType | None = frame
        while walk is not None:
            if walk.f_code in codes and walk.f_locals.get("self") is owner:
                mark(thread)
                break
            walk = walk.f_back
