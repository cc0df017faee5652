"""Generated module groups and random edits for the edit-sequence fuzzer.

A group is 2-4 modules, ``m0`` to ``m3``, sometimes preceded by the package's own
``__init__`` (whose definitions the submodules take with ``from . import X``, while the
package never imports them: the import system binds them on it all the same). Each holds
definitions of every kind the patcher handles (constants, functions, closures, decorated
and cached functions, classes with inheritance and ``super()``, dataclasses, enums with an
alias member and a module-level alias, enums of ``object()`` sentinels used as defaults and
dict keys, classes whose instances sit in class bodies, defaults and lists, state kept
with ``hot.keep``). Later modules take definitions of earlier ones either by name (``from
.m0 import f``) or through the module (``from . import m0`` then ``m0.f``), subclass them
across modules and call them from functions of their own. Each definition is a small
record whose integer parameters the edits change; ``render`` turns a group into sources.

Edits stay within what the patcher promises to apply in place without warnings (bases,
``__slots__`` and enum members never change); refused edits (syntax errors, module code
that raises) are part of the mix and must leave the last good version running. Functions
whose body raises are accepted edits: the exception is behaviour to compare.

A sequence is a list of ``Step``s, each the whole group as it should be after one save,
so a sequence can be replayed with steps or definitions taken out (see ``shrink`` in the
test) and still be a valid series of saves.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import sys
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    *("const", "func", "closure", "decorated", "cached", "klass", "dataclass", "enum", "kept"),
    *("sentinel", "token"),
)
PACKAGE = "__init__"  # the group's package module, when it has one (always first)
FUNCTION_KINDS = ("func", "closure", "decorated", "cached")
CLASS_KINDS = ("klass", "enum")  # kinds whose methods come and go (``extras``)
# The value a kept object holds is set by the test after the first import (see
# ``keep_state``), so a factory that ran again would show the factory's literal instead.
KEPT_BASE = 100


@dataclass
class Definition:
    kind: str
    name: str
    params: list[int]
    base: str | None = None  # classes: a base class name (this module or an earlier one)
    use_super: bool = False
    extras: list[int] = field(default_factory=list)  # classes, enums: extra methods' results
    const: str | None = None  # functions: a constant of this module they add
    raises: bool = False  # functions: the body raises instead of returning
    kept: int = 0  # kept state: the value the running process holds


@dataclass
class Module:
    name: str
    defs: list[Definition]
    imports: list[tuple[str, str]] = field(default_factory=list)  # (module, name): from-imports
    whole: list[str] = field(default_factory=list)  # earlier modules imported as modules
    # Functions of this module that call earlier modules' definitions. A reference is
    # ``name`` (from-imported) or ``module.name`` (through an imported module).
    users: list[tuple[str, list[str]]] = field(default_factory=list)

    def find(self, name: str) -> Definition | None:
        return next((d for d in self.defs if d.name == name), None)


@dataclass
class Group:
    modules: list[Module]
    counter: int = 0
    broken: str | None = None  # a refused edit: (module name) whose code raises at the end
    syntax_error: str | None = None  # a refused edit: (module name) that does not compile

    def module(self, name: str) -> Module:
        return next(m for m in self.modules if m.name == name)

    def definition(self, name: str) -> Definition:
        return next(d for m in self.modules for d in m.defs if d.name == name)

    @property
    def refused(self) -> bool:
        return self.broken is not None or self.syntax_error is not None


@dataclass
class Step:
    """One save: the group after it, the modules it wrote, and what it did."""

    group: Group
    touched: list[str]
    what: str


def _params(rng: random.Random, kind: str) -> list[int]:
    return [rng.randint(1, 9) for _ in range(6 if kind == "klass" else 3)]


def _new_definition(group: Group, rng: random.Random, k: int, kind: str) -> Definition:
    group.counter += 1
    capital = ("klass", "dataclass", "const", "enum", "kept", "sentinel", "token")
    initial = kind[0].upper() if kind in capital else kind[0]
    return Definition(kind, f"{initial}{k}_{group.counter}", _params(rng, kind))


def index(module_name: str) -> int:
    """The number in a module's definition names (9 for the package's own)."""
    return 9 if module_name == PACKAGE else int(module_name[1:])


def dotted(sub: str, module_name: str) -> str:
    """The module's name under the group's package ``sub``."""
    return sub if module_name == PACKAGE else f"{sub}.{module_name}"


def generate(rng: random.Random) -> Group:
    group = Group([])
    count = rng.randint(2, 4)
    package = rng.random() < 0.4
    for k in range(count):
        name = PACKAGE if package and k == 0 else f"m{k - 1 if package else k}"
        module = Module(name, [])
        group.modules.append(module)
        earlier = group.modules[:k]
        number = index(name)
        consts: list[str] = []
        needed: set[tuple[str, str]] = set()
        for _ in range(rng.randint(4, 8)):
            d = _new_definition(group, rng, number, rng.choice(KINDS))
            if d.kind == "const":
                consts.append(d.name)
            if d.kind == "func" and consts and rng.random() < 0.5:
                d.const = rng.choice(consts)
            if d.kind == "klass":
                bases = [(module.name, x.name) for x in module.defs if x.kind == "klass"]
                bases += [(m.name, x.name) for m in earlier for x in m.defs if x.kind == "klass"]
                if bases and rng.random() < 0.6:
                    where, d.base = rng.choice(bases)
                    d.use_super = rng.random() < 0.5
                    if where != module.name:
                        needed.add((where, d.base))
            module.defs.append(d)
        if not earlier:
            continue
        usable = [(m.name, d.name) for m in earlier for d in m.defs if d.kind not in ("const", "kept")]
        chosen = rng.sample(usable, min(len(usable), rng.randint(1, 3)))
        refs: list[str] = []
        for where, taken in chosen:
            # The package's definitions are taken by name: ``from . import X``.
            if where != PACKAGE and (where, taken) not in needed and rng.random() < 0.4:
                if where not in module.whole:
                    module.whole.append(where)
                refs.append(f"{where}.{taken}")
            else:
                needed.add((where, taken))
                refs.append(taken)
        module.imports = sorted(needed)
        module.whole.sort()
        for _ in range(rng.randint(1, 2)):
            group.counter += 1
            module.users.append((f"use{number}_{group.counter}", rng.sample(refs, min(len(refs), 2))))
    return group


def referenced_elsewhere(group: Group, name: str) -> bool:
    """Whether another module imports ``name`` or calls it through its module."""
    for m in group.modules:
        if any(n == name for _, n in m.imports):
            return True
        if any(ref.rsplit(".", 1)[-1] == name for _, refs in m.users for ref in refs):
            return True
    return False


def _call(group: Group, ref: str) -> str:
    """An expression that exercises the earlier module's definition ``ref`` with ``x``."""
    d = group.definition(ref.rsplit(".", 1)[-1])
    if d.kind == "klass":
        return f"{ref}().m(x)"
    if d.kind == "dataclass":
        return f"{ref}().total()"
    if d.kind == "enum":
        return f"{ref}.A.score() + x"
    if d.kind == "sentinel":
        return f"{ref}.MISSING.check(x)"
    if d.kind == "token":
        return f"{ref}(x).value()"
    return f"{ref}(x)"


