"""``hotmod.reload_now()``: what a debugger's prompt calls, and the pdb recipe from the README.

debugpy over the debug protocol is in ``test_debugpy``.
"""

from __future__ import annotations

import io
import os
import py_compile
import subprocess
import sys
import threading
from importlib.util import cache_from_source
from pathlib import Path

import pytest

import hotmod
from hotmod import _changes, _state

from ..support import Pkg, hotmod_threads, reload_error, write, write_replace


def test_reload_now_finds_changes_no_watcher_reported(pkg: Pkg) -> None:
    """A debugger may hold every other thread: the files themselves are compared."""
    module = pkg.module(
        "m",
        """
        def f():
            return 1

        class Shape:
            def area(self):
                return 0
        """,
    )
    shape = module.Shape()
    pkg.reloader(backend="manual", apply="manual")  # never told of the save below
    write(
        pkg.path("m"),
        """
        def f():
            return 2

        class Shape:
            def area(self):
                return 10
        """,
    )
    result = hotmod.reload_now()
    assert result.status == "ok", result
    assert result.modules == (pkg.qualname("m"),)
    assert (module.f(), shape.area()) == (2, 10)
    assert result.functions_patched >= 1
    assert result.classes_patched == 1
    report = result.report()
    assert report.startswith(f"reloaded {pkg.qualname('m')} in "), report
    assert "1 module(s) reloaded" in report, report
    assert "1 class(es) patched" in report, report
    assert "0 warning(s), 0 stale frame(s)" in report, report
    assert hotmod.reload_now().status == "noop"


def test_reload_now_covers_every_open_reloader_and_plugin_folder(pkg: Pkg, pkg2: Pkg, tmp_path: Path) -> None:
    first = pkg.module("a", "X = 1\n")
    second = pkg2.module("b", "X = 1\n")
    pkg.reloader()
    closed = pkg2.reloader()
    closed.close()
    other = pkg2.reloader()
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    write(plugins / "p.py", "X = 1\n")
    with hotmod.PluginFolder(plugins, backend="manual", apply="manual") as folder:
        write(pkg.path("a"), "X = 2\n")
        write(pkg2.path("b"), "X = 2\n")
        write(plugins / "p.py", "X = 2\n")
        result = hotmod.reload_now()
        assert result.status == "ok", result
        assert set(result.modules) == {pkg.qualname("a"), pkg2.qualname("b"), f"{folder.package}.p"}
        plugin = folder.plugins["p"].module
        assert plugin is not None
        assert (first.X, second.X, plugin.X) == (2, 2, 2)

    other.close()


def test_a_broken_file_is_reported_by_every_explicit_request(pkg: Pkg) -> None:
    module = pkg.module("m", "def f():\n    return 1\n")
    r = pkg.reloader()
    write(pkg.path("m"), "def f(:\n")
    r.notify(pkg.path("m"))
    assert r.poll().status == "aborted"
    # The background thread already reported it; asked explicitly, it is said again.
    again = hotmod.reload_now()
    assert again.status == "aborted"
    assert again.error is not None
    assert reload_error(again).location == f"{pkg.path('m')}:1"
    assert module.f() == 1


APP = """
import helper

def work():
    first = helper.value()
    breakpoint()
    second = helper.value()  # the paused function's next call runs the new code
    print("values", first, second, flush=True)

work()
print("after", helper.value(), flush=True)
"""

# The README's alias: ``reload`` applies every pending save, ``reload FILE`` that file.
PDBRC = 'alias reload !import hotmod; print(hotmod.reload_now(*"%*".split()).report())\n'


def test_the_pdb_recipe(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    write(tmp_path / "helper.py", "def value():\n    return 'old'\n")
    write(tmp_path / "app.py", APP)
    write(tmp_path / ".pdbrc", PDBRC)  # the README's alias
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HOME=str(tmp_path), TERM="dumb")
    env.pop("PYTHONBREAKPOINT", None)
    transcript = io.StringIO()
    # Polling once a minute: the save below is found by reload_now(), not the thread.
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hotmod", "run", "--poll", "60", "app.py"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    child.logfile_read = transcript
    try:
        child.expect_exact("(Pdb) ")
        write_replace(tmp_path / "helper.py", "def value():\n    return 'new'\n")
        child.sendline("reload")
        child.expect_exact("(Pdb) ")
        report = str(child.before)
        assert "reloaded helper in " in report, transcript.getvalue()
        assert "1 module(s) reloaded, 1 function(s) patched" in report, transcript.getvalue()
        child.sendline("c")
        child.expect_exact("values old new")
        child.expect_exact("after new")
        child.expect(pexpect.EOF)
    except (pexpect.TIMEOUT, pexpect.EOF):
        pytest.fail(f"the pdb session went wrong; its terminal:\n{transcript.getvalue()}")
    child.close()
    assert child.exitstatus == 0, transcript.getvalue()


PAUSED_IN_HELPER = """
import helper

print("got", helper.value(), flush=True)
print("then", helper.value(), flush=True)
"""


