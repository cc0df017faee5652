"""Live objects run the new code: SEMANTICS.md S1-S7, S12, S13, S15, through held references."""

from __future__ import annotations

import abc
import pickle
from typing import Any

import pytest

from ..support import Pkg, edit, write


def test_s1_class_identity_survives(pkg: Pkg) -> None:
    shapes = pkg.module(
        "shapes",
        """
        class Base:
            pass
        def is_base(x):
            return isinstance(x, Base)
        def other():
            return 1
        """,
    )
    kinds = pkg.module("kinds", "from .shapes import Base\nclass Sub(Base):\n    pass\n")
    held = shapes.Base
    r = pkg.reloader()
    result = edit(
        r,
        pkg.path("shapes"),
        """
        class Base:
            pass
        def is_base(x):
            return isinstance(x, Base)
        def other():
            return 2
        """,
    )
    assert result.status == "ok"
    assert shapes.other() == 2
    assert shapes.is_base(kinds.Sub())
    assert isinstance(kinds.Sub(), shapes.Base)
    assert held is shapes.Base
    assert pickle.loads(pickle.dumps(held())).__class__ is shapes.Base


CALLABLES = """
class C:
    def method(self):
        return {n}
    @property
    def prop(self):
        return {n}
    @classmethod
    def cm(cls):
        return {n}
    @staticmethod
    def sm():
        return {n}
def h(a={n}, *, k={n}):
    return (a, k)
"""


def test_s2_every_callable_kind_updates_through_held_references(pkg: Pkg) -> None:
    mod = pkg.module("calls", CALLABLES.format(n=1))
    importer = pkg.module("user", "from .calls import h\n")
    obj = mod.C()
    held_h, held_method, held_cm, held_sm = mod.h, obj.method, mod.C.cm, mod.C.sm
    r = pkg.reloader()
    result = edit(r, pkg.path("calls"), CALLABLES.format(n=2))
    assert result.status == "ok"
    assert (obj.method(), obj.prop, obj.cm(), obj.sm()) == (2, 2, 2, 2)
    assert (held_method(), held_cm(), held_sm()) == (2, 2, 2)
    assert held_h() == (2, 2) == importer.h() == mod.h()
    assert held_h is mod.h is importer.h
    assert result.functions_patched >= 5
    assert result.classes_patched == 1


def test_s3_aliases_never_contaminate(pkg: Pkg) -> None:
    mod = pkg.module("alias", "def foo():\n    return 'foo'\ndef bar():\n    return 'bar'\nf = foo\n")
    foo = mod.foo
    r = pkg.reloader()
    result = edit(
        r, pkg.path("alias"), "def foo():\n    return 'foo'\ndef bar():\n    return 'bar'\nf = bar\n"
    )
    assert result.status == "ok"
    assert foo() == "foo"
    assert mod.foo() == "foo"
    assert mod.f() == "bar"
    assert mod.foo is foo


DECORATED = """
import functools
def deco(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper
@deco
def g():
    return {n}
"""


def test_s4_decorated_function_body_edit_is_seen_through_the_wrapper(pkg: Pkg) -> None:
    mod = pkg.module("deco", DECORATED.format(n=1))
    held = mod.g
    r = pkg.reloader()
    assert edit(r, pkg.path("deco"), DECORATED.format(n=2)).status == "ok"
    assert held() == 2
    assert held is mod.g
    assert held.__wrapped__() == 2


@pytest.mark.parametrize("strategy", ["statements", "module"])
def test_s5_method_that_starts_calling_super(pkg: Pkg, strategy: str) -> None:
    v1 = "class Base:\n    def hi(self):\n        return 'base'\n"
    v1 += "class Child(Base):\n    def hi(self):\n        return 'child'\n"
    v2 = v1.replace("return 'child'", "return 'child+' + super().hi()")
    mod = pkg.module("sup", v1)
    held_cls, obj, held_hi = mod.Child, mod.Child(), mod.Child.hi
    pkg.strategy = strategy
    r = pkg.reloader()
    result = edit(r, pkg.path("sup"), v2)
    assert result.status == "ok"
    assert obj.hi() == "child+base"
    assert held_cls().hi() == "child+base"
    assert held_hi(obj) == "child+base"  # the old method object forwards (its closure is fixed)
    assert mod.Child is held_cls


