"""Carrying out a statement plan on a live module, with everything it changes undoable.

Function objects keep their identity: each one the old ``def`` created receives the new
code object (taken from the new source compiled once, so positions are the new file's),
and, when its signature changed, the new defaults and annotations. They are found by
where their code was compiled (file, qualified name and first line), in a bounded walk
from the module namespace through what decorators leave behind: ``__wrapped__``, closure
cells, ``__func__``, property accessors, ``functools.partial``, and the attributes and
containers of objects that hold them (a task's ``run``, a command's ``callback``, a
model's validators). Never a heap scan: the walk is bounded by depth and breadth.

Everything done here is recorded in an :class:`Undo` so a transaction that fails later
(another module of the batch raising) puts every code object, default and class
attribute back as it was.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import CodeType, FunctionType, MethodType, ModuleType
from typing import Any

from ._forwarders import TARGET, forwarder_code
from ._plan import Patch, Plan

__all__ = ["NotFound", "Prepared", "Undo", "apply", "prepare"]

_DEPTH = 5
_CONTAINER_ITEMS = 2000  # items of one dict, list, tuple or set looked at
_PLAIN = (int, str, bytes, float, bool, complex, type(None))
_MISSING = object()


class NotFound(Exception):
    """A changed function's objects cannot be found, or cannot take the new code: the
    module runs again as a whole instead."""


@dataclass(slots=True)
class Undo:
    """What a statement reload changed outside the module namespace."""

    functions: list[tuple[FunctionType, dict[str, Any]]] = field(default_factory=list)
    attributes: list[tuple[object, str, object]] = field(default_factory=list)  # old value or _MISSING

    def set_attribute(self, owner: object, name: str, value: object) -> None:
        self.attributes.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def delete_attribute(self, owner: object, name: str) -> None:
        self.attributes.append((owner, name, owner.__dict__.get(name, _MISSING)))
        delattr(owner, name)

    def restore(self) -> None:
        for fn, saved in reversed(self.functions):
            for name, value in saved.items():
                setattr(fn, name, value)
        for owner, name, value in reversed(self.attributes):
            with contextlib.suppress(AttributeError, TypeError):
                if value is _MISSING:
                    if name in owner.__dict__:
                        delattr(owner, name)
                else:
                    setattr(owner, name, value)
        self.functions.clear()
        self.attributes.clear()


@dataclass(slots=True)
class Prepared:
    """A plan with its functions found and its new code objects picked."""

    plan: Plan
    code: CodeType  # the changed statements, compiled at their lines
    flags: int  # the new source's ``from __future__`` compiler flags
    targets: list[tuple[Patch, list[FunctionType], CodeType]] = field(default_factory=list)
    # memoizing wrappers (``functools.lru_cache``) of patched functions: emptied, since
    # what they remember was computed by the old code
    caches: list[object] = field(default_factory=list)
    # patches whose old function objects become forwarders to a new function (by id)
    forwards: set[int] = field(default_factory=set)
    # (function, its new code) for functions of statements that only moved, and for
    # closures a patched def made before the edit (their code is nested in the old def's)
    shifted: list[tuple[FunctionType, CodeType]] = field(default_factory=list)
    undo: Undo = field(default_factory=Undo)

    @property
    def classes_touched(self) -> int:
        plan = self.plan
        paths = {p.class_path for p in plan.patches} | {c for c, _ in plan.class_runs}
        paths |= {c for c, _ in plan.class_removals} | {c for c, _ in plan.docstrings}
        return len(paths - {()})


def prepare(plan: Plan, code: CodeType, flags: int, module: ModuleType, filename: str) -> Prepared:
    """Find every function object the plan patches; raises :class:`NotFound`."""
    prepared = Prepared(plan, code, flags)
    if plan.moved:
        prepared.shifted = _shifted_functions(module, filename, plan)
    if not plan.patches:
        return prepared
    nested: dict[int, CodeType] = {}  # id of an old nested code object -> its new one
    new_codes = _codes_by_position(code) if any(not p.moved_only for p in plan.patches) else {}
    wanted = {(p.old_qualname, p.old_lineno) for p in plan.patches}
    # Where a def's function object normally is: under its name in its module or class,
    # through the usual wrappers. Only what is not found there is searched for further.
    live, holders = _where_defined(module, filename, plan.patches)
    if wanted - set(live):
        deeper, more = _live_functions(module, filename, wanted - set(live))
        live.update(deeper)
        for key, value in more.items():
            holders.setdefault(key, []).extend(value)
    for patch in plan.patches:
        functions = live.get((patch.old_qualname, patch.old_lineno), [])
        if not functions:
            raise NotFound(
                f"{filename}:{patch.new_lineno}: the function object of {patch.new_qualname} cannot be found "
                "(a decorator hides it)"
            )
        if patch.moved_only:
            delta = patch.new_lineno - patch.old_lineno
            new_code = _moved(functions[0].__code__, delta)
            if any(fn.__code__ is not functions[0].__code__ for fn in functions):
                raise NotFound(f"{filename}:{patch.new_lineno}: {patch.new_qualname} runs several codes")
        else:
            found = new_codes.get((patch.new_qualname, patch.new_lineno))
            if found is None:
                raise NotFound(f"{filename}:{patch.new_lineno}: no code compiled for {patch.new_qualname}")
            new_code = found
        for fn in functions:
            if fn.__code__.co_freevars == new_code.co_freevars:
                continue
            # A method that starts or stops using zero-argument super() (its __class__
            # cell): the old object cannot take the new code, so it forwards to a new
            # function made in the kept class's scope. Other free variables belong to
            # nested functions, which are patched through their enclosing def.
            changed = set(fn.__code__.co_freevars) ^ set(new_code.co_freevars)
            forwarder = forwarder_code(fn.__code__.co_freevars)
            if not patch.class_path or changed - {"__class__"} or forwarder is None:
                raise NotFound(
                    f"{filename}:{patch.new_lineno}: {patch.new_qualname} now uses other free variables "
                    f"({', '.join(new_code.co_freevars) or 'none'}, was "
                    f"{', '.join(fn.__code__.co_freevars) or 'none'})"
                )
            prepared.forwards.add(id(patch))
        prepared.targets.append((patch, functions, new_code))
        if id(patch) not in prepared.forwards:
            for fn in functions:
                _pair_nested(fn.__code__, new_code, nested)
        for fn in functions:
            for holder in holders.get(id(fn), ()):
                if callable(_safe_getattr(holder, "cache_clear")):
                    prepared.caches.append(holder)
    if nested:
        # Closures the old defs made at import (a factory's products, attrs' generated
        # methods, a decorator's wrapper) run the new code of their nested def too.
        done = {id(fn) for _, fns, _ in prepared.targets for fn in fns} | {
            id(fn) for fn, _ in prepared.shifted
        }
        for fn, _ in _reachable_functions(module):
            replacement = nested.get(id(fn.__code__))
            if (
                replacement is not None
                and id(fn) not in done
                and fn.__code__.co_freevars == replacement.co_freevars
            ):
                done.add(id(fn))
                prepared.shifted.append((fn, replacement))
    return prepared


def _pair_nested(old: CodeType, new: CodeType, into: dict[int, CodeType]) -> None:
    """Pair the code objects nested in ``old`` with ``new``'s, by qualified name and order."""
    olds = [c for c in old.co_consts if isinstance(c, CodeType)]
    news = [c for c in new.co_consts if isinstance(c, CodeType)]
    if [c.co_qualname for c in olds] != [c.co_qualname for c in news]:
        return  # the nesting changed: closures made before keep their code
    for before, after in zip(olds, news, strict=True):
        into[id(before)] = after
        _pair_nested(before, after, into)


