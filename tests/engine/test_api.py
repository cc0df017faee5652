"""The public surface: construction, lifecycle, modules, reload targets, listeners, stats."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import textwrap
import threading
import types
import uuid
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import hotmod

from ..support import Results, edit, hotmod_threads, write

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
def test_invalid_options_raise_value_error(pkg, option, value, message):
    with pytest.raises(ValueError, match=message):
        pkg.reloader(**{option: value})


def test_missing_path_warns(pkg):
    with pytest.warns(hotmod.HotmodWarning, match="does not exist"):
        pkg.reloader(paths=[pkg.dir / "nowhere"])


def test_paths_accept_str_pathlike_and_lists(pkg):
    pkg.module("mod", "X = 1\n")
    expected = {pkg.qualname("mod"), pkg.name}
    for paths in (str(pkg.dir), pkg.dir, [pkg.dir], (str(pkg.dir),)):
        r = pkg.reloader(paths=paths)
        assert set(r.modules.values()) == expected
        assert r.paths == (pkg.dir,)


def test_paths_default_to_the_working_directory(pkg, monkeypatch):
    pkg.module("mod", "X = 1\n")
    monkeypatch.chdir(pkg.dir)
    r = hotmod.Reloader(backend="manual", apply="manual")
    pkg.reloaders.append(r)
    assert pkg.qualname("mod") in r.modules.values()


def test_repr_mentions_state_and_backend(pkg):
    r = pkg.reloader()
    assert "manual" in repr(r)
    r.close()
    assert "closed" in repr(r)


# -- modules ------------------------------------------------------------------------------


def test_modules_maps_real_paths_to_names(pkg):
    pkg.module("a", "X = 1\n")
    pkg.subpackage("sub")
    pkg.module("sub.b", "X = 1\n")
    r = pkg.reloader()
    modules = r.modules
    assert modules == {
        pkg.dir / "__init__.py": pkg.name,
        pkg.path("a"): pkg.qualname("a"),
        pkg.dir / "sub" / "__init__.py": pkg.qualname("sub"),
        pkg.path("sub.b"): pkg.qualname("sub.b"),
    }
    assert all(p == Path(os.path.realpath(p)) for p in modules)
    assert r.stats.tracked_modules == 4


def test_modules_is_a_read_only_snapshot(pkg):
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    modules = r.modules
    with pytest.raises(TypeError):
        modules[pkg.path("b")] = "x"  # type: ignore[index]
    pkg.module("b", "X = 1\n")
    assert pkg.path("b") not in modules
    assert pkg.path("b") in r.modules


def test_modules_includes_a_module_imported_after_the_reloader(pkg):
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    assert pkg.path("late") not in r.modules
    late = pkg.module("late", "def f(): return 1\n")
    assert r.poll().status == "noop"
    assert r.modules[pkg.path("late")] == pkg.qualname("late")

    assert edit(r, pkg.path("late"), "def f(): return 2\n").status == "ok"
    assert late.f() == 2


def test_a_module_imported_after_the_reloader_is_not_re_executed_by_tracking(pkg):
    runs = pkg.counter()
    r = pkg.reloader()
    pkg.module("late", "from . import log\nlog.runs.append(__name__)\ndef f(): return 1\n")
    for _ in range(3):
        assert r.poll().status == "noop"
    assert runs == [pkg.qualname("late")]


def test_an_edit_right_after_a_late_import_is_applied(pkg):
    """Imported after the reloader was created and edited before it next looked."""
    r = pkg.reloader()
    late = pkg.module("late", "def f(): return 1\n")
    pkg.write("late", "def f(): return 2\n")
    r.notify(pkg.path("late"))

    result = r.poll()

    assert result.status == "ok"
    assert late.f() == 2


def test_a_module_removed_from_sys_modules_is_forgotten(pkg):
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    assert pkg.path("a") in r.modules
    del sys.modules[pkg.qualname("a")]
    assert pkg.path("a") not in r.modules
    pkg.write("a", "X = 2\n")
    r.notify(pkg.path("a"))
    assert r.poll().status == "noop"


def test_a_swap_of_modules_between_two_looks_is_seen(pkg):
    """One module removed and another imported: sys.modules keeps its length."""
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    assert pkg.path("a") in r.modules
    del sys.modules[pkg.qualname("a")]
    b = pkg.module("b", "def f(): return 1\n")
    modules = r.modules
    assert pkg.path("a") not in modules
    assert pkg.path("b") in modules
    assert edit(r, pkg.path("b"), "def f(): return 2\n").status == "ok"
    assert b.f() == 2


# -- reload(target) -----------------------------------------------------------------------


COUNTED = "from . import log\nlog.runs.append(__name__)\ndef f(): return {v}\n"


@pytest.mark.parametrize("kind", ["module", "name", "path", "str_path"])
def test_reload_re_executes_an_unchanged_module(pkg, kind):
    runs = pkg.counter()
    mod = pkg.module("mod", COUNTED.format(v=1))
    r = pkg.reloader()
    target = {
        "module": mod,
        "name": mod.__name__,
        "path": pkg.path("mod"),
        "str_path": str(pkg.path("mod")),
    }[kind]

    result = r.reload(target)

    assert result.status == "ok"
    assert result.modules == (mod.__name__,)
    assert runs == [mod.__name__] * 2
    assert mod.f() == 1


def test_reload_applies_the_file_content(pkg):
    mod = pkg.module("mod", "def f(): return 1\ndef gone(): pass\n")
    r = pkg.reloader()
    pkg.write("mod", "def f(): return 2\n")
    result = r.reload(mod)
    assert result.status == "ok"
    assert result.names_pruned == 1
    assert mod.f() == 2
    # The change is now what runs: a notification of the same content does nothing.
    r.notify(pkg.path("mod"))
    assert r.poll().status == "noop"


def test_reload_of_broken_content_aborts(pkg):
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.write("mod", "def f(): return 2\nraise RuntimeError('boom')\n")
    result = r.reload(mod.__name__)
    assert result.status == "aborted"
    assert result.error.lineno == 2
    assert mod.f() == 1
    # reload() reports even content that was reported before: it was asked for.
    assert r.reload(mod).status == "aborted"


def test_reload_of_a_deleted_file_fails(pkg):
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.path("mod").unlink()
    result = r.reload(mod)
    assert result.status == "failed"
    assert "deleted" in str(result.error)
    assert mod.f() == 1


def test_reload_rejects_unknown_targets(pkg):
    mod = pkg.module("mod", "X = 1\n")
    r = pkg.reloader()
    with pytest.raises(hotmod.HotmodError):
        r.reload(f"{pkg.name}.not_imported")
    with pytest.raises(hotmod.HotmodError):
        r.reload(pkg.dir / "nothing_here.py")
    impostor = types.ModuleType(mod.__name__)
    with pytest.raises(hotmod.HotmodError):
        r.reload(impostor)


# -- needs_restart -------------------------------------------------------------------------


@pytest.fixture
def fake_extension(pkg):
    """A module registered as loaded from a C extension file inside the package."""
    path = pkg.dir / f"fastext{EXTENSION_SUFFIXES[0]}"
    write(path, b"\x7fELF not really a shared object, v1")
    module = types.ModuleType(pkg.qualname("fastext"))
    module.__file__ = str(path)
    module.VALUE = 1
    sys.modules[module.__name__] = module  # removed by the pkg fixture
    return module, path


def test_changed_extension_module_needs_restart(pkg, fake_extension):
    module, path = fake_extension
    r = pkg.reloader()
    assert r.modules[path] == module.__name__
    names = dict(vars(module))

    write(path, b"\x7fELF rebuilt, v2")
    r.notify(path)
    result = r.poll()

    assert result.status == "needs_restart"
    assert not result.ok
    assert isinstance(result.error, hotmod.ReloadError)
    assert result.error.module == module.__name__
    assert result.error.path == path
    assert "extension" in str(result.error)
    assert dict(vars(module)) == names
    r.notify(path)
    assert r.poll().status == "noop"  # reported once


def test_reload_of_an_extension_module_needs_restart(pkg, fake_extension):
    module, _ = fake_extension
    r = pkg.reloader()
    assert r.reload(module).status == "needs_restart"
    assert r.reload(module.__name__).status == "needs_restart"


@pytest.mark.watchdog
def test_watchdog_sees_a_rebuilt_extension(pkg, fake_extension):
    module, path = fake_extension
    # Imported before the reloader, so only its file event (after the extension's) reloads it.
    fence = pkg.module("fence", "X = 1\n")
    r = pkg.reloader(backend="watchdog", apply="background")
    results = Results(r, lambda res: res.status == "needs_restart" or pkg.path("fence") in res.paths)
    r.start()
    write(path, b"\x7fELF rebuilt, v2")
    write(pkg.path("fence"), "X = 2\n")  # events arrive in order: the fence comes after
    assert results.wait(), results.statuses
    assert "needs_restart" in results.statuses
    assert module.VALUE == 1
    del fence


@pytest.fixture
def fake_main(pkg, monkeypatch):
    """A ``__main__`` whose script lives in the package (as if run with ``python app.py``)."""
    runs = pkg.counter()
    path = pkg.write("app", "from . import log\nlog.runs.append('app')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    main.VALUE = 1
    monkeypatch.setitem(sys.modules, "__main__", main)
    return main, path, runs


def test_edited_main_script_needs_restart(pkg, fake_main):
    main, path, runs = fake_main
    r = pkg.reloader()
    assert r.modules[path] == "__main__"

    result = edit(r, path, "from . import log\nlog.runs.append('app v2')\nVALUE = 2\n")

    assert result.status == "needs_restart"
    assert result.error.module == "__main__"
    assert "__main__" in str(result.error)
    assert runs == []
    assert main.VALUE == 1
    r.notify(path)
    assert r.poll().status == "noop"


def test_reload_main_needs_restart(pkg, fake_main):
    main, _, runs = fake_main
    r = pkg.reloader()
    result = r.reload("__main__")
    assert result.status == "needs_restart"
    assert runs == []
    assert r.reload(main).status == "needs_restart"


def test_needs_restart_batch_applies_nothing(pkg, fake_main):
    _, path, _ = fake_main
    helper = pkg.module("helper", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.write("app", "VALUE = 2\n")
    pkg.write("helper", "def f(): return 2\n")
    r.notify(path, pkg.path("helper"))

    result = r.poll()

    assert result.status == "needs_restart"
    assert helper.f() == 1


def test_rest_of_a_needs_restart_batch_applies_on_the_next_poll(pkg, fake_main):
    _, path, _ = fake_main
    helper = pkg.module("helper", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.write("app", "VALUE = 2\n")
    pkg.write("helper", "def f(): return 2\n")
    r.notify(path, pkg.path("helper"))
    assert r.poll().status == "needs_restart"

    result = r.poll()

    assert result.status == "ok"
    assert helper.f() == 2


# -- subscribe --------------------------------------------------------------------------------


def test_listeners_receive_results_until_unsubscribed(pkg):
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    received = []
    unsubscribe = r.subscribe(received.append)

    ok = edit(r, pkg.path("mod"), "def f(): return 2\n")
    assert received == [ok]
    aborted = edit(r, pkg.path("mod"), "def f(:\n")
    assert received == [ok, aborted]
    assert r.poll().status == "noop"
    assert received == [ok, aborted]  # nothing happened: nobody is called

    unsubscribe()
    unsubscribe()  # twice is harmless
    assert edit(r, pkg.path("mod"), "def f(): return 3\n").status == "ok"
    assert received == [ok, aborted]
    assert mod.f() == 3


def test_a_raising_listener_is_logged_and_others_still_run(pkg, caplog):
    pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()

    def broken(result):
        raise RuntimeError("listener bug")

    received = []
    r.subscribe(broken)
    r.subscribe(received.append)
    with caplog.at_level(logging.ERROR, logger="hotmod"):
        result = edit(r, pkg.path("mod"), "def f(): return 2\n")
    assert result.status == "ok"
    assert received == [result]
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(errors) == 1
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    # The broken listener stays subscribed and the reloader keeps working.
    with caplog.at_level(logging.ERROR, logger="hotmod"):
        assert edit(r, pkg.path("mod"), "def f(): return 3\n").status == "ok"
    assert len(received) == 2
    assert len([rec for rec in caplog.records if rec.levelno == logging.ERROR]) == 2


def test_reload_results_reach_listeners(pkg):
    mod = pkg.module("mod", "X = 1\n")
    r = pkg.reloader()
    received = []
    r.subscribe(received.append)
    result = r.reload(mod)
    assert received == [result]


def test_results_are_logged_one_line_each(pkg, caplog):
    pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    with caplog.at_level(logging.INFO, logger="hotmod"):
        edit(r, pkg.path("mod"), "def f(): return 2\n")
        edit(r, pkg.path("mod"), "def f(:\n")
    messages = [(rec.levelno, rec.getMessage()) for rec in caplog.records if rec.name.startswith("hotmod")]
    assert messages[0][0] == logging.INFO
    assert messages[0][1].startswith(f"reloaded {pkg.qualname('mod')}")
    assert messages[1][0] == logging.WARNING
    assert "aborted" in messages[1][1]
    assert len(messages) == 2


# -- stats --------------------------------------------------------------------------------------


def test_stats_count_by_status(pkg):
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(debounce=0)
    stats = r.stats
    assert stats.reloads == 0
    assert stats.last is None
    assert stats.tracked_modules == 2  # the package and mod
    assert (stats.watched_dirs, stats.polled_dirs) == (0, 0)  # manual backend

    ok = edit(r, pkg.path("mod"), "def f(): return 2\n")
    edit(r, pkg.path("mod"), "def f(:\n")
    edit(r, pkg.path("mod"), "def f(:\n")  # the same failure: a noop
    pkg.path("mod").unlink()
    r.notify(pkg.path("mod"))
    failed = r.poll()
    last = edit(r, pkg.path("mod"), "def f(): return 3\n")

    stats = r.stats
    assert stats.counts["ok"] == 2
    assert stats.counts["aborted"] == 1
    assert stats.counts["failed"] == 1
    assert stats.counts["needs_restart"] == 0
    assert stats.counts["noop"] >= 1
    assert stats.reloads == 4
    assert stats.last == last
    assert stats.max_duration >= max(ok.duration, failed.duration, last.duration)
    assert stats.total_duration >= ok.duration + failed.duration + last.duration
    assert ok.duration > 0
    assert mod.f() == 3


@pytest.mark.watchdog
def test_stats_of_event_and_polling_backends(pkg):
    pkg.module("a", "X = 1\n")
    pkg.subpackage("sub")
    pkg.module("sub.b", "X = 1\n")
    polling = pkg.reloader(backend="polling")
    assert polling.stats.polled_dirs == 2
    assert polling.stats.watched_dirs == 0
    events = pkg.reloader(backend="watchdog")
    assert events.stats.watched_dirs == 2
    assert events.stats.polled_dirs == 0


# -- lifecycle ------------------------------------------------------------------------------------


@pytest.mark.watchdog
def test_close_stops_threads_and_refuses_further_use(pkg):
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


def test_close_of_a_manual_reloader(pkg):
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader()
    r.close()
    with pytest.raises(hotmod.HotmodError):
        r.poll()


def test_stop_and_start_again(pkg):
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


def test_context_manager_starts_and_closes(pkg):
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


def test_context_manager_closes_on_error(pkg):
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader(apply="background")

    def fail_inside():
        with r:
            assert r.running
            raise KeyError("inside")

    with pytest.raises(KeyError):
        fail_inside()
    assert hotmod_threads() == []
    with pytest.raises(hotmod.HotmodError):
        r.poll()


def test_start_with_manual_apply_starts_no_applier(pkg):
    pkg.module("mod", "X = 1\n")
    r = pkg.reloader(apply="manual")
    assert r.start() is r
    assert not r.running
    assert hotmod_threads() == []


def test_two_reloaders_in_one_process(pkg, pkg2):
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


def test_two_reloaders_on_the_same_module_do_not_run_an_edit_twice(pkg):
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


# -- importing hotmod ---------------------------------------------------------------------------

IMPORT_PROBE = textwrap.dedent(
    """\
    import logging, sys, threading
    def state():
        return (
            list(sys.meta_path), list(sys.path_hooks),
            threading.active_count(), sys.getswitchinterval(), sys.gettrace(), sys.getprofile(),
            sys.excepthook, threading.excepthook, list(logging.getLogger().handlers),
        )
    before = state()
    import hotmod
    after = state()
    names = ("meta_path", "path_hooks", "threads", "switchinterval",
             "trace", "profile", "excepthook", "threading.excepthook", "root handlers")
    changed = [n for n, b, a in zip(names, before, after) if b != a]
    assert not changed, changed
    assert logging.getLogger("hotmod").handlers == [], "hotmod configured logging"
    assert not any(t.name.startswith("hotmod") for t in threading.enumerate())
    print("clean")
    """
)


def test_importing_hotmod_has_no_side_effects():
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stdout.strip() == "clean"


def test_public_names():
    assert set(hotmod.__all__) >= {
        "HotmodError",
        "HotmodWarning",
        "ReloadError",
        "ReloadResult",
        "ReloadStats",
        "Reloader",
    }
    assert issubclass(hotmod.ReloadError, hotmod.HotmodError)
    assert issubclass(hotmod.HotmodWarning, UserWarning)
    assert hotmod.ReloadError.__module__ == "hotmod"


def test_reload_result_is_frozen():
    result = hotmod.ReloadResult("ok")
    assert result.ok
    assert hotmod.ReloadResult("noop").ok
    assert not hotmod.ReloadResult("failed").ok
    with pytest.raises(AttributeError):
        result.status = "failed"  # type: ignore[misc]


def test_the_import_recorder_lives_exactly_as_long_as_the_open_reloaders(pkg, pkg2):
    meta_path, path_hooks = list(sys.meta_path), list(sys.path_hooks)
    pkg.module("mod", "X = 1\n")
    first = pkg.reloader(backend="polling")
    second = pkg2.reloader(backend="polling")
    # One finder in front, whatever the number of reloaders; nothing else changes.
    assert sys.meta_path[1:] == meta_path
    assert type(sys.meta_path[0]).__module__ == "hotmod._imports"
    assert sys.path_hooks == path_hooks
    first.close()
    assert sys.meta_path[1:] == meta_path
    second.close()
    assert sys.meta_path == meta_path
    assert sys.path_hooks == path_hooks


# -- modules imported after the reloader: tracking must not re-execute them -----------------


LATE_STATEFUL = """\
from . import log
log.runs.append(__name__)
COUNT = 0
def bump():
    global COUNT
    COUNT += 1
