"""A Reloader's options and lifecycle: construction, start and stop, close, context
manager, several reloaders in one process."""

from __future__ import annotations

import os
import threading

import pytest

import hotmod

from ..support import Pkg, Results, hotmod_threads, write

# -- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("backend", "inotify", "backend"),
        ("apply", "later", "apply"),
        ("dependents", "ignore", "dependents"),
        ("poll_interval", 0, "poll_interval"),
        ("debounce", -1, "debounce"),
    ],
)
def test_invalid_options_raise_value_error(pkg: Pkg, option: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pkg.reloader(**{option: value})


def test_missing_path_warns(pkg: Pkg) -> None:
    with pytest.warns(hotmod.HotmodWarning, match="does not exist"):
        pkg.reloader(paths=[pkg.dir / "nowhere"])


def test_paths_accept_str_pathlike_and_lists(pkg: Pkg) -> None:
    pkg.module("mod", "X = 1\n")
    expected = {pkg.qualname("mod"), pkg.name}
    for paths in (str(pkg.dir), pkg.dir, [pkg.dir], (str(pkg.dir),)):
        r = pkg.reloader(paths=paths)
        assert set(r.modules.values()) == expected
        assert r.paths == (pkg.dir,)


def test_paths_default_to_the_working_directory(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg.module("mod", "X = 1\n")
    monkeypatch.chdir(pkg.dir)
    r = hotmod.Reloader(backend="manual", apply="manual")
    pkg.reloaders.append(r)
    assert pkg.qualname("mod") in r.modules.values()


def test_repr_mentions_state_and_backend(pkg: Pkg) -> None:
    r = pkg.reloader()
    assert "manual" in repr(r)
    r.close()
    assert "closed" in repr(r)


COUNTED = "from . import log\nlog.runs.append(__name__)\ndef f(): return {v}\n"

# -- lifecycle ------------------------------------------------------------------------------------


@pytest.mark.watchdog
def test_close_stops_threads_and_refuses_further_use(pkg: Pkg) -> None:
    pkg.module("mod", "def f(): return 1\n")
    baseline = threading.active_count()
    r = pkg.reloader(backend="watchdog", apply="background")
    r.start()
    assert r.running
    assert set(hotmod_threads()) >= {"hotmod-reloader", "hotmod-watchdog"}

    r.close()

    assert not r.running
    assert hotmod_threads() == []
    assert threading.active_count() == baseline
    for call in (r.poll, r.start, lambda: r.reload(pkg.qualname("mod"))):
        with pytest.raises(hotmod.HotmodError, match="closed"):
            call()
    r.close()  # idempotent


def test_close_of_a_manual_reloader(pkg: Pkg) -> None:
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader()
    r.close()
    with pytest.raises(hotmod.HotmodError):
        r.poll()


def test_stop_and_start_again(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(apply="background")
    r.start()
    r.stop()
    assert not r.running
    assert hotmod_threads() == []
    pkg.write("mod", "def f(): return 2\n")  # edited while stopped, nobody notified
    results = Results(r, lambda res: res.status == "ok")
    r.start()  # compares contents once
    assert results.wait(), results.statuses
    assert mod.f() == 2
    r.stop()
    r.stop()  # twice is harmless


def test_context_manager_starts_and_closes(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    with hotmod.Reloader(pkg.dir, backend="manual") as r:
        pkg.reloaders.append(r)
        assert r.running
        assert "hotmod-reloader" in hotmod_threads()
        results = Results(r, lambda res: res.status == "ok")
        write(pkg.path("mod"), "def f(): return 2\n")
        r.notify(pkg.path("mod"))
        assert results.wait(), results.statuses
        assert mod.f() == 2
    assert not r.running
    assert hotmod_threads() == []
    with pytest.raises(hotmod.HotmodError):
        r.poll()


def test_context_manager_closes_on_error(pkg: Pkg) -> None:
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader(apply="background")

    def fail_inside() -> None:

        with r:
            assert r.running
            raise KeyError("inside")

    with pytest.raises(KeyError):
        fail_inside()
    assert hotmod_threads() == []
    with pytest.raises(hotmod.HotmodError):
        r.poll()


def test_start_with_manual_apply_starts_no_applier(pkg: Pkg) -> None:
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader(apply="manual")
    assert r.start() is r
    assert not r.running
    assert hotmod_threads() == []


def test_two_reloaders_in_one_process(pkg: Pkg, pkg2: Pkg) -> None:
    a = pkg.module("mod", "def f(): return 1\n")
    b = pkg2.module("mod", "def f(): return 1\n")
    r1 = pkg.reloader()
    r2 = pkg2.reloader(backend="polling")
    assert set(r1.modules.values()).isdisjoint(r2.modules.values())

    write(pkg.path("mod"), "def f(): return 2\n")
    write(pkg2.path("mod"), "def f(): return 2\n")
    r1.notify(pkg.path("mod"), pkg2.path("mod"))
    first = r1.poll()
    assert first.modules == (a.__name__,)
    assert (a.f(), b.f()) == (2, 1)

    r1.close()
    os.utime(pkg2.path("mod"), ns=(1_234_000_000_000_000_000, 1_234_000_000_000_000_000))
    second = r2.poll()
    assert second.status == "ok"
    assert second.modules == (b.__name__,)
    assert b.f() == 2


def test_two_reloaders_on_the_same_module_do_not_run_an_edit_twice(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("mod", COUNTED.format(v=1))
    r1 = pkg.reloader(strategy="module")  # each reload runs the module: counted
    r2 = pkg.reloader(strategy="module")
    runs.clear()
    write(pkg.path("mod"), COUNTED.format(v=2))
    r1.notify(pkg.path("mod"))
    r2.notify(pkg.path("mod"))

    assert r1.poll().status == "ok"
    second = r2.poll()

    assert mod.f() == 2
    assert runs == [mod.__name__]
    assert second.status == "noop"