def _render_definition(d: Definition, fresh: bool) -> list[str]:
    p = d.params
    if d.kind == "const":
        return [f"{d.name} = {p[0]}"]
    if d.kind == "kept":
        # A fresh import stands for "these sources, with the state the process kept".
        if fresh:
            return [f"{d.name} = [{d.kept}]"]
        return [f"{d.name} = hot.keep({d.name!r}, lambda: [{p[0]}])"]
    # A closure that raises stops reading ``step``: its free variables change, and the
    # old object must forward to the new one (what a fresh import runs).
    raises = d.kind in FUNCTION_KINDS and d.raises
    body = f"raise ValueError('{d.name} raises', x, {p[0]})" if raises else ""
    if d.kind == "func":
        extra = f" + {d.const}" if d.const else ""
        return [f"def {d.name}(x):", f"    {body or f'return x * {p[0]} + {p[1]}{extra}'}"]
    if d.kind == "closure":
        return [
            f"def make_{d.name}():",
            f"    step = {p[0]}",
            "    def inner(x):",
            f"        {body or f'return x + step * {p[1]}'}",
            "    return inner",
            f"{d.name} = make_{d.name}()",
        ]
    if d.kind == "decorated":
        return [
            f"def deco_{d.name}(fn):",
            "    @functools.wraps(fn)",
            "    def wrapper(x):",
            f"        return fn(x) + {p[0]}",
            "    return wrapper",
            f"@deco_{d.name}",
            f"def {d.name}(x):",
            f"    {body or f'return x - {p[1]}'}",
        ]
    if d.kind == "cached":
        return [
            "@functools.lru_cache(maxsize=None)",
            f"def {d.name}(x):",
            f"    {body or f'return x * {p[0]} - {p[1]}'}",
        ]
    if d.kind == "dataclass":
        return [
            "@dataclasses.dataclass",
            f"class {d.name}:",
            f"    x: int = {p[0]}",
            "    def total(self):",
            f"        return self.x + {p[1]}",
        ]
    extras = [f"    def extra{j}(self):\n        return {v}" for j, v in enumerate(d.extras)]
    if d.kind == "enum":
        return [
            f"class {d.name}(enum.Enum):",
            "    A = 1",
            "    B = 2",
            "    AA = 1",  # an alias of A
            "    def score(self):",
            f"        return self.value * {p[0]} + {p[1]}",
            *extras,
            f"{d.name}_A = {d.name}.AA",
            f"def probe_{d.name}(cls):",
            f"    return (cls.AA is cls.A, {d.name}_A is cls.A, cls(1) is cls.A, cls['AA'] is cls.A)",
        ]
    if d.kind == "sentinel":
        # Members whose values are new objects on every run; a module-level alias, a
        # default and a dict key hold them.
        return [
            f"class {d.name}(enum.Enum):",
            "    MISSING = object()",
            "    OTHER = object()",
            "    def check(self, x):",
            f"        return x * {p[0]} + (1 if self is {d.name}_MISSING else {p[1]})",
            f"{d.name}_MISSING = {d.name}.MISSING",
            f"{d.name}_TABLE = {{{d.name}_MISSING: {p[2]}}}",
            f"def is_{d.name}(value={d.name}_MISSING):",
            f"    return value is {d.name}.MISSING",
            f"def probe_{d.name}(cls):",
            "    return (",
            f"        cls.MISSING is {d.name}_MISSING, is_{d.name}(), is_{d.name}(cls.MISSING),",
            f"        is_{d.name}(cls.OTHER), {d.name}_TABLE.get(cls.MISSING),",
            f"        next(iter({d.name}_TABLE)) is cls.MISSING, cls(cls.MISSING.value) is cls.MISSING,",
            "        cls.MISSING.check(3), cls.OTHER.check(3),",
            "    )",
        ]
    if d.kind == "token":
        # Instances made in a class body, in defaults (a tuple of the class too) and in a
        # list: after a reload they must be instances of the kept class.
        return [
            f"class {d.name}:",
            "    def __init__(self, n):",
            "        self.n = n",
            "    def __add__(self, other):",
            f"        if not isinstance(other, {d.name}):",
            "            return NotImplemented",
            f"        return {d.name}(self.n + other.n)",
            "    def value(self):",
            f"        return self.n * {p[0]}",
            f"class {d.name}Holder:",
            f"    first = {d.name}({p[1]})",
            f"    def m(self, t={d.name}({p[2]})):",
            "        return (self.first + t).value()",
            f"def use_{d.name}(x, sep={d.name}(1), *, end={d.name}(2), kinds=({d.name},)):",
            f"    return ((sep + end + {d.name}(x)).value(), kinds[0] is {d.name})",
            f"{d.name}_LIST = [{d.name}(3)]",
            f"def probe_{d.name}(cls):",
            "    return (",
            f"        type({d.name}Holder.first) is cls, {d.name}Holder().m(), use_{d.name}(3),",
            f"        type({d.name}_LIST[0]) is cls, (cls(1) + {d.name}Holder.first).value(),",
            f"        type(use_{d.name}.__defaults__[0]) is cls,",
            f"        type(use_{d.name}.__kwdefaults__['end']) is cls,",
            "    )",
        ]
    sup = "super().m(x) + " if d.use_super else ""
    return [
        f"class {d.name}({d.base or ''}):",
        f"    attr = {p[0]}",
        "    def m(self, x):",
        f"        return {sup}x * {p[1]} + self.attr",
        "    def n(self, x):",
        f"        return x + {p[5]}",
        "    @property",
        "    def p(self):",
        f"        return self.attr + {p[2]}",
        "    @classmethod",
        "    def cm(cls):",
        f"        return cls.attr * {p[3]}",
        "    @staticmethod",
        "    def sm():",
        f"        return {p[4]}",
        *extras,
    ]


