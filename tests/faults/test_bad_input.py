"""Broken files: the running version survives each, and the next good save applies.

Each test is a row of the fault table (``table.py``)."""

from __future__ import annotations

import builtins
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hotmod
import hotmod._source

from ..support import Pkg, edit, reload_error, write
from ..support.faults import GOOD, V1, assert_good_edit_applied, assert_old_version_runs
from .table import SAVES, Fault

Setup = tuple[Any, hotmod.Reloader, Path, Callable[[], object]]


@pytest.fixture
def setup(pkg: Pkg) -> Setup:
    """v1 imported, a manual reloader that reports at once (no settle wait), a held ``f``."""
    mod = pkg.module("mod", V1)
    r = pkg.reloader(debounce=0)
    return mod, r, pkg.path("mod"), mod.f


def assert_good_edit_applies(r: hotmod.Reloader, mod: Any, path: Path, held_f: Callable[[], object]) -> None:
    assert_good_edit_applied(edit(r, path, GOOD), mod, held_f)


@pytest.mark.parametrize("row", SAVES, ids=[row.id for row in SAVES])
def test_a_bad_save_is_refused(setup: Setup, row: Fault) -> None:
    """One row of ``table.py`` with a ``save``: that content, then the expected report."""
    mod, r, path, held_f = setup
    assert row.save is not None
    result = edit(r, path, row.save.content)
    assert result.status == row.save.status
    error = reload_error(result)
    assert error.path == path
    assert error.module == mod.__name__
    assert isinstance(error.__cause__, row.save.cause), repr(error.__cause__)
    if row.save.lineno is not None:
        assert error.lineno == row.save.lineno
    assert_old_version_runs(mod, held_f)
    assert r.poll().status == "noop"  # reported once
    assert_good_edit_applies(r, mod, path, held_f)


def test_system_exit_in_module_code_is_aborted(setup: Setup) -> None:
    mod, r, path, held_f = setup
    try:
        result = edit(r, path, "def f(): return 2\nNEW = 1\nraise SystemExit(3)\n")
    except SystemExit:
        pass  # hotmod lets SystemExit propagate to the caller of poll(), after the restore
    else:
        assert result.status == "aborted"
    assert_old_version_runs(mod, held_f)
    assert not hasattr(mod, "NEW")
    assert_good_edit_applies(r, mod, path, held_f)


def test_declared_latin1_encoding_is_honoured(setup: Setup) -> None:
    mod, r, path, _ = setup
    result = edit(r, path, b"# -*- coding: latin-1 -*-\ndef f(): return 'caf\xe9'\nX = 2\n")
    assert result.status == "ok"
    assert mod.f() == "caf\u00e9"


def test_utf8_bom_is_accepted(setup: Setup) -> None:
    mod, r, path, _ = setup
    result = edit(r, path, b"\xef\xbb\xbfdef f(): return 'bom'\nX = 2\n")
    assert result.status == "ok"
    assert mod.f() == "bom"


def test_empty_file_is_applied_as_an_empty_module(setup: Setup) -> None:
    """Without a settle time an empty file is believed at once: its names are pruned."""
    mod, r, path, held_f = setup
    result = edit(r, path, "")
    assert result.status == "ok"
    assert result.names_pruned == 2
    assert not hasattr(mod, "f")
    assert not hasattr(mod, "X")
    assert held_f() == 1  # a reference taken before still works
    assert_good_edit_applies(r, mod, path, held_f)


def test_deleted_file(setup: Setup) -> None:
    mod, r, path, held_f = setup
    path.unlink()
    r.notify(path)

    result = r.poll()

    assert result.status == "failed"
    assert not result.ok
    assert result.paths == (path,)
    assert isinstance(result.error, hotmod.ReloadError)
    assert "deleted" in str(result.error)
    assert reload_error(result).path == path
    assert reload_error(result).module == mod.__name__
    assert isinstance(reload_error(result).__cause__, FileNotFoundError)
    assert_old_version_runs(mod, held_f)
    # Reported once.
    r.notify(path)
    assert r.poll().status == "noop"
    # The file comes back with new content.
    assert_good_edit_applies(r, mod, path, held_f)


def test_deleted_file_restored_unchanged_is_a_noop(setup: Setup) -> None:
    mod, r, path, held_f = setup
    path.unlink()
    r.notify(path)
    assert r.poll().status == "failed"
    result = edit(r, path, V1)
    assert result.status == "noop"
    assert_old_version_runs(mod, held_f)
    assert_good_edit_applies(r, mod, path, held_f)


def test_file_replaced_by_a_directory(setup: Setup) -> None:
    mod, r, path, held_f = setup
    path.unlink()
    path.mkdir()
    r.notify(path)

    result = r.poll()

    assert result.status == "failed"
    assert "no longer a file" in str(result.error)
    assert isinstance(reload_error(result).__cause__, OSError)
    assert_old_version_runs(mod, held_f)

    path.rmdir()
    assert_good_edit_applies(r, mod, path, held_f)


def test_file_replaced_by_a_directory_polling(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader(backend="polling", debounce=0)
    path = pkg.path("mod")
    path.unlink()
    path.mkdir()
    result = r.poll()
    assert result.status == "failed"
    assert mod.f() == 1
    shutil.rmtree(path)
    write(path, GOOD)
    assert r.poll().status == "ok"
    assert mod.f() == "good"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_chmod(setup: Setup) -> None:
    mod, r, path, held_f = setup
    path.chmod(0)
    try:
        r.notify(path)
        result = r.poll()
        assert result.status == "failed"
        assert "permission denied" in str(result.error)
        assert isinstance(reload_error(result).__cause__, PermissionError)
        assert_old_version_runs(mod, held_f)
    finally:
        path.chmod(0o644)
    assert_good_edit_applies(r, mod, path, held_f)


def test_unreadable_file_permission_error(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    mod, r, path, held_f = setup
    real_open = builtins.open

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:

        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(hotmod._source, "open", refusing_open, raising=False)
    write(path, GOOD)
    r.notify(path)

    result = r.poll()

    assert result.status == "failed"
    assert "permission denied" in str(result.error)
    assert reload_error(result).path == path
    assert isinstance(reload_error(result).__cause__, PermissionError)
    assert_old_version_runs(mod, held_f)
    r.notify(path)
    assert r.poll().status == "noop"  # reported once

    monkeypatch.undo()
    r.notify(path)
    result = r.poll()
    assert result.status == "ok"
    assert mod.f() == "good"


def test_a_broken_file_blocks_its_batch_not_later_fixes(pkg: Pkg) -> None:
    a = pkg.module("a", "def f(): return 1\n")
    b = pkg.module("b", "def f(): return 1\n")
    r = pkg.reloader(debounce=0)
    pkg.path("b").unlink()
    pkg.write("a", "def f(): return 2\n")
    r.notify(pkg.path("a"), pkg.path("b"))

    result = r.poll()

    assert result.status == "failed"
    assert reload_error(result).path == pkg.path("b")
    assert a.f() == 1  # nothing of the batch applied

    write(pkg.path("b"), "def f(): return 2\n")
    r.notify(pkg.path("b"))
    result = r.poll()
    assert result.status == "ok"
    assert (a.f(), b.f()) == (2, 2)
