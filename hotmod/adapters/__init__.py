"""Framework adapters: hooks around a reload for frameworks whose structures it touches.

An adapter is any object with the attributes of :class:`Adapter` (a ``typing.Protocol``):
the frameworks it serves, and hooks the transaction calls for every module of a batch:

- ``prepare(change)`` before the new code runs (a framework that refuses late changes
  can be told to accept them); a reason returned refuses the change before any of its code
  runs (``needs_restart``): for a run the framework is known to reject;
- ``refuse(change)`` after it ran, before the commit: a reason makes the reload
  ``needs_restart`` (nothing is applied) - a change the framework cannot take in place;
- ``committed(change)`` after the commit: bring the framework's own caches up to date;
  returns warnings for the result;
- ``aborted(change)`` after a failed or refused run: undo what the run registered with
  the framework.

Built-in adapters cover pydantic, Django, SQLAlchemy, Starlette/FastAPI, Flask, click/typer
and Celery. Third parties add theirs through the ``hotmod.adapters`` entry-point group::

    [project.entry-points."hotmod.adapters"]
    myframework = "mypkg.hotmod_adapter:Adapter"

An adapter is loaded (and its entry point imported) only while one of its frameworks is
in ``sys.modules``: hotmod imports no framework, and a process without one pays nothing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)

__all__ = ["Adapter", "BaseAdapter", "ModuleChange"]


@dataclass(slots=True)
class ModuleChange:
    """One module of a reload, as adapters see it."""

    module: ModuleType
    path: Path | None
    strategy: str  # "statements", or "module: <why>"
    old: Mapping[str, Any]  # the namespace before the reload (a snapshot)
    functions: tuple[FunctionType, ...] = ()  # functions that got new code in place
    #: what the adapters' hooks leave for later hooks of the same reload
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def new(self) -> Mapping[str, Any]:
        """The namespace now: the new version (before the commit) or the kept one."""
        return self.module.__dict__

    def replaced(self) -> Iterator[tuple[str, Any, Any]]:
        """(name, old object, new object) of the names the new code bound to a new object."""
        new = self.module.__dict__
        for name, old in list(self.old.items()):
            value = new.get(name, old)
            if value is not old:
                yield name, old, value


@runtime_checkable
class Adapter(Protocol):
    """What hotmod asks of a framework adapter (every hook is optional to act on)."""

    #: top-level module names; the adapter is consulted only while one is imported
    frameworks: tuple[str, ...]

    def prepare(self, change: ModuleChange) -> str | None: ...

    def refuse(self, change: ModuleChange) -> str | None: ...

    def committed(self, change: ModuleChange) -> Iterable[str]: ...

    def aborted(self, change: ModuleChange) -> None: ...


class BaseAdapter:
    """Hooks that do nothing: subclass and override what the framework needs."""

    frameworks: tuple[str, ...] = ()

    def prepare(self, change: ModuleChange) -> str | None:
        return None

    def refuse(self, change: ModuleChange) -> str | None:
        return None

    def committed(self, change: ModuleChange) -> Iterable[str]:
        return ()

    def aborted(self, change: ModuleChange) -> None:
        return None


# (frameworks, "module:attribute") of the built-in adapters, imported on first need.
_BUILTIN: tuple[tuple[tuple[str, ...], str], ...] = (
    (("pydantic",), "hotmod.adapters._pydantic:PydanticAdapter"),
    (("django",), "hotmod.adapters._django:DjangoAdapter"),
    (("starlette", "fastapi"), "hotmod.adapters._starlette:StarletteAdapter"),
    (("flask",), "hotmod.adapters._flask:FlaskAdapter"),
    (("sqlalchemy",), "hotmod.adapters._sqlalchemy:SQLAlchemyAdapter"),
    (("click", "typer"), "hotmod.adapters._click:ClickAdapter"),
    (("celery",), "hotmod.adapters._celery:CeleryAdapter"),
)

_loaded: dict[str, Adapter | None] = {}
_entry_points: list[tuple[str, Any]] | None = None


def _load(target: str) -> Adapter | None:
    if target in _loaded:
        return _loaded[target]
    module_name, _, attribute = target.partition(":")
    adapter: Adapter | None = None
    try:
        module = __import__(module_name, fromlist=[attribute])
        made = getattr(module, attribute)
        adapter = made() if isinstance(made, type) else made
    except Exception:
        logger.exception("hotmod: the framework adapter %s could not be loaded; it is skipped", target)
    _loaded[target] = adapter
    return adapter


def _third_party() -> list[tuple[str, Any]]:
    """The ``hotmod.adapters`` entry points (read once, loaded only when needed)."""
    global _entry_points
    if _entry_points is None:
        try:
            from importlib.metadata import entry_points

            _entry_points = [(ep.value, ep) for ep in entry_points(group="hotmod.adapters")]
        except Exception:
            logger.exception("hotmod: reading the hotmod.adapters entry points failed")
            _entry_points = []
    return _entry_points


def active() -> list[Adapter]:
    """The adapters whose frameworks are imported now."""
    found: list[Adapter] = []
    for frameworks, target in _BUILTIN:
        if any(name in sys.modules for name in frameworks):
            adapter = _load(target)
            if adapter is not None:
                found.append(adapter)
    for value, entry_point in _third_party():
        if value not in _loaded:
            try:
                made = entry_point.load()
                _loaded[value] = made() if isinstance(made, type) else made
            except Exception:
                logger.exception("hotmod: the framework adapter %s could not be loaded; it is skipped", value)
                _loaded[value] = None
        adapter = _loaded[value]
        if adapter is not None and any(name in sys.modules for name in getattr(adapter, "frameworks", ())):
            found.append(adapter)
    return found
