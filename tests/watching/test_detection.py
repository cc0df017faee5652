"""S10 (content-correct detection), each backend on its own, debounce and deferral."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

import hotmod

from ..support import EVENT_TIMEOUT, Pkg, Results, bump_mtime, edit, set_mtime, write, write_replace

# -- S10a: the stale .pyc trap ----------------------------------------------------------


def test_same_size_edit_in_the_same_second_is_applied(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    """The .pyc is validated by whole-second mtime and size: both are kept here."""
    path = pkg.write("mod", "def f(): return 1\n")
    set_mtime(path, 1_500_000_000)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    mod = pkg.import_("mod")
    assert mod.f() == 1
    assert Path(importlib.util.cache_from_source(str(path))).is_file()
    r = pkg.reloader(backend="polling")

    pkg.write("mod", "def f(): return 2\n")
    set_mtime(path, 1_500_000_000)
    assert path.stat().st_size == len("def f(): return 1\n")
    # The trap is set: the import system would run the stale bytecode of v1.
    spec = importlib.util.spec_from_file_location(f"{pkg.name}_stale_probe", path)
    assert spec is not None
    assert spec.loader is not None
    probe: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    assert probe.f() == 1

    r.notify(path)  # stat may differ only by ctime, which the clock may not have moved
    result = r.poll()

    assert result.status == "ok"
    assert mod.f() == 2


def test_same_size_edit_with_identical_stat_is_applied_by_polling(pkg: Pkg) -> None:
    """A rename-over keeping mtime and size (``cp -p``, ``git checkout``): the inode tells."""
    path = pkg.write("mod", "def f(): return 1\n")
    set_mtime(path, 1_500_000_000)
    mod = pkg.import_("mod")
    r = pkg.reloader(backend="polling")
    tmp = write(pkg.dir / "incoming.txt", "def f(): return 2\n")
    set_mtime(tmp, 1_500_000_000)
    os.replace(tmp, path)

    result = r.poll()

    assert result.status == "ok"
    assert mod.f() == 2


# -- S10b: mtime moved backwards --------------------------------------------------------


@pytest.mark.parametrize("backend", ["polling", "manual"])
def test_edit_with_an_older_mtime_is_applied(pkg: Pkg, backend: str) -> None:
    path = pkg.write("mod", "def f(): return 1\n")
    set_mtime(path, 1_700_000_000)
    mod = pkg.import_("mod")
    r = pkg.reloader(backend=backend)

    pkg.write("mod", "def f(): return 'older file, newer code'\n")
    set_mtime(path, 1_400_000_000)
    if backend == "manual":
        r.notify(path)
    result = r.poll()

    assert result.status == "ok"
    assert mod.f() == "older file, newer code"


# -- S10c: a touch re-executes nothing ------------------------------------------------------

COUNTED = "from . import log\nlog.runs.append(__name__)\ndef f(): return {v}\n"


def test_touch_reloads_nothing_polling(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("mod", COUNTED.format(v=1))
    r = pkg.reloader(backend="polling")
    assert runs == [mod.__name__]

    bump_mtime(pkg.path("mod"))
    result = r.poll()

    assert result.status == "noop"
    assert result.modules == ()
    assert runs == [mod.__name__]


def test_touch_reloads_nothing_manual(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("mod", COUNTED.format(v=1))
    r = pkg.reloader(strategy="module")  # each real reload runs the module: counted
    r.notify(pkg.path("mod"))
    assert r.poll().status == "noop"
    # Rewriting the same bytes is a touch as well.
    assert edit(r, pkg.path("mod"), COUNTED.format(v=1)).status == "noop"
    assert runs == [mod.__name__]
    # And after a real reload, a touch of the new version is also nothing.
    assert edit(r, pkg.path("mod"), COUNTED.format(v=2)).status == "ok"
    assert runs == [mod.__name__] * 2
    r.notify(pkg.path("mod"))
    assert r.poll().status == "noop"
    assert runs == [mod.__name__] * 2


# -- the polling backend ---------------------------------------------------------------------


def test_polling_detects_an_edit_through_the_mtime(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(backend="polling")
    assert r.backend == "polling"
    assert r.poll().status == "noop"

    pkg.write("mod", "def f(): return 2\n")
    bump_mtime(pkg.path("mod"))
    result = r.poll()

    assert result.status == "ok"
    assert result.modules == (mod.__name__,)
    assert mod.f() == 2
    assert r.poll().status == "noop"
    assert r.stats.polled_dirs == 1
    assert r.stats.watched_dirs == 0


def test_polling_sees_a_module_imported_after_the_reloader(pkg: Pkg) -> None:
    r = pkg.reloader(backend="polling")
    mod = pkg.module("late", "def f(): return 1\n")
    first = r.poll()
    assert first.status == "noop", first  # starts tracking it

    pkg.write("late", "def f(): return 2\n")
    bump_mtime(pkg.path("late"))

    assert r.poll().status == "ok"
    assert mod.f() == 2


def test_polling_sees_a_rename_save(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(backend="polling")
    write_replace(pkg.path("mod"), "def f(): return 2\n")
    assert r.poll().status == "ok"
    assert mod.f() == 2


# -- the manual backend ---------------------------------------------------------------------


def test_manual_backend_only_sees_notified_paths(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(backend="manual")
    assert r.backend == "manual"
    pkg.write("mod", "def f(): return 2\n")
    bump_mtime(pkg.path("mod"))

    assert r.poll().status == "noop"
    assert mod.f() == 1

    r.notify(str(pkg.path("mod")))  # a str works as well as a Path
    assert r.poll().status == "ok"
    assert mod.f() == 2


def test_notify_of_an_untracked_file_is_ignored(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    other = write(pkg.dir / "notes.txt", "hello")
    r.notify(other, pkg.dir / "does_not_exist.py")
    assert r.poll().status == "noop"
    assert mod.f() == 1


def test_notify_through_a_symlink_reaches_the_real_file(pkg: Pkg, tmp_path: Path) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    link = tmp_path / "link_to_mod.py"
    link.symlink_to(pkg.path("mod"))
    pkg.write("mod", "def f(): return 2\n")
    r.notify(link)
    assert r.poll().status == "ok"
    assert mod.f() == 2


# -- debounce: a file read missing or empty is deferred once --------------------------------


def test_deleted_then_recreated_file_is_never_reported(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(debounce=0.05)
    path = pkg.path("mod")

    path.unlink()
    r.notify(path)
    deferred = r.poll()
    assert deferred.status == "noop"
    assert deferred.error is None
    assert mod.f() == 1

    write(path, "def f(): return 2\n")
    r.notify(path)
    result = r.poll()
    assert result.status == "ok"
    assert mod.f() == 2
    assert r.stats.counts["failed"] == 0


def test_a_deletion_that_lasts_is_reported_after_the_wait(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(debounce=0.05)
    path = pkg.path("mod")
    path.unlink()
    r.notify(path)
    assert r.poll().status == "noop"  # deferred once

    r.notify(path)  # still missing when looked at again
    result = r.poll()

    assert result.status == "failed"
    assert "deleted" in str(result.error)
    assert mod.f() == 1


def test_truncate_pause_write_never_empties_the_module(pkg: Pkg) -> None:
    """S10e: an editor truncates, pauses, then writes: definitions never disappear."""
    mod = pkg.module("mod", "def f(): return 1\ndef g(): return 1\n")
    r = pkg.reloader(debounce=0.05)
    path = pkg.path("mod")

    write(path, "")
    r.notify(path)
    assert r.poll().status == "noop"
    assert mod.f() == 1
    assert mod.g() == 1

    write(path, "def f(): return 2\ndef g(): return 2\n")
    r.notify(path)
    result = r.poll()

    assert result.status == "ok"
    assert result.names_pruned == 0
    assert (mod.f(), mod.g()) == (2, 2)


def test_whitespace_only_counts_as_empty(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(debounce=0.05)
    write(pkg.path("mod"), "\n   \n")
    r.notify(pkg.path("mod"))
    assert r.poll().status == "noop"
    assert mod.f() == 1


def test_an_empty_file_that_stays_empty_is_applied_after_the_wait(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\nX = 1\n")
    r = pkg.reloader(debounce=0.05)
    path = pkg.path("mod")
    write(path, "")
    r.notify(path)
    assert r.poll().status == "noop"

    r.notify(path)
    result = r.poll()

    assert result.status == "ok"
    assert result.names_pruned == 2
    assert not hasattr(mod, "f")
    assert not hasattr(mod, "X")


def test_polling_defers_a_missing_file(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(backend="polling", debounce=0.05)
    path = pkg.path("mod")
    path.unlink()
    assert r.poll().status == "noop"
    write(path, "def f(): return 2\n")
    bump_mtime(path)
    assert r.poll().status == "ok"
    assert mod.f() == 2


# -- include / exclude -------------------------------------------------------------------------


def test_editor_scratch_files_are_ignored(pkg: Pkg) -> None:
    runs = pkg.counter()
    pkg.module("mod", COUNTED.format(v=1))
    r = pkg.reloader()
    scratch = [
        pkg.dir / ".mod.py.swp",
        pkg.dir / "mod.py~",
        pkg.dir / "4913",
        pkg.dir / "mod.py___jb_tmp___",
        pkg.dir / "#mod.py#",
    ]
    for path in scratch:
        write(path, COUNTED.format(v=2))
    r.notify(*scratch)

    assert r.poll().status == "noop"
    assert runs == [pkg.qualname("mod")]
    assert all(path not in r.modules for path in scratch)


def test_default_excludes_hide_virtualenv_like_folders(pkg: Pkg) -> None:
    for folder in ("venv", "node_modules"):
        pkg.subpackage(folder)
        pkg.module(f"{folder}.inside", "X = 1\n")
    pkg.module("visible", "X = 1\n")
    r = pkg.reloader()
    tracked = set(r.modules.values())
    assert pkg.qualname("visible") in tracked
    assert pkg.qualname("venv.inside") not in tracked
    assert pkg.qualname("node_modules.inside") not in tracked
    # Excluded but imported: a change is declined, never applied nor ignored silently.
    result = edit(r, pkg.path("venv.inside"), "X = 2\n")
    assert result.status == "needs_restart"
    assert "exclude pattern 'venv'" in str(result.error)
    assert pkg.import_("venv.inside").X == 1


def test_custom_exclude_and_include(pkg: Pkg) -> None:
    pkg.module("keep_me", "X = 1\n")
    pkg.module("legacy_old", "X = 1\n")
    r = pkg.reloader(exclude=("legacy_*",))
    tracked = set(r.modules.values())
    assert pkg.qualname("keep_me") in tracked
    assert pkg.qualname("legacy_old") not in tracked
    result = edit(r, pkg.path("legacy_old"), "X = 2\n")
    assert (result.status, result.modules) == ("needs_restart", (pkg.qualname("legacy_old"),))
    assert pkg.import_("legacy_old").X == 1

    only = pkg.reloader(include=("keep_*.py",))
    assert set(only.modules.values()) == {pkg.qualname("keep_me")}


def test_modules_outside_the_paths_are_not_tracked(pkg: Pkg, pkg2: Pkg) -> None:
    inside = pkg.module("mod", "def f(): return 1\n")
    outside = pkg2.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    assert pkg.qualname("mod") in r.modules.values()
    assert pkg2.qualname("mod") not in r.modules.values()
    write(pkg2.path("mod"), "def f(): return 2\n")
    r.notify(pkg2.path("mod"))
    assert r.poll().status == "noop"
    assert outside.f() == 1
    assert inside.f() == 1


def test_a_single_file_can_be_the_watched_path(pkg: Pkg) -> None:
    a = pkg.module("a", "def f(): return 1\n")
    b = pkg.module("b", "def f(): return 1\n")
    r = pkg.reloader(paths=[pkg.path("a")])
    assert set(r.modules.values()) == {pkg.qualname("a")}
    pkg.write("a", "def f(): return 2\n")
    pkg.write("b", "def f(): return 2\n")
    r.notify(pkg.path("a"), pkg.path("b"))
    assert r.poll().status == "ok"
    assert (a.f(), b.f()) == (2, 1)


# -- the watchdog backend (real kernel events) -------------------------------------------------

watchdog_test = pytest.mark.watchdog
# The ``live`` fixture: makes ``mod`` and a started background reloader on kernel events.
Live = Callable[..., tuple[Any, hotmod.Reloader, Results]]


@pytest.fixture
def live(pkg: Pkg) -> Live:
    """A started background reloader on real file events, and its recorded results."""

    def make(mod_source: str = "def f(): return 1\n") -> tuple[Any, hotmod.Reloader, Results]:
        mod = pkg.module("mod", mod_source)
        r = pkg.reloader(backend="watchdog", apply="background")
        results = Results(r)
        r.start()
        assert r.backend == "watchdog"
        assert r.running
        return mod, r, results

    return make


def _runs(mod: Any, value: object) -> Callable[[hotmod.ReloadResult], bool]:
    return lambda result: result.status == "ok" and getattr(mod, "f", lambda: None)() == value


@watchdog_test
def test_watchdog_plain_write(pkg: Pkg, live: Live) -> None:
    mod, r, results = live()
    results.expect(_runs(mod, 2))
    pkg.write("mod", "def f(): return 2\n")
    assert results.wait(), results.statuses
    assert mod.f() == 2
    assert r.stats.watched_dirs == 1
    assert not results.errors


@watchdog_test
def test_watchdog_rename_save(pkg: Pkg, live: Live) -> None:
    mod, _, results = live()
    results.expect(_runs(mod, 2))
    write_replace(pkg.path("mod"), "def f(): return 2\n")
    assert results.wait(), results.statuses
    assert "failed" not in results.statuses


@watchdog_test
def test_watchdog_vim_style_save(pkg: Pkg, live: Live) -> None:
    mod, _, results = live()
    results.expect(_runs(mod, 2))
    path = pkg.path("mod")
    os.rename(path, pkg.dir / "mod.py~")
    write(path, "def f(): return 2\n")
    assert results.wait(), results.statuses
    assert "failed" not in results.statuses
    (pkg.dir / "mod.py~").unlink()


@watchdog_test
def test_watchdog_jetbrains_safe_write(pkg: Pkg, live: Live) -> None:
    mod, _, results = live()
    results.expect(_runs(mod, 2))
    path = pkg.path("mod")
    tmp = write(pkg.dir / "mod.py___jb_tmp___", "def f(): return 2\n")
    old = pkg.dir / "mod.py___jb_old___"
    os.rename(path, old)
    os.rename(tmp, path)
    old.unlink()
    assert results.wait(), results.statuses
    assert "failed" not in results.statuses


@watchdog_test
def test_watchdog_burst_of_writes_ends_with_the_last_content(pkg: Pkg, live: Live) -> None:
    mod, _, results = live()
    results.expect(_runs(mod, 10))
    for v in range(2, 11):  # in-place writes and rename saves, alternately
        save = write_replace if v % 2 else write
        save(pkg.path("mod"), f"def f(): return {v}\n")
    assert results.wait(), results.statuses
    assert mod.f() == 10
    assert set(results.statuses) <= {"ok"}


@watchdog_test
def test_watchdog_broken_save_then_fix(pkg: Pkg, live: Live) -> None:
    mod, _, results = live()
    results.expect(lambda res: res.status == "aborted")
    pkg.write("mod", "def f(): return 2\nraise RuntimeError('boom')\n")
    assert results.wait(), results.statuses
    assert mod.f() == 1
    results.expect(_runs(mod, 3))
    pkg.write("mod", "def f(): return 3\n")
    assert results.wait(), results.statuses


@watchdog_test
def test_watchdog_ignores_editor_scratch_files(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("mod", COUNTED.format(v=1))
    fence = pkg.module("fence", "X = 1\n")
    r = pkg.reloader(backend="watchdog", apply="background")
    results = Results(r, lambda res: res.status == "ok" and fence.X == 2)
    r.start()
    write(pkg.dir / ".mod.py.swp", COUNTED.format(v=2))
    write(pkg.dir / "mod.py~", COUNTED.format(v=2))
    write(pkg.path("fence"), "X = 2\n")  # events arrive in order: the fence comes last
    assert results.wait(), results.statuses
    assert runs == [mod.__name__]
    assert all(res.modules == (fence.__name__,) for res in results.items)


@watchdog_test
def test_watchdog_idle_poll_is_noop(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(backend="watchdog")
    assert r.backend == "watchdog"
    assert r.stats.watched_dirs == 1
    assert r.stats.polled_dirs == 0
    for _ in range(3):
        result = r.poll()
        assert result.status == "noop"
        assert result.error is None
    assert mod.f() == 1


@watchdog_test
def test_auto_backend_is_watchdog(pkg: Pkg) -> None:
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader(backend="auto")
    assert r.backend == "watchdog"


@watchdog_test
def test_watchdog_stop_then_start_applies_edits_made_while_stopped(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(backend="watchdog", apply="manual")
    r.stop()
    pkg.write("mod", "def f(): return 2\n")
    r.start()  # compares contents once: no event was seen while stopped
    result = r.poll()
    assert result.status == "ok"
    assert mod.f() == 2


@watchdog_test
def test_watchdog_second_truncation_is_deferred_again(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    # A long settle time: only complete writes (close-after-write, rename) are taken.
    r = pkg.reloader(backend="watchdog", apply="manual", debounce=30)
    path = pkg.path("mod")

    def poll_until_counts_change() -> hotmod.ReloadResult:
        before = dict(r.stats.counts)
        deadline = time.monotonic() + EVENT_TIMEOUT
        while time.monotonic() < deadline:
            result = r.poll()
            if dict(r.stats.counts) != before:
                return result
        raise AssertionError("no file event reached the reloader")

    write(path, "")  # an editor truncates...
    assert poll_until_counts_change().status == "noop"  # ...and the empty file is deferred
    write(path, "def f(): return 2\n")  # the save completes
    write(path, "")  # the next save truncates again
    result = poll_until_counts_change()

    assert hasattr(mod, "f"), result
    assert result.status == "noop"


def test_a_folder_that_cannot_be_watched_is_announced_and_polled(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from watchdog.observers.api import BaseObserver

    import hotmod

    mod = pkg.module("nowatch", "def f():\n    return 1\n")

    def refuse(self: BaseObserver, *args: Any, **kwargs: Any) -> NoReturn:

        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(BaseObserver, "schedule", refuse)
    with pytest.warns(hotmod.HotmodWarning, match="cannot watch"):
        r = pkg.reloader(backend="watchdog")
    assert r.stats.watched_dirs == 0
    assert r.stats.polled_dirs == 1
    write(pkg.path("nowatch"), "def f():\n    return 2\n")
    bump_mtime(pkg.path("nowatch"))
    assert r.poll().status == "ok"  # found by polling, no notify
    assert mod.f() == 2
