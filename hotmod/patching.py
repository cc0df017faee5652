"""Commit phase: make the objects the process already holds run the new code.

After a module's new code ran, its namespace holds new function and class objects.
Everything taken before the reload (``from m import f``, instances, bound methods,
callbacks registered elsewhere) still points at the old ones. Rather than search the
heap for those references (IPython's ``gc.get_referrers`` costs seconds in a large
process), the old objects are kept and updated in place, and the module name is bound
back to them: identity is preserved, and the cost follows the size of the module.

Nothing here calls a user ``__eq__``, ``__hash__`` or ``__repr__``: objects are compared
by identity, and bookkeeping is keyed by ``id()``.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import functools
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from ._registries import dispatch_registry, is_singledispatch

# Class attributes that describe the class object itself, never copied or deleted.
_CLASS_INTERNALS = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__slots__",
        "__abstractmethods__",
        "_abc_impl",
        "__static_attributes__",
        "__firstlineno__",
        "__orig_bases__",
        "__parameters__",
    }
)
_PRIMITIVES = (int, str, bytes, float, bool, type(None))


@dataclass(slots=True)
class PatchReport:
    functions_patched: int = 0
    classes_patched: int = 0
    classes_replaced: int = 0
    references_rebound: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Patcher:
    """Merges the new objects of one transaction into the old ones."""

    report: PatchReport = field(default_factory=PatchReport)
    # id(new object) -> old object kept in its place (the new one is discarded)
    kept: dict[int, Any] = field(default_factory=dict)
    # new objects that stay (replaced classes, functions whose code could not move)
    fresh: list[Any] = field(default_factory=list)
    # id(old object) -> (old object, the new object that replaced it)
    replaced: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    _seen: set[int] = field(default_factory=set)
    # the discarded twins, alive until the commit ends so no ``id`` in ``kept`` is reused
    _twins: list[Any] = field(default_factory=list)

    # -- entry point ---------------------------------------------------------------

    def merge_namespace(
        self,
        module_name: str,
        namespace: dict[str, Any],
        snapshot: dict[str, Any],
        names: Iterable[str],
    ) -> None:
        """Bind each name back to its old object, updated, wherever that is possible."""
        for name in names:
            if name not in namespace or name not in snapshot:
                continue
            old, new = snapshot[name], namespace[name]
            if old is new:
                continue
            kept = self.merge(old, new, module_name, f"{module_name}.{name}")
            if kept is not new:
                namespace[name] = kept
            elif _defines(old, name, module_name) and not _defines(new, name, module_name):
                self.report.warnings.append(
                    f"{module_name}.{name} is no longer defined by a plain def/class statement "
                    f"(it is now {getattr(new, '__qualname__', type(new).__name__)}); references "
                    "taken before this reload keep the previous object and its code"
                )

    def merge(self, old: Any, new: Any, module_name: str, where: str) -> Any:
        """Return the object to keep: ``old`` updated in place, or ``new``."""
        try:
            return self._merge(old, new, module_name, where)
        except Exception as exc:
            self.fresh.append(new)
            self.report.warnings.append(
                f"{where}: could not be updated in place ({type(exc).__name__}: {exc}); "
                "the module holds the new object and references taken before keep the old one"
            )
            return new

    def _merge(self, old: Any, new: Any, module_name: str, where: str) -> Any:
        if id(new) in self.kept:
            return self.kept[id(new)]
        if isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType):
            if _same_definition(old, new, module_name):
                if is_singledispatch(old) and is_singledispatch(new):
                    return self.merge_singledispatch(old, new, module_name, where)
                return self.merge_function(old, new, where)
        elif isinstance(old, type) and isinstance(new, type):
            if _same_definition(old, new, module_name):
                return self.merge_class(old, new, where)
        elif _is_cache_wrapper(old) and _is_cache_wrapper(new):
            inner_old, inner_new = old.__wrapped__, new.__wrapped__
            if isinstance(inner_old, types.FunctionType) and isinstance(inner_new, types.FunctionType):
                if _same_definition(inner_old, inner_new, module_name):
                    if self.merge_function(inner_old, inner_new, where) is inner_old:
                        old.cache_clear()  # results of the old body must not be served
                        self._keep(new, old)
                        return old
        return new

    def _keep(self, new: Any, old: Any) -> None:
        self.kept[id(new)] = old
        self._twins.append(new)

    def substitutions(self) -> dict[int, tuple[Any, Any]]:
        """id -> (object, what stands in its place now): discarded twins and replaced definitions."""
        subs = {id(twin): (twin, self.kept[id(twin)]) for twin in self._twins}
        subs.update(self.replaced)
        return subs

    # -- functions -----------------------------------------------------------------

    def merge_function(
        self,
        old: types.FunctionType,
        new: types.FunctionType,
        where: str,
        *,
        warn: bool = True,
        share_closure: bool = False,
    ) -> Any:
        if id(old) in self._seen:
            return old
        if old.__code__.co_freevars != new.__code__.co_freevars:
            self.fresh.append(new)
            self.replaced[id(old)] = (old, new)
            if not warn:
                # A class member: instances look it up on the class, which now holds it.
                return new
            self.report.warnings.append(
                f"{where}: its free variables changed "
                f"({', '.join(old.__code__.co_freevars) or 'none'} -> "
                f"{', '.join(new.__code__.co_freevars) or 'none'}), so its code cannot be swapped "
                "in place; the module now holds the new function, and references taken before "
                "this reload (imports elsewhere, bound methods, registered callbacks) keep the old code"
            )
            return new
        self._seen.add(id(old))
        self._keep(new, old)
        old.__code__ = new.__code__
        old.__defaults__ = new.__defaults__
        old.__kwdefaults__ = new.__kwdefaults__
        old.__annotations__ = new.__annotations__
        old.__doc__ = new.__doc__
        if old.__dict__ is not new.__dict__:
            old.__dict__.clear()
            old.__dict__.update(new.__dict__)
        if hasattr(new, "__type_params__"):  # 3.12+
            setattr(old, "__type_params__", new.__type_params__)  # noqa: B010
        for old_cell, new_cell in zip(old.__closure__ or (), new.__closure__ or (), strict=True):
            if share_closure:
                self._set_cell(old_cell, new_cell)
            else:
                self._merge_cell(old_cell, new_cell, where)
        wrapped = old.__dict__.get("__wrapped__")
        if wrapped is not None:
            old.__dict__["__wrapped__"] = self.kept.get(id(wrapped), wrapped)
        self.report.functions_patched += 1
        return old

    def merge_singledispatch(
        self, old: types.FunctionType, new: types.FunctionType, module_name: str, where: str
    ) -> Any:
        """The old dispatcher takes the new one's registry, plus what other modules registered.

        Its cells point straight at the new closure (``dispatch``, registry, cache and cache
        token stay one consistent set); registrations the reloaded module made come from
        its new run only, so they never pile up, and other modules' registrations stay.
        """
        old_entries = list(cast(Any, old).registry.items())
        kept = self.merge_function(old, new, where, share_closure=True)
        if kept is not old:
            return kept
        registry = dispatch_registry(old)
        if registry is None:
            return old
        keys = list(registry)
        for cls, impl in old_entries:
            if getattr(impl, "__module__", None) != module_name and not any(k is cls for k in keys):
                registry[cls] = impl
        old.__dict__["_clear_cache"]()
        return old

    @staticmethod
    def _set_cell(old_cell: types.CellType, new_cell: types.CellType) -> None:
        with contextlib.suppress(ValueError):  # an empty cell stays empty
            old_cell.cell_contents = new_cell.cell_contents

    def _merge_cell(self, old_cell: types.CellType, new_cell: types.CellType, where: str) -> None:
        try:
            new_value = new_cell.cell_contents
        except ValueError:  # an empty cell
            return
        try:
            old_value = old_cell.cell_contents
        except ValueError:
            old_cell.cell_contents = new_value
            return
        if old_value is new_value:
            return
        if isinstance(old_value, types.FunctionType) and isinstance(new_value, types.FunctionType):
            # A decorator's wrapper closing over the wrapped function: merge the inner one.
            if old_value.__qualname__ == new_value.__qualname__:
                if self.merge_function(old_value, new_value, where) is old_value:
                    return
        elif isinstance(old_value, type) and old_value is self.kept.get(id(new_value)):
            return  # ``__class__`` cell of the old class body: already right
        old_cell.cell_contents = new_value

    # -- classes -------------------------------------------------------------------

    def merge_class(self, old: type, new: type, where: str) -> type:
        if id(old) in self._seen:
            return old
        self._merge_inline_bases(old, new)  # before the bases are compared
        reason = self._structural_change(old, new)
        if reason is not None:
            self.replaced[id(old)] = (old, new)
            self.fresh.append(new)
            self.report.classes_replaced += 1
            self.report.warnings.append(
                f"{where}: {reason}, so the class was replaced rather than updated; "
                "existing instances and subclasses keep the old class"
            )
            return new
        self._seen.add(id(old))
        self._keep(new, old)
        if issubclass(old, enum.Enum):
            self._merge_enum_methods(old, new, where)
        else:
            self._merge_class_dict(old, new, where)
        if isinstance(old, abc.ABCMeta):
            abc.update_abstractmethods(cast(Any, old))
        self.report.classes_patched += 1
        return old

    def _structural_change(self, old: type, new: type) -> str | None:
        old_bases = old.__bases__
        new_bases = tuple(self.kept.get(id(b), b) for b in new.__bases__)
        if len(old_bases) != len(new_bases) or any(
            a is not b for a, b in zip(old_bases, new_bases, strict=True)
        ):
            return "its bases changed"
        if type(old) is not self.kept.get(id(type(new)), type(new)):
            return "its metaclass changed"
        if old.__dict__.get("__slots__") != new.__dict__.get("__slots__"):
            return "its __slots__ changed"
        if issubclass(old, enum.Enum) and not _same_members(old, new):
            return "its members changed"
        return None

    def _merge_inline_bases(self, old: type, new: type) -> None:
        """``class Info(namedtuple("Info", "hits misses"))`` makes its base in the class
        statement, so every run has a new base that no module name holds. A new base
        that is the same definition as the old one (same module, qualified name and
        metaclass) is merged into it like a named class, so the class stays."""
        if len(old.__bases__) != len(new.__bases__):
            return
        for old_base, new_base in zip(old.__bases__, new.__bases__, strict=True):
            if old_base is new_base or id(new_base) in self.kept:
                continue
            if (
                type(old_base) is type(new_base)
                and old_base.__module__ == new_base.__module__ == old.__module__
                and old_base.__qualname__ == new_base.__qualname__
            ):
                self.merge_class(old_base, new_base, f"{old.__module__}.{old.__qualname__} base")

    def _merge_class_dict(self, old: type, new: type, where: str) -> None:
        old_dict, new_dict = old.__dict__, new.__dict__
        for attr in [a for a in old_dict if a not in new_dict and a not in _CLASS_INTERNALS]:
            value = old_dict[attr]
            if isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue
            delattr(old, attr)
        for attr, new_value in list(new_dict.items()):
            if attr in _CLASS_INTERNALS:
                continue
            if isinstance(new_value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue  # slot descriptors belong to the new layout; the old ones stay
            old_value = old_dict.get(attr, _MISSING)
            kept = self._merge_member(old_value, new_value, f"{where}.{attr}", old)
            if old_value is _MISSING or kept is not old_value:
                setattr(old, attr, kept)

    def _merge_member(self, old: Any, new: Any, where: str, owner: type) -> Any:
        if old is _MISSING:
            return new
        if isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType):
            if old.__name__ != new.__name__:
                return new
            return self.merge_function(old, new, where, warn=False)
        if isinstance(old, (staticmethod, classmethod)) and type(old) is type(new):
            inner_old, inner_new = old.__func__, new.__func__
            if isinstance(inner_old, types.FunctionType) and isinstance(inner_new, types.FunctionType):
                if self.merge_function(inner_old, inner_new, where, warn=False) is inner_old:
                    return old
            return new
        if isinstance(old, property) and isinstance(new, property):
            accessors = ("fget", "fset", "fdel")
            if all(_mergeable(getattr(old, a), getattr(new, a)) for a in accessors):
                for a in accessors:
                    fn_old, fn_new = getattr(old, a), getattr(new, a)
                    if fn_old is not None:
                        self.merge_function(fn_old, fn_new, where, warn=False)
                if old.__doc__ == new.__doc__ or type(old) is property:
                    return old
            return new
        if isinstance(old, type) and isinstance(new, type) and old.__qualname__ == new.__qualname__:
            return self.merge_class(old, new, where)
        return new

    def _merge_enum_methods(self, old: type, new: type, where: str) -> None:
        members = set(new.__dict__.get("_member_map_", {}))
        # Members and the enum machinery stay; a method the new source no longer has goes.
        for attr, old_value in list(old.__dict__.items()):
            if attr in new.__dict__ or attr in members or (attr.startswith("_") and attr.endswith("_")):
                continue
            if isinstance(old_value, (types.FunctionType, staticmethod, classmethod, property)):
                type.__delattr__(old, attr)
        for attr, new_value in list(new.__dict__.items()):
            if attr in members or attr in _CLASS_INTERNALS or (attr.startswith("_") and attr.endswith("_")):
                continue
            if not isinstance(new_value, (types.FunctionType, staticmethod, classmethod, property)):
                continue
            old_value = old.__dict__.get(attr, _MISSING)
            kept = self._merge_member(old_value, new_value, f"{where}.{attr}", old)
            if kept is not old_value:
                type.__setattr__(old, attr, kept)

    # -- after every module of the batch was merged --------------------------------

    def repoint_fresh(self) -> None:
        """New objects that stay must refer to the kept objects, not their discarded twins.

        The ``__class__`` cell that zero-argument ``super()`` reads, a nested function's
        reference to a class, a replaced class' base: all were created pointing at the
        new objects of this execution.
        """
        if not self.kept:
            return
        for obj in self.fresh:
            if isinstance(obj, type):
                self._rebase(obj)
        done: set[int] = set()
        stack = list(self.fresh)
        for kept in list(self.kept.values()):
            if isinstance(kept, type):
                stack.extend(_class_functions(kept))
            elif isinstance(kept, types.FunctionType):
                stack.append(kept)  # it took the new defaults and closure contents
        while stack:
            obj = stack.pop()
            if id(obj) in done:
                continue
            done.add(id(obj))
            if isinstance(obj, type):
                stack.extend(_class_functions(obj))
                continue
            if not isinstance(obj, types.FunctionType):
                continue
            self._repoint_defaults(obj)
            for cell in obj.__closure__ or ():
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                target = self.kept.get(id(value))
                if target is not None and target is not value:
                    cell.cell_contents = target
                elif isinstance(value, types.FunctionType):
                    stack.append(value)

    def _repoint_defaults(self, fn: types.FunctionType) -> None:
        """``def g(key=f)`` evaluated ``f`` while this execution's twin was bound to it."""
        if fn.__defaults__ and any(id(v) in self.kept for v in fn.__defaults__):
            fn.__defaults__ = tuple(self.kept.get(id(v), v) for v in fn.__defaults__)
        if fn.__kwdefaults__ and any(id(v) in self.kept for v in fn.__kwdefaults__.values()):
            fn.__kwdefaults__ = {k: self.kept.get(id(v), v) for k, v in fn.__kwdefaults__.items()}

    def _rebase(self, cls: type) -> None:
        """A replaced class derives from the kept bases, not from their discarded twins."""
        bases = tuple(self.kept.get(id(b), b) for b in cls.__bases__)
        if all(a is b for a, b in zip(bases, cls.__bases__, strict=True)):
            return
        try:
            cls.__bases__ = bases
        except TypeError as exc:
            self.report.warnings.append(f"{cls.__qualname__}: derives from the new bases ({exc})")

    def adopt_instances(self, namespace: dict[str, Any]) -> None:
        """Module-level instances of a discarded class become instances of the kept one."""
        for name, value in list(namespace.items()):
            cls = type(value)
            kept = self.kept.get(id(cls))
            if kept is None or kept is cls or isinstance(value, type):
                continue
            try:
                value.__class__ = kept
            except TypeError as exc:
                self.report.warnings.append(f"{name}: stays an instance of the new class ({exc})")