def test_the_pdb_recipe_with_a_file_reports_the_paused_frame(tmp_path: Path) -> None:
    """Paused inside the edited function: ``reload helper.py`` says that frame finishes
    in the old code, at its line in the old text."""
    pexpect = pytest.importorskip("pexpect")
    write(tmp_path / "helper.py", "def value():\n    breakpoint()\n    return 'old'\n")
    write(tmp_path / "app.py", PAUSED_IN_HELPER)
    write(tmp_path / ".pdbrc", PDBRC)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HOME=str(tmp_path), TERM="dumb")
    env.pop("PYTHONBREAKPOINT", None)
    transcript = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hotmod", "run", "--poll", "60", "app.py"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    child.logfile_read = transcript
    helper = os.path.realpath(tmp_path / "helper.py")
    try:
        child.expect_exact("(Pdb) ")
        write_replace(tmp_path / "helper.py", "def value():\n    return 'new'\n")
        child.sendline("reload helper.py")
        child.expect_exact("(Pdb) ")
        report = str(child.before)
        assert "reloaded helper in " in report, transcript.getvalue()
        assert "1 stale frame(s)" in report, transcript.getvalue()
        # pdb stops on the line after breakpoint(), or from 3.13 on breakpoint() itself.
        line = 2 if sys.version_info >= (3, 13) else 3
        stale = f"still running old code: value ({helper}:{line}) in thread MainThread"
        assert stale in report, transcript.getvalue()
        child.sendline("c")
        child.expect_exact("got old")  # the paused call finished in its old code
        child.expect_exact("then new")
        child.expect(pexpect.EOF)
    except (pexpect.TIMEOUT, pexpect.EOF):
        pytest.fail(f"the pdb session went wrong; its terminal:\n{transcript.getvalue()}")
    child.close()
    assert child.exitstatus == 0, transcript.getvalue()


# --- reload_now(path) ----------------------------------------------------------------


def test_reload_now_with_a_path_and_no_reloader(pkg: Pkg) -> None:
    module = pkg.module("m", "def f():\n    return 1\n")
    assert not _state.members()
    write(pkg.path("m"), "def f():\n    return 2\n")
    result = hotmod.reload_now(pkg.path("m"))
    assert result.status == "ok", result
    assert result.modules == (pkg.qualname("m"),)
    assert module.f() == 2
    # What runs was checked against the file: nothing to do now.
    assert hotmod.reload_now(pkg.path("m")).status == "noop"
    # The temporary reloader is gone, and left no thread.
    assert not _state.members()
    assert hotmod_threads() == []


def test_reload_now_with_a_path_uses_the_reloader_that_tracks_it(pkg: Pkg) -> None:
    first = pkg.module("a", "X = 1\n")
    second = pkg.module("b", "X = 1\n")
    r = pkg.reloader()
    write(pkg.path("a"), "X = 2\n")
    write(pkg.path("b"), "X = 2\n")
    result = hotmod.reload_now(pkg.path("a"))
    assert result.status == "ok", result
    assert result.modules == (pkg.qualname("a"),)
    assert (first.X, second.X) == (2, 1)
    assert r.stats.counts["ok"] == 1


def test_reload_now_with_a_path_that_is_not_python_source(tmp_path: Path, pkg: Pkg) -> None:
    notes = write(tmp_path / "notes.txt", "hello\n")
    result = hotmod.reload_now(notes)
    assert result.status == "failed", result
    assert "not Python source" in str(result.error)
    missing = hotmod.reload_now(tmp_path / "missing.py")
    assert missing.status == "failed"
    assert isinstance(missing.error, FileNotFoundError)
    unloaded = write(tmp_path / "never_imported.py", "X = 1\n")
    assert "no loaded module" in str(hotmod.reload_now(unloaded).error)
    extension = tmp_path / "fast.cpython-311-x86_64-linux-gnu.so"
    assert hotmod.reload_now(extension).status == "needs_restart"
    assert result.report().startswith("reload of notes.txt failed")


# --- every wait ends -----------------------------------------------------------------


