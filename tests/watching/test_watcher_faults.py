"""The event watcher's own faults: lost kernel events and a watcher thread that dies.

Both are injected into a real watchdog observer; after each, the reloader says so and
still applies the edit it could not have heard about."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hotmod._watch.watchdog_backend import WatchdogWatcher

from ..support import EVENT_TIMEOUT, Pkg, write

pytestmark = [
    pytest.mark.watchdog,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify faults"),
]


def drop_events_for(watcher: Any, path: Path) -> threading.Event:
    """Make the watcher lose every event about ``path``; the event is set once one was lost."""
    lost = threading.Event()
    dispatch = watcher._handler.dispatch

    def losing(event: Any) -> None:
        if str(path) in (str(event.src_path), str(getattr(event, "dest_path", ""))):
            lost.set()
            return
        dispatch(event)

    watcher._handler.dispatch = losing
    # hotmod's own reader of the kernel queue would hand the save over anyway: it goes
    # (watchdog's threads still carry every other event).
    if watcher._reader is not None:
        watcher._reader.stop()
        watcher._reader = None
    return lost


def _overflow(watcher: Any, directory: Path) -> None:
    """What watchdog delivers after the kernel's inotify queue overflowed.

    watchdog 7.1.1 and later: its public ``EventsLostEvent``, put on the observer's own
    event queue for the watch, so it goes through watchdog's dispatch and our event
    filter. 7.1.0: the kernel's overflow event, handed to watchdog's inotify reader.
    """
    import watchdog.events

    lost = getattr(watchdog.events, "EventsLostEvent", None)
    if lost is not None:
        watch = watcher._watches[directory]
        watcher._observer.event_queue.put((lost(str(directory), is_directory=True), watch))
        return
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

    overflow = InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b"")  # type: ignore[arg-type]
    watcher._observer._inotify_fd.handle_event(overflow)


def test_lost_kernel_events_are_always_detected_on_linux(pkg: Pkg) -> None:
    pkg.module("m", "VALUE = 1\n")
    r = pkg.reloader(backend="watchdog")
    r.start()
    # Never a silent DEBUG line: with this watchdog, one of the two ways must be active.
    watcher = r._watcher
    assert isinstance(watcher, WatchdogWatcher)
    assert watcher.loss_detection in ("events-lost event", "inotify reader hook")


def test_inotify_queue_overflow_makes_the_reloader_compare_every_tracked_file(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    module = pkg.module("m", "VALUE = 1\n")
    r = pkg.reloader(backend="watchdog")
    r.start()
    watcher = r._watcher
    assert isinstance(watcher, WatchdogWatcher)
    lost = drop_events_for(watcher, pkg.path("m"))
    write(pkg.path("m"), "VALUE = 2\n")
    assert lost.wait(EVENT_TIMEOUT)
    assert watcher._pending is not None
    watcher._pending.drain()  # an overflow loses them for every reader of the kernel queue
    assert r.poll().status == "noop"  # the edit was lost with its events
    rescanned = threading.Event()
    push = watcher._queue.push

    def pushing(paths: Any, *, settled: bool) -> None:
        paths = list(paths)
        push(paths, settled=settled)
        if pkg.path("m") in paths:
            rescanned.set()

    watcher._queue.push = pushing  # type: ignore[method-assign]  # a fault injected in this watcher only
    with caplog.at_level(logging.WARNING):
        _overflow(watcher, pkg.dir)
        assert rescanned.wait(EVENT_TIMEOUT)
    assert "dropped file events" in caplog.text
    result = r.poll()
    assert result.status == "ok"
    assert result.modules == (pkg.qualname("m"),)
    assert module.VALUE == 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_watcher_thread_is_restarted_and_the_missed_edit_applied(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    module = pkg.module("m", "VALUE = 1\n")
    r = pkg.reloader(backend="watchdog")
    r.start()
    watcher = r._watcher
    assert isinstance(watcher, WatchdogWatcher)
    observer = watcher._observer
    assert observer is not None
    crashed = threading.Event()

    def crash(event: Any) -> None:
        crashed.set()
        raise RuntimeError("a bug in an event handler")

    watcher._handler.dispatch = crash  # type: ignore[method-assign]  # a fault in this watcher only
    write(pkg.path("m"), "VALUE = 2\n")
    assert crashed.wait(EVENT_TIMEOUT)
    observer.join(EVENT_TIMEOUT)
    assert not observer.is_alive()
    del watcher._handler.dispatch  # the handler works again
    with caplog.at_level(logging.WARNING):
        result = r.poll()
    assert "watcher thread stopped unexpectedly" in caplog.text
    assert result.status == "ok"
    assert module.VALUE == 2
    assert watcher._observer is not observer
    assert watcher._observer is not None
    assert watcher._observer.is_alive()

    # And it hears the next save by itself.
    applied = threading.Event()
    r.subscribe(lambda result: applied.set() if result.status == "ok" else None)
    r.apply = "background"
    r.start()
    write(pkg.path("m"), "VALUE = 3\n")
    assert applied.wait(EVENT_TIMEOUT)
    assert module.VALUE == 3