def apply(prepared: Prepared, module: ModuleType, filename: str) -> None:
    """Carry the plan out; raises what the user's code raises (the caller restores)."""
    plan, undo = prepared.plan, prepared.undo
    namespace = module.__dict__
    signatures = _evaluate_signatures(prepared, module, filename)
    for patch, functions, new_code in prepared.targets:
        fresh = signatures.get(id(patch))
        doc = new_code.co_consts[0] if new_code.co_consts and isinstance(new_code.co_consts[0], str) else None
        if id(patch) in prepared.forwards:
            _forward(functions, fresh, undo)
            continue
        for fn in functions:
            undo.functions.append(
                (
                    fn,
                    {
                        "__code__": fn.__code__,
                        "__defaults__": fn.__defaults__,
                        "__kwdefaults__": fn.__kwdefaults__,
                        "__annotations__": fn.__annotations__,
                        "__doc__": fn.__doc__,
                    },
                )
            )
            fn.__code__ = new_code
            fn.__doc__ = doc
            if fresh is not None:
                fn.__defaults__ = fresh.__defaults__
                fn.__kwdefaults__ = fresh.__kwdefaults__
                fn.__annotations__ = fresh.__annotations__
    for fn, moved_code in prepared.shifted:
        undo.functions.append((fn, {"__code__": fn.__code__}))
        fn.__code__ = moved_code
    for cache in prepared.caches:
        with contextlib.suppress(Exception):
            cache.cache_clear()  # type: ignore[attr-defined]
    for classes, name in plan.class_removals:
        owner = _class_at(namespace, classes)
        if owner is not None and name in owner.__dict__:
            undo.delete_attribute(owner, name)
    for classes, doc in plan.docstrings:
        if not classes:
            namespace["__doc__"] = doc
        else:
            owner = _class_at(namespace, classes)
            if owner is not None:
                with contextlib.suppress(AttributeError, TypeError):
                    undo.set_attribute(owner, "__doc__", doc)
    if plan.run:
        code = compile(
            ast.Module(body=list(plan.run), type_ignores=[]),
            filename,
            "exec",
            flags=prepared.flags,
            dont_inherit=True,
        )
        exec(code, namespace)
    for classes, node in plan.class_runs:
        owner = _class_at(namespace, classes)
        if owner is None:
            raise LookupError(f"class {'.'.join(classes)} is not in the module any more")
        made = _in_class_scope(node, classes, owner, namespace, filename, prepared.flags)
        for name, value in made.items():
            undo.set_attribute(owner, name, value)