_MISSING: Any = object()


def _same_definition(old: Any, new: Any, module_name: str) -> bool:
    """Same name, defined in this module: the edit of one definition, not an alias."""
    return bool(
        getattr(old, "__module__", None) == module_name
        and new.__module__ == module_name
        and old.__qualname__ == new.__qualname__
    )


def _defines(obj: Any, name: str, module_name: str) -> bool:
    """``obj`` is what ``def name``/``class name`` at the top of the module created."""
    return (
        isinstance(obj, (types.FunctionType, type))
        and getattr(obj, "__qualname__", None) == name
        and getattr(obj, "__module__", None) == module_name
    )


def _mergeable(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return old is None and new is None
    return (
        isinstance(old, types.FunctionType)
        and isinstance(new, types.FunctionType)
        and old.__code__.co_freevars == new.__code__.co_freevars
    )


def _is_cache_wrapper(obj: Any) -> bool:
    return isinstance(obj, functools._lru_cache_wrapper)


def _same_members(old: type, new: type) -> bool:
    old_members: dict[str, Any] = dict(old.__dict__.get("_member_map_", {}))
    new_members: dict[str, Any] = dict(new.__dict__.get("_member_map_", {}))
    if list(old_members) != list(new_members):
        return False
    for name, member in old_members.items():
        a, b = member._value_, new_members[name]._value_
        if not _equal_primitives(a, b):
            return False
    return True


def _equal_primitives(a: Any, b: Any) -> bool:
    """Equality of plain values only: comparing anything else would run user code."""
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(_equal_primitives(x, y) for x, y in zip(a, b, strict=True))
    return isinstance(a, _PRIMITIVES) and bool(a == b)


def _class_functions(cls: type) -> Iterable[Any]:
    for value in list(cls.__dict__.values()):
        if isinstance(value, (staticmethod, classmethod)):
            yield value.__func__
        elif isinstance(value, property):
            yield from (f for f in (value.fget, value.fset, value.fdel) if f is not None)
        elif isinstance(value, (types.FunctionType, type)):
            yield value
