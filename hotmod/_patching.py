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

from ._forwarders import TARGET, forwarder_code, target_of
from ._kinds import is_a
from ._registration_sweep import class_module, dispatch_registry, is_singledispatch, safe_key

__all__ = ["PatchReport", "Patcher"]

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
    # module name -> its namespace: a function defined by its code has these globals
    _namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- entry point ---------------------------------------------------------------

    def merge_namespace(
        self,
        module_name: str,
        namespace: dict[str, Any],
        snapshot: dict[str, Any],
        names: Iterable[str],
    ) -> None:
        """Bind each name back to its old object, updated, wherever that is possible."""
        self._namespaces[module_name] = namespace
        for name in names:
            if name not in namespace or name not in snapshot:
                continue
            old, new = snapshot[name], namespace[name]
            if old is new:
                continue
            kept = self.merge(old, new, module_name, f"{module_name}.{name}")
            if kept is not new:
                namespace[name] = kept
            elif self._defines(old, name, module_name) and not self._defines(new, name, module_name):
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
        if is_a(old, types.FunctionType) and is_a(new, types.FunctionType):
            if self._same_definition(old, new, module_name):
                if is_singledispatch(old) and is_singledispatch(new):
                    return self.merge_singledispatch(old, new, module_name, where)
                return self.merge_function(old, new, where)
        elif is_a(old, type) and is_a(new, type):
            if self._same_definition(old, new, module_name):
                return self.merge_class(old, new, where)
        elif _is_cache_wrapper(old) and _is_cache_wrapper(new):
            inner_old, inner_new = old.__wrapped__, new.__wrapped__
            if is_a(inner_old, types.FunctionType) and is_a(inner_new, types.FunctionType):
                if self._same_definition(inner_old, inner_new, module_name):
                    if self.merge_function(inner_old, inner_new, where) is inner_old:
                        old.cache_clear()  # results of the old body must not be served
                        self._keep(new, old)
                        return old
        return new

    def _keep(self, new: Any, old: Any) -> None:
        self.kept[id(new)] = old
        self._twins.append(new)

    def _owned(self, obj: Any, module_name: str) -> bool:
        """Whether ``module_name``'s own code made ``obj``.

        A class says so in its own ``__dict__`` (never through a metaclass, whose
        ``__module__`` may be a property); a function by its ``__module__``, or by its
        globals or its code's file, because ``functools.wraps`` copies another module's
        ``__module__`` onto a wrapper this module defines.
        """
        namespace = self._namespaces.get(module_name)
        if is_a(obj, type):
            module = class_module(obj)
            if isinstance(module, str) or namespace is None:
                return module == module_name
            # A metaclass whose body defines ``__module__`` (as a property) has no
            # module name of its own: its functions' globals say where it was written.
            return any(
                fn.__globals__ is namespace
                for member in list(obj.__dict__.values())
                for fn in _class_functions_of(member)
            )
        if not is_a(obj, types.FunctionType):
            return False
        if obj.__module__ == module_name:  # also a library's wrapper (``singledispatch``)
            return True
        if namespace is None:
            return False
        if obj.__globals__ is namespace:
            return True
        filename = namespace.get("__file__")
        return isinstance(filename, str) and obj.__code__.co_filename == filename

    def _same_definition(self, old: Any, new: Any, module_name: str) -> bool:
        """Same name, defined in this module: the edit of one definition, not an alias."""
        return bool(
            self._owned(old, module_name)
            and self._owned(new, module_name)
            and (old.__qualname__ == new.__qualname__ or _same_def_statement(old, new))
        )

    def _defines(self, obj: Any, name: str, module_name: str) -> bool:
        """``obj`` is what ``def name``/``class name`` at the top of the module created."""
        return (
            (is_a(obj, types.FunctionType) or is_a(obj, type))
            and (getattr(obj, "__qualname__", None) == name or _def_statement_name(obj) == name)
            and self._owned(obj, module_name)
        )

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
        if old is new:
            # A class made by code that ran before its module's new run took the old
            # function (attrs installs module functions as methods): nothing to merge,
            # and the new one, when it comes, must still be recorded as its twin.
            return old
        if id(old) in self._seen:
            if id(new) not in self.kept:
                self._keep(new, old)  # one more twin of the same definition
            return old
        if old.__code__.co_freevars != new.__code__.co_freevars:
            if self._forward(old, new, where, warn=warn):
                return old
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

    def _forward(self, old: types.FunctionType, new: types.FunctionType, where: str, *, warn: bool) -> bool:
        """Make ``old`` keep its identity and run ``new`` (its free variables changed, so
        its closure cannot hold the new code); False when it cannot be done."""
        code = forwarder_code(old.__code__.co_freevars)
        if code is None:
            return False
        twin = new
        target = target_of(old)
        if target is not None:
            # Already forwarding: the function it calls takes this edit, or is replaced.
            new = self.merge_function(target, new, where, warn=False)
        self._seen.add(id(old))
        self._keep(twin, old)  # references to the new function end on the object kept
        # The new function stays alive behind the forwarder: like any new object that
        # stays, its cells (a method's ``__class__``) must point at the kept objects.
        self.fresh.append(new)
        old.__code__ = code
        old.__defaults__ = None
        old.__kwdefaults__ = {TARGET: new}
        old.__annotations__ = dict(new.__annotations__)
        old.__doc__ = new.__doc__
        old.__dict__.clear()
        old.__dict__.update(new.__dict__)
        old.__dict__["__wrapped__"] = new  # inspect.signature shows the new signature
        self.report.functions_patched += 1
        return True

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
        if is_a(old_value, types.FunctionType) and is_a(new_value, types.FunctionType):
            # A decorator's wrapper closing over the wrapped function: merge the inner one.
            if old_value.__qualname__ == new_value.__qualname__:
                if self.merge_function(old_value, new_value, where) is old_value:
                    return
        elif is_a(old_value, type) and old_value is self.kept.get(id(new_value)):
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
            # Every reference the new run took to a member (``MISSING = Sentinel.MISSING``,
            # defaults, dict keys, other modules' imports) ends on the kept member.
            old_members = old.__dict__.get("_member_map_", {})
            for name, member in new.__dict__.get("_member_map_", {}).items():
                kept_member = old_members.get(name)
                if kept_member is not None and id(member) not in self.kept:
                    self._keep(member, kept_member)
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
        if issubclass(old, enum.Enum) and not self._same_members(old, new):
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
                and class_module(old_base) == class_module(new_base) == class_module(old)
                and old_base.__qualname__ == new_base.__qualname__
            ):
                self.merge_class(old_base, new_base, f"{class_module(old)}.{old.__qualname__} base")

    def _merge_class_dict(self, old: type, new: type, where: str) -> None:
        old_dict, new_dict = old.__dict__, new.__dict__
        for attr in [a for a in old_dict if a not in new_dict and a not in _CLASS_INTERNALS]:
            value = old_dict[attr]
            if isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue
            delattr(old, attr)
        for attr, new_value in list(new_dict.items()):
            if attr in _CLASS_INTERNALS and not (attr == "__module__" and is_a(new_value, property)):
                continue
            if isinstance(new_value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue  # slot descriptors belong to the new layout; the old ones stay
            old_value = old_dict.get(attr, _MISSING)
            kept = self._merge_member(old_value, new_value, f"{where}.{attr}", old)
            if old_value is _MISSING or kept is not old_value:
                setattr(old, attr, kept)

    def _merge_member(self, old: Any, new: Any, where: str, owner: type) -> Any:
        if id(new) in self.kept:  # ``default = NOTHING``: a member or class merged before
            return self.kept[id(new)]
        if old is _MISSING:
            return new
        if is_a(old, types.FunctionType) and is_a(new, types.FunctionType):
            if old.__name__ != new.__name__:
                return new
            return self.merge_function(old, new, where, warn=False)
        if isinstance(old, (staticmethod, classmethod)) and type(old) is type(new):
            inner_old, inner_new = old.__func__, new.__func__
            if is_a(inner_old, types.FunctionType) and is_a(inner_new, types.FunctionType):
                if self.merge_function(inner_old, inner_new, where, warn=False) is inner_old:
                    return old
            return new
        if is_a(old, property) and is_a(new, property):
            accessors = ("fget", "fset", "fdel")
            if all(_mergeable(getattr(old, a), getattr(new, a)) for a in accessors):
                for a in accessors:
                    fn_old, fn_new = getattr(old, a), getattr(new, a)
                    if fn_old is not None:
                        self.merge_function(fn_old, fn_new, where, warn=False)
                if old.__doc__ == new.__doc__ or type(old) is property:
                    return old
            return new
        if is_a(old, type) and is_a(new, type) and old.__qualname__ == new.__qualname__:
            return self.merge_class(old, new, where)
        return new

    def _merge_enum_methods(self, old: type, new: type, where: str) -> None:
        members = set(new.__dict__.get("_member_map_", {}))
        # Members and the enum machinery stay; a method the new source no longer has goes.
        # A dunder or sunder name (``__repr__``, ``_missing_``) is the class body's own when
        # its function was written there, which the enum machinery's are not.
        for attr, old_value in list(old.__dict__.items()):
            if attr in new.__dict__ or attr in members or attr in _ENUM_MACHINERY:
                continue
            if _is_special(attr) and not _written_in(old, old_value):
                continue
            if isinstance(old_value, (types.FunctionType, staticmethod, classmethod, property)):
                type.__delattr__(old, attr)
        for attr, new_value in list(new.__dict__.items()):
            if attr in members or attr in _CLASS_INTERNALS or attr in _ENUM_MACHINERY:
                continue
            if not isinstance(new_value, (types.FunctionType, staticmethod, classmethod, property)):
                continue
            if _is_special(attr) and not _written_in(new, new_value):
                continue
            old_value = old.__dict__.get(attr, _MISSING)
            kept = self._merge_member(old_value, new_value, f"{where}.{attr}", old)
            if kept is not old_value:
                type.__setattr__(old, attr, kept)

    def _same_members(self, old: type, new: type) -> bool:
        """Same member names, each made by the same value expression.

        Values are compared without running user code: plain values by equality, a
        fresh ``object()`` sentinel (or an instance with equal plain state) by its kind,
        and objects of this batch by what is kept in their place.
        """
        old_members: dict[str, Any] = dict(old.__dict__.get("_member_map_", {}))
        new_members: dict[str, Any] = dict(new.__dict__.get("_member_map_", {}))
        if list(old_members) != list(new_members):
            return False
        return all(
            self._same_value(member._value_, new_members[name]._value_, 3)
            for name, member in old_members.items()
        )

    def _same_value(self, a: Any, b: Any, depth: int) -> bool:
        if a is b or self.kept.get(id(b)) is a:
            return True
        kind = type(a)
        if kind is not type(b) and kind is not self.kept.get(id(type(b))):
            return False
        if kind is tuple:
            return len(a) == len(b) and all(
                self._same_value(x, y, depth - 1) for x, y in zip(a, b, strict=True)
            )
        if issubclass(kind, _PRIMITIVES):
            return any(kind is t for t in _PRIMITIVES) and bool(a == b)
        if kind is object:
            return True  # ``A = object()``: a sentinel, new on every run
        if depth <= 0 or issubclass(kind, (type, types.FunctionType, types.ModuleType)):
            return False
        state_a, state_b = _plain_state(a), _plain_state(b)
        if state_a is None or state_b is None or len(state_a) != len(state_b):
            return False
        # Attribute names compared as exact strings only: any other key's ``__eq__`` is user code.
        if not all(
            type(x) is str and type(y) is str and x == y for x, y in zip(state_a, state_b, strict=True)
        ):
            return False
        return all(self._same_value(state_a[k], state_b[k], depth - 1) for k in state_a)

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
            if is_a(obj, type):
                self._rebase(obj)
        done: set[int] = set()
        stack = list(self.fresh)
        for kept in list(self.kept.values()):
            if is_a(kept, type):
                stack.extend(_class_functions(kept))
            elif is_a(kept, types.FunctionType):
                stack.append(kept)  # it took the new defaults and closure contents
        while stack:
            obj = stack.pop()
            if id(obj) in done:
                continue
            done.add(id(obj))
            if is_a(obj, type):
                stack.extend(_class_functions(obj))
                continue
            if not is_a(obj, types.FunctionType):
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
                elif is_a(value, types.FunctionType):
                    stack.append(value)

    def _repoint_defaults(self, fn: types.FunctionType) -> None:
        """``def g(key=f)``, ``def h(skip=(Blank,))`` were evaluated while this execution's
        twins were bound: the defaults (and tuples and frozensets in them) hold the kept objects."""
        if target_of(fn) is not None:
            return  # a forwarder's default is the new function it calls, kept in its place
        defaults = fn.__defaults__
        if defaults:
            repointed = tuple(self._repointed(v) for v in defaults)
            if any(a is not b for a, b in zip(repointed, defaults, strict=True)):
                fn.__defaults__ = repointed
        kwdefaults = fn.__kwdefaults__
        if kwdefaults:
            new_kw = {k: self._repointed(v) for k, v in kwdefaults.items()}
            if any(new_kw[k] is not v for k, v in kwdefaults.items()):
                fn.__kwdefaults__ = new_kw

    def _repointed(self, value: Any, depth: int = 3) -> Any:
        """``value``, or what is kept in its place; an exact tuple or frozenset holding a
        twin is rebuilt (a subclass' constructor would be user code)."""
        target = self.kept.get(id(value))
        if target is not None:
            return target
        kind = type(value)
        if depth <= 0 or (kind is not tuple and kind is not frozenset):
            return value
        items = [self._repointed(item, depth - 1) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        if kind is frozenset and not all(safe_key(x) for x in items):
            return value
        return kind(items)

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
        """Instances of a discarded class that the new code made become instances of the kept one.

        They sit at module level, in class bodies (``number = Token("0-9")``), in the
        defaults of functions and methods (``def f(sep=Token("<"))``) and in containers
        one level into any of those. The walk is bounded by the module's own definitions
        and compares by identity only; defaults are repointed on the way (a function the
        new source added was never merged, so nothing else visits it).
        """
        if not self.kept:
            return
        module_name = namespace.get("__name__")
        done: set[int] = set()
        for name, value in list(namespace.items()):
            self._adopt_in(value, name, done, containers=True)
            if is_a(value, types.FunctionType):
                self._adopt_defaults(value, name, done)
            elif is_a(value, type) and class_module(value) == module_name and id(value) not in done:
                done.add(id(value))
                for attr, member in list(value.__dict__.items()):
                    where = f"{name}.{attr}"
                    self._adopt_in(member, where, done, containers=True)
                    for fn in _class_functions_of(member):
                        self._adopt_defaults(fn, where, done)

    def _adopt_defaults(self, fn: types.FunctionType, where: str, done: set[int]) -> None:
        if id(fn) in done:
            return
        done.add(id(fn))
        self._repoint_defaults(fn)
        for value in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()):
            self._adopt_in(value, where, done, containers=True)

    def _adopt_in(self, value: Any, where: str, done: set[int], *, containers: bool) -> None:
        """Re-class ``value``, and with ``containers`` the items of a plain container."""
        kind = type(value)
        if containers and id(kind) in _CONTAINERS:
            if id(value) in done:
                return
            done.add(id(value))
            items: Iterable[Any] = value
            if kind is dict:
                items = [*value.keys(), *value.values()]
            for item in list(items):
                self._adopt_in(item, where, done, containers=False)
            return
        kept = self.kept.get(id(kind))
        if kept is None or kept is kind or issubclass(kind, (type, enum.Enum)):
            return  # enum members are mapped to the kept members, never re-classed
        # ``object.__setattr__``: a frozen class' ``__setattr__`` (user code) must not run.
        try:
            object.__setattr__(value, "__class__", kept)
            return
        except TypeError:
            pass
        # A subclass whose base is a slotted class of this batch: the discarded subclass
        # derives from the base's discarded twin, a layout that differs from the kept
        # one's. On the kept bases (the same slots) it can hand its instance over.
        if self._rebase_twin(kind):
            with contextlib.suppress(TypeError):
                object.__setattr__(value, "__class__", kept)
                return
        self.report.warnings.append(
            f"{where}: stays an instance of the new {kind.__qualname__} (its layout differs "
            "from the kept class'); references to the class taken before do not match it"
        )

    def _rebase_twin(self, cls: type) -> bool:
        bases = tuple(self.kept.get(id(b), b) for b in cls.__bases__)
        if all(a is b for a, b in zip(bases, cls.__bases__, strict=True)):
            return False
        try:
            cls.__bases__ = bases
        except TypeError:
            return False
        return True


_MISSING: Any = object()


# What the enum machinery sets on an Enum class (``__new__`` becomes ``Enum.__new__`` and
# the class body's own is kept as ``_new_member_``): never copied, never deleted.
_ENUM_MACHINERY = frozenset(
    {
        "__new__",
        "_new_member_",
        "__new_member__",
        "_member_map_",
        "_member_names_",
        "_member_type_",
        "_value2member_map_",
        "_unhashable_values_",
        "_value_repr_",
        "_use_args_",
        "_singles_mask_",
        "_all_bits_",
        "_boundary_",
        "_flag_mask_",
        "_inverted_",
        "_order_",
        "_ignore_",
    }
)


def _def_statement_name(obj: Any) -> str | None:
    """The qualified name a function's ``def`` statement gave it, whatever was set since.

    Libraries rename functions they reuse: attrs (on 3.13) installs its module-level
    ``evolve`` as each class's ``__replace__`` and sets its ``__qualname__`` and
    ``__module__`` to the last class's. The code object keeps the name it was compiled
    with. None for a function made inside another one (a decorator's wrapper: one
    ``def`` makes many functions, so the name says nothing about which).
    """
    if not is_a(obj, types.FunctionType):
        return None
    name = obj.__code__.co_qualname
    return None if "<locals>" in name else name


def _same_def_statement(old: Any, new: Any) -> bool:
    name = _def_statement_name(old)
    return name is not None and name == _def_statement_name(new) and old.__name__ == new.__name__


def _is_special(attr: str) -> bool:
    return attr.startswith("_") and attr.endswith("_")


def _written_in(cls: type, value: Any) -> bool:
    """Whether ``value`` (a function, or one wrapped by a descriptor) was written in ``cls``'s body."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif is_a(value, property):
        value = value.fget
    return is_a(value, types.FunctionType) and value.__qualname__.startswith(f"{cls.__qualname__}.")


def _plain_state(obj: Any) -> dict[str, Any] | None:
    """An instance's own ``__dict__`` when it is a plain dict, read without user code."""
    try:
        state = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None
    return state if type(state) is dict else None


def _mergeable(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return old is None and new is None
    return (
        is_a(old, types.FunctionType)
        and is_a(new, types.FunctionType)
        and old.__code__.co_freevars == new.__code__.co_freevars
    )


def _is_cache_wrapper(obj: Any) -> bool:
    return isinstance(obj, functools._lru_cache_wrapper)


# Exact types only, looked up by identity (``in`` on types may run a metaclass' ``__eq__``).
_CONTAINERS = frozenset(map(id, (list, tuple, dict, set, frozenset)))


def _class_functions_of(member: Any) -> Iterable[types.FunctionType]:
    """The functions a class attribute holds: itself, or the one in a descriptor."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if is_a(member, property):
        yield from (f for f in (member.fget, member.fset, member.fdel) if is_a(f, types.FunctionType))
    elif is_a(member, types.FunctionType):
        yield member


def _class_functions(cls: type) -> Iterable[Any]:
    for value in list(cls.__dict__.values()):
        if isinstance(value, (staticmethod, classmethod)):
            yield value.__func__
        elif is_a(value, property):
            yield from (f for f in (value.fget, value.fset, value.fdel) if f is not None)
        elif isinstance(value, (types.FunctionType, type)):
            yield value