def render(group: Group, module: Module, *, fresh: bool = False) -> str:
    """The source of ``module``; ``fresh`` writes kept state as the literal it now holds."""
    lines = ["import dataclasses", "import enum", "import functools", "", "import hotmod", ""]
    # A fresh import stands in for a module the reloader never saw: no hot context.
    lines.append("hot = None" if fresh else "hot = hotmod.hot(__name__)")
    by_module: dict[str, list[str]] = {}
    for where, name in module.imports:
        by_module.setdefault(where, []).append(name)
    lines += [
        f"from .{'' if where == PACKAGE else where} import {', '.join(names)}"
        for where, names in sorted(by_module.items())
    ]
    if module.whole:
        lines.append(f"from . import {', '.join(module.whole)}")
    for d in module.defs:
        lines += ["", *_render_definition(d, fresh)]
    for name, refs in module.users:
        body = " + ".join(_call(group, ref) for ref in refs)
        lines += ["", f"def {name}(x):", f"    return {body}"]
    if group.broken == module.name:
        lines += ["", "raise RuntimeError('refused on purpose')"]
    if group.syntax_error == module.name:
        lines += ["", "def broken(:", "    pass"]
    return "\n".join(lines) + "\n"


def sources(group: Group, *, fresh: bool = False) -> dict[str, str]:
    return {m.name: render(group, m, fresh=fresh) for m in group.modules}


