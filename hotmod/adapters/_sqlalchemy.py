"""SQLAlchemy 2: a mapped class statement that runs again is refused; a failed run is taken back.

The mapper, the table and every relationship were built for the kept class; a new class
statement for the same table would need a new mapping (and, for a column change, a
migration). So a reload that would run a mapped class statement again is refused with
``needs_restart`` naming the class and the columns that differ; methods, properties and
hybrid properties apply in place through statement reloads, which never run the class
statement.

A run that failed or was refused after SQLAlchemy mapped its new classes leaves the
declarative registries and the metadata as they were before it: ``prepare`` records what
every registry holds and every ``MetaData`` the module reaches (its namespace, the modules
it imports names from, every registry's), ``aborted`` takes out what is new: a class's mapper and
instrumentation (and, for a subclass of a kept class, its place in the kept hierarchy),
a table (``MetaData.remove``), a column a single-table subclass put in a kept table.
Otherwise the failed run's mapper stays in ``registry.mappers`` and its table in the
metadata, and the corrected save fails with "Table ... is already defined for this
MetaData instance". SQLAlchemy has no public API for most of it: the private pieces used
are named where they are, and a version without them leaves a logged warning, not an
error. One thing cannot be taken back: an attribute the failed run mapped on a kept class
(a backref made when it configured the mappers); it is logged as needing a restart.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FunctionType, ModuleType
from typing import Any

from .._kinds import is_a
from . import BaseAdapter, ModuleChange

__all__ = ["SQLAlchemyAdapter"]

logger = logging.getLogger(__name__)

_NOTE = "sqlalchemy"  # the key of the state prepare records in ModuleChange.notes


def _mapped(value: object) -> bool:
    return is_a(value, type) and "__mapper__" in dir(value) and hasattr(value, "registry")


def _outlives(cls: Any, change: ModuleChange) -> bool:
    """Whether ``cls``'s registry survives a run of its module: neither the registry nor
    a declarative base holding it is made by the module itself."""
    registry = getattr(cls, "registry", None)
    if registry is None:
        return False
    name = change.module.__name__
    for value in list(change.new.values()):
        if value is registry:
            return False
        if (
            is_a(value, type)
            and value.__module__ == name
            and "__table__" not in vars(value)
            and getattr(value, "registry", None) is registry
        ):
            return False  # the declarative base, made here
    return True


def _mapped_attributes(cls: Any) -> set[str]:
    """The names the mapper instrumented on the class itself (columns, relationships,
    synonyms, ...): set when the class is mapped, before any configuration."""
    attributes = getattr(sys.modules.get("sqlalchemy.orm"), "QueryableAttribute", None)
    if not isinstance(attributes, type):
        return set()
    return {key for key, value in list(vars(cls).items()) if isinstance(value, attributes)}


def _columns(cls: Any) -> dict[str, str]:
    table = getattr(cls, "__table__", None)
    columns = getattr(table, "columns", None)
    if columns is None:
        return {}
    return {c.key: f"{c.type!r}, nullable={c.nullable}, primary_key={c.primary_key}" for c in columns}


def _types() -> tuple[type | None, type | None, type | None]:
    """SQLAlchemy's ``registry``, ``MetaData`` and ``Table`` (None: not imported, or moved).

    Looked up in ``sys.modules``: hotmod never imports SQLAlchemy (nor its ORM) itself.
    """
    orm = sys.modules.get("sqlalchemy.orm")
    core = sys.modules.get("sqlalchemy")
    found = (getattr(orm, "registry", None), getattr(core, "MetaData", None), getattr(core, "Table", None))
    return (
        found[0] if isinstance(found[0], type) else None,
        found[1] if isinstance(found[1], type) else None,
        found[2] if isinstance(found[2], type) else None,
    )


def _is(value: object, kind: type | None) -> bool:
    return kind is not None and is_a(value, kind)


def _attribute(owner: object, name: str) -> object:
    try:
        return getattr(owner, name, None)
    except Exception:  # a metaclass's __getattr__ or a descriptor that raises
        return None


@dataclass
class _Reached:
    """The registries and metadata a module reaches, each once (by identity)."""

    registries: dict[int, Any] = field(default_factory=dict)
    metadata: dict[int, Any] = field(default_factory=dict)


def _reached(namespace: Mapping[str, Any]) -> _Reached:
    """The declarative registries and ``MetaData`` the code of this namespace can register
    with: the ones bound there, the ``registry``/``metadata``/``__table__`` of classes
    there (declarative bases and mapped classes), and the same one level into the modules
    the namespace imports names from (``from .base import Base``, ``from . import db``,
    or a helper function that maps classes in its own module's registry)."""
    registry_type, metadata_type, table_type = _types()
    reached = _Reached()
    if registry_type is None and metadata_type is None:
        return reached

    def add(value: object) -> None:
        if _is(value, registry_type):
            reached.registries.setdefault(id(value), value)
            add(getattr(value, "metadata", None))
        elif _is(value, metadata_type):
            reached.metadata.setdefault(id(value), value)
        elif _is(value, table_type):
            add(getattr(value, "metadata", None))

    def visit(namespace: Mapping[str, Any], modules: dict[int, ModuleType] | None) -> None:
        for value in list(namespace.values()):
            kind = type(value)
            if issubclass(kind, type):
                for name in ("registry", "metadata", "__table__"):
                    add(_attribute(value, name))
            else:
                add(value)
            if modules is None:
                continue
            if issubclass(kind, ModuleType):
                modules.setdefault(id(value), value)
            elif issubclass(kind, (type, FunctionType)):
                origin = _attribute(value, "__module__")
                home = sys.modules.get(origin) if isinstance(origin, str) else None
                if home is not None:
                    modules.setdefault(id(home), home)

    modules: dict[int, ModuleType] = {}
    seen = {id(namespace)}
    visit(namespace, modules)
    for registry in _every_registry():
        add(registry)
    for module in list(modules.values()):
        name = getattr(module, "__name__", None)
        top = name.partition(".")[0] if isinstance(name, str) else ""
        if not top or top in sys.stdlib_module_names or top in {"sqlalchemy", "builtins"}:
            continue
        home = getattr(module, "__dict__", None)
        if isinstance(home, dict) and id(home) not in seen:
            seen.add(id(home))
            visit(home, None)
    return reached


def _every_registry() -> list[Any]:
    """Every declarative registry of the process, so that one the failed run reaches first
    (a new import, a helper of another module) is recorded too.

    ``sqlalchemy.orm.mapper._all_registries()``, private: what ``configure_mappers()`` reads
    (SQLAlchemy 2.0 to 2.1); SQLAlchemy has no public list of registries. Without it, only
    the registries the module reaches are recorded.
    """
    every = getattr(sys.modules.get("sqlalchemy.orm.mapper"), "_all_registries", None)
    if not callable(every):
        return []
    try:
        return list(every())
    except Exception:
        return []


@dataclass
class _Before:
    """What the registries and metadata held before the run (strong references, for the
    transaction's duration: an id is never reused while it is recorded)."""

    managers: list[tuple[Any, list[Any]]] = field(default_factory=list)  # (registry, its class managers)
    # (kept mapper, the names of its instrumented attributes)
    attributes: list[tuple[Any, frozenset[str]]] = field(default_factory=list)
    polymorphic: list[tuple[dict[Any, Any], dict[Any, Any]]] = field(default_factory=list)  # (map, copy)
    tables: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)  # (MetaData, its tables by key)
    # (kept table, ids of its columns, constraints, indexes and foreign keys)
    parts: list[tuple[Any, frozenset[int]]] = field(default_factory=list)
    # (registry, its public registry.mappers) where its class managers could not be listed
    unlisted: list[tuple[Any, frozenset[Any] | None]] = field(default_factory=list)


