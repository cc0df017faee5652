"""Edits that cannot be applied in place (an extension module, the ``__main__`` script)
are reported as ``needs_restart`` and hold up nothing else."""

from __future__ import annotations

import sys
import types
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import pytest

import hotmod

from ..support import Pkg, Results, edit, reload_error, write


@pytest.fixture
def fake_extension(pkg: Pkg) -> tuple[Any, Path]:
    """A module registered as loaded from a C extension file inside the package."""
    path = pkg.dir / f"fastext{EXTENSION_SUFFIXES[0]}"
    write(path, b"\x7fELF not really a shared object, v1")
    module: Any = types.ModuleType(pkg.qualname("fastext"))
    module.__file__ = str(path)
    module.VALUE = 1
    sys.modules[module.__name__] = module  # removed by the pkg fixture
    return module, path


def test_changed_extension_module_needs_restart(pkg: Pkg, fake_extension: tuple[Any, Path]) -> None:
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
    assert reload_error(result).module == module.__name__
    assert reload_error(result).path == path
    assert "extension" in str(result.error)
    assert dict(vars(module)) == names
    r.notify(path)
    assert r.poll().status == "noop"  # reported once


def test_reload_of_an_extension_module_needs_restart(pkg: Pkg, fake_extension: tuple[Any, Path]) -> None:
    module, _ = fake_extension
    r = pkg.reloader()
    assert r.reload(module).status == "needs_restart"
    assert r.reload(module.__name__).status == "needs_restart"


@pytest.mark.watchdog
def test_watchdog_sees_a_rebuilt_extension(pkg: Pkg, fake_extension: tuple[Any, Path]) -> None:
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
def fake_main(pkg: Pkg, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path, list[Any]]:
    """A ``__main__`` whose script lives in the package (as if run with ``python app.py``)."""
    runs = pkg.counter()
    path = pkg.write("app", "from . import log\nlog.runs.append('app')\n")
    main: Any = types.ModuleType("__main__")
    main.__file__ = str(path)
    main.VALUE = 1
    monkeypatch.setitem(sys.modules, "__main__", main)
    return main, path, runs


def test_edited_main_script_needs_restart(pkg: Pkg, fake_main: tuple[Any, Path, list[Any]]) -> None:
    main, path, runs = fake_main
    r = pkg.reloader()
    assert r.modules[path] == "__main__"

    result = edit(r, path, "from . import log\nlog.runs.append('app v2')\nVALUE = 2\n")

    assert result.status == "needs_restart"
    assert reload_error(result).module == "__main__"
    assert "__main__" in str(result.error)
    assert runs == []
    assert main.VALUE == 1
    r.notify(path)
    assert r.poll().status == "noop"


def test_reload_main_needs_restart(pkg: Pkg, fake_main: tuple[Any, Path, list[Any]]) -> None:
    main, _, runs = fake_main
    r = pkg.reloader()
    result = r.reload("__main__")
    assert result.status == "needs_restart"
    assert runs == []
    assert r.reload(main).status == "needs_restart"


def test_needs_restart_batch_applies_nothing(pkg: Pkg, fake_main: tuple[Any, Path, list[Any]]) -> None:
    _, path, _ = fake_main
    helper = pkg.module("helper", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.write("app", "VALUE = 2\n")
    pkg.write("helper", "def f(): return 2\n")
    r.notify(path, pkg.path("helper"))

    result = r.poll()

    assert result.status == "needs_restart"
    assert helper.f() == 1


def test_rest_of_a_needs_restart_batch_applies_on_the_next_poll(
    pkg: Pkg, fake_main: tuple[Any, Path, list[Any]]
) -> None:
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