"""


def test_late_module_whose_state_changed_is_not_re_executed(pkg):
    runs = pkg.counter()
    r = pkg.reloader()
    late = pkg.module("late", LATE_STATEFUL)
    late.bump()
    assert r.poll().status == "noop"
    assert late.COUNT == 1
    assert runs == [late.__name__]


def test_late_module_with_two_lambdas_is_not_re_executed(pkg):
    runs = pkg.counter()
    r = pkg.reloader()
    late = pkg.module("late", "from . import log\nlog.runs.append(__name__)\nA = lambda: 1\nB = lambda: 2\n")
    assert r.poll().status == "noop"
    assert runs == [late.__name__]


def test_late_module_edited_in_a_class_constant_before_the_reloader_looked(pkg):
    r = pkg.reloader()
    late = pkg.module("late", "class Config:\n    LIMIT = 1\n")
    pkg.write("late", "class Config:\n    LIMIT = 2\n")
    r.notify(pkg.path("late"))
    assert r.poll().status == "ok"
    assert late.Config.LIMIT == 2


def test_late_module_edited_in_a_call_argument_before_the_reloader_looked(pkg):
    r = pkg.reloader()
    late = pkg.module("late", "LIMIT = int('1')\n")
    pkg.write("late", "LIMIT = int('2')\n")
    r.notify(pkg.path("late"))
    assert r.poll().status == "ok"
    assert late.LIMIT == 2


def test_second_reloader_applies_a_revert_of_what_the_first_applied(pkg):
    mod = pkg.module("mod", "def f(): return 1\n")
    r1 = pkg.reloader()
    r2 = pkg.reloader()
    assert edit(r1, pkg.path("mod"), "def f(): return 2\n").status == "ok"
    r1.close()

    write(pkg.path("mod"), "def f(): return 1\n")  # back to the content r2 first saw
    r2.notify(pkg.path("mod"))
    result = r2.poll()

    assert result.status == "ok"
    assert mod.f() == 1


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "import sys\nif sys.maxsize > 0:\n    MODE = 'big'\nelse:\n    MODE = 'small'\n",
            id="branch",
        ),
        pytest.param("TOTAL = 1\nTOTAL += 1\n", id="augmented"),
        pytest.param(
            "LIMIT = 1\ndef configure():\n    global LIMIT\n    LIMIT = 5\nconfigure()\n",
            id="set-by-a-call",
        ),
    ],
)
def test_late_module_with_computed_literals_is_not_re_executed(pkg, source):
    runs = pkg.counter()
    r = pkg.reloader()
    late = pkg.module("late", "from . import log\nlog.runs.append(__name__)\n" + source)
    assert r.poll().status == "noop"
    assert runs == [late.__name__]


def test_reload_of_a_zip_imported_module_goes_through_its_loader(tmp_path):
    import zipfile

    archive = tmp_path / "bundle.zip"
    name = f"hm_zip_{uuid.uuid4().hex[:8]}"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{name}.py", "X = 1\n")
    sys.path.insert(0, str(archive))
    importlib.invalidate_caches()
    try:
        mod = importlib.import_module(name)
        mod.X = 5
        with hotmod.Reloader(tmp_path, backend="manual", apply="manual") as r:
            result = r.reload(mod)
        assert result.status == "ok", result.error
        assert mod.X == 1
    finally:
        sys.path.remove(str(archive))
        sys.modules.pop(name, None)