def _managers(registry: Any) -> Any:
    """The registry's class managers: ``registry._managers``, private.

    SQLAlchemy has no public API that lists a registry's classes including one whose mapping
    failed half way (``registry.mappers`` raises UnmappedClassError for it) nor one that
    takes a single class out of a registry (``registry.dispose()`` and ``clear_mappers()``
    dispose every class). ``_managers`` is the weak dictionary ``registry.dispose()``
    empties, the same from SQLAlchemy 2.0 to today's 2.1.
    """
    managers = getattr(registry, "_managers", None)
    return managers if callable(getattr(managers, "pop", None)) and hasattr(managers, "__iter__") else None


def _public_mappers(registry: Any) -> frozenset[Any] | None:
    try:
        return frozenset(registry.mappers)
    except Exception:  # a class left half mapped
        return None


def _mapper_of(manager: Any) -> Any:
    # as SQLAlchemy checks it: a class whose mapping failed half way has a manager, no mapper
    return vars(manager).get("mapper") if hasattr(manager, "__dict__") else None


def _attributes(mapper: Any) -> frozenset[str] | None:
    """The names of a mapper's instrumented attributes (its public ``class_manager``, a dict
    by attribute name; ``Mapper.attrs`` would configure every pending mapper)."""
    manager = getattr(mapper, "class_manager", None)
    return frozenset(manager) if isinstance(manager, Mapping) else None