def _evaluate_signatures(prepared: Prepared, module: ModuleType, filename: str) -> dict[int, FunctionType]:
    """Fresh functions for the patches whose defaults or annotations changed: the ``def``
    run again without decorators, in its scope (a class's own names visible), so default
    values and annotations are exactly what a fresh import would make."""
    found: dict[int, FunctionType] = {}
    for patch, _, _ in prepared.targets:
        if not patch.signature_changed and id(patch) not in prepared.forwards:
            continue
        node = _undecorated(patch.node)
        if patch.class_path:
            owner = _class_at(module.__dict__, patch.class_path)
            made = _in_class_scope(node, patch.class_path, owner, module.__dict__, filename, prepared.flags)
        else:
            scratch: dict[str, Any] = {}
            code = compile(
                ast.Module(body=[node], type_ignores=[]),
                filename,
                "exec",
                flags=prepared.flags,
                dont_inherit=True,
            )
            exec(code, module.__dict__, scratch)
            made = scratch
        fresh = made.get(node.name)
        if isinstance(fresh, FunctionType):
            found[id(patch)] = fresh
    return found


def _forward(functions: list[FunctionType], target: FunctionType | None, undo: Undo) -> None:
    """Make each old function call ``target``, keeping its identity (and ``__wrapped__``
    pointing at the target, so ``inspect.signature`` shows the new signature)."""
    if target is None:
        raise LookupError("the new function could not be made")
    for fn in functions:
        code = forwarder_code(fn.__code__.co_freevars)
        assert code is not None  # checked by prepare()
        undo.functions.append(
            (
                fn,
                {
                    "__code__": fn.__code__,
                    "__defaults__": fn.__defaults__,
                    "__kwdefaults__": fn.__kwdefaults__,
                    "__annotations__": fn.__annotations__,
                    "__doc__": fn.__doc__,
                },
            )
        )
        fn.__code__ = code
        fn.__defaults__ = None
        fn.__kwdefaults__ = {TARGET: target}
        fn.__annotations__ = dict(target.__annotations__)
        fn.__doc__ = target.__doc__
        undo.set_attribute(fn, "__wrapped__", target)


