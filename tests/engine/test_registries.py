"""Registries filled at import time end with one entry per definition, the kept one."""

from __future__ import annotations

import weakref

from hotmod._registration_sweep import _instance_dict

from ..support import Pkg, edit

PLUGINS = """
class Plugin:
    registry = []
    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        Plugin.registry.append(cls)
class A(Plugin):
    def run(self):
        return "a{n}"
class B(Plugin):
    def run(self):
        return "b{n}"
"""


def test_init_subclass_registry_in_the_same_module(pkg: Pkg) -> None:
    mod = pkg.module("plugins", PLUGINS.format(n=1))
    held_a, held_b = mod.A, mod.B
    r = pkg.reloader()
    for n in (2, 3):
        assert edit(r, pkg.path("plugins"), PLUGINS.format(n=n)).ok
    assert mod.Plugin.registry == [held_a, held_b]
    assert [c().run() for c in mod.Plugin.registry] == ["a3", "b3"]


def test_init_subclass_registry_in_the_base_module(pkg: Pkg) -> None:
    base = pkg.module(
        "base",
        """
        registry = {}
        seen = []
        weak = __import__("weakref").WeakSet()
        class Plugin:
            def __init_subclass__(cls, **kw):
                super().__init_subclass__(**kw)
                registry[cls.__name__] = cls
                seen.append(cls)
                weak.add(cls)
        """,
    )
    source = "from .base import Plugin\nclass A(Plugin):\n    x = {n}\nclass B(Plugin):\n    x = {n}\n"
    mod = pkg.module("impl", source.format(n=1))
    held_a, held_b = mod.A, mod.B
    r = pkg.reloader()
    for n in (2, 3):
        assert edit(r, pkg.path("impl"), source.format(n=n)).ok
    assert base.registry == {"A": held_a, "B": held_b}
    assert base.seen == [held_a, held_b]
    assert set(base.weak) >= {held_a, held_b}
    assert all(c is held_a or c is held_b for c in base.weak)
    assert held_a.x == 3


def test_decorator_registry_in_another_module_keyed_by_class_and_function(pkg: Pkg) -> None:
    pkg.module(
        "reg",
        """
        class Registry:
            def __init__(self):
                self.handlers = []
                self.by_class = {}
            def handler(self, fn):
                self.handlers.append(fn)
                return fn
            def model(self, cls):
                self.by_class[cls] = cls.__name__
                return cls
        registry = Registry()
        """,
    )
    source = """
    from .reg import registry
    @registry.handler
    def on_event():
        return {n}
    @registry.model
    class Thing:
        pass
    """
    mod = pkg.module("app", source.format(n=1))
    reg = pkg.import_("reg").registry
    held_fn, held_cls = mod.on_event, mod.Thing
    r = pkg.reloader()
    for n in (2, 3):
        assert edit(r, pkg.path("app"), source.format(n=n)).ok
    assert reg.handlers == [held_fn]
    assert [h() for h in reg.handlers] == [3]
    assert list(reg.by_class) == [held_cls]


DISPATCH = """
import functools
@functools.singledispatch
def describe(x):
    return "thing{n}"
@describe.register
def _(x: int):
    return "int{n}"
@describe.register(str)
def _str(x):
    return "str{n}"
"""


def test_singledispatch_registrations_keep_working_without_piling_up(pkg: Pkg) -> None:
    mod = pkg.module("disp", DISPATCH.format(n=1))
    other = pkg.module(
        "ext",
        """
        from .disp import describe
        class Mine:
            pass
        @describe.register
        def _(x: Mine):
            return "mine"
        """,
    )
    held = mod.describe
    assert held(1) == "int1"
    r = pkg.reloader()
    for n in (2, 3):
        assert edit(r, pkg.path("disp"), DISPATCH.format(n=n)).ok
    assert held is mod.describe
    assert (held(1), held("s"), held(1.5), held(other.Mine())) == ("int3", "str3", "thing3", "mine")
    assert set(held.registry) == {object, int, str, other.Mine}
    # Registering a class from a module that is reloaded keeps one key, the kept class.
    held_mine = other.Mine
    source = (pkg.path("ext")).read_text().replace('"mine"', '"mine2"')
    assert edit(r, pkg.path("ext"), source).ok
    assert held(held_mine()) == "mine2"
    assert [k for k in held.registry if k.__name__ == "Mine"] == [held_mine]


def test_sweep_leaves_unrelated_containers_alone(pkg: Pkg) -> None:
    class Loud:
        def __eq__(self, other: object) -> bool:
            raise AssertionError("__eq__ called")

        def __hash__(self) -> int:
            raise AssertionError("__hash__ called")

    mod = pkg.module("data", "items = []\ndef f():\n    return 1\n")
    loud = Loud()
    mod.items.append(loud)
    mod.extra = {"k": loud}
    ref = weakref.ref(loud)
    r = pkg.reloader()
    assert edit(r, pkg.path("data"), "items = []\ndef f():\n    return 2\n").ok
    assert mod.extra["k"] is ref()


def test_sweep_never_walks_a_weak_containers_own_storage() -> None:
    """A weak container's entries vanish whenever the collector runs; walking its ``data``
    dict directly (instead of through the container, which guards its iteration) raised
    "dictionary changed size during iteration" in the middle of a commit."""
    assert _instance_dict(weakref.WeakKeyDictionary()) is None
    assert _instance_dict(weakref.WeakValueDictionary()) is None
    assert _instance_dict(weakref.WeakSet()) is None

    class Registry:
        def __init__(self) -> None:
            self.handlers: dict[str, object] = {}

    assert _instance_dict(Registry()) == {"handlers": {}}
