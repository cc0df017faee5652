"""Generated module groups and random edits for the edit-sequence test.

A group is 2-3 modules. ``m0`` holds definitions of every kind the patcher handles;
later modules import some of them (``from .m0 import ...``), subclass them across
modules and call them from their own functions. Each definition is a small record
whose integer parameters the edits change; ``render`` turns a group into sources.

Edits stay within what the patcher promises to apply in place without warnings
(bases and ``__slots__`` never change); refused edits (syntax errors, module code
that raises) are part of the mix and must leave the last good version running.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import sys
import types
import uuid
from dataclasses import dataclass, field
from typing import Any

KINDS = ("const", "func", "closure", "decorated", "cached", "klass", "dataclass")


@dataclass
class Definition:
    kind: str
    name: str
    params: list[int]
    base: str | None = None  # classes: a base class name (this module or imported)
    use_super: bool = False
    extras: list[int] = field(default_factory=list)  # classes: extra methods' return values
    const: str | None = None  # functions: a constant of this module they add


@dataclass
class Module:
    name: str
    defs: list[Definition]
    imports: list[str] = field(default_factory=list)  # names taken from m0
    users: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, imported names used)

    def find(self, name: str) -> Definition:
        return next(d for d in self.defs if d.name == name)


@dataclass
class Group:
    modules: list[Module]
    counter: int = 0
    broken: str | None = None  # a refused edit: (module name) carries bad source

    def module(self, name: str) -> Module:
        return next(m for m in self.modules if m.name == name)


def _params(rng: random.Random, kind: str) -> list[int]:
    return [rng.randint(1, 9) for _ in range(6 if kind == "klass" else 3)]


def generate(rng: random.Random) -> Group:
    group = Group([])
    for k in range(rng.randint(2, 3)):
        module = Module(f"m{k}", [])
        group.modules.append(module)
        consts = []
        for _ in range(rng.randint(4, 8)):
            kind = rng.choice(KINDS)
            group.counter += 1
            initial = kind[0].upper() if kind in ("klass", "dataclass", "const") else kind[0]
            name = f"{initial}{k}_{group.counter}"
            d = Definition(kind, name, _params(rng, kind))
            if kind == "const":
                consts.append(name)
            if kind == "func" and consts and rng.random() < 0.5:
                d.const = rng.choice(consts)
            if kind == "klass":
                bases = [x.name for x in module.defs if x.kind == "klass"]
                if k > 0:
                    bases += [x.name for x in group.modules[0].defs if x.kind == "klass"]
                if bases and rng.random() < 0.6:
                    d.base = rng.choice(bases)
                    d.use_super = rng.random() < 0.5
            module.defs.append(d)
        if k > 0:
            m0 = group.modules[0]
            importable = [d.name for d in m0.defs if d.kind != "const"]
            needed = {d.base for d in module.defs if d.base and d.base not in {x.name for x in module.defs}}
            chosen = set(rng.sample(importable, min(len(importable), rng.randint(1, 3)))) | needed
            module.imports = sorted(x for x in chosen if x is not None)
            for _ in range(rng.randint(1, 2)):
                group.counter += 1
                used = rng.sample(module.imports, min(len(module.imports), 2))
                module.users.append((f"use{k}_{group.counter}", used))
    return group


def imported_elsewhere(group: Group, name: str) -> bool:
    return any(name in m.imports for m in group.modules)


def _call(group: Group, name: str) -> str:
    """An expression that exercises imported definition ``name`` with ``x``."""
    d = group.modules[0].find(name)
    if d.kind in ("klass", "dataclass"):
        return f"{name}().m(x)" if d.kind == "klass" else f"{name}().total()"
    return f"{name}(x)"


def render(group: Group, module: Module) -> str:
    lines = ["import dataclasses", "import functools"]
    if module.imports:
        lines.append(f"from .m0 import {', '.join(module.imports)}")
    for d in module.defs:
        p = d.params
        lines.append("")
        if d.kind == "const":
            lines.append(f"{d.name} = {p[0]}")
        elif d.kind == "func":
            extra = f" + {d.const}" if d.const else ""
            lines += [f"def {d.name}(x):", f"    return x * {p[0]} + {p[1]}{extra}"]
        elif d.kind == "closure":
            lines += [
                f"def make_{d.name}():",
                f"    step = {p[0]}",
                "    def inner(x):",
                f"        return x + step * {p[1]}",
                "    return inner",
                f"{d.name} = make_{d.name}()",
            ]
        elif d.kind == "decorated":
            lines += [
                f"def deco_{d.name}(fn):",
                "    @functools.wraps(fn)",
                "    def wrapper(x):",
                f"        return fn(x) + {p[0]}",
                "    return wrapper",
                f"@deco_{d.name}",
                f"def {d.name}(x):",
                f"    return x - {p[1]}",
            ]
        elif d.kind == "cached":
            lines += [
                "@functools.lru_cache(maxsize=None)",
                f"def {d.name}(x):",
                f"    return x * {p[0]} - {p[1]}",
            ]
        elif d.kind == "dataclass":
            lines += [
                "@dataclasses.dataclass",
                f"class {d.name}:",
                f"    x: int = {p[0]}",
                "    def total(self):",
                f"        return self.x + {p[1]}",
            ]
        else:
            sup = "super().m(x) + " if d.use_super else ""
            lines += [
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
            ]
            lines += [f"    def extra{j}(self):\n        return {v}" for j, v in enumerate(d.extras)]
    for name, used in module.users:
        body = " + ".join(_call(group, u) for u in used)
        lines += ["", f"def {name}(x):", f"    return {body}"]
    if group.broken == module.name:
        lines += ["", "raise RuntimeError('refused on purpose')"]
    return "\n".join(lines) + "\n"


def sources(group: Group) -> dict[str, str]:
    return {m.name: render(group, m) for m in group.modules}


def mutate(group: Group, rng: random.Random) -> tuple[Group, list[str], str]:
    """A copy of ``group`` with one random edit; the modules it touched; what it did."""
    new = copy.deepcopy(group)
    new.broken = None
    module = rng.choice(new.modules)
    roll = rng.random()
    if roll < 0.06:
        new.broken = module.name
        return new, [module.name], f"{module.name}: module code raises"
    if roll < 0.12:
        return new, [module.name], f"{module.name}: syntax error"
    if roll < 0.20:
        new.counter += 1
        k = module.name[1:]
        kind = rng.choice(("func", "closure", "decorated", "cached"))
        name = f"{kind[0]}{k}_{new.counter}"
        module.defs.append(Definition(kind, name, _params(rng, kind)))
        return new, [module.name], f"{module.name}: add {kind} {name}"
    removable = [
        d
        for d in module.defs
        if d.kind in ("func", "closure", "decorated", "cached") and not imported_elsewhere(new, d.name)
    ]
    if roll < 0.27 and removable:
        d = rng.choice(removable)
        module.defs.remove(d)
        return new, [module.name], f"{module.name}: remove {d.name}"
    classes = [d for d in module.defs if d.kind == "klass"]
    if roll < 0.35 and classes:
        d = rng.choice(classes)
        if d.extras and rng.random() < 0.5:
            d.extras.pop()
            return new, [module.name], f"{module.name}: {d.name} loses a method"
        d.extras.append(rng.randint(1, 9))
        return new, [module.name], f"{module.name}: {d.name} gains a method"
    if roll < 0.42 and [d for d in classes if d.base]:
        d = rng.choice([d for d in classes if d.base])
        d.use_super = not d.use_super
        return new, [module.name], f"{module.name}: {d.name} super() {'on' if d.use_super else 'off'}"
    touched = [module.name]
    if roll > 0.92:
        touched = [m.name for m in new.modules]  # one save of several files: one batch
    for name in touched:
        target = rng.choice(new.module(name).defs)
        i = rng.randrange(len(target.params))
        target.params[i] = rng.randint(1, 9) if target.params[i] != 0 else 1
    return new, touched, f"{', '.join(touched)}: change literals"


SYNTAX_ERROR = "\ndef broken(:\n    pass\n"


# -- observing behaviour -----------------------------------------------------------


def held_references(group: Group, modules: dict[str, types.ModuleType]) -> dict[str, Any]:
    """What a process would hold: definitions, instances and bound methods, taken now."""
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
        for name, _ in m.users:
            held[f"{m.name}.{name}"] = namespace[name]
    return held


def observe_definition(group: Group, module: str, name: str, obj: Any, instance: Any = None) -> Any:
    d = group.module(module).find(name) if name in {x.name for x in group.module(module).defs} else None
    kind = d.kind if d is not None else "func"
    try:
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
        return obj(3)
    except Exception as exc:  # recorded, then compared
        return ("raised", type(exc).__name__, str(exc))


def observe(
    group: Group, modules: dict[str, types.ModuleType], held: dict[str, Any] | None
) -> dict[str, Any]:
    """Behaviour of every current definition, through the modules and through ``held``."""
    seen: dict[str, Any] = {}
    for m in group.modules:
        namespace = modules[m.name].__dict__
        public = sorted(
            n for n in namespace if not n.startswith("_") and not isinstance(namespace[n], types.ModuleType)
        )
        seen[f"{m.name} names"] = public
        for d in m.defs:
            if d.kind == "const":
                seen[f"{m.name}.{d.name}"] = namespace.get(d.name)
                continue
            seen[f"{m.name}.{d.name}"] = observe_definition(group, m.name, d.name, namespace.get(d.name))
        for name, _ in m.users:
            seen[f"{m.name}.{name}"] = observe_definition(group, m.name, name, namespace.get(name))
    if held is None:
        return seen
    for key, obj in held.items():
        if key.endswith("()") or key.endswith(".n"):
            continue
        module, name = key.split(".", 1)
        if key not in seen:  # removed since: nothing to compare
            continue
        seen[f"held {key}"] = observe_definition(group, module, name, obj)
        if f"{key}()" in held:
            seen[f"held {key}()"] = observe_definition(group, module, name, obj, held[f"{key}()"])
            seen[f"held {key}().n"] = held[f"{key}().n"](3)
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
            full = f"{package}.{m.name}"
            mod = types.ModuleType(full)
            mod.__package__ = package
            mod.__file__ = f"<fresh {full}>"
            sys.modules[full] = mod
            exec(compile(render(group, m), mod.__file__, "exec"), mod.__dict__)
            modules[m.name] = mod
        seen = observe(group, modules, None)
        for key, value in list(seen.items()):
            if " " not in key:
                seen[f"held {key}"] = value
        for m in group.modules:
            for d in m.defs:
                if d.kind == "klass":
                    seen[f"held {m.name}.{d.name}().n"] = modules[m.name].__dict__[d.name]().n(3)
                    seen[f"held {m.name}.{d.name}()"] = seen[f"{m.name}.{d.name}"]
        return seen
    finally:
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
