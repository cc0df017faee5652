"""``hotmod.reload_now()``: what a debugger's prompt calls, and the pdb recipe from the README."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

import hotmod

from .conftest import Pkg, write, write_replace


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
    assert "0 warning(s)" in report, report
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
        assert (first.X, second.X, folder.plugins["p"].module.X) == (2, 2, 2)
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
    assert again.error.location == f"{pkg.path('m')}:1"
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

PDBRC = "alias hr !import hotmod; print(hotmod.reload_now().report())\n"


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
        child.sendline("hr")
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
