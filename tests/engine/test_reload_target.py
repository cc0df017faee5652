"""``reload(target)``: a module, a name or a path re-executed on request."""

from __future__ import annotations

import importlib
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

import hotmod

from ..support import Pkg, reload_error

COUNTED = "from . import log\nlog.runs.append(__name__)\ndef f(): return {v}\n"


@pytest.mark.parametrize("kind", ["module", "name", "path", "str_path"])
def test_reload_re_executes_an_unchanged_module(pkg: Pkg, kind: str) -> None:
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


def test_reload_applies_the_file_content(pkg: Pkg) -> None:
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


def test_reload_of_broken_content_aborts(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.write("mod", "def f(): return 2\nraise RuntimeError('boom')\n")
    result = r.reload(mod.__name__)
    assert result.status == "aborted"
    assert reload_error(result).lineno == 2
    assert mod.f() == 1
    # reload() reports even content that was reported before: it was asked for.
    assert r.reload(mod).status == "aborted"


def test_reload_of_a_deleted_file_fails(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    pkg.path("mod").unlink()
    result = r.reload(mod)
    assert result.status == "failed"
    assert "deleted" in str(result.error)
    assert mod.f() == 1


def test_reload_rejects_unknown_targets(pkg: Pkg) -> None:
    mod = pkg.module("mod", "X = 1\n")
    r = pkg.reloader()
    with pytest.raises(hotmod.HotmodError):
        r.reload(f"{pkg.name}.not_imported")
    with pytest.raises(hotmod.HotmodError):
        r.reload(pkg.dir / "nothing_here.py")
    impostor = types.ModuleType(mod.__name__)
    with pytest.raises(hotmod.HotmodError):
        r.reload(impostor)


def test_reload_of_a_zip_imported_module_goes_through_its_loader(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "bundle.zip"
    name = f"hm_zip_{uuid.uuid4().hex[:8]}"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{name}.py", "X = 1\n")
    sys.path.insert(0, str(archive))
    importlib.invalidate_caches()
    try:
        mod: Any = importlib.import_module(name)
        mod.X = 5
        with hotmod.Reloader(tmp_path, backend="manual", apply="manual") as r:
            result = r.reload(mod)
        assert result.status == "ok", result.error
        assert mod.X == 1
    finally:
        sys.path.remove(str(archive))
        sys.modules.pop(name, None)
