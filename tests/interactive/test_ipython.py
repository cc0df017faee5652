"""``%load_ext hotmod`` in a real IPython shell running cells.

The extension is switched to the polling backend, which looks at the files when each
cell starts: a save is seen by the next cell, with no waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..support import Pkg, write_replace

pytest.importorskip("IPython")
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell


@pytest.fixture
def shell(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(pkg.root)
    ip = InteractiveShell.instance()
    run_cell(ip, "%load_ext hotmod")
    run_cell(ip, "%hotmod backend polling")
    try:
        yield ip
    finally:
        run_cell(ip, "%unload_ext hotmod")
        for name in [n for n in ip.user_ns if n in ("m", "X", "f", "Thing", "thing", "value")]:
            del ip.user_ns[name]


def run_cell(ip: InteractiveShell, source: str) -> ExecutionResult:
    """``ip.run_cell(source)``, typed: IPython leaves it unannotated."""
    result: ExecutionResult = ip.run_cell(source)  # type: ignore[no-untyped-call]

    return result


def cell(ip: InteractiveShell, source: str) -> Any:
    """Run a cell; its result value (an error in the cell fails the test)."""
    result = run_cell(ip, source)
    assert result.error_before_exec is None
    assert result.error_in_exec is None, result.error_in_exec
    return result.result


def save(pkg: Pkg, mod: str, text: str) -> None:
    # A rename gives the file a new inode, which the polling scan sees at once; the
    # mtime stays "now", as a real save's, later than the import of the cell before.
    write_replace(pkg.path(mod), text)


def test_a_cell_runs_the_code_saved_before_it(
    shell: Any, pkg: Pkg, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg.write(
        "m", "X = 1\ndef f():\n    return 'one'\nclass Thing:\n    def hello(self):\n        return 'hi'\n"
    )
    cell(
        shell,
        f"import {pkg.qualname('m')} as m\nfrom {pkg.qualname('m')} import X, f, Thing\nthing = Thing()",
    )
    assert cell(shell, "f(), X, thing.hello()") == ("one", 1, "hi")
    save(
        pkg,
        "m",
        "X = 2\ndef f():\n    return 'two'\nclass Thing:\n    def hello(self):\n        return 'hello'\n",
    )
    capsys.readouterr()
    # Names the cell imported with ``from m import`` follow, and the instance made
    # before the edit runs the new method.
    assert cell(shell, "f(), X, thing.hello(), m.f()") == ("two", 2, "hello", "two")
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("hotmod:")]
    # The session's first reload says what is tracked, once.
    assert len(lines) == 2, out
    assert lines[0].startswith("hotmod: tracking "), out
    assert "of your code" in lines[0], out
    assert lines[1].startswith(f"hotmod: reloaded {pkg.qualname('m')} in "), out


def test_a_broken_save_is_reported_and_the_cell_runs_the_old_version(
    shell: Any, pkg: Pkg, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg.write("m", "def f():\n    return 'good'\n")
    cell(shell, f"import {pkg.qualname('m')} as m")
    save(pkg, "m", "def f():\n    return 'never'\nvalue = 1 / 0\n")
    capsys.readouterr()
    assert cell(shell, "m.f()") == "good"
    err = capsys.readouterr().err
    assert "aborted, previous version kept" in err, err
    # A short traceback into the user's file: its line, not hotmod's frames.
    assert f'File "{pkg.path("m")}", line 3, in <module>' in err, err
    assert "value = 1 / 0" in err, err
    assert "ZeroDivisionError: division by zero" in err, err
    assert "_transaction.py" not in err, err
    # The same broken file is not reported again on every cell.
    assert cell(shell, "m.f()") == "good"
    assert "aborted" not in capsys.readouterr().err
    save(pkg, "m", "def f(:\n")
    cell(shell, "1")
    err = capsys.readouterr().err
    assert "SyntaxError" in err, err
    assert f'File "{pkg.path("m")}", line 1' in err, err
    save(pkg, "m", "def f():\n    return 'fixed'\n")
    assert cell(shell, "m.f()") == "fixed"


def test_modules_imported_in_a_later_cell_are_tracked(
    shell: Any, pkg: Pkg, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg.write("late", "def f():\n    return 1\n")
    cell(shell, f"import {pkg.qualname('late')} as m")
    cell(shell, "%hotmod")
    assert pkg.qualname("late") in capsys.readouterr().out
    save(pkg, "late", "def f():\n    return 2\n")
    assert cell(shell, "m.f()") == 2


def test_off_holds_changes_until_on(shell: Any, pkg: Pkg, capsys: pytest.CaptureFixture[str]) -> None:
    pkg.write("m", "def f():\n    return 1\n")
    cell(shell, f"import {pkg.qualname('m')} as m")
    cell(shell, "%hotmod off")
    save(pkg, "m", "def f():\n    return 2\n")
    assert cell(shell, "m.f()") == 1
    cell(shell, "%hotmod on")
    assert cell(shell, "m.f()") == 2
    assert "hotmod: off" in capsys.readouterr().out


def test_status_reload_and_paths_magics(shell: Any, pkg: Pkg, capsys: pytest.CaptureFixture[str]) -> None:
    log = pkg.counter()
    pkg.write("m", f"from {pkg.qualname('log')} import runs\nruns.append(1)\n")
    cell(shell, f"import {pkg.qualname('m')}")
    capsys.readouterr()
    cell(shell, f"%hotmod reload {pkg.qualname('m')}")
    assert log == [1, 1]
    assert f"reloaded {pkg.qualname('m')}" in capsys.readouterr().out
    cell(shell, "%hotmod reload no_such_module_here")
    assert "no loaded module comes from no_such_module_here" in capsys.readouterr().err
    cell(shell, "%hotmod")
    status = capsys.readouterr().out
    assert "hotmod: on (backend polling)" in status, status
    assert "watching your code" in status, status
    assert "1 reloaded, 0 aborted" in status, status
    other = pkg.root / "elsewhere"
    other.mkdir()
    cell(shell, f"%hotmod paths {other}")
    assert f"hotmod: watching {other}" in capsys.readouterr().out
    save(pkg, "m", "runs = None\n")
    cell(shell, "1")
    assert log == [1, 1]  # no longer watched
    # ... and the user is told so, once per module.
    err = capsys.readouterr().err
    assert f"hotmod: {pkg.qualname('m')} (" in err, err
    assert "is not tracked" in err, err
    cell(shell, "2")
    assert "is not tracked" not in capsys.readouterr().err
    cell(shell, "%hotmod paths --all")
    assert "hotmod: watching your code" in capsys.readouterr().out
    cell(shell, "%hotmod nonsense")
    assert "%hotmod reload NAME" in capsys.readouterr().out


def test_unloading_the_extension_stops_reloading(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pkg.root)
    ip = InteractiveShell.instance()
    run_cell(ip, "%load_ext hotmod")
    run_cell(ip, "%hotmod backend polling")
    pkg.write("m", "def f():\n    return 1\n")
    cell(ip, f"import {pkg.qualname('m')} as m")
    run_cell(ip, "%unload_ext hotmod")
    save(pkg, "m", "def f():\n    return 2\n")
    try:
        assert cell(ip, "m.f()") == 1
    finally:
        del ip.user_ns["m"]


def test_with_kernel_events_a_cell_right_after_each_save_runs_it(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default backend: the kernel has queued the save's event when the save returns,
    and the cell reads it before running, without waiting for the watcher's thread."""
    monkeypatch.chdir(pkg.root)
    pkg.write("m", "def f():\n    return 0\n")
    ip = InteractiveShell.instance()
    run_cell(ip, "%load_ext hotmod")
    try:
        cell(ip, f"import {pkg.qualname('m')} as m")
        for n in range(1, 21):
            # Half the saves in place, half as editors do (temp file, then os.replace).
            text = f"def f():\n    return {n}\n"
            if n % 2:
                pkg.write("m", text)
            else:
                save(pkg, "m", text)
            assert cell(ip, "m.f()") == n
    finally:
        run_cell(ip, "%unload_ext hotmod")
        ip.user_ns.pop("m", None)


