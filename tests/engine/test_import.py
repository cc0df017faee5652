"""Importing hotmod: no side effects, the public names, and the import recorder's lifetime."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import hotmod

from ..support import Pkg

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


def test_importing_hotmod_has_no_side_effects() -> None:
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


def test_public_names() -> None:
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


def test_reload_result_is_frozen() -> None:
    result = hotmod.ReloadResult("ok")
    assert result.ok
    assert hotmod.ReloadResult("noop").ok
    assert not hotmod.ReloadResult("failed").ok
    with pytest.raises(AttributeError):
        result.status = "failed"  # type: ignore[misc]


def test_the_import_recorder_lives_exactly_as_long_as_the_open_reloaders(pkg: Pkg, pkg2: Pkg) -> None:
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
