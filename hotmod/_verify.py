"""Is a module that was imported before any reloader existed running its file's code?

A module imported while a reloader is open has its exact source recorded by the import
recorder. One imported earlier (a reloader started late, a forked worker, a REPL that
turns hotmod on after its imports) has no record: what it runs is compared with its
file, compiled now, as thoroughly as the live objects allow:

- every function the module holds, found through the wrappers decorators leave
  (``__wrapped__``, closure cells, ``__func__``, property accessors, ``functools.partial``,
  attributes of objects that hold them), is compared code object to code object. Code
  equality covers the bytecode, constants, names, line table and every nested code
  object (inner functions, lambdas, comprehensions) at every depth;
- every ``def`` and ``class`` that the file's top level and its class bodies run
  unconditionally must have a live counterpart (one added since the import is a
  difference);
- literal constants bound once at the top level and in class bodies (numbers, strings,
  tuples of them, and ``__all__``) and plain aliases (``f = g``) are compared with the
  live values; a name the module's own functions assign with ``global`` is state, and
  is not compared.

What module code did at import with no trace in an object (the arguments of a call, say)
cannot be seen this way. Only code objects and plain literals are compared: no user
``__eq__`` runs, and the walk from the namespace is bounded.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import opcode
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import CodeType, FunctionType, MethodType, ModuleType

from ._kinds import is_a
from ._source import _instructions

__all__ = ["Difference", "differences", "own_definitions"]

_STORE_GLOBAL = frozenset(opcode.opmap[n] for n in ("STORE_GLOBAL", "DELETE_GLOBAL"))
_STORE_ATTR = frozenset(opcode.opmap[n] for n in ("STORE_ATTR", "DELETE_ATTR"))
_PLAIN = (int, str, bytes, float, bool, complex, type(None))
_UNWRAP_DEPTH = 4  # decorator layers followed from a namespace value


@dataclass(frozen=True, slots=True)
class Difference:
    """What differs, and whether the module's code objects all matched (then only a
    literal constant differs, and the names the file binds are the ones that run)."""

    what: str
    code_matches: bool


def differences(tree: ast.Module, code: CodeType, module: ModuleType, filename: str) -> Difference | None:
    """What differs between ``module`` and its file (``tree`` parsed from it, ``code``
    compiled from that tree), or None when nothing that can be seen does."""
    namespace = module.__dict__
    runtime = _assigned_at_run_time(code)
    attributes = _assigned_at_run_time(code, _STORE_ATTR)
    found = _compare_defs(tree.body, code, namespace, "", attributes)
    if found is not None:
        return Difference(found, code_matches=False)
    compiled = _code_by_qualname(code, {})
    # Live functions of this file whose code the file no longer has, or has changed.
    for fn in _live_functions(namespace, filename, module.__name__):
        twins = compiled.get(fn.__code__.co_qualname, ())
        if not any(twin == fn.__code__ for twin in twins):
            return Difference(f"function {fn.__code__.co_qualname}", code_matches=False)
    found = _compare_literals(tree.body, namespace, "", runtime)
    return None if found is None else Difference(found, code_matches=True)


def own_definitions(modules: list[tuple[str, ModuleType]], filename: str) -> frozenset[str]:
    """Names bound to a function made by ``filename``'s code or a class defined there:
    what the running version's top level most likely bound (a ``def``, a ``class``, or
    ``handler = make_handler()``), so that a first reload after a late start prunes the
    ones the file no longer binds."""
    found: set[str] = set()
    for name, module in modules:
        for key, value in list(module.__dict__.items()):
            if isinstance(value, type):
                if value.__dict__.get("__module__") == name and value.__name__ == key:
                    found.add(key)
            elif isinstance(value, ModuleType):
                continue
            elif any(fn.__code__.co_filename == filename for fn in _unwrap(value)):
                found.add(key)  # a function, or a decorator's wrapper around one
    return frozenset(found)


def _compare_defs(
    body: list[ast.stmt],
    code: CodeType,
    scope: Mapping[str, object],
    class_name: str,
    attributes: frozenset[str] = frozenset(),
) -> str | None:
    """The definitions of one scope (module or class body) against the live ones.

    Only definitions that run unconditionally are required to exist (one under an
    ``if`` or ``try`` may never have run); every one found live is compared.
    """
    prefix = f"class {code.co_qualname}: " if class_name else ""
    definitions = {
        node.name: node
        for node in body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    for const in code.co_consts:
        if not isinstance(const, CodeType) or const.co_name.startswith("<"):
            continue  # lambdas and comprehensions are compared through their owners
        name = _mangle(const.co_name, class_name)
        live = scope.get(name, _MISSING)
        node = definitions.get(const.co_name)
        if live is _MISSING:
            # In a class body a missing name proves nothing: metaclasses and class
            # decorators consume members (Django's and marshmallow's ``class Meta``,
            # attrs' ``x = attr.ib()``).
            if node is not None and not class_name and not _deleted(body, const.co_name):
                return f"{prefix}{const.co_name} is defined in the file but not in the running module"
            continue
        if _is_class_body(const):
            if isinstance(live, type) and live.__qualname__ == const.co_qualname:
                inner = node.body if isinstance(node, ast.ClassDef) else []
                found = _compare_defs(inner, const, live.__dict__, live.__name__, attributes)
                if found is not None:
                    return found
                found = _compare_literals(inner, live.__dict__, f"class {const.co_qualname}: ", attributes)
                if found is not None:
                    return found
            continue
        functions = [f for f in _unwrap(live) if f.__code__.co_qualname == const.co_qualname]
        if functions and not any(f.__code__ == twin for f in functions for twin in _same_name(code, const)):
            return f"{prefix}function {const.co_qualname}"
    return None


def _compare_literals(
    body: list[ast.stmt], scope: Mapping[str, object], prefix: str, runtime: frozenset[str]
) -> str | None:
    """``NAME = <literal>`` and ``NAME = OTHER`` statements against the live values.

    A name bound more than once in the scope has no one value; a name the module's own
    functions assign (``global NAME``) is state, not code; a list is compared only as
    ``__all__`` (other lists are state that code fills at run time).
    """
    counts: dict[str, int] = {}
    single: list[tuple[str, ast.expr]] = []
    for node in body:
        for target in _targets(node):
            counts[target] = counts.get(target, 0) + 1
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            single.append((node.targets[0].id, node.value))
    for name, value in single:
        if counts.get(name) != 1 or name in runtime or name not in scope:
            continue
        if isinstance(value, ast.Name):
            if value.id in scope and scope[name] is not scope[value.id]:
                return f"{prefix}{name} = {value.id}"
            continue
        if isinstance(value, ast.List) and name != "__all__":
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        current = scope[name]
        if not _plain(literal) or not _plain_or_member(current):
            # The file says ``EVENT = None`` and the module holds an Event: state that the
            # program put there, not an edit (no literal edit makes a non-literal value).
            continue
        if not _same_literal(current, literal):
            return f"{prefix}constant {name}"
    return None


def _targets(node: ast.stmt) -> Iterator[str]:
    """Names a top-level statement binds (enough to tell names bound more than once)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
        return
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            yield sub.id
        elif isinstance(sub, ast.alias):
            yield (sub.asname or sub.name).partition(".")[0]
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield sub.name