def test_s5_decorator_that_captures_a_new_variable_applies_through_the_old_object(pkg: Pkg) -> None:
    v1 = """
    def deco(fn):
        def wrapper():
            return fn()
        return wrapper
    @deco
    def g():
        return 1
    """
    v2 = """
    def deco(fn):
        tag = 'new:'
        def wrapper():
            return tag + str(fn())
        return wrapper
    @deco
    def g():
        return 1
    """
    assert v2 != v1
    mod = pkg.module("capture", v1)
    held = mod.g
    r = pkg.reloader()
    result = edit(r, pkg.path("capture"), v2)
    assert result.status == "ok"
    assert mod.g() == "new:1"
    # The old wrapper's closure cannot hold the new code; it keeps its identity and
    # forwards to the new wrapper, so whoever held it runs the new behaviour.
    assert mod.g is held
    assert held() == "new:1"
    assert not result.warnings, result.warnings


def test_s5_definition_that_becomes_something_else_is_reported(pkg: Pkg) -> None:
    mod = pkg.module("free", "def f():\n    return 1\n")
    held = mod.f
    r = pkg.reloader()
    result = edit(
        r,
        pkg.path("free"),
        "def make():\n    x = 2\n    def f():\n        return x\n    return f\nf = make()\n",
    )
    assert result.status == "ok"
    assert mod.f() == 2
    assert held() == 1
    assert any("free.f" in w and "references" in w for w in result.warnings)


def test_closure_that_becomes_a_plain_function_applies(pkg: Pkg) -> None:
    v1 = "def outer():\n    a = 1\n    def f():\n        return a\n    return f\nf = outer()\n"
    mod = pkg.module("clos", v1)
    r = pkg.reloader()
    v2 = "N = 5\ndef f():\n    return N\n"
    result = edit(r, pkg.path("clos"), v2)
    assert result.status == "ok"
    assert mod.f() == 5


SUPER3 = """
class Base:
    def hi(self):
        return 'base{n}'
class Child(Base):
    def hi(self):
        return 'child{n}+' + super().hi()
"""


def test_s6_zero_argument_super_across_three_edits(pkg: Pkg) -> None:
    mod = pkg.module("sup3", SUPER3.format(n=0))
    old = mod.Child()
    r = pkg.reloader()
    for n in (1, 2, 3):
        assert edit(r, pkg.path("sup3"), SUPER3.format(n=n)).status == "ok"
        assert old.hi() == f"child{n}+base{n}"
        assert mod.Child().hi() == f"child{n}+base{n}"


def test_s7_module_state_kept_reset_and_pruned(pkg: Pkg) -> None:
    v1 = """
    try:
        CACHE
    except NameError:
        CACHE = {}
    COUNTER = 0
    GONE = 1
    def bump():
        global RUNTIME
        RUNTIME = True
    """
    mod = pkg.module("state", v1)
    mod.CACHE["k"] = "v"
    mod.COUNTER = 5
    mod.bump()
    r = pkg.reloader()
    result = edit(r, pkg.path("state"), v1.replace("    GONE = 1\n", ""))
    assert result.status == "ok"
    assert mod.CACHE == {"k": "v"}
    assert mod.COUNTER == 0
    assert not hasattr(mod, "GONE")
    assert mod.RUNTIME is True
    assert result.names_pruned == 1


def test_s12_enum_members_keep_identity(pkg: Pkg) -> None:
    v1 = "import enum\nclass Color(enum.Enum):\n    RED = 1\n    BLUE = 2\ndef f():\n    return 1\n"
    mod = pkg.module("colors", v1)
    red, color = mod.Color.RED, mod.Color
    r = pkg.reloader()
    v2 = v1.replace("return 1", "return 2") + "    \n"
    v2 = v2.replace("    BLUE = 2\n", "    BLUE = 2\n    def low(self):\n        return self.name.lower()\n")
    result = edit(r, pkg.path("colors"), v2)
    assert result.status == "ok"
    assert red is mod.Color.RED
    assert color is mod.Color
    assert mod.Color(1) is red
    assert red.low() == "red"
    assert mod.f() == 2


