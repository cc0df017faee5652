"""Registries filled at import time point at the kept definitions, once each.

Re-executing a module runs its class statements and decorators again: a base class'
``__init_subclass__`` appends the new class to a registry, ``@registry.handler``
appends the new function, ``@describe.register`` adds a dispatch entry. The commit then
keeps the old objects and discards the new ones, which leaves those registries holding
discarded twins, or holding both versions of one definition.

The sweep replaces each twin by the object kept in its place (and a replaced definition
by its replacement), then drops the duplicates that creates. It visits only the places
such registries live: the reloaded modules, the modules they take names from, the
classes of the kept classes' MRO and their modules, one attribute level deep. No heap
scan, and no user ``__eq__``/``__hash__``: membership is tested by identity, and only
objects hashed by identity (classes with a plain metaclass, functions) are re-keyed.
"""

from __future__ import annotations

import enum
import functools
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from ._kinds import is_a

__all__ = ["Substitutions", "class_module", "dispatch_registry", "is_singledispatch", "safe_key", "sweep"]

# id(object) -> (object, what stands in its place now)
Substitutions = Mapping[int, tuple[Any, Any]]

_DICTS = (dict, weakref.WeakValueDictionary, weakref.WeakKeyDictionary)
_SETS = (set, weakref.WeakSet)
_IDENTITY_HASH = (object.__hash__, type.__hash__)
_IDENTITY_EQ = (object.__eq__, type.__eq__)
# The standard library, and hotmod's own bookkeeping (which holds versions on purpose).
_NOT_REGISTRIES = frozenset({*sys.stdlib_module_names, __name__.partition(".")[0]})
_PLAIN_HASH = (str, bytes, int, float, bool, type(None))  # hashing them runs no user code


def sweep(subs: Substitutions, namespaces: Iterable[dict[str, Any]], classes: Iterable[type]) -> int:
    """Repoint registries reachable from ``namespaces`` and ``classes``; return the count."""
    if not subs:
        return 0
    targets = {id(target) for _, target in subs.values()}
    fixer = _Fixer(subs, targets)
    for owner, assign in _owners(namespaces, classes):
        for key, value in list(owner.items()):
            target = fixer.sub(value)
            if target is not None:  # a name or class attribute the merge did not bind back
                assign(key, target)
                fixer.count += 1
                continue
            fixer.fix(value)
            rebuilt = fixer.rebuilt(value)
            if rebuilt is not None:
                assign(key, rebuilt)
                fixer.count += 1
            inner = _instance_dict(value)
            if inner is not None:
                for attr, attr_value in list(inner.items()):
                    fixer.fix(attr_value)
                    rebuilt = fixer.rebuilt(attr_value)
                    if rebuilt is not None:
                        inner[attr] = rebuilt
                        fixer.count += 1
    return fixer.count


def _owners(
    namespaces: Iterable[dict[str, Any]], classes: Iterable[type]
) -> Iterator[tuple[Mapping[str, Any], Callable[[str, Any], None]]]:
    """The namespaces to sweep, each with how to rebind one of its names (a class' own
    ``__dict__`` is read-only: ``type.__setattr__`` sets it without a metaclass' hook)."""
    seen: set[int] = set()

    def once(owner: object) -> bool:
        """Whether ``owner`` (a namespace dict, or a class) comes up for the first time.

        A class is its own key: each ``klass.__dict__`` is a new proxy, whose id the next
        one may reuse once it is freed."""
        if id(owner) in seen:
            return False
        seen.add(id(owner))
        return True

    looked_up: dict[object, dict[str, Any] | None] = {}

    def module_dict(name: object) -> dict[str, Any] | None:
        try:
            return looked_up[name]
        except (KeyError, TypeError):
            pass
        found = None
        if isinstance(name, str) and name.partition(".")[0] not in _NOT_REGISTRIES:
            module = sys.modules.get(name)
            found = module.__dict__ if isinstance(module, types.ModuleType) else None
        looked_up[name] = found
        return found

    for namespace in list(namespaces):
        if once(namespace):
            yield namespace, namespace.__setitem__
        # The modules this one takes names from: where its decorators' registries live.
        for value in list(namespace.values()):
            if is_a(value, types.ModuleType):
                other = module_dict(value.__dict__.get("__name__"))
            elif is_a(value, type):
                other = module_dict(class_module(value))
            elif is_a(value, types.FunctionType):
                other = module_dict(value.__module__)
            else:
                other = module_dict(class_module(type(value)))
            if other is not None and once(other):
                yield other, other.__setitem__
    for cls in classes:
        for klass in cls.__mro__:
            if klass is object:
                continue
            if once(klass):
                yield klass.__dict__, functools.partial(type.__setattr__, klass)
            other = module_dict(class_module(klass))
            if other is not None and once(other):
                yield other, other.__setitem__


def _instance_dict(value: Any) -> dict[str, Any] | None:
    """The attributes of a plain instance (a registry object), never running user code."""
    # Containers are fixed through their own API. A weak container's ``data`` must never
    # be walked directly: the collector drops its entries at any moment, which the
    # container's own iteration guards against and a plain walk does not.
    if issubclass(type(value), (type, types.ModuleType, types.FunctionType, list, *_DICTS, *_SETS)):
        return None
    try:
        inner = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        return None
    return inner if type(inner) is dict else None