def mutate(group: Group, rng: random.Random) -> Step:
    """A copy of ``group`` with one random edit, as a ``Step``."""
    new = copy.deepcopy(group)
    new.broken = new.syntax_error = None
    module = rng.choice(new.modules)
    name = module.name
    roll = rng.random()
    if roll < 0.06:
        new.broken = name
        return Step(new, [name], f"{name}: module code raises")
    if roll < 0.12:
        new.syntax_error = name
        return Step(new, [name], f"{name}: syntax error")
    if roll < 0.20:
        d = _new_definition(new, rng, index(name), rng.choice(FUNCTION_KINDS))
        module.defs.append(d)
        return Step(new, [name], f"{name}: add {d.kind} {d.name}")
    removable = [d for d in module.defs if d.kind in FUNCTION_KINDS and not referenced_elsewhere(new, d.name)]
    if roll < 0.26 and removable:
        d = rng.choice(removable)
        module.defs.remove(d)
        return Step(new, [name], f"{name}: remove {d.name}")
    functions = [d for d in module.defs if d.kind in FUNCTION_KINDS]
    if roll < 0.31 and functions:
        d = rng.choice(functions)
        d.raises = not d.raises
        return Step(new, [name], f"{name}: {d.name} {'raises' if d.raises else 'returns again'}")
    classes = [d for d in module.defs if d.kind in CLASS_KINDS]
    if roll < 0.38 and classes:
        d = rng.choice(classes)
        if d.extras and rng.random() < 0.5:
            d.extras.pop()
            return Step(new, [name], f"{name}: {d.name} loses a method")
        d.extras.append(rng.randint(1, 9))
        return Step(new, [name], f"{name}: {d.name} gains a method")
    with_base = [d for d in module.defs if d.base]
    if roll < 0.44 and with_base:
        d = rng.choice(with_base)
        d.use_super = not d.use_super
        return Step(new, [name], f"{name}: {d.name} super() {'on' if d.use_super else 'off'}")
    touched = [name]
    if roll > 0.92:
        touched = [m.name for m in new.modules]  # one save of several files: one batch
    for each in touched:
        target = rng.choice(new.module(each).defs)
        i = rng.randrange(len(target.params))
        target.params[i] = rng.randint(1, 9) if target.params[i] != 0 else 1
    return Step(new, touched, f"{', '.join(touched)}: change literals")


