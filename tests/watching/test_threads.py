"""S9 (threads calling into a module while it reloads) and the background applier."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

import hotmod

from ..support import EVENT_TIMEOUT, Pkg, Results, edit, hotmod_threads, write

S9_SOURCE = """\
try:
    CALLS
except NameError:
    CALLS = [0]
K = {v}
class C:
    def m(self):
        return K
def _helper():
    return C().m()
def f():
    CALLS[0] += 1
    return _helper()
"""


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_worker_never_sees_a_missing_name_during_30_reloads(pkg: Pkg, fast_switching: None) -> None:
    mod = pkg.module("mod", S9_SOURCE.format(v=0))
    r = pkg.reloader()
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()
    started = threading.Event()
    progress = threading.Event()

    def worker() -> None:
        started.set()
        while not stop.is_set():
            try:
                seen.add(mod.f())
            except BaseException as exc:
                errors.append(exc)
            progress.set()

    thread = threading.Thread(target=worker, name="s9-worker")
    thread.start()
    try:
        assert started.wait(EVENT_TIMEOUT)
        statuses = []
        for v in range(1, 31):
            statuses.append(edit(r, pkg.path("mod"), S9_SOURCE.format(v=v)).status)
            # Let the worker call into each version (a blocking wait hands it the GIL).
            progress.clear()
            assert progress.wait(EVENT_TIMEOUT)
    finally:
        stop.set()
        thread.join(EVENT_TIMEOUT)

    assert not thread.is_alive()
    assert errors == []
    assert statuses == ["ok"] * 30
    assert mod.f() == 30
    assert 30 in seen
    assert len(seen) > 1  # the worker really ran across reloads
    assert sys.getswitchinterval() == pytest.approx(1e-5)  # hotmod put it back


def test_worker_never_fails_during_aborted_reloads(pkg: Pkg, fast_switching: None) -> None:
    mod = pkg.module("mod", S9_SOURCE.format(v=0))
    r = pkg.reloader()
    errors: list[BaseException] = []
    stop = threading.Event()
    progress = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                mod.f()
            except BaseException as exc:
                errors.append(exc)
            progress.set()

    thread = threading.Thread(target=worker, name="s9-worker")
    thread.start()
    try:
        for v in range(1, 6):
            # Each version rebinds every name and then raises: the restore must never
            # leave a name missing, even for a moment.
            broken = S9_SOURCE.format(v=v) + f"raise RuntimeError('boom {v}')\n"
            assert edit(r, pkg.path("mod"), broken).status == "aborted"
            progress.clear()
            assert progress.wait(EVENT_TIMEOUT)
    finally:
        stop.set()
        thread.join(EVENT_TIMEOUT)

    assert errors == []
    assert mod.f() == 0


def test_background_thread_applies_notified_changes(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(apply="background")
    results = Results(r, lambda res: res.status == "ok")
    assert not r.running
    assert hotmod_threads() == []

    r.start()
    assert r.running
    assert "hotmod-reloader" in hotmod_threads()
    write(pkg.path("mod"), "def f(): return 2\n")
    r.notify(pkg.path("mod"))

    assert results.wait(), results.statuses
    assert mod.f() == 2
    assert results.items[-1].modules == (mod.__name__,)

    r.stop()
    assert not r.running
    assert hotmod_threads() == []


def test_background_apply_with_a_raising_listener_keeps_going(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(apply="background")

    def bad_listener(result: hotmod.ReloadResult) -> None:
        raise RuntimeError("listener bug")

    r.subscribe(bad_listener)
    results = Results(r, lambda res: res.status == "ok" and mod.f() == 2)
    r.start()
    edit_path = pkg.path("mod")
    write(edit_path, "def f(): return 2\n")
    r.notify(edit_path)
    assert results.wait()

    results.expect(lambda res: res.status == "ok" and mod.f() == 3)
    write(edit_path, "def f(): return 3\n")
    r.notify(edit_path)
    assert results.wait()
    assert r.running
    logged = [rec for rec in caplog.records if rec.name.startswith("hotmod") and rec.exc_info]
    assert len(logged) == 2
    assert all(rec.exc_info and isinstance(rec.exc_info[1], RuntimeError) for rec in logged)


def test_background_apply_reports_broken_saves(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(apply="background")
    results = Results(r, lambda res: res.status == "aborted")
    r.start()
    write(pkg.path("mod"), "def f(:\n")
    r.notify(pkg.path("mod"))
    assert results.wait()
    assert mod.f() == 1
    assert r.running


def test_background_applier_survives_system_exit_in_module_code(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(apply="background")
    results = Results(r)
    r.start()
    results.expect(lambda res: res.status == "ok" and mod.f() == 2)
    write(pkg.path("mod"), "def f(): return 2\n")
    r.notify(pkg.path("mod"))
    assert results.wait()

    results.expect(lambda res: res.status == "aborted")
    write(pkg.path("mod"), "import sys\nsys.exit('this module refuses to load')\n")
    r.notify(pkg.path("mod"))
    deadline = time.monotonic() + EVENT_TIMEOUT
    while r.running and not results.event.is_set() and time.monotonic() < deadline:
        results.event.wait(0.01)  # waits for the applier thread, not for the file system
    assert r.running
    assert mod.f() == 2

    results.expect(lambda res: res.status == "ok" and mod.f() == 3)
    write(pkg.path("mod"), "def f(): return 3\n")
    r.notify(pkg.path("mod"))
    assert results.wait()


def test_poll_from_another_thread_while_background_runs(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(apply="background")
    results = Results(r, lambda res: res.status == "ok")
    r.start()
    for v in range(2, 12):
        write(pkg.path("mod"), f"def f(): return {v}\n")
        r.notify(pkg.path("mod"))
        r.poll()  # races the applier: both must be safe
    r.notify(pkg.path("mod"))
    r.poll()
    assert mod.f() == 11
    assert all(status in ("ok", "noop") for status in results.statuses)