class _Fixer:
    def __init__(self, subs: Substitutions, targets: set[int]) -> None:
        self.subs = subs
        self.targets = targets
        self.count = 0
        self._done: set[int] = set()

    def sub(self, item: Any) -> Any:
        hit = self.subs.get(id(item))
        return hit[1] if hit is not None and hit[0] is item else None

    def fix(self, value: Any) -> None:
        if id(value) in self._done:
            return
        kind = type(value)
        if kind is list:
            self._done.add(id(value))
            self._fix_list(value)
        elif kind in _DICTS:
            self._done.add(id(value))
            self._fix_dict(value)
        elif kind in _SETS:
            self._done.add(id(value))
            self._fix_set(value)
        elif is_a(value, types.FunctionType) and value.__code__ is _DISPATCH_WRAPPER_CODE:
            registry = dispatch_registry(value)
            if registry is not None and id(registry) not in self._done:
                self._done.add(id(registry))
                if self._fix_dict(registry):
                    value.__dict__["_clear_cache"]()
        elif kind is classmethod or kind is staticmethod:
            self.fix(value.__func__)
        elif is_a(value, functools.singledispatchmethod):
            self.fix(value.dispatcher)

    def rebuilt(self, value: Any) -> Any | None:
        """A tuple or frozenset cannot be repointed in place: a copy that holds the kept
        objects (``MARKERS = (Token,)``, nested tuples too), or None if nothing changes.
        Only the exact built-in types: a subclass' constructor is user code."""
        kind = type(value)
        if kind is not tuple and kind is not frozenset:
            return None
        if kind is frozenset and not all(safe_key(x) for x in value):
            return None
        items = []
        changed = False
        for item in value:
            target = self.sub(item)
            if target is None:
                target = self.rebuilt(item)
            items.append(item if target is None else target)
            changed = changed or target is not None
        return kind(items) if changed else None

    def _fix_list(self, items: list[Any]) -> None:
        changed = False
        for i, item in enumerate(items):
            target = self.sub(item)
            if target is None:
                target = self.rebuilt(item)
            if target is not None:
                items[i] = target
                self.count += 1
                changed = True
        if not changed:
            return
        # Both versions registered: keep the first entry of each kept definition.
        seen: set[int] = set()
        keep: list[Any] = []
        for item in items:
            if id(item) in self.targets:
                if id(item) in seen:
                    continue
                seen.add(id(item))
            keep.append(item)
        items[:] = keep

    def _fix_dict(self, mapping: Any) -> bool:
        changed = False
        for key, old_value in list(mapping.items()):
            value = self.sub(old_value)
            if value is None:
                value = self.rebuilt(old_value)
            if value is not None:
                mapping[key] = value
                self.count += 1
                changed = True
            else:
                value = old_value
            new_key = self.sub(key)
            if new_key is not None and safe_key(key) and safe_key(new_key):
                del mapping[key]
                mapping[new_key] = value  # the entry the new code made wins
                self.count += 1
                changed = True
        return changed

    def _fix_set(self, items: Any) -> None:
        for item in list(items):
            target = self.sub(item)
            if target is not None and safe_key(item) and safe_key(target):
                items.discard(item)
                items.add(target)
                self.count += 1


def _hashed_by_identity(obj: Any) -> bool:
    kind: Any = type(obj)
    return _is_any(kind.__hash__, _IDENTITY_HASH) and _is_any(kind.__eq__, _IDENTITY_EQ)


def _is_any(obj: object, candidates: Iterable[object]) -> bool:
    return any(obj is c for c in candidates)


# An enum member hashes by its name (or as its ``int``/``str`` mixin) and compares by
# identity (or as its mixin): no user code, unless its class overrides either.
_ENUM_HASH = (enum.Enum.__hash__, int.__hash__, str.__hash__)
_ENUM_EQ = (object.__eq__, int.__eq__, str.__eq__)


def safe_key(obj: Any) -> bool:
    """Whether hashing and comparing ``obj`` (as a dict key, a set item) runs no user code."""
    kind: Any = type(obj)
    if any(kind is t for t in _PLAIN_HASH) or _hashed_by_identity(obj):
        return True
    return is_a(obj, enum.Enum) and _is_any(kind.__hash__, _ENUM_HASH) and _is_any(kind.__eq__, _ENUM_EQ)


def class_module(cls: type) -> object:
    """The module a class was made in, from its own ``__dict__``: a metaclass may define
    ``__module__`` as a property, which ``cls.__module__`` would run instead."""
    try:
        return _TYPE_MODULE.__get__(cls, type(cls))
    except AttributeError:
        return None


_TYPE_MODULE: Any = type.__dict__["__module__"]


# Every ``functools.singledispatch`` function runs this one code object.
_DISPATCH_WRAPPER_CODE = cast(types.FunctionType, functools.singledispatch(lambda x: x)).__code__


def is_singledispatch(obj: Any) -> bool:
    return (
        is_a(obj, types.FunctionType)
        and obj.__code__ is _DISPATCH_WRAPPER_CODE
        and dispatch_registry(obj) is not None
    )


def dispatch_registry(fn: Any) -> dict[Any, Any] | None:
    """The dict behind a ``functools.singledispatch`` function's read-only ``registry``."""
    if not is_a(fn, types.FunctionType):
        return None
    register = fn.__dict__.get("register")
    if not is_a(register, types.FunctionType) or not isinstance(
        fn.__dict__.get("registry"), types.MappingProxyType
    ):
        return None
    try:
        cell = register.__closure__[register.__code__.co_freevars.index("registry")]  # type: ignore[index]
        registry = cell.cell_contents
    except (ValueError, TypeError, IndexError):
        return None
    return registry if type(registry) is dict else None