def test_s12_enum_method_removed_from_the_source_is_gone(pkg: Pkg) -> None:
    v1 = "import enum\nclass Color(enum.Enum):\n    RED = 1\n    def low(self):\n        return 'red'\n"
    mod = pkg.module("colors3", v1)
    red = mod.Color.RED
    r = pkg.reloader()
    result = edit(r, pkg.path("colors3"), "import enum\nclass Color(enum.Enum):\n    RED = 1\n")
    assert result.status == "ok"
    assert red is mod.Color.RED
    assert not hasattr(red, "low")
    assert "low" not in vars(mod.Color)


def test_s12_enum_with_changed_members_is_replaced_and_reported(pkg: Pkg) -> None:
    v1 = "import enum\nclass Color(enum.Enum):\n    RED = 1\n"
    mod = pkg.module("colors2", v1)
    r = pkg.reloader()
    result = edit(r, pkg.path("colors2"), v1 + "    GREEN = 3\n")
    assert result.status == "ok"
    assert mod.Color.GREEN.value == 3
    assert result.classes_replaced == 1
    assert any("Color" in w and "members" in w for w in result.warnings)


def test_s13_dataclass_gains_a_field(pkg: Pkg) -> None:
    v1 = "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\nORIGIN = P(0)\n"
    mod = pkg.module("dc", v1)
    held = mod.P
    r = pkg.reloader()
    v2 = v1.replace("    x: int\n", "    x: int\n    y: int = 0\n")
    assert edit(r, pkg.path("dc"), v2).status == "ok"
    assert mod.P(1, 2).y == 2
    assert held is mod.P
    assert held(1, 2) == held(1, 2)
    assert repr(held(1, 2)) == "P(x=1, y=2)"
    assert isinstance(mod.ORIGIN, held)


@pytest.mark.parametrize(
    ("source", "probe"),
    [
        (
            "from collections import namedtuple\nP = namedtuple('P', 'x y')\nP.n = lambda self: {n}\n",
            lambda mod, held: held(1, 2).n(),
        ),
        (
            "from dataclasses import dataclass\n@dataclass(frozen=True)\nclass P:\n    x: int = {n}\n",
            lambda mod, held: held().x,
        ),
        (
            "class P:\n    __slots__ = ('x',)\n    def get(self):\n        return {n}\n",
            lambda mod, held: held().get(),
        ),
    ],
    ids=["namedtuple", "frozen-dataclass", "slots"],
)
def test_s13_special_classes_reload_without_errors(pkg: Pkg, source: str, probe: Any) -> None:
    mod = pkg.module("special", source.format(n=1))
    held = mod.P
    r = pkg.reloader()
    result = edit(r, pkg.path("special"), source.format(n=2))
    assert result.status == "ok", result.error
    assert not [w for w in result.warnings if "could not" in w]
    assert probe(mod, mod.P) == 2
    assert mod.P is held


def test_s13_changed_bases_replace_the_class_and_say_so(pkg: Pkg) -> None:
    v1 = "class A:\n    pass\nclass B:\n    pass\nclass C(A):\n    pass\n"
    mod = pkg.module("bases", v1)
    old = mod.C
    r = pkg.reloader()
    result = edit(r, pkg.path("bases"), v1.replace("class C(A)", "class C(B)"))
    assert result.status == "ok"
    assert mod.C is not old
    assert issubclass(mod.C, mod.B)
    assert result.classes_replaced == 1
    assert any("bases changed" in w for w in result.warnings)


def test_s15_importers_see_new_values(pkg: Pkg) -> None:
    pkg.module("a", "LIMIT = 1\nOTHER = 1\n")
    b = pkg.module("b", "from .a import LIMIT, OTHER\nOTHER = 7\n")
    r = pkg.reloader()
    result = edit(r, pkg.path("a"), "LIMIT = 2\nOTHER = 2\n")
    assert result.status == "ok"
    assert b.LIMIT == 2
    assert b.OTHER == 7  # the importer rebound it itself: its choice stands
    assert result.references_rebound == 1