def sequence(rng: random.Random, edits: int) -> tuple[Group, list[Step]]:
    """A generated group and ``edits`` saves; each refused save is followed by none."""
    start = generate(rng)
    good, steps = start, []
    for _ in range(edits):
        step = mutate(good, rng)
        steps.append(step)
        if not step.group.refused:
            good = step.group
    return start, steps


def keep_state(group: Group, modules: dict[str, types.ModuleType]) -> None:
    """Give each kept object a value no factory makes, as a process would by using it."""
    for i, d in enumerate(d for m in group.modules for d in m.defs if d.kind == "kept"):
        d.kept = KEPT_BASE + i
        module = next(m for m in group.modules if d in m.defs)
        modules[module.name].__dict__[d.name][0] = d.kept


def carry_state(start: Group, group: Group) -> Group:
    """``group`` with the kept values ``keep_state`` gave ``start``'s definitions."""
    kept = {d.name: d.kept for m in start.modules for d in m.defs if d.kind == "kept"}
    for m in group.modules:
        for d in m.defs:
            if d.name in kept:
                d.kept = kept[d.name]
    return group


# -- shrinking: the same sequence with one definition fewer -------------------------


def names(group: Group) -> Iterator[str]:
    for m in group.modules:
        yield from (name for name, _ in m.users)
        yield from (d.name for d in m.defs)


def without(group: Group, name: str) -> Group | None:
    """``group`` with definition or user function ``name`` removed, or None if it is needed."""
    new = copy.deepcopy(group)
    for m in new.modules:
        if any(d.base == name for d in m.defs):
            return None  # a class still derives from it
        m.users = [(u, refs) for u, refs in m.users if u != name]
        m.imports = [(where, n) for where, n in m.imports if n != name]
        m.users = [(u, [r for r in refs if r.rsplit(".", 1)[-1] != name]) for u, refs in m.users]
        m.users = [(u, refs) for u, refs in m.users if refs]
        m.defs = [d for d in m.defs if d.name != name]
        for d in m.defs:
            if d.const == name:
                d.const = None
    for m in new.modules:
        used = {ref.split(".", 1)[0] for _, refs in m.users for ref in refs if "." in ref}
        m.whole = [w for w in m.whole if w in used]
    return new


def without_module(group: Group, name: str) -> Group | None:
    """``group`` without module ``name``, or None if another module imports it."""
    if any(name in m.whole or any(where == name for where, _ in m.imports) for m in group.modules):
        return None
    new = copy.deepcopy(group)
    new.modules = [m for m in new.modules if m.name != name]
    if name in (new.broken, new.syntax_error):
        return None
    return new


# -- observing behaviour -----------------------------------------------------------


def held_references(group: Group, modules: dict[str, types.ModuleType]) -> dict[str, Any]:
    """What a process would hold: definitions, instances, bound methods, members, taken now."""
    held: dict[str, Any] = {}
    for m in group.modules:
        namespace = modules[m.name].__dict__
        for d in m.defs:
            if d.kind == "const":
                continue
            obj = namespace[d.name]
            held[f"{m.name}.{d.name}"] = obj
            if d.kind == "klass":
                instance = obj()
                held[f"{m.name}.{d.name}()"] = instance
                held[f"{m.name}.{d.name}().n"] = instance.n
            if d.kind == "enum":
                held[f"{m.name}.{d.name}.A"] = obj.A
            if d.kind == "sentinel":
                held[f"{m.name}.{d.name}.MISSING"] = obj.MISSING
            if d.kind == "token":
                held[f"{m.name}.{d.name}.first"] = namespace[f"{d.name}Holder"].first
        for name, _ in m.users:
            held[f"{m.name}.{name}"] = namespace[name]
    return held