def _deleted(body: list[ast.stmt], name: str) -> bool:
    return any(
        isinstance(node, ast.Delete) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        for node in body
    )


def _mangle(name: str, class_name: str) -> str:
    """The name a class body stores ``def __x`` under (``_Class__x``)."""
    if class_name and name.startswith("__") and not name.endswith("__"):
        return f"_{class_name.lstrip('_')}{name}"
    return name


def _assigned_at_run_time(code: CodeType, ops: frozenset[int] | None = None) -> frozenset[str]:
    """Names some function of the module assigns with ``global`` (or, with
    ``ops=_STORE_ATTR``, attributes it assigns, such as ``cls.counter += 1``): state."""
    ops = _STORE_GLOBAL if ops is None else ops
    found: set[str] = set()
    for nested in _code_by_qualname(code, {}).values():
        for each in nested:
            for op, arg in _instructions(each):
                if op in ops:
                    found.add(each.co_names[arg])
    return frozenset(found)


_MISSING = object()


def _same_name(scope: CodeType, code: CodeType) -> Iterator[CodeType]:
    """Code objects of ``scope`` with ``code``'s qualified name (a property's getter and
    setter share one)."""
    for const in scope.co_consts:
        if isinstance(const, CodeType) and const.co_qualname == code.co_qualname:
            yield const