def test_s15_a_module_with_its_own_equal_value_is_not_an_importer(pkg: Pkg) -> None:
    """``False``, small ints and short strings are one object everywhere: only a module
    that imports from the reloaded one has a copy to rebind."""
    settings = pkg.module("settings", "DEBUG = False\nLEVEL = 3\nMODE = 'fast'\n")
    own = pkg.module("own", "DEBUG = False\nLEVEL = 3\nMODE = 'fast'\n")
    copied = pkg.module("copied", "from .settings import DEBUG, LEVEL, MODE\n")
    r = pkg.reloader()
    assert edit(r, pkg.path("settings"), "DEBUG = True\nLEVEL = 4\nMODE = 'slow'\n").ok
    assert (settings.DEBUG, settings.LEVEL, settings.MODE) == (True, 4, "slow")
    assert (copied.DEBUG, copied.LEVEL, copied.MODE) == (True, 4, "slow")
    assert (own.DEBUG, own.LEVEL, own.MODE) == (False, 3, "fast")


def test_s15_reexec_mode_re_executes_importers(pkg: Pkg) -> None:
    runs = pkg.counter()
    pkg.module("a", "LIMIT = 1\n")
    b = pkg.module("b", "from .a import LIMIT\nfrom .log import runs\nruns.append('b')\nDOUBLE = LIMIT * 2\n")
    r = pkg.reloader(dependents="reexec")
    result = edit(r, pkg.path("a"), "LIMIT = 2\n")
    assert result.status == "ok"
    assert b.DOUBLE == 4
    assert runs == ["b", "b"]
    assert edit(r, pkg.path("a"), "LIMIT = 3\n").status == "ok"  # imports read from cache
    assert b.DOUBLE == 6
    assert runs == ["b", "b", "b"]
    assert result.modules.index(pkg.qualname("a")) < result.modules.index(pkg.qualname("b"))


def test_abc_abstract_methods_are_recomputed(pkg: Pkg) -> None:
    v1 = "import abc\nclass Shape(abc.ABC):\n    @abc.abstractmethod\n    def area(self): ...\n"
    mod = pkg.module("shape", v1)
    with pytest.raises(TypeError):
        mod.Shape()
    r = pkg.reloader()
    assert edit(
        r, pkg.path("shape"), "import abc\nclass Shape(abc.ABC):\n    def area(self):\n        return 0\n"
    ).ok
    assert mod.Shape().area() == 0
    assert isinstance(mod.Shape, abc.ABCMeta)


def test_removed_method_is_deleted_and_instances_follow(pkg: Pkg) -> None:
    mod = pkg.module(
        "rm", "class C:\n    def a(self):\n        return 1\n    def b(self):\n        return 1\n"
    )
    obj = mod.C()
    r = pkg.reloader()
    assert edit(r, pkg.path("rm"), "class C:\n    def a(self):\n        return 2\n").ok
    assert obj.a() == 2
    assert not hasattr(obj, "b")


def test_lru_cache_is_dropped_when_its_function_changes(pkg: Pkg) -> None:
    v1 = "import functools\n@functools.lru_cache\ndef sq(x):\n    return x * x\n"
    mod = pkg.module("cached", v1)
    held = mod.sq
    assert held(3) == 9
    r = pkg.reloader()
    assert edit(r, pkg.path("cached"), v1.replace("x * x", "x * x + 1")).ok
    assert held(3) == 10
    assert held is mod.sq


def test_aborted_reload_leaves_objects_untouched(pkg: Pkg) -> None:
    v1 = "class C:\n    def m(self):\n        return 1\ndef f():\n    return 1\n"
    mod = pkg.module("atomic", v1)
    obj, f = mod.C(), mod.f
    r = pkg.reloader()
    result = edit(r, pkg.path("atomic"), v1.replace("return 1", "return 2") + "raise RuntimeError('boom')\n")
    assert result.status == "aborted"
    assert (obj.m(), f(), mod.f()) == (1, 1, 1)
    assert mod.f is f