def _record(reached: _Reached) -> _Before:
    before = _Before()
    maps: dict[int, dict[Any, Any]] = {}
    for registry in reached.registries.values():
        managers = _managers(registry)
        if managers is None:
            before.unlisted.append((registry, _public_mappers(registry)))
            continue
        kept = list(managers)
        before.managers.append((registry, kept))
        for manager in kept:
            mapper = _mapper_of(manager)
            attributes = _attributes(mapper)
            if attributes is not None:
                before.attributes.append((mapper, attributes))
            polymorphic = getattr(mapper, "polymorphic_map", None)  # public, shared by a hierarchy
            if isinstance(polymorphic, dict):
                maps.setdefault(id(polymorphic), polymorphic)
    before.polymorphic = [(m, dict(m)) for m in maps.values()]
    for metadata in reached.metadata.values():
        tables = getattr(metadata, "tables", None)
        if isinstance(tables, Mapping):
            before.tables.append((metadata, dict(tables)))
            before.parts += [(table, frozenset(map(id, _parts(table)))) for table in tables.values()]
    return before


def _dispose(registry: Any, manager: Any) -> str | None:
    """Take one class out of ``registry``: its mapper, its instrumentation, its name.

    Private API, because SQLAlchemy has no public one for a single class (see ``_managers``):
    ``registry._dispose_manager_and_mapper`` is what ``registry.dispose()`` calls for each
    of its classes once it took the class's manager out of ``_managers``; it flags the mapper
    disposed, drops the class from the by-name lookup and removes its instrumentation.
    """
    dispose = getattr(registry, "_dispose_manager_and_mapper", None)
    managers = _managers(registry)
    if not callable(dispose) or managers is None:
        return "this SQLAlchemy version has no registry._dispose_manager_and_mapper"
    try:
        managers.pop(manager, None)
        dispose(manager)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _unlink(mapper: Any) -> str | None:
    """Take a disposed mapper out of its kept superclass mapper's list of subclass mappers
    (``Mapper._inheriting_mappers``, private: there is no public API to take one out; it
    feeds ``self_and_descendants``, hence polymorphic loading of the kept class), then reset
    what the kept hierarchy memoized from it (``Mapper._expire_memoizations``, private too:
    what SQLAlchemy calls itself when a hierarchy changes)."""
    parent = getattr(mapper, "inherits", None)  # public
    if parent is None:
        return None
    subclasses = getattr(parent, "_inheriting_mappers", None)
    expire = getattr(parent, "_expire_memoizations", None)
    if subclasses is None or not callable(expire):
        return "this SQLAlchemy version has no Mapper._inheriting_mappers or _expire_memoizations"
    try:
        if any(m is mapper for m in subclasses):
            parent._inheriting_mappers = type(subclasses)([m for m in subclasses if m is not mapper])
        expire()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _parts(table: Any) -> list[Any]:
    """A table's columns, constraints, indexes and foreign keys (public collections)."""
    found: list[Any] = []
    for name in ("columns", "constraints", "indexes", "foreign_keys"):
        found += list(getattr(table, name, ()))
    return found


