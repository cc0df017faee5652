"""Faults a running reloader meets: one test per row of the fault table (``table.py``).

Every test checks a clear result (status, error type, file and line where there is one),
that the version running before the fault is intact (a reference taken before keeps its
old behaviour), and that the reloader still works (the next good edit applies).
"""

from __future__ import annotations

import builtins
import errno
import importlib
import logging
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

import hotmod
import hotmod._apply_thread
import hotmod._source
from hotmod._watch.watchdog_backend import WatchdogWatcher

from ..support import (
    EVENT_TIMEOUT,
    Pkg,
    Results,
    bump_mtime,
    edit,
    hotmod_threads,
    reload_error,
    write,
    write_replace,
)
from ..support.faults import GOOD, V1, assert_good_edit_applied, assert_old_version_runs

T = TypeVar("T")
# What the ``slow`` fixture gives: the reloader, the gate module, the module, a reference
# to its ``f`` taken before, and the recorded results.
Slow = tuple[hotmod.Reloader, Any, Any, Callable[[], object], Results]

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify semantics")


def replace_with_symlink(path: Path, target: Path) -> None:
    """Make ``path`` a symlink to ``target`` in one rename, as a save would."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.symlink_to(target)
    os.replace(tmp, path)
    importlib.invalidate_caches()


class Driver:
    """How changes reach a reloader: ``notify`` (manual), a stat scan (polling) or kernel
    events (watchdog, applied by the reloader's own thread). Without events there is no
    settle time, so each fault is reported as soon as it is seen (the settle time has
    tests of its own)."""

    def __init__(self, pkg: Pkg, backend: str, paths: Path | None = None) -> None:
        self.backend = backend
        self._heard = 0  # results on events already returned by seen()
        paths = paths or pkg.dir
        if backend == "watchdog":
            # The default settle time: an in-place write is seen empty for a moment.
            self.r = pkg.reloader(backend="watchdog", apply="background", paths=paths)
            self.results = Results(self.r)
            self.r.start()
        else:
            self.r = pkg.reloader(backend=backend, debounce=0, paths=paths)

    def seen(
        self, *paths: Path, until: Callable[[hotmod.ReloadResult], bool] = lambda _: True
    ) -> hotmod.ReloadResult:
        """The result of a change to ``paths``; on events, the first result matching ``until``."""
        if self.backend == "manual":
            self.r.notify(*paths)
            return self.r.poll()
        if self.backend == "polling":
            for path in paths:
                if path.is_file() and not path.is_symlink():
                    bump_mtime(path)  # an in-place write may keep the mtime the scan saw
            return self.r.poll()
        heard = self.results.items[: self._heard]
        event = self.results.expect(lambda res: until(res) and not any(res is x for x in heard))
        assert event.wait(EVENT_TIMEOUT), self.results.statuses
        found = next(i for i, x in enumerate(self.results.items) if i >= self._heard and until(x))
        self._heard = found + 1
        return self.results.items[found]


def failed(result: hotmod.ReloadResult) -> bool:
    return result.status == "failed"


def ok(result: hotmod.ReloadResult) -> bool:
    return result.status == "ok"


class Call(threading.Thread, Generic[T]):
    """``fn()`` on a thread of its own; ``done`` is set once it returned or raised."""

    def __init__(self, fn: Callable[[], T]) -> None:
        super().__init__(daemon=True, name="test-call")
        self.fn = fn
        self.done = threading.Event()
        self.value: list[T] = []  # the value, once returned
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value.append(self.fn())
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def returned(self) -> T:
        assert self.done.wait(EVENT_TIMEOUT), f"{self.fn!r} did not return"
        if self.error is not None:
            raise self.error
        return self.value[0]


# -- a file deleted between detection and reading -----------------------------------------


def test_deleted_after_its_edit_was_queued(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    other = pkg.module("other", "def f(): return 1\n")
    held_f = mod.f
    r = pkg.reloader()  # the default settle time: a missing file may be a save in progress
    path = pkg.path("mod")
    write(path, "def f(): return 2\nX = 2\n")
    r.notify(path)  # the edit is queued as a complete write...
    path.unlink()  # ...and the file is gone before the reloader reads it

    deferred = r.poll()

    assert deferred.status == "noop"
    assert deferred.error is None
    assert_old_version_runs(mod, held_f)

    r.notify(path)  # still missing when looked at again
    result = r.poll()

    assert result.status == "failed"
    assert isinstance(result.error, hotmod.ReloadError)
    assert "was deleted" in str(result.error)
    assert (reload_error(result).path, reload_error(result).module) == (path, mod.__name__)
    assert isinstance(reload_error(result).__cause__, FileNotFoundError)
    assert_old_version_runs(mod, held_f)
    r.notify(path)
    assert r.poll().status == "noop"  # reported once
    # The missing file holds up no other module's edit.
    result = edit(r, pkg.path("other"), "def f(): return 2\n")
    assert (result.status, result.modules) == ("ok", (other.__name__,))
    assert other.f() == 2
    assert_old_version_runs(mod, held_f)

    assert_good_edit_applied(edit(r, path, GOOD), mod, held_f)


def test_deleted_between_the_scan_and_the_read_polling(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = pkg.module("mod", V1)
    held_f = mod.f
    r = pkg.reloader(backend="polling")
    path = pkg.path("mod")
    real_open = builtins.open

    def open_after_the_file_vanished(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path and path.exists():
            path.unlink()  # the scan saw the edit; the file goes before it is opened
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(hotmod._source, "open", open_after_the_file_vanished, raising=False)
    write(path, "def f(): return 2\nX = 2\n")
    bump_mtime(path)

    deferred = r.poll()

    assert deferred.status == "noop"
    assert deferred.error is None
    assert_old_version_runs(mod, held_f)

    result = r.poll()  # the next scan sees the file missing

    assert result.status == "failed"
    assert "was deleted" in str(result.error)
    assert reload_error(result).path == path
    assert isinstance(reload_error(result).__cause__, FileNotFoundError)
    assert_old_version_runs(mod, held_f)
    assert r.poll().status == "noop"

    monkeypatch.undo()
    write(path, GOOD)
    assert_good_edit_applied(r.poll(), mod, held_f)


def test_files_deleted_together_are_reported_once(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    pkg.module("mod2", V1)
    held_f = mod.f
    r = pkg.reloader()
    paths = (pkg.path("mod"), pkg.path("mod2"))
    for path in paths:
        path.unlink()
    r.notify(*paths)
    assert r.poll().status == "noop"  # a save in progress, maybe: looked at again later

    statuses = []
    for _ in range(4):  # an editor or a watcher telling again and again
        r.notify(*paths)
        statuses.append(r.poll().status)

    assert statuses == ["failed", "noop", "noop", "noop"]
    assert r.stats.counts["failed"] == 1
    assert_old_version_runs(mod, held_f)
    write(paths[1], V1)
    assert_good_edit_applied(edit(r, paths[0], GOOD), mod, held_f)


# -- a folder replaced by a file, and back -------------------------------------------------


@pytest.mark.parametrize("replacement", ["sub", "sub.py"])
@pytest.mark.parametrize("backend", ["manual", "polling"])
def test_subpackage_folder_replaced_by_a_file_and_back(pkg: Pkg, backend: str, replacement: str) -> None:
    pkg.subpackage("sub")
    mod = pkg.module("sub.mod", V1)
    held_f = mod.f
    driver = Driver(pkg, backend)
    folder = pkg.dir / "sub"
    tracked = (folder / "__init__.py", pkg.path("sub.mod"))
    shutil.rmtree(folder)
    write(pkg.dir / replacement, "X = 'a file where the folder was'\n")

    result = driver.seen(*tracked)

    assert result.status == "failed"
    assert "was deleted" in str(result.error)
    assert reload_error(result).path in tracked
    assert isinstance(reload_error(result).__cause__, (FileNotFoundError, NotADirectoryError))
    assert_old_version_runs(mod, held_f)
    assert driver.seen(*tracked).status == "noop"  # reported once

    (pkg.dir / replacement).unlink()
    folder.mkdir()
    write(tracked[0], "")
    write(tracked[1], GOOD)
    assert_good_edit_applied(driver.seen(*tracked), mod, held_f)


@pytest.mark.watchdog
@linux_only
def test_subpackage_folder_replaced_by_a_file_and_back_watchdog(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    pkg.subpackage("sub")
    mod = pkg.module("sub.mod", V1)
    held_f = mod.f
    driver = Driver(pkg, "watchdog")
    folder = pkg.dir / "sub"
    watcher = driver.r._watcher
    assert isinstance(watcher, WatchdogWatcher)
    assert watcher._observer is not None
    ended = [e for e in watcher._observer.emitters if Path(e.watch.path) == folder]
    shutil.rmtree(folder)
    write(pkg.dir / "sub", "X = 'a file where the folder was'\n")

    result = driver.seen(until=failed)

    assert "was deleted" in str(result.error)
    assert_old_version_runs(mod, held_f)
    for emitter in ended:  # the kernel dropped the watch with the folder
        emitter.join(EVENT_TIMEOUT)
        assert not emitter.is_alive()
    with caplog.at_level(logging.WARNING, logger="hotmod"):
        assert watcher.ensure_running() is False  # a file is no folder to watch: wait for one

    (pkg.dir / "sub").unlink()
    folder.mkdir()
    write(folder / "__init__.py", "")
    write(pkg.path("sub.mod"), GOOD)
    with caplog.at_level(logging.WARNING, logger="hotmod"):
        result = driver.seen(until=lambda res: ok(res) and mod.f() == "good")
    assert_good_edit_applied(result, mod, held_f)
    assert "cannot watch" not in caplog.text  # a folder that is not there is waited for, not polled
    assert driver.r.stats.polled_dirs == 0

    # Kernel events from the new folder, by themselves.
    write(pkg.path("sub.mod"), "def f(): return 'events'\nX = 3\n")
    driver.seen(until=lambda res: ok(res) and mod.f() == "events")
    assert held_f() == "events"


# -- the watched folder itself disappearing -------------------------------------------------


def test_watched_folder_briefly_gone_polling(pkg: Pkg, tmp_path: Path) -> None:
    mod = pkg.module("mod", V1)
    held_f = mod.f
    r = pkg.reloader(backend="polling")  # the default settle time
    away = tmp_path / "away"
    os.rename(pkg.dir, away)

    gone = r.poll()

    assert gone.status == "noop"  # missing files get the settle time: a checkout may be under way
    assert gone.error is None
    assert_old_version_runs(mod, held_f)

    os.rename(away, pkg.dir)
    write(pkg.path("mod"), GOOD)
    bump_mtime(pkg.path("mod"))
    assert_good_edit_applied(r.poll(), mod, held_f)
    assert r.stats.counts["failed"] == 0


@pytest.mark.watchdog
@linux_only
def test_watched_folder_deleted_then_made_again_watchdog(pkg: Pkg, caplog: pytest.LogCaptureFixture) -> None:
    # A folder holding one module (a namespace package): one deletion, one report.
    root = pkg.dir / "ns"
    root.mkdir()
    mod = pkg.module("ns.mod", V1)
    held_f = mod.f
    driver = Driver(pkg, "watchdog", paths=root)
    r = driver.r
    assert set(r.modules.values()) == {mod.__name__}
    watcher = r._watcher
    assert isinstance(watcher, WatchdogWatcher)
    assert watcher._observer is not None
    emitters = list(watcher._observer.emitters)

    shutil.rmtree(root)

    result = driver.seen(until=failed)

    assert "was deleted" in str(result.error)
    assert_old_version_runs(mod, held_f)
    for emitter in emitters:  # the kernel dropped the watch with the folder
        emitter.join(EVENT_TIMEOUT)
        assert not emitter.is_alive()
    with caplog.at_level(logging.WARNING, logger="hotmod"):
        # Looked at while the folder is gone: there is nothing to watch or poll yet.
        assert r._watcher.ensure_running() is False
    assert "cannot watch" not in caplog.text

    root.mkdir()
    write(pkg.path("ns.mod"), GOOD)  # only a new watch can hear of this
    with caplog.at_level(logging.WARNING, logger="hotmod"):
        result = driver.seen(until=lambda res: ok(res) and mod.f() == "good")
    assert_good_edit_applied(result, mod, held_f)
    # Named as replaced, or as a watch that ended when the new folder got the old inode number.
    assert f"{root} was replaced" in caplog.text or f"watch on {root} ended" in caplog.text
    assert (r.stats.watched_dirs, r.stats.polled_dirs) == (1, 0)

    write(pkg.path("ns.mod"), "def f(): return 'events'\nX = 3\n")
    driver.seen(until=lambda res: ok(res) and mod.f() == "events")


@pytest.mark.watchdog
@linux_only
def test_watched_folder_renamed_away_and_replaced_watchdog(
    pkg: Pkg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mod = pkg.module("mod", V1)
    held_f = mod.f
    driver = Driver(pkg, "watchdog")
    away = tmp_path / "away"
    os.rename(pkg.dir, away)  # the watch follows the folder it was placed on...
    shutil.copytree(away, pkg.dir)  # ...not the new one at the same path
    write(pkg.path("mod"), GOOD)

    with caplog.at_level(logging.WARNING, logger="hotmod"):
        result = driver.seen(until=lambda res: ok(res) and mod.f() == "good")

    assert_good_edit_applied(result, mod, held_f)
    assert f"watched folder {pkg.dir} was replaced" in caplog.text
    write(pkg.path("mod"), "def f(): return 'events'\nX = 3\n")
    driver.seen(until=lambda res: ok(res) and mod.f() == "events")
    write(away / "mod.py", "def f(): return 'the old folder'\nX = 4\n")  # no longer watched
    write(pkg.path("mod"), "def f(): return 'fence'\nX = 5\n")
    driver.seen(until=lambda res: ok(res) and mod.f() == "fence")
    assert {res.status for res in driver.results.items} == {"ok"}


# -- symlink loops --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["polling", pytest.param("watchdog", marks=pytest.mark.watchdog)])
def test_symlink_loops_in_a_watched_folder_are_ignored(pkg: Pkg, backend: str) -> None:
    mod = pkg.module("mod", V1)
    held_f = mod.f
    driver = Driver(pkg, backend)
    (pkg.dir / "loop.py").symlink_to(pkg.dir / "loop.py")
    (pkg.dir / "ping.py").symlink_to(pkg.dir / "pong.py")
    (pkg.dir / "pong.py").symlink_to(pkg.dir / "ping.py")
    (pkg.dir / "dangling.py").symlink_to(pkg.dir / "nowhere.py")
    (pkg.dir / "cycle").symlink_to(pkg.dir, target_is_directory=True)
    importlib.invalidate_caches()

    if backend == "polling":
        assert driver.r.poll().status == "noop"
    assert_old_version_runs(mod, held_f)

    write(pkg.path("mod"), GOOD)
    result = driver.seen(pkg.path("mod"), until=ok)

    assert_good_edit_applied(result, mod, held_f)
    assert result.modules == (mod.__name__,)
    assert set(driver.r.modules.values()) == {pkg.name, mod.__name__}
    if backend == "watchdog":
        assert {res.status for res in driver.results.items} == {"ok"}  # the links reported nothing


@pytest.mark.parametrize(
    ("link", "message", "errno_"),
    [
        ("itself", "cannot be read (Too many levels of symbolic links)", errno.ELOOP),
        ("nowhere", "was deleted", errno.ENOENT),
    ],
    ids=["symlink_loop", "dangling_symlink"],
)
@pytest.mark.parametrize(
    "backend", ["manual", "polling", pytest.param("watchdog", marks=pytest.mark.watchdog)]
)
def test_module_file_replaced_by_a_symlink_loop_or_a_dangling_symlink(
    pkg: Pkg, backend: str, link: str, message: str, errno_: int
) -> None:
    mod = pkg.module("mod", V1)
    other = pkg.module("other", "def f(): return 1\n")
    held_f = mod.f
    driver = Driver(pkg, backend)
    path = pkg.path("mod")
    replace_with_symlink(path, path if link == "itself" else pkg.dir / "nowhere.py")

    result = driver.seen(path, until=failed)

    assert result.status == "failed"
    assert message in str(result.error)
    assert reload_error(result).path == path
    cause = reload_error(result).__cause__
    assert isinstance(cause, OSError)
    assert cause.errno == errno_
    assert_old_version_runs(mod, held_f)
    if backend != "watchdog":
        assert driver.seen(path).status == "noop"  # reported once

    write(pkg.path("other"), "def f(): return 2\n")
    result = driver.seen(pkg.path("other"), until=ok)
    assert (result.status, result.modules) == ("ok", (other.__name__,))
    assert_old_version_runs(mod, held_f)

    write_replace(path, GOOD)
    assert_good_edit_applied(driver.seen(path, until=ok), mod, held_f)


# -- a 10 MB module -------------------------------------------------------------------------


def big_source(value: object) -> str:
    """About 10 MB: a large text constant, a table and many functions, as generated code has."""
    blob = "".join(f"{i:07d} {'abcdefghij' * 7}\n" for i in range(127_000))
    table = "".join(f"    {i}: ({i}, 'k{i}'),\n" for i in range(2_000))
    functions = "".join(f"def g{i}(x):\n    return x + {i}\n" for i in range(1_000))
    return (
        f'BLOB = """\\\n{blob}"""\nTABLE = {{\n{table}}}\n{functions}'
        f"def f():\n    return {value!r}\nX = {value!r}\n"
    )


def test_a_10_mb_module(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    source = big_source(1)
    assert len(source) > 10_000_000
    big = pkg.module("big", source)
    small = pkg.module("small", "def f(): return 1\n")
    held_big, held_small, held_g = big.f, small.f, big.g7
    r = pkg.reloader()

    result = edit(r, pkg.path("big"), big_source(2))

    assert (result.status, result.modules) == ("ok", (big.__name__,))
    assert held_big() == 2
    assert held_g(1) == 8
    assert len(big.BLOB) == 127_000 * 79

    # Another module's edit never reads the big file.
    opened: list[Path] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(Path(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(hotmod._source, "open", counting_open, raising=False)
    result = edit(r, pkg.path("small"), "def f(): return 2\n")
    monkeypatch.undo()

    assert (result.status, result.modules) == ("ok", (small.__name__,))
    assert held_small() == 2
    assert opened == [pkg.path("small")]
    assert held_big() == 2

    broken = big_source(3).replace("def g500(x):", "def g500(x)", 1)
    result = edit(r, pkg.path("big"), broken)
    assert result.status == "aborted"
    assert reload_error(result).path == pkg.path("big")
    assert reload_error(result).lineno == broken[: broken.index("def g500(x)")].count("\n") + 1
    assert isinstance(reload_error(result).__cause__, SyntaxError)
    assert held_big() == 2  # the old version is intact
    assert held_g(1) == 8

    result = edit(r, pkg.path("big"), big_source(4))
    assert result.status == "ok"
    assert held_big() == 4


# -- module code that takes a long time -----------------------------------------------------

GATE = """\
import threading
entered = threading.Event()
release = threading.Event()
"""

# Blocks before its definitions, so everything it would rebind is still the old version.
SLOW = """\
from . import gate
gate.entered.set()
if not gate.release.wait(30):
    raise TimeoutError("the test never released the gate")
def f(): return {v!r}
X = 2
"""


@pytest.fixture
def slow(pkg: Pkg) -> Slow:
    """A background reloader running a version of ``mod`` that blocks until released."""
    gate = pkg.module("gate", GATE)
    mod = pkg.module("mod", V1)
    held_f = mod.f
    r = pkg.reloader(apply="background")
    results = Results(r, ok)
    r.start()
    write(pkg.path("mod"), SLOW.format(v=2))
    r.notify(pkg.path("mod"))
    assert gate.entered.wait(EVENT_TIMEOUT)
    return r, gate, mod, held_f, results


def test_slow_module_code_other_threads_wait_for_the_commit(pkg: Pkg, slow: Slow) -> None:
    r, gate, mod, held_f, results = slow
    assert_old_version_runs(mod, held_f)  # from this thread, while the new code runs

    polled = Call(r.poll)
    reloaded = Call(lambda: r.reload(mod))
    assert not polled.done.is_set()
    gate.release.set()

    assert polled.returned().status == "noop"  # the reloader's thread applied the change
    result = reloaded.returned()
    assert (result.status, result.modules) == ("ok", (mod.__name__,))  # run again, once free
    assert results.wait()
    assert held_f() == 2
    assert mod.X == 2
    assert r.running

    write(pkg.path("mod"), GOOD)
    r.notify(pkg.path("mod"))
    results.expect(lambda res: ok(res) and mod.f() == "good")
    assert results.wait()
    assert held_f() == "good"


def test_stop_during_slow_module_code(pkg: Pkg, slow: Slow) -> None:
    r, gate, mod, held_f, results = slow

    stopping = Call(r.stop)
    assert_old_version_runs(mod, held_f)
    gate.release.set()

    stopping.returned()
    assert not r.running
    assert hotmod_threads() == []
    assert results.items[-1].status == "ok"  # the reload under way committed
    assert held_f() == 2
    assert_good_edit_applied(edit(r, pkg.path("mod"), GOOD), mod, held_f)


def test_close_during_slow_module_code(pkg: Pkg, slow: Slow) -> None:
    r, gate, mod, held_f, _ = slow

    closing = Call(r.close)
    assert_old_version_runs(mod, held_f)
    gate.release.set()

    closing.returned()
    assert hotmod_threads() == []
    assert held_f() == 2
    with pytest.raises(hotmod.HotmodError, match="closed"):
        r.poll()
    r2 = pkg.reloader()  # a new reloader takes the module over
    assert_good_edit_applied(edit(r2, pkg.path("mod"), GOOD), mod, held_f)


# -- listeners and hooks that block or exit ---------------------------------------------------


def test_a_blocking_listener_holds_only_the_reloaders_thread(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(hotmod._apply_thread, "STOP_TIMEOUT", 0.2)
    mod = pkg.module("mod", V1)
    held_f = mod.f
    r = pkg.reloader(apply="background")
    entered, release = threading.Event(), threading.Event()

    def blocking(result: hotmod.ReloadResult) -> None:
        if threading.current_thread().name == "hotmod-reloader" and not entered.is_set():
            entered.set()
            release.wait(EVENT_TIMEOUT)

    r.subscribe(blocking)
    results = Results(r)
    r.start()
    write(pkg.path("mod"), "def f(): return 2\nX = 2\n")
    r.notify(pkg.path("mod"))
    assert entered.wait(EVENT_TIMEOUT)
    assert held_f() == 2  # listeners are told after the commit
    stuck = [t for t in threading.enumerate() if t.name == "hotmod-reloader"]
    assert len(stuck) == 1

    # The reload lock is free: this thread applies the next edit itself.
    result = edit(r, pkg.path("mod"), "def f(): return 3\nX = 3\n")
    assert result.status == "ok"
    assert held_f() == 3
    assert results.items == [result]  # told on this thread; the stuck thread's result waits

    with caplog.at_level(logging.WARNING, logger="hotmod"):
        r.stop()  # returns, and says the thread is busy
    assert "hotmod-reloader did not stop within 0.2 s" in caplog.text
    assert not r.running
    r.start()  # a new thread; the stuck one keeps its own stop request
    release.set()
    stuck[0].join(EVENT_TIMEOUT)
    assert not stuck[0].is_alive()

    results.expect(lambda res: ok(res) and mod.f() == "good")
    write(pkg.path("mod"), GOOD)
    r.notify(pkg.path("mod"))
    assert results.wait(), results.statuses
    assert_good_edit_applied(results.items[-1], mod, held_f)
    assert hotmod_threads() == ["hotmod-reloader"]


def test_a_listener_raising_system_exit_does_not_end_the_reloaders_thread(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    mod = pkg.module("mod", V1)
    held_f = mod.f
    r = pkg.reloader(apply="background")

    def exiting(result: hotmod.ReloadResult) -> None:
        sys.exit("a listener asked to exit")

    r.subscribe(exiting)
    results = Results(r, lambda res: ok(res) and mod.f() == 2)  # told after the one that exits
    r.start()
    with caplog.at_level(logging.ERROR, logger="hotmod"):
        write(pkg.path("mod"), "def f(): return 2\nX = 2\n")
        r.notify(pkg.path("mod"))
        assert results.wait()
        # The thread is still there: it applies the next edit by itself.
        results.expect(lambda res: ok(res) and mod.f() == "good")
        write(pkg.path("mod"), GOOD)
        r.notify(pkg.path("mod"))
        assert results.wait(), results.statuses
    assert r.running
    assert_good_edit_applied(results.items[-1], mod, held_f)
    logged = [rec for rec in caplog.records if rec.exc_info and isinstance(rec.exc_info[1], SystemExit)]
    assert len(logged) == 2  # once per result: it stays subscribed


HOOKED = """\
import hotmod
from . import gate
hot = hotmod.hot(__name__)
V = {v!r}
@hot.on_dispose
def closing(data):
    gate.entered.set()
    if not gate.release.wait(30):
        raise TimeoutError("the test never released the gate")
def f(): return V
X = V
"""


def test_a_blocking_dispose_hook_keeps_the_old_version_serving(pkg: Pkg) -> None:
    gate = pkg.module("gate", GATE)
    mod = pkg.module("mod", HOOKED.format(v=1))
    held_f = mod.f
    r = pkg.reloader(apply="background")
    results = Results(r, ok)
    r.start()
    write(pkg.path("mod"), HOOKED.format(v=2))
    r.notify(pkg.path("mod"))
    assert gate.entered.wait(EVENT_TIMEOUT)

    # The new code ran, but the old version serves while its dispose hook runs.
    assert_old_version_runs(mod, held_f)
    polled = Call(r.poll)
    assert not polled.done.is_set()  # it waits for the reload under way
    gate.release.set()

    assert polled.returned().status == "noop"
    assert results.wait()
    assert held_f() == 2
    assert hotmod.hot(mod.__name__).generation == 1

    result = edit(r, pkg.path("mod"), HOOKED.format(v="good").replace("X = V", "X = 2"))
    assert_good_edit_applied(result, mod, held_f)


EXITING_HOOKS = """\
import sys
import hotmod
hot = hotmod.hot(__name__)
V = {v!r}
@hot.on_dispose
def exiting(data):
    sys.exit("dispose asked to exit")
@hot.on_accept
def accepted(data):
    data.setdefault("accepted", []).append(V)
def f(): return V
X = {x}
"""


def test_a_hook_raising_system_exit_is_reported_and_the_reload_commits(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    mod = pkg.module("mod", EXITING_HOOKS.format(v=1, x=1))
    held_f = mod.f
    r = pkg.reloader()

    with caplog.at_level(logging.ERROR, logger="hotmod"):
        result = edit(r, pkg.path("mod"), EXITING_HOOKS.format(v=2, x=2))

    assert result.status == "ok"
    assert len(result.warnings) == 1
    assert "dispose hook exiting" in result.warnings[0]
    assert "SystemExit: dispose asked to exit" in result.warnings[0]
    assert f"{pkg.path('mod')}:" in result.warnings[0]
    assert "dispose asked to exit" in caplog.text
    assert held_f() == 2
    context = hotmod.hot(mod.__name__)
    assert context.generation == 1
    assert context.data["accepted"] == [2]  # the new version's accept hook ran

    result = edit(r, pkg.path("mod"), EXITING_HOOKS.format(v="good", x=2))
    assert_good_edit_applied(result, mod, held_f)
    assert context.generation == 2
    assert context.data["accepted"] == [2, "good"]