def test_defaults_and_tuples_point_at_the_kept_objects(pkg: Pkg) -> None:
    """``def g(key=f)`` and ``MARK = (K,)`` are evaluated while this run's new ``f`` and
    ``K`` are bound; once those are merged into the kept objects, nothing may still hold
    the discarded twins (``pickle`` refuses a class that is not the module's own)."""
    v1 = (
        "class K(tuple):\n    pass\n"
        "def f():\n    return 1\n"
        "def g(key=f):\n    return key\n"
        "def kw(*, key=f):\n    return key\n"
        "class A:\n    KINDS = (K, f)\n    def m(self, kind=K):\n        return kind\n"
        "MARK = (K,)\nNESTED = [(f, (K,))]\nFROZEN = frozenset([f, K])\n"
    )
    mod = pkg.module("defaults", v1)
    f, k = mod.f, mod.K
    r = pkg.reloader()
    result = edit(r, pkg.path("defaults"), v1.replace("return 1", "return 2"))
    assert result.status == "ok"
    assert mod.f is f
    assert mod.K is k
    assert mod.g() is f
    assert mod.kw() is f
    assert mod.A().m() is k
    assert (k, f) == mod.A.KINDS
    assert mod.A.KINDS[0] is k
    assert mod.MARK[0] is k
    assert mod.NESTED[0][0] is f
    assert mod.NESTED[0][1][0] is k
    assert frozenset([f, k]) == mod.FROZEN
    assert pickle.loads(pickle.dumps(mod.MARK)) == (k,)


def test_a_class_whose_base_is_made_in_the_class_statement_stays(pkg: Pkg) -> None:
    v1 = (
        "import collections\n"
        "class Info(collections.namedtuple('Info', 'hits misses')):\n"
        "    __slots__ = ()\n"
        "    def ratio(self):\n        return self.hits / (self.hits + self.misses)\n"
    )
    mod = pkg.module("inline_base", v1)
    held = mod.Info(1, 3)
    cls = mod.Info
    r = pkg.reloader()
    result = edit(r, pkg.path("inline_base"), v1.replace("self.hits / (", "2 * self.hits / ("))
    assert result.status == "ok"
    assert result.warnings == ()
    assert result.classes_replaced == 0
    assert mod.Info is cls
    assert isinstance(held, mod.Info)
    assert held.ratio() == 0.5


def test_a_package_that_deletes_a_submodule_name_reloads(pkg: Pkg) -> None:
    """A first import binds ``package.sub`` while ``from .sub import x`` runs; running the
    package again must see the same, or its own ``del sub`` raises NameError."""
    pkg.subpackage("tidy")
    pkg.write("tidy.sub", "def x():\n    return 1\n")
    init = "from .sub import x\ndel sub\nVERSION = 1\n"
    pkg.write("tidy.__init__", init)
    package = pkg.import_("tidy")
    r = pkg.reloader()
    result = edit(r, pkg.path("tidy.__init__"), init.replace("VERSION = 1", "VERSION = 2"))
    assert result.status == "ok", result.error
    assert package.VERSION == 2
    assert "sub" not in vars(package)
    assert package.x() == 1


def test_a_module_of_the_batch_that_copied_an_old_value_is_rebound(pkg: Pkg) -> None:
    """A package and its submodules edited together: a submodule that runs before its
    package copies the package's old value (an instance, which is never merged)."""
    pkg.subpackage("app")
    pkg.write("app.core", "import functools\nthing = functools.partial(int, base=2)\n")
    pkg.write("app.sub", f"from {pkg.name}.app import thing\n")
    pkg.write("app.__init__", "from .core import thing\nfrom . import sub\n")
    package = pkg.import_("app")
    core, sub = pkg.import_("app.core"), pkg.import_("app.sub")
    r = pkg.reloader()
    for name in ("app.core", "app.sub", "app.__init__"):
        write(pkg.path(name), "# edited\n" + pkg.path(name).read_text())
        r.notify(pkg.path(name))
    result = r.poll()
    assert result.status == "ok", result.error
    assert package.thing is core.thing
    assert sub.thing is core.thing