def _held_elsewhere(acquire: object, release: object) -> tuple[threading.Thread, threading.Event]:
    """A thread that takes a lock and keeps it until told (a thread a debugger paused)."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        acquire()  # type: ignore[operator]
        taken.set()
        done.wait(30)
        release()  # type: ignore[operator]

    thread = threading.Thread(target=hold, name="paused-by-a-debugger", daemon=True)
    thread.start()
    assert taken.wait(10)
    return thread, done


def test_a_held_reload_lock_is_a_failed_result_not_a_hang(pkg: Pkg) -> None:
    pkg.module("m", "X = 1\n")
    pkg.reloader()
    thread, done = _held_elsewhere(_state.RELOAD_LOCK.acquire, _state.RELOAD_LOCK.release)
    try:
        result = hotmod.reload_now(timeout=0.05)
    finally:
        done.set()
        thread.join(10)
    assert result.status == "failed", result
    assert "paused by the debugger?" in str(result.error)
    assert hotmod.reload_now().status == "noop"  # and the next one works


def test_a_held_change_queue_is_a_failed_result_not_a_hang(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_changes, "PUSH_TIMEOUT", 0.05)
    pkg.module("m", "X = 1\n")
    r = pkg.reloader()
    cond = r._queue._cond
    thread, done = _held_elsewhere(cond.acquire, cond.release)
    try:
        result = hotmod.reload_now()
    finally:
        done.set()
        thread.join(10)
    assert result.status == "failed", result
    assert "change queue" in str(result.error)


def test_hotmod_threads_are_marked_for_debuggers(pkg: Pkg) -> None:
    pkg.module("m", "X = 1\n")
    r = pkg.reloader(backend="watchdog", apply="background")
    r.start()
    ours = [t for t in threading.enumerate() if t.name.startswith("hotmod")]
    assert {t.name for t in ours} >= {"hotmod-reloader", "hotmod-watchdog"}
    for thread in ours:
        assert getattr(thread, "pydev_do_not_trace", False), thread
        assert getattr(thread, "is_pydev_daemon_thread", False), thread
    observer = r._watcher._observer  # type: ignore[attr-defined]
    assert observer is not None
    assert all(getattr(e, "pydev_do_not_trace", False) for e in observer.emitters)
    assert observer.emitters
    # Nothing else in the process was marked.
    assert not getattr(threading.main_thread(), "pydev_do_not_trace", False)


# --- what a reload leaves behind -------------------------------------------------------


def test_frames_still_running_replaced_code_are_reported(pkg: Pkg) -> None:
    module = pkg.module(
        "m",
        """
        def work(started, release):
            started.set()
            release.wait(30)
            return "old"

        def other():
            return 1
        """,
    )
    pkg.reloader()
    started, release = threading.Event(), threading.Event()
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.append(module.work(started, release)), name="worker")
    thread.start()
    try:
        assert started.wait(10)
        write(
            pkg.path("m"),
            """
            def work(started, release):
                started.set()
                release.wait(30)
                return "new"

            def other():
                return 1
            """,
        )
        result = hotmod.reload_now()
    finally:
        release.set()
        thread.join(10)
    assert result.status == "ok", result
    path = os.path.realpath(pkg.path("m"))
    assert result.stale_frames == (f"work ({path}:4) in thread worker",), result.stale_frames
    assert f"still running old code: work ({path}:4) in thread worker" in result.report()
    assert out == ["old"]  # it finished in the code it started with
    assert module.work(threading.Event(), _set()) == "new"


def _set() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def test_closures_made_before_the_edit_are_reported(pkg: Pkg) -> None:
    module = pkg.module(
        "m",
        """
        def make():
            def handler():
                return "old"
            return handler
        """,
    )
    pkg.reloader()
    kept = [module.make(), module.make()]
    write(
        pkg.path("m"),
        """
        def make():
            def handler():
                return "new"
            return handler
        """,
    )
    result = hotmod.reload_now()
    assert result.status == "ok", result
    path = os.path.realpath(pkg.path("m"))
    assert result.stale_closures == (f"make.<locals>.handler ({path}:3): 2 made before the edit",)
    assert "closure keeps old code: make.<locals>.handler" in result.report()
    assert [h() for h in kept] == ["old", "old"]
    assert module.make()() == "new"
    assert hotmod.reload_now().stale_closures == ()


def test_closures_are_looked_for_on_explicit_requests_only(pkg: Pkg) -> None:
    """The search walks every object the collector tracks: not on every save."""
    factory = "def make():\n    def handler():\n        return %r\n    return handler\n"
    module = pkg.module("m", factory % "old")
    r = pkg.reloader()
    kept = module.make()
    write(pkg.path("m"), factory % "new")
    r.notify(pkg.path("m"))
    polled = r.poll()
    assert polled.status == "ok", polled
    assert polled.stale_closures == ()
    write(pkg.path("m"), factory % "newer")
    asked = hotmod.reload_now()
    assert asked.status == "ok", asked
    assert len(asked.stale_closures) == 1, asked  # the one made before both edits
    assert kept() == "old"


def test_the_stale_pyc_is_removed_after_a_reload(tmp_path: Path) -> None:
    """Same size, same mtime: a .pyc that still matches would run the old text in the
    next process. After a reload it is gone, and the next process runs the file."""
    root = Path(os.path.realpath(tmp_path))
    source = write(root / "same.py", "VALUE = 'old'\n")
    pyc = Path(cache_from_source(str(source)))
    py_compile.compile(str(source), cfile=str(pyc), doraise=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), *sys.path]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the next process reads (and writes) bytecode
    show = [sys.executable, "-c", "import same; print(same.VALUE)"]
    sys.path.insert(0, str(root))
    try:
        import same  # type: ignore[import-not-found]

        before = os.stat(source)
        write(source, "VALUE = 'new'\n")
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))  # saved within the same second
        # The trap is real: a process started now runs the old text.
        assert subprocess.run(show, env=env, capture_output=True, text=True, check=True).stdout == "old\n"
        # (that process found the .pyc valid and kept it)
        assert pyc.exists()
        result = hotmod.reload_now(source)
        assert result.status == "ok", result
        assert same.VALUE == "new"
        assert not pyc.exists()
        assert subprocess.run(show, env=env, capture_output=True, text=True, check=True).stdout == "new\n"
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("same", None)
