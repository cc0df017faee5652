"""S7 (state), S8 (all or nothing), S16 (the first reload): one reload transaction."""

from __future__ import annotations

import importlib

import pytest

import hotmod

from ..support import Pkg, edit, reload_error

# Every transaction property holds whether only the changed statements run or the module.
pytestmark = pytest.mark.usefixtures("both_strategies")

V1 = """\
def f():
    return 1
def g():
    return 1
"""

# S8's v2: the raise is on line 2, between a changed f and a changed g.
V2_RAISES = """\
def f(): return 2
raise RuntimeError('boom')
def g(): return 2
"""

V2_SYNTAX = """\
def f(): return 2
def g(:
    return 2
"""


def test_exception_in_module_code_aborts_and_keeps_old_version(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader()
    held_f = mod.f
    names_before = set(vars(mod))
    namespace = mod.__dict__

    result = edit(r, pkg.path("mod"), V2_RAISES)

    assert result.status == "aborted"
    assert not result.ok
    assert result.modules == (pkg.qualname("mod"),)
    assert result.paths == (pkg.path("mod"),)
    error = result.error
    assert isinstance(error, hotmod.ReloadError)
    assert error.module == pkg.qualname("mod")
    assert error.path == pkg.path("mod")
    assert error.lineno == 2
    assert error.location == f"{pkg.path('mod')}:2"
    assert f"{pkg.path('mod')}:2" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    assert str(error.__cause__) == "boom"
    # The previous version is intact: through the module, through held references.
    assert mod.f() == 1
    assert mod.g() == 1
    assert held_f() == 1
    assert mod.f is held_f
    assert set(vars(mod)) == names_before
    assert mod.__dict__ is namespace


def test_names_added_before_the_raise_do_not_leak(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader()
    names_before = set(vars(mod))

    result = edit(
        r,
        pkg.path("mod"),
        """\
        NEW_CONSTANT = 1
        def new_function(): return 2
        class NewClass: pass
        import json
        def f(): return 2
        raise ValueError('late failure')
        """,
    )

    assert result.status == "aborted"
    assert reload_error(result).lineno == 6
    assert set(vars(mod)) == names_before
    for name in ("NEW_CONSTANT", "new_function", "NewClass", "json"):
        assert not hasattr(mod, name)
    assert mod.f() == 1


def test_syntax_error_aborts_with_real_filename_and_line(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader()
    held_f = mod.f
    names_before = set(vars(mod))

    result = edit(r, pkg.path("mod"), V2_SYNTAX)

    assert result.status == "aborted"
    error = result.error
    assert isinstance(error, hotmod.ReloadError)
    assert error.path == pkg.path("mod")
    assert error.lineno == 2
    assert isinstance(error.__cause__, SyntaxError)
    assert error.__cause__.filename == str(pkg.path("mod"))
    assert str(pkg.path("mod")) in str(error)
    assert "SyntaxError" in str(error)
    assert (mod.f(), mod.g(), held_f()) == (1, 1, 1)
    assert set(vars(mod)) == names_before


@pytest.mark.parametrize("broken", [V2_RAISES, V2_SYNTAX], ids=["exec", "syntax"])
def test_broken_content_is_reported_once_then_a_fix_applies(pkg: Pkg, broken: str) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader()
    held_f = mod.f
    path = pkg.path("mod")

    assert edit(r, path, broken).status == "aborted"
    assert held_f() == 1
    # Polling again reports nothing new.
    assert r.poll().status == "noop"
    # Saving the identical broken bytes again is not a new failure either.
    again = edit(r, path, broken)
    assert again.status == "noop"
    assert again.error is None
    assert mod.f() == 1

    fixed = edit(r, path, "def f(): return 3\ndef g(): return 3\n")
    assert fixed.status == "ok"
    assert fixed.ok
    assert fixed.error is None
    assert (mod.f(), mod.g()) == (3, 3)


def test_a_different_broken_version_is_reported_again(pkg: Pkg) -> None:
    pkg.module("mod", V1)
    r = pkg.reloader()
    path = pkg.path("mod")
    assert edit(r, path, V2_RAISES).status == "aborted"
    second = edit(r, path, V2_SYNTAX)
    assert second.status == "aborted"
    assert isinstance(reload_error(second).__cause__, SyntaxError)


def test_reverting_to_the_running_version_then_breaking_again_reports_again(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader()
    path = pkg.path("mod")
    assert edit(r, path, V2_RAISES).status == "aborted"
    assert edit(r, path, V1).status == "noop"  # what runs already
    assert edit(r, path, V2_RAISES).status == "aborted"
    assert mod.f() == 1


@pytest.mark.parametrize("failing", ["a", "b"])
def test_batch_is_all_or_nothing(pkg: Pkg, failing: str) -> None:
    a = pkg.module("a", "def f(): return 1\n")
    b = pkg.module("b", "def f(): return 1\n")
    r = pkg.reloader()
    good = "A = 'new'\ndef f(): return 2\n"
    bad = "B = 'new'\ndef f(): return 2\nraise RuntimeError('boom')\n"
    pkg.write("a", bad if failing == "a" else good)
    pkg.write("b", bad if failing == "b" else good)
    r.notify(pkg.path("a"), pkg.path("b"))

    result = r.poll()

    assert result.status == "aborted"
    assert reload_error(result).module == pkg.qualname(failing)
    assert reload_error(result).path == pkg.path(failing)
    assert reload_error(result).lineno == 3
    assert set(result.modules) == {pkg.qualname("a"), pkg.qualname("b")}
    assert (a.f(), b.f()) == (1, 1)
    assert not hasattr(a, "A")
    assert not hasattr(b, "B")

    # Fixing the broken file alone applies the whole batch: the other file was waiting.
    fixed = edit(r, pkg.path(failing), good)
    assert fixed.status == "ok"
    assert set(fixed.modules) == {pkg.qualname("a"), pkg.qualname("b")}
    assert (a.f(), b.f()) == (2, 2)


def test_batch_with_a_syntax_error_runs_nothing(pkg: Pkg) -> None:
    runs = pkg.counter()
    pkg.module("a", "from . import log\nlog.runs.append('a')\n")
    pkg.module("b", "def f(): return 1\n")
    r = pkg.reloader()
    runs.clear()
    pkg.write("a", "from . import log\nlog.runs.append('a2')\n")
    pkg.write("b", "def f(:\n")
    r.notify(pkg.path("a"), pkg.path("b"))

    result = r.poll()

    assert result.status == "aborted"
    assert reload_error(result).path == pkg.path("b")
    assert runs == []  # compile errors stop the batch before any module runs


def test_batch_runs_in_import_order(pkg: Pkg) -> None:
    # "a_user" sorts before "z_lib" but imports it: z_lib must run first.
    z = pkg.module("z_lib", "def value(): return 1\n")
    user = pkg.module("a_user", "from . import z_lib\nVALUE = z_lib.value()\n")
    r = pkg.reloader()
    assert user.VALUE == 1
    pkg.write("z_lib", "def value(): return 2\n")
    pkg.write("a_user", "from . import z_lib\nVALUE = z_lib.value() * 10\n")
    r.notify(pkg.path("a_user"), pkg.path("z_lib"))

    result = r.poll()

    assert result.status == "ok"
    assert z.value() == 2
    assert user.VALUE == 20


def test_state_idiom_keeps_data_and_plain_assignments_are_reset(pkg: Pkg, both_strategies: str) -> None:
    source = """\
    try:
        CACHE
    except NameError:
        CACHE = {{}}
    COUNTER = 0
    def f():
        return {v}
    """
    mod = pkg.module("mod", source.format(v=1))
    r = pkg.reloader()
    cache = mod.CACHE
    cache["key"] = "data"
    mod.COUNTER = 5

    assert edit(r, pkg.path("mod"), source.format(v=2)).status == "ok"

    assert mod.CACHE is cache
    assert mod.CACHE == {"key": "data"}
    if both_strategies == "module":
        assert mod.COUNTER == 0  # plain module code is re-executed
    else:
        assert mod.COUNTER == 5  # the edit did not touch it: it is not run again
    assert mod.f() == 2


def test_module_dict_is_never_replaced_or_cleared(pkg: Pkg) -> None:
    mod = pkg.module("mod", V1)
    r = pkg.reloader()
    namespace = mod.__dict__
    spec, file, loader = mod.__spec__, mod.__file__, mod.__loader__

    assert edit(r, pkg.path("mod"), "def f(): return 2\ndef g(): return 2\n").status == "ok"

    assert mod.__dict__ is namespace
    assert mod.__spec__ is spec
    assert mod.__file__ == file
    assert mod.__loader__ is loader
    assert mod.__name__ == pkg.qualname("mod")


def test_removed_names_are_pruned_and_runtime_globals_stay(pkg: Pkg) -> None:
    mod = pkg.module(
        "mod",
        """\
        import json
        from os import path as os_path
        OLD = 1
        def f(): return 1
        def old(): return 1
        class Old: pass
        def make_runtime():
            global RUNTIME
            RUNTIME = 'made at run time'
        """,
    )
    r = pkg.reloader()
    mod.make_runtime()
    mod.SET_FROM_OUTSIDE = "kept"
    held_old = mod.old

    result = edit(
        r,
        pkg.path("mod"),
        """\
        def f(): return 2
        def make_runtime():
            global RUNTIME
            RUNTIME = 'made at run time'
        """,
    )

    assert result.status == "ok"
    assert result.names_pruned == 5  # json, os_path, OLD, old, Old
    for name in ("json", "os_path", "OLD", "old", "Old"):
        assert not hasattr(mod, name), name
    assert mod.RUNTIME == "made at run time"
    assert mod.SET_FROM_OUTSIDE == "kept"
    assert mod.f() == 2
    assert held_old() == 1  # removed from the module, not destroyed


def test_a_name_kept_by_a_later_version_is_not_pruned(pkg: Pkg) -> None:
    mod = pkg.module("mod", "X = 1\nY = 1\n")
    r = pkg.reloader()
    assert edit(r, pkg.path("mod"), "X = 2\n").status == "ok"
    assert not hasattr(mod, "Y")
    # Y comes back, X goes: pruning follows the version that ran last, not the import.
    result = edit(r, pkg.path("mod"), "Y = 3\n")
    assert result.status == "ok"
    assert result.names_pruned == 1
    assert mod.Y == 3
    assert not hasattr(mod, "X")


def test_star_import_disables_pruning(pkg: Pkg) -> None:
    mod = pkg.module("mod", "OLD = 1\n")
    r = pkg.reloader()
    result = edit(r, pkg.path("mod"), "from string import *\n")
    assert result.status == "ok"
    assert result.names_pruned == 0
    assert mod.OLD == 1
    assert mod.ascii_letters.startswith("abc")


# -- S16: the first reload after import is like any other ------------------------------


S16_SOURCE = """\
try:
    STORE
except NameError:
    STORE = []
{extra}
def f():
    return {v}
"""


def _s16_edit(r: hotmod.Reloader, pkg: Pkg, v: int, extra: str = "") -> hotmod.ReloadResult:
    return edit(r, pkg.path("mod"), S16_SOURCE.format(v=v, extra=extra))


def test_first_reload_prunes_and_keeps_state_like_later_ones(pkg: Pkg) -> None:
    mod = pkg.module("mod", S16_SOURCE.format(v=1, extra="def gone1(): pass\ndef gone2(): pass"))
    r = pkg.reloader()
    store = mod.STORE
    store.append("data")

    first = _s16_edit(r, pkg, 2, extra="def gone2(): pass")
    assert first.status == "ok"
    assert first.names_pruned == 1
    assert not hasattr(mod, "gone1")
    assert mod.gone2 is not None
    assert mod.STORE is store
    assert mod.f() == 2

    second = _s16_edit(r, pkg, 3)
    assert second.status == "ok"
    assert second.names_pruned == 1
    assert not hasattr(mod, "gone2")
    assert mod.STORE is store
    assert mod.STORE == ["data"]
    assert mod.f() == 3


def test_first_reload_of_a_module_imported_after_the_reloader(pkg: Pkg) -> None:
    r = pkg.reloader()
    mod = pkg.module("late", "def f(): return 1\ndef gone(): pass\n")
    r.poll()  # the reloader catches up with sys.modules here

    result = edit(r, pkg.path("late"), "def f(): return 2\n")

    assert result.status == "ok"
    assert result.modules == (pkg.qualname("late"),)
    assert result.names_pruned == 1
    assert not hasattr(mod, "gone")
    assert mod.f() == 2


def test_first_reload_after_an_aborted_one_still_prunes_against_the_import(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\ndef gone(): pass\n")
    r = pkg.reloader()
    assert edit(r, pkg.path("mod"), "def f(): return 2\nraise KeyError\n").status == "aborted"
    result = edit(r, pkg.path("mod"), "def f(): return 3\n")
    assert result.status == "ok"
    assert result.names_pruned == 1
    assert not hasattr(mod, "gone")


def test_package_init_reloads(pkg: Pkg) -> None:
    init = pkg.dir / "__init__.py"
    package = importlib.import_module(pkg.name)
    r = pkg.reloader()
    result = edit(r, init, "VALUE = 'init v2'\n")
    assert result.status == "ok"
    assert result.modules == (pkg.name,)
    assert package.VALUE == "init v2"