def _behaviour(d: Definition | None, obj: Any, instance: Any = None, namespace: Any = None) -> Any:
    kind = d.kind if d is not None else "func"
    try:
        if d is not None and kind in ("sentinel", "token"):
            return namespace[f"probe_{d.name}"](obj)
        if kind == "kept":
            return obj[0]
        if kind == "klass":
            inst = instance if instance is not None else obj()
            return (
                inst.m(3),
                inst.n(3),
                inst.p,
                obj.cm(),
                obj.sm(),
                sorted(a for a in vars(obj) if a.startswith("extra")),
                [getattr(inst, a)() for a in sorted(vars(obj)) if a.startswith("extra")],
            )
        if kind == "dataclass":
            return (obj().total(), obj(5).total(), [f.name for f in dataclasses.fields(obj)])
        if kind == "enum":
            return (
                [(member.name, member.value, member.score()) for member in obj],
                [getattr(obj.A, a)() for a in sorted(vars(obj)) if a.startswith("extra")],
                namespace[f"probe_{d.name}"](obj) if d is not None else None,
            )
        return obj(3)
    except Exception as exc:  # recorded, then compared
        return ("raised", type(exc).__name__, str(exc))


def observe(group: Group, modules: dict[str, types.ModuleType], held: dict[str, Any]) -> dict[str, Any]:
    """Behaviour of every current definition, through the modules and through ``held``.

    ``held`` holds references taken at the start; entries for definitions removed since
    are skipped. For a fresh import, pass ``held_references`` of that import: what a
    reference held through every edit must match is what a new one does.
    """
    seen: dict[str, Any] = {}
    for m in group.modules:
        namespace = modules[m.name].__dict__
        public = sorted(
            n for n in namespace if not n.startswith("_") and not isinstance(namespace[n], types.ModuleType)
        )
        seen[f"{m.name} names"] = public
        for d in m.defs:
            key = f"{m.name}.{d.name}"
            if d.kind == "const":
                seen[key] = namespace.get(d.name)
                continue
            seen[key] = _behaviour(d, namespace.get(d.name), namespace=namespace)
            if key in held:
                seen[f"held {key}"] = _behaviour(d, held[key], namespace=namespace)
                seen[f"held {key} is current"] = held[key] is namespace.get(d.name)
            if f"{key}()" in held:
                seen[f"held {key}()"] = _behaviour(d, held[key], held[f"{key}()"])
                seen[f"held {key}().n"] = _behaviour(None, held[f"{key}().n"])
            if f"{key}.A" in held:
                member = held[f"{key}.A"]
                seen[f"held {key}.A"] = (member is namespace[d.name].A, member.score())
            if f"{key}.MISSING" in held:
                member = held[f"{key}.MISSING"]
                seen[f"held {key}.MISSING"] = (member is namespace[d.name].MISSING, member.check(3))
            if f"{key}.first" in held:
                first = held[f"{key}.first"]
                # Made by the first version: it keeps its own ``n``, and runs the new code.
                seen[f"held {key}.first"] = (type(first) is namespace[d.name], first.value() // first.n)
        for name, _ in m.users:
            key = f"{m.name}.{name}"
            seen[key] = _behaviour(None, namespace.get(name))
            if key in held:
                seen[f"held {key}"] = _behaviour(None, held[key])
    return seen


def expected(group: Group) -> dict[str, Any]:
    """The same observations from a fresh import of ``group``'s sources, in memory."""
    package = f"hm_fresh_{uuid.uuid4().hex[:12]}"
    parent = types.ModuleType(package)
    parent.__path__ = []
    parent.__package__ = package
    sys.modules[package] = parent
    modules: dict[str, types.ModuleType] = {}
    try:
        for m in group.modules:
            if m.name == PACKAGE:
                mod = parent  # the package's own code runs in the package
            else:
                mod = types.ModuleType(f"{package}.{m.name}")
                mod.__package__ = package
                sys.modules[mod.__name__] = mod
                setattr(parent, m.name, mod)
            mod.__file__ = f"<fresh {mod.__name__}>"
            exec(compile(render(group, m, fresh=True), mod.__file__, "exec"), mod.__dict__)
            modules[m.name] = mod
        return observe(group, modules, held_references(group, modules))
    finally:
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
