"""What every fault test checks after its fault: the version running before it is intact,
and the next good save applies (through references taken before the fault too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hotmod

__all__ = ["GOOD", "V1", "assert_good_edit_applied", "assert_old_version_runs"]

# The version imported before the fault, and the good save made after it.
V1 = "def f(): return 1\nX = 1\n"
GOOD = "def f(): return 'good'\nX = 2\n"


def assert_old_version_runs(mod: Any, held_f: Callable[[], object]) -> None:
    """``mod`` still runs ``V1``, through the module and through ``held_f`` taken before."""
    assert mod.f() == 1
    assert held_f() == 1
    assert mod.X == 1


def assert_good_edit_applied(result: hotmod.ReloadResult, mod: Any, held_f: Callable[[], object]) -> None:
    """``result`` applied ``GOOD``: the module and ``held_f`` taken before run it."""
    assert result.status == "ok", result
    assert mod.f() == "good"
    assert held_f() == "good"  # the reference taken before the fault runs the new code
    assert mod.X == 2
