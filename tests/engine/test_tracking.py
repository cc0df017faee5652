"""Which modules a reloader tracks (``modules``), including modules imported after it:
tracking them never re-executes them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ..support import Pkg, edit, write

# -- modules ------------------------------------------------------------------------------


def test_modules_maps_real_paths_to_names(pkg: Pkg) -> None:
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


def test_modules_is_a_read_only_snapshot(pkg: Pkg) -> None:
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    modules = r.modules
    with pytest.raises(TypeError):
        modules[pkg.path("b")] = "x"  # type: ignore[index]
    pkg.module("b", "X = 1\n")
    assert pkg.path("b") not in modules
    assert pkg.path("b") in r.modules


def test_modules_includes_a_module_imported_after_the_reloader(pkg: Pkg) -> None:
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    assert pkg.path("late") not in r.modules
    late = pkg.module("late", "def f(): return 1\n")
    assert r.poll().status == "noop"
    assert r.modules[pkg.path("late")] == pkg.qualname("late")

    assert edit(r, pkg.path("late"), "def f(): return 2\n").status == "ok"
    assert late.f() == 2


def test_a_module_imported_after_the_reloader_is_not_re_executed_by_tracking(pkg: Pkg) -> None:
    runs = pkg.counter()
    r = pkg.reloader()
    pkg.module("late", "from . import log\nlog.runs.append(__name__)\ndef f(): return 1\n")
    for _ in range(3):
        assert r.poll().status == "noop"
    assert runs == [pkg.qualname("late")]


def test_an_edit_right_after_a_late_import_is_applied(pkg: Pkg) -> None:
    """Imported after the reloader was created and edited before it next looked."""
    r = pkg.reloader()
    late = pkg.module("late", "def f(): return 1\n")
    pkg.write("late", "def f(): return 2\n")
    r.notify(pkg.path("late"))

    result = r.poll()

    assert result.status == "ok"
    assert late.f() == 2


def test_a_module_removed_from_sys_modules_is_forgotten(pkg: Pkg) -> None:
    pkg.module("a", "X = 1\n")
    r = pkg.reloader()
    assert pkg.path("a") in r.modules
    del sys.modules[pkg.qualname("a")]
    assert pkg.path("a") not in r.modules
    pkg.write("a", "X = 2\n")
    r.notify(pkg.path("a"))
    assert r.poll().status == "noop"


def test_a_swap_of_modules_between_two_looks_is_seen(pkg: Pkg) -> None:
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


# -- modules imported after the reloader: tracking must not re-execute them -----------------


LATE_STATEFUL = """\
from . import log
log.runs.append(__name__)
COUNT = 0
def bump():
    global COUNT
    COUNT += 1
"""


def test_late_module_whose_state_changed_is_not_re_executed(pkg: Pkg) -> None:
    runs = pkg.counter()
    r = pkg.reloader()
    late = pkg.module("late", LATE_STATEFUL)
    late.bump()
    assert r.poll().status == "noop"
    assert late.COUNT == 1
    assert runs == [late.__name__]


def test_late_module_with_two_lambdas_is_not_re_executed(pkg: Pkg) -> None:
    runs = pkg.counter()
    r = pkg.reloader()
    late = pkg.module("late", "from . import log\nlog.runs.append(__name__)\nA = lambda: 1\nB = lambda: 2\n")
    assert r.poll().status == "noop"
    assert runs == [late.__name__]


def test_late_module_edited_in_a_class_constant_before_the_reloader_looked(pkg: Pkg) -> None:
    r = pkg.reloader()
    late = pkg.module("late", "class Config:\n    LIMIT = 1\n")
    pkg.write("late", "class Config:\n    LIMIT = 2\n")
    r.notify(pkg.path("late"))
    assert r.poll().status == "ok"
    assert late.Config.LIMIT == 2


def test_late_module_edited_in_a_call_argument_before_the_reloader_looked(pkg: Pkg) -> None:
    r = pkg.reloader()
    late = pkg.module("late", "LIMIT = int('1')\n")
    pkg.write("late", "LIMIT = int('2')\n")
    r.notify(pkg.path("late"))
    assert r.poll().status == "ok"
    assert late.LIMIT == 2


def test_second_reloader_applies_a_revert_of_what_the_first_applied(pkg: Pkg) -> None:
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
def test_late_module_with_computed_literals_is_not_re_executed(pkg: Pkg, source: str) -> None:
    runs = pkg.counter()
    r = pkg.reloader()
    late = pkg.module("late", "from . import log\nlog.runs.append(__name__)\n" + source)
    assert r.poll().status == "noop"
    assert runs == [late.__name__]