def test_a_notebook_beside_its_code_tracks_the_code_on_sys_path(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The common layout: notebooks/ for the notebook, src/ for the code (on sys.path or
    installed with ``pip install -e .``); the kernel runs in notebooks/."""
    import sys
    import uuid

    notebooks, src = tmp_path / "notebooks", tmp_path / "src"
    notebooks.mkdir()
    name = f"proj_{uuid.uuid4().hex[:8]}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text("")
    (src / name / "core.py").write_text("def f():\n    return 1\n")
    monkeypatch.chdir(notebooks)
    monkeypatch.syspath_prepend(str(src))
    ip = InteractiveShell.instance()
    run_cell(ip, "%load_ext hotmod")
    try:
        cell(ip, f"from {name}.core import f")
        assert cell(ip, "f()") == 1
        (src / name / "core.py").write_text("def f():\n    return 2\n")
        assert cell(ip, "f()") == 2
        cell(ip, "%hotmod")
        status = capsys.readouterr().out
        assert f"{name}.core" in status, status
    finally:
        run_cell(ip, "%unload_ext hotmod")
        ip.user_ns.pop("f", None)
        for key in [k for k in sys.modules if k.startswith(name)]:
            del sys.modules[key]


def test_hotmod_0_leaves_the_shell_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTMOD", "0")
    ip = InteractiveShell.instance()
    before = len(ip.events.callbacks["pre_run_cell"])
    run_cell(ip, "%load_ext hotmod")
    try:
        assert len(ip.events.callbacks["pre_run_cell"]) == before
        assert "HOTMOD=0" in capsys.readouterr().err
    finally:
        run_cell(ip, "%unload_ext hotmod")