def _undecorated(node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.FunctionDef | ast.AsyncFunctionDef:
    copy = type(node)(**{f: getattr(node, f) for f in node._fields})
    copy.decorator_list = []
    ast.copy_location(copy, node)
    copy.end_lineno, copy.end_col_offset = node.end_lineno, node.end_col_offset
    return copy


class _Scope(type):
    """A metaclass for running one class member on its own: the body sees the kept
    class's attributes (as a class body sees its earlier statements), and no class is
    made: the namespace itself comes back."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any) -> Any:
        return namespace

    @classmethod
    def __prepare__(mcs, name: str, bases: tuple[type, ...], **kw: Any) -> dict[str, Any]:  # type: ignore[override]
        owner = kw.get("owner")
        prepared = dict(owner.__dict__) if owner is not None else {}
        prepared["__hotmod_seed__"] = frozenset(prepared)
        return prepared


def _in_class_scope(  # noqa: PLR0917
    node: ast.stmt,
    classes: tuple[str, ...],
    owner: type | None,
    namespace: dict[str, Any],
    filename: str,
    flags: int,
) -> dict[str, Any]:
    """Run ``node`` as a member of the kept class ``owner``; the names it made.

    Wrapped in class statements named like the real ones, so qualified names (and so
    ``repr``, pickling by name, tracebacks) are the real ones; a method's ``__class__``
    cell (zero-argument ``super()``) is pointed at the kept class.
    """
    inner: ast.stmt = node
    for depth, name in enumerate(reversed(classes)):
        keywords = [ast.keyword("metaclass", ast.Name("__hotmod_scope__", ast.Load()))]
        if depth == 0:
            keywords.append(ast.keyword("owner", ast.Name("__hotmod_owner__", ast.Load())))
        fields: dict[str, Any] = {
            "name": name,
            "bases": [],
            "keywords": keywords,
            "body": [inner],
            "decorator_list": [],
        }
        if sys.version_info >= (3, 12):
            fields["type_params"] = []
        inner = ast.ClassDef(**fields)
    module_ast = ast.Module(body=[inner], type_ignores=[])
    ast.fix_missing_locations(module_ast)
    _copy_positions(module_ast, node)
    code = compile(module_ast, filename, "exec", flags=flags, dont_inherit=True)
    scratch: dict[str, Any] = {"__hotmod_scope__": _Scope, "__hotmod_owner__": owner}
    exec(code, namespace, scratch)
    made: Any = scratch[classes[0]]
    for name in classes[1:]:
        made = made[name]
    assert isinstance(made, dict)
    seed = made.pop("__hotmod_seed__", frozenset())
    cell = made.pop("__classcell__", None)
    if cell is not None and owner is not None:
        cell.cell_contents = owner
    made.pop("__module__", None)
    made.pop("__qualname__", None)
    return (
        {k: v for k, v in made.items() if k not in seed or v is not owner.__dict__.get(k)} if owner else made
    )


def _copy_positions(tree: ast.Module, node: ast.stmt) -> None:
    """The wrapper class statements sit on the member's first line: positions inside
    the member stay the file's."""
    for wrapper in ast.walk(tree):
        if wrapper is node:
            break
        if isinstance(wrapper, (ast.ClassDef, ast.keyword, ast.Name)):
            ast.copy_location(wrapper, node)
            wrapper.end_lineno, wrapper.end_col_offset = node.lineno, node.col_offset


def _class_at(namespace: dict[str, Any], classes: tuple[str, ...]) -> type | None:
    owner: Any = namespace.get(classes[0]) if classes else None
    for name in classes[1:]:
        owner = owner.__dict__.get(name) if isinstance(owner, type) else None
    return owner if isinstance(owner, type) else None


def _shifted_functions(module: ModuleType, filename: str, plan: Plan) -> list[tuple[FunctionType, CodeType]]:
    """Functions whose code starts on the lines of a statement that only moved."""
    found: list[tuple[FunctionType, CodeType]] = []
    seen: set[int] = set()
    for fn, _ in _reachable_functions(module):
        code = fn.__code__
        if id(fn) in seen or code.co_filename != filename:
            continue
        seen.add(id(fn))
        for first, last, delta in plan.moved:
            if first <= code.co_firstlineno <= last:
                found.append((fn, _moved(code, delta)))
                break
    return found


def _moved(code: CodeType, delta: int) -> CodeType:
    """``code`` as compiling it ``delta`` lines lower makes it: every line of the location
    table is relative to ``co_firstlineno``, and nested code objects move along."""
    consts = tuple(_moved(c, delta) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


def _codes_by_position(code: CodeType) -> dict[tuple[str, int], CodeType]:
    found: dict[tuple[str, int], CodeType] = {}
    stack = [code]
    while stack:
        current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, CodeType):
                found.setdefault((const.co_qualname, const.co_firstlineno), const)
                stack.append(const)
    return found


def _where_defined(
    module: ModuleType, filename: str, patches: list[Patch]
) -> tuple[dict[tuple[str, int], list[FunctionType]], dict[int, list[object]]]:
    """The function objects of ``patches`` found under their own names (shallow: the
    usual decorator wrappers only), and the objects they were reached through."""
    found: dict[tuple[str, int], list[FunctionType]] = {}
    holders: dict[int, list[object]] = {}
    for patch in patches:
        owner: Any = (
            module.__dict__
            if not patch.class_path
            else getattr(_class_at(module.__dict__, patch.class_path), "__dict__", None)
        )
        if owner is None:
            continue
        name = patch.old_qualname.rpartition(".")[2]
        if patch.class_path and name.startswith("__") and not name.endswith("__"):
            name = f"_{patch.class_path[-1].lstrip('_')}{name}"  # a private name, mangled
        key = (patch.old_qualname, patch.old_lineno)
        stack: list[tuple[object, object | None, int]] = [(owner.get(name), None, 0)]
        while stack:
            obj, holder, depth = stack.pop()
            if obj is None or depth > 4:
                continue
            inner: list[object] = []
            if isinstance(obj, FunctionType):
                code = obj.__code__
                if (code.co_qualname, code.co_firstlineno) == key and code.co_filename == filename:
                    if obj not in found.setdefault(key, []):
                        found[key].append(obj)
                    if holder is not None:
                        holders.setdefault(id(obj), []).append(holder)
                for cell in obj.__closure__ or ():
                    with contextlib.suppress(ValueError):
                        inner.append(cell.cell_contents)
                inner.append(obj.__dict__.get("__wrapped__"))
            elif isinstance(obj, (staticmethod, classmethod, MethodType)):
                inner.append(obj.__func__)
            elif isinstance(obj, property):
                inner += [obj.fget, obj.fset, obj.fdel]
            elif isinstance(obj, functools.partial):
                inner.append(obj.func)
            elif not isinstance(obj, (type, ModuleType, *_PLAIN)):
                inner += [_safe_getattr(obj, "__wrapped__"), _safe_getattr(obj, "__func__")]
            stack.extend((o, obj, depth + 1) for o in inner if o is not None)
    return found, holders


def _live_functions(
    module: ModuleType, filename: str, wanted: set[tuple[str, int]]
) -> tuple[dict[tuple[str, int], list[FunctionType]], dict[int, list[object]]]:
    """Functions compiled from ``filename`` at the wanted (qualified name, first line),
    reachable from the module's namespace and its classes; and, by function id, the
    objects they were reached through."""
    found: dict[tuple[str, int], list[FunctionType]] = {}
    holders: dict[int, list[object]] = {}
    for fn, holder in _reachable_functions(module):
        code = fn.__code__
        if code.co_filename != filename:
            continue
        key = (code.co_qualname, code.co_firstlineno)
        if key in wanted:
            if fn not in found.setdefault(key, []):
                found[key].append(fn)
            if holder is not None:
                holders.setdefault(id(fn), []).append(holder)
    return found, holders


def _reachable_functions(module: ModuleType) -> Iterator[tuple[FunctionType, object | None]]:
    seen: set[int] = {id(module)}
    stack: list[tuple[object, int, object | None]] = [(v, 0, None) for v in list(module.__dict__.values())]
    name = module.__name__
    while stack:
        obj, depth, holder = stack.pop()
        if isinstance(obj, FunctionType) and holder is not None:
            yield obj, holder  # every holder of a function is worth knowing (caches)
        if id(obj) in seen or isinstance(obj, (*_PLAIN, ModuleType)):
            continue
        seen.add(id(obj))
        inner: list[object] = []
        if isinstance(obj, FunctionType):
            if holder is None:
                yield obj, None
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):
                    inner.append(cell.cell_contents)
            inner += list(obj.__dict__.values())
        elif isinstance(obj, type):
            # Classes of this module are walked whole (their methods are ours); others
            # are not entered (a base class from a library is not ours to patch).
            if obj.__dict__.get("__module__") == name:
                inner += list(obj.__dict__.values())
            else:
                continue
        elif isinstance(obj, (staticmethod, classmethod, MethodType)):
            inner.append(obj.__func__)
        elif isinstance(obj, property):
            inner += [obj.fget, obj.fset, obj.fdel]
        elif isinstance(obj, functools.partial):
            inner += [obj.func, *obj.args, *obj.keywords.values()]
        elif isinstance(obj, dict):
            inner += _sample(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            inner += _sample(obj)
        else:
            try:
                attributes = object.__getattribute__(obj, "__dict__")
            except Exception:
                attributes = None
            if isinstance(attributes, dict):
                inner += _sample(attributes.values())
            wrapped = _safe_getattr(obj, "__wrapped__")
            if wrapped is not None:
                inner.append(wrapped)
            func = _safe_getattr(obj, "__func__")
            if func is not None:
                inner.append(func)
        if depth < _DEPTH:
            stack.extend((o, depth + 1, obj) for o in inner if o is not None)


def _sample(values: Any) -> list[object]:
    out: list[object] = []
    with contextlib.suppress(RuntimeError):  # changed size during iteration (another thread)
        for i, value in enumerate(values):
            if i >= _CONTAINER_ITEMS:
                break
            out.append(value)
    return out


def _safe_getattr(obj: object, name: str) -> object | None:
    """An attribute of a C-implemented wrapper (lru_cache, some framework objects) read
    from its type's descriptors only: never a user ``__getattr__``."""
    for klass in type(obj).__mro__:
        if name in klass.__dict__:
            try:
                value: object = object.__getattribute__(obj, name)
            except Exception:
                return None
            return value
    return None
