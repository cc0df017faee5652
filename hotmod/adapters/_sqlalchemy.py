"""SQLAlchemy 2: a mapped class statement that runs again is refused, and leaves nothing behind.

The mapper, the table and every relationship were built for the kept class; a new class
statement for the same table would need a new mapping (and, for a column change, a
migration). So a reload that would run a mapped class statement again is refused with
``needs_restart`` naming the class and the columns that differ; methods, properties and
hybrid properties apply in place through statement reloads, which never run the class
statement. A run that failed or was refused after SQLAlchemy registered its new classes
takes them out of the declarative registry again (a second ``User`` there makes every
query by name fail with "Multiple classes found").
"""

from __future__ import annotations

import contextlib
from typing import Any

from . import BaseAdapter, ModuleChange

__all__ = ["SQLAlchemyAdapter"]


def _mapped(value: object) -> bool:
    return issubclass(type(value), type) and "__mapper__" in dir(value) and hasattr(value, "registry")


def _columns(cls: Any) -> dict[str, str]:
    table = getattr(cls, "__table__", None)
    columns = getattr(table, "columns", None)
    if columns is None:
        return {}
    return {c.key: f"{c.type!r}, nullable={c.nullable}, primary_key={c.primary_key}" for c in columns}


class SQLAlchemyAdapter(BaseAdapter):
    frameworks = ("sqlalchemy",)

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
            return (
                f"SQLAlchemy model {old.__module__}.{name}: its class statement would run again (a change "
                "outside its methods); restart to apply it (method edits apply live)"
            )
        return None

    def aborted(self, change: ModuleChange) -> None:
        kept = {id(v) for v in change.old.values()}
        for value in list(change.new.values()):
            if _mapped(value) and id(value) not in kept:
                registry = getattr(value, "registry", None)
                dispose = getattr(registry, "_dispose_cls", None)
                if callable(dispose):  # the registry's own way to forget one class
                    with contextlib.suppress(Exception):
                        dispose(value)
