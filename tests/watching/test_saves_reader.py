"""The pending-saves reader: a save reaches the change queue straight from the kernel.

watchdog carries each event through three of its threads; in a process whose own thread
never blocks each hand-off waits for the switch interval. hotmod's own reader thread
blocks on a second inotify descriptor and pushes the save itself. These tests silence
watchdog's handler, so whatever arrives came through the reader.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotmod import _changes
from hotmod._watch import watchdog_backend

from ..support import EVENT_TIMEOUT, Pkg, Results, write, write_replace

pytestmark = [
    pytest.mark.watchdog,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reader uses inotify (Linux)"),
]


@pytest.fixture
def silenced(monkeypatch: pytest.MonkeyPatch) -> None:
    """watchdog's threads still run, but their events go nowhere."""
    monkeypatch.setattr(watchdog_backend._Handler, "dispatch", lambda self, event: None)


Watched = tuple[watchdog_backend.WatchdogWatcher, _changes.ChangeQueue, Path]


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Watched]:
    queue = _changes.ChangeQueue(0.05)
    watcher = watchdog_backend.WatchdogWatcher(queue, lambda name: name.endswith(".py"))
    module = write(tmp_path / "mod.py", "X = 0\n")
    watcher.add(module)
    watcher.start()
    try:
        yield watcher, queue, module
    finally:
        watcher.stop()
        queue.clear()


def _ready_within(queue: _changes.ChangeQueue, timeout: float = EVENT_TIMEOUT) -> list[Path]:
    """What the queue holds ready once something is pushed (an applying thread's view)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        queue.wait(left)  # returns on each push; the save's last event settles it
        ready, _ = queue.take_ready()
        if ready:
            return ready
    return []


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hotmod-saves"]


def test_an_editor_save_reaches_the_queue_without_watchdogs_threads(silenced: None, watcher: Watched) -> None:
    _, queue, module = watcher
    write_replace(module, "X = 1\n")

    assert _ready_within(queue) == [module]


def test_a_save_in_place_reaches_the_queue_too(silenced: None, watcher: Watched) -> None:
    _, queue, module = watcher
    write(module, "X = 2\n")

    assert module in _ready_within(queue)


def test_the_reader_is_marked_for_debuggers_and_ends_with_the_watcher(silenced: None, tmp_path: Path) -> None:
    before = len(_reader_threads())
    queue = _changes.ChangeQueue(0.05)
    watcher = watchdog_backend.WatchdogWatcher(queue, lambda name: name.endswith(".py"))
    watcher.add(write(tmp_path / "mod.py", "X = 0\n"))
    watcher.start()
    started = _reader_threads()
    watcher.stop()
    queue.clear()

    assert len(started) == before + 1
    assert all(getattr(t, "pydev_do_not_trace", False) for t in started)
    assert len(_reader_threads()) == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_leaves_the_parents_reader_working(silenced: None, watcher: Watched) -> None:
    w, queue, module = watcher
    pid = os.fork()
    if pid == 0:  # the child: what a forked worker runs at fork, then leaves
        try:
            w.after_fork()
            w.stop()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    write_replace(module, "X = 3\n")

    assert os.waitstatus_to_exitcode(status) == 0
    assert _ready_within(queue) == [module]


@pytest.mark.parametrize("save", [write, write_replace], ids=["in-place", "editor"])
def test_a_save_made_just_before_poll_is_in_that_poll_every_time(pkg: Pkg, save: Any) -> None:
    # watchdog delivers the same kernel events later, on its own threads; a late "modified"
    # once marked a finished save unfinished again, and poll() returned noop (1 in 20).
    mod = pkg.module("m", "def v():\n    return 0\n")
    r = pkg.reloader(backend="watchdog")
    assert r.poll().status == "noop"
    stale = []
    for n in range(1, 41):
        save(pkg.path("m"), f"def v():\n    return {n}\n")
        result = r.poll()
        if result.status != "ok" or mod.v() != n:
            stale.append((n, result.status))

    assert stale == []


def test_a_broken_editor_save_is_reported_once(pkg: Pkg) -> None:
    # Both the reader and watchdog see the rename onto the file: one report all the same.
    mod = pkg.module("m", "def v():\n    return 0\n")
    r = pkg.reloader(backend="watchdog", apply="background")
    results = Results(r, lambda res: res.status != "noop")
    r.start()
    write_replace(pkg.path("m"), "def v(:\n")
    assert results.wait(), results.statuses
    results.expect(lambda res: res.status == "ok")
    write_replace(pkg.path("m"), "def v():\n    return 1\n")
    assert results.wait(), results.statuses
    r.stop()

    assert mod.v() == 1
    assert results.statuses == ["aborted", "ok"]