def _is_class_body(code: CodeType) -> bool:
    return not code.co_flags & inspect.CO_NEWLOCALS


def _code_by_qualname(code: CodeType, into: dict[str, list[CodeType]]) -> dict[str, list[CodeType]]:
    """Every nested code object, by qualified name (lambdas share one: hence lists)."""
    for const in code.co_consts:
        if isinstance(const, CodeType):
            into.setdefault(const.co_qualname, []).append(const)
            _code_by_qualname(const, into)
    return into


def _unwrap(value: object) -> Iterator[FunctionType]:
    """The functions a namespace value is or holds, through decorators' wrappers.

    Bounded and identity-only: attribute dictionaries of plain objects are read with
    ``object.__getattribute__`` (no ``__getattr__`` of the user's runs), and modules and
    classes are never entered.
    """
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        obj, depth = stack.pop()
        kind = type(obj)  # never isinstance: a lazy proxy may raise on __class__
        if id(obj) in seen or issubclass(kind, (ModuleType, type)):
            continue
        seen.add(id(obj))
        inner: list[object] = []
        if is_a(obj, FunctionType):
            yield obj
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    inner.append(cell.cell_contents)
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is not None:
                inner.append(wrapped)
        elif is_a(obj, staticmethod) or is_a(obj, classmethod) or is_a(obj, MethodType):
            inner.append(obj.__func__)
        elif is_a(obj, property):
            inner += [obj.fget, obj.fset, obj.fdel]
        elif is_a(obj, functools.partial):
            inner.append(obj.func)
        elif not issubclass(kind, _PLAIN):
            try:
                attributes = object.__getattribute__(obj, "__dict__")
            except Exception:
                attributes = None
            if isinstance(attributes, dict):
                inner += [v for v in list(attributes.values()) if not issubclass(type(v), _PLAIN)]
        if depth < _UNWRAP_DEPTH:
            stack.extend((o, depth + 1) for o in inner if o is not None)


def _live_functions(
    namespace: Mapping[str, object], filename: str, module_name: str
) -> Iterator[FunctionType]:
    """Functions defined in ``filename`` that the module holds, its classes' methods too.

    Ownership is decided by where the code was compiled (its file), not by ``__module__``,
    which ``functools.wraps`` copies from elsewhere.
    """
    seen: set[int] = set()
    values: list[object] = []
    for value in list(namespace.values()):
        if is_a(value, type):
            if value.__dict__.get("__module__") == module_name:
                values.extend(_class_values(value))
        else:
            values.append(value)
    for value in values:
        for fn in _unwrap(value):
            if id(fn) not in seen and fn.__code__.co_filename == filename:
                seen.add(id(fn))
                yield fn


def _class_values(cls: type) -> Iterator[object]:
    for value in list(cls.__dict__.values()):
        if isinstance(value, type):
            if value.__dict__.get("__module__") == cls.__dict__.get("__module__") and value is not cls:
                yield from _class_values(value)
        else:
            yield value


def _plain(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    return type(value) in _PLAIN


def _plain_or_member(value: object) -> bool:
    enum = sys.modules.get("enum")
    return _plain(value) or (enum is not None and isinstance(value, enum.Enum))


def _same_literal(current: object, literal: object) -> bool:
    """Compares only plain values, by type first: never a user ``__eq__``."""
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(current, enum.Enum):
        current = current._value_  # a member defined as ``RED = 1``
    if type(current) is not type(literal):
        return False
    if isinstance(literal, (tuple, list)):
        assert isinstance(current, (tuple, list))
        return len(current) == len(literal) and all(
            _same_literal(c, v) for c, v in zip(current, literal, strict=True)
        )
    return bool(current == literal)