def _strip(table: Any, kept: frozenset[int]) -> str | None:
    """Take out of a kept table the columns, constraints, indexes and foreign keys the failed
    run added to it: a single-table subclass's own column goes into its superclass's table
    (and the corrected save would conflict with it), as do ``extend_existing`` tables'.

    Constraints, indexes and foreign keys are the table's public sets. A column has no public
    way out of a table (``Table.append_column`` has no inverse): ``Table._columns.remove``,
    private, is what SQLAlchemy's own ``ColumnCollection`` offers, then the table's memoized
    values reset (``_reset_memoizations``); a foreign key the metadata still waits to resolve
    leaves its list with ``ForeignKey._remove_from_metadata``, as ``MetaData.remove`` does.
    """
    if all(id(part) in kept for part in _parts(table)):
        return None
    remove = getattr(getattr(table, "_columns", None), "remove", None)
    columns = [c for c in table.columns if id(c) not in kept]
    primary = {id(c) for c in getattr(getattr(table, "primary_key", None), "columns", ())}
    if not callable(remove) or any(id(c) in primary for c in columns):
        return "this SQLAlchemy version has no Table._columns.remove, or a new column is in the primary key"
    try:
        for name in ("constraints", "indexes", "foreign_keys"):
            collection = getattr(table, name)
            for part in [p for p in collection if id(p) not in kept]:
                collection.discard(part)
                forget = getattr(part, "_remove_from_metadata", None)  # a ForeignKey
                if callable(forget) and getattr(part, "parent", None) is not None:
                    forget(table.metadata)
        for column in columns:
            remove(column)
        reset = getattr(table, "_reset_memoizations", None)
        if callable(reset):
            reset()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _new_classes(change: ModuleChange) -> Iterator[type]:
    """Classes the failed run bound in the namespace (not there, as these objects, before)."""
    kept = {id(v) for v in change.old.values()}
    for value in list(change.new.values()):
        if is_a(value, type) and id(value) not in kept:
            yield value


def _take_back(change: ModuleChange, before: _Before) -> list[str]:
    """Put the registries and metadata back as ``before`` recorded them; what could not be."""
    problems = [  # a SQLAlchemy without registry._managers: told only when its mappers changed
        f"the new classes of {registry!r} could not be listed"
        for registry, mappers in before.unlisted
        if mappers is None or _public_mappers(registry) != mappers
    ]
    # The registries recorded: every class manager that is new is the failed run's.
    gone: list[tuple[Any, Any]] = []  # (registry, manager)
    for registry, kept in before.managers:
        ids = {id(m) for m in kept}
        gone += [(registry, m) for m in list(_managers(registry) or ()) if id(m) not in ids]
    # A registry first reached by the failed run (a new import, or a declarative base the
    # run made anew): only the classes the run bound are its own.
    recorded = {id(registry) for registry, _ in before.managers}
    new = {id(cls): cls for cls in _new_classes(change)}
    registry_type = _types()[0]
    for cls in new.values():
        registry = _attribute(cls, "registry")
        if _is(registry, registry_type) and id(registry) not in recorded:
            gone += [(registry, m) for m in list(_managers(registry) or ()) if id(m.class_) in new]
    for registry, manager in gone:
        name = getattr(getattr(manager, "class_", None), "__qualname__", "?")
        mapper = _mapper_of(manager)
        if mapper is not None and (problem := _unlink(mapper)) is not None:
            problems.append(f"{name}: {problem}")
        if (problem := _dispose(registry, manager)) is not None:
            problems.append(f"{name}: {problem}")
    for mapper, names in before.attributes:
        added = sorted((_attributes(mapper) or names) - names)
        if added:
            # a backref the failed run's mapper configuration (a query, configure_mappers())
            # gave a kept class, or a property it assigned to one: SQLAlchemy cannot un-map
            # one attribute of a mapped class ("Can't un-map individual mapped attributes")
            problems.append(
                f"{getattr(mapper.class_, '__qualname__', '?')} kept the attribute(s) {', '.join(added)} "
                "the failed run mapped on it (SQLAlchemy cannot un-map a single attribute)"
            )
    for polymorphic, then in before.polymorphic:
        if polymorphic != then or any(polymorphic[k] is not v for k, v in then.items()):
            polymorphic.clear()
            polymorphic.update(then)
    for metadata, tables in before.tables:
        for key, table in list(metadata.tables.items()):
            if key not in tables:
                try:
                    metadata.remove(table)  # public
                except Exception as exc:
                    problems.append(f"table {key}: {type(exc).__name__}: {exc}")
    for table, parts in before.parts:
        if (problem := _strip(table, parts)) is not None:
            problems.append(f"table {getattr(table, 'fullname', table)}: {problem}")
    return problems


class SQLAlchemyAdapter(BaseAdapter):
    frameworks = ("sqlalchemy",)

    def prepare(self, change: ModuleChange) -> str | None:
        change.notes[_NOTE] = _record(_reached(change.new))
        if change.strategy == "statements":
            return None
        # A whole run maps the module's classes again. In a registry the run makes anew
        # (its Base defined here) that gives new classes, compared in refuse(); in one
        # that outlives the run, SQLAlchemy would stop at the class statement ("Table
        # ... is already defined"): refused before anything runs.
        for name, value in list(change.new.items()):
            if _mapped(value) and value.__module__ == change.module.__name__ and _outlives(value, change):
                table = getattr(getattr(value, "__table__", None), "name", "?")
                why = change.strategy.partition(": ")[2] or "the module runs again as a whole"
                return (
                    f"SQLAlchemy model {change.module.__name__}.{name}: its class statement would run again "
                    f"({why}) and map it a second time in a registry that keeps it (table {table!r}); "
                    "restart to apply it (method edits apply live)"
                )
        return None

    def refuse(self, change: ModuleChange) -> str | None:
        for name, old, new in change.replaced():
            if not (_mapped(old) and _mapped(new)):
                continue
            before, after = _columns(old), _columns(new)
            if before != after:
                differ = sorted(set(before) ^ set(after)) + sorted(
                    k for k in set(before) & set(after) if before[k] != after[k]
                )
                return (
                    f"SQLAlchemy model {old.__module__}.{name}: column(s) {', '.join(differ)} changed; "
                    "this needs a migration and a restart"
                )
            had, has = _mapped_attributes(old), _mapped_attributes(new)
            if had != has:
                parts = [f"{a} added" for a in sorted(has - had)] + [
                    f"{a} removed" for a in sorted(had - has)
                ]
                return (
                    f"SQLAlchemy model {old.__module__}.{name}: mapped attribute(s) {', '.join(parts)} "
                    "(a relationship or another mapped property); the mapper was built for the old "
                    "ones: restart to apply it"
                )
            return (
                f"SQLAlchemy model {old.__module__}.{name}: its class statement would run again (a change "
                "outside its methods); restart to apply it (method edits apply live)"
            )
        return None

    def committed(self, change: ModuleChange) -> Iterable[str]:
        change.notes.pop(_NOTE, None)  # the kept objects it holds, let go of
        return ()

    def aborted(self, change: ModuleChange) -> None:
        before = change.notes.pop(_NOTE, None)
        if not isinstance(before, _Before):
            return
        for problem in _take_back(change, before):
            # a SQLAlchemy version whose internals moved: what is left is told, never raised
            logger.warning(
                "hotmod: %s: what SQLAlchemy registered during the failed reload could not all be "
                "taken back (%s); restart if its classes or tables misbehave",
                change.module.__name__,
                problem,
            )
