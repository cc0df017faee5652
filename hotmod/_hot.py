"""The module side of a reload: state that survives, and hooks around each version.

``hot = hotmod.hot(__name__)`` gives a module its context. The context lives as long
as the module object (a weak mapping keyed by the module), so re-executing the module
finds the same one, and a module deleted from ``sys.modules`` takes its state with it.

Every execution of the module is a *version*. Handlers and declarations made while a
version runs belong to that version: the transaction collects the incoming version's
into a fresh set and only adopts them once the reload commits, so an aborted reload
leaves the running version's hooks exactly as they were, and handlers never pile up.

Without a Reloader nothing ever calls the hooks: ``keep`` runs its factory once,
decorators return the function unchanged. The context records what the module asked
for all the same, so a Reloader created after the import takes the module over with
its kept objects and its dispose hooks intact.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, Literal, TypeVar

from .errors import HotmodWarning

__all__ = [
    "DUNDER_DECLINE",
    "DUNDER_HOOKS",
    "DUNDER_KEEP",
    "KNOWN_DUNDERS",
    "Hook",
    "HookKind",
    "HotContext",
    "abandon",
    "adopt",
    "advance",
    "begin",
    "context_for",
    "declined",
    "depends_epoch",
    "existing_context",
    "has_hooks",
    "hot",
    "kept_names",
    "run_hooks",
    "unknown_dunder_warnings",
    "unknown_dunders",
    "unload",
]

logger = logging.getLogger(__name__)

HookKind = Literal["dispose", "accept", "unload"]
Hook = Callable[[dict[str, Any]], object]
_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

# Names a module may define to talk to hotmod without importing it.
DUNDER_KEEP = "__hotmod_keep__"
DUNDER_DECLINE = "__hotmod_decline__"
DUNDER_HOOKS: dict[HookKind, str] = {
    "dispose": "__hotmod_dispose__",
    "accept": "__hotmod_accept__",
    "unload": "__hotmod_unload__",
}
KNOWN_DUNDERS = frozenset({DUNDER_KEEP, DUNDER_DECLINE, *DUNDER_HOOKS.values()})

_LOCK = threading.Lock()
_CONTEXTS: weakref.WeakKeyDictionary[ModuleType, HotContext] = weakref.WeakKeyDictionary()
# Bumped whenever a version's data-file dependencies change, so reloaders look again
# only then (an idle poll stays O(1)).
_depends_epoch = 0


@dataclass(slots=True)
class _Version:
    """What one execution of the module registered."""

    hooks: dict[HookKind, list[Hook]] = field(
        default_factory=lambda: {"dispose": [], "accept": [], "unload": []}
    )
    decline: str | None = None
    depends: set[Path] = field(default_factory=set)
    generation: int = 0


class HotContext:
    """Per-module state and hooks; see ``hotmod.hot``."""

    def __init__(self, module: ModuleType | None, name: str) -> None:
        self.name = name
        self._module = weakref.ref(module) if module is not None else None
        self.data: dict[str, Any] = {}
        self._kept: dict[str, Any] = {}
        self._current = _Version()
        self._incoming: _Version | None = None
        self._disposing = False

    def __repr__(self) -> str:
        return f"<hotmod.hot {self.name!r} generation={self.generation}>"

    @property
    def _version(self) -> _Version:
        """The version whose code is running: the incoming one while it executes."""
        if self._incoming is not None and not self._disposing:
            return self._incoming
        return self._current

    @property
    def generation(self) -> int:
        """0 for the first load, +1 per successful reload (as seen by the running version)."""
        return self._version.generation

    # -- state ---------------------------------------------------------------------

    def keep(self, key: str, factory: Callable[[], _T]) -> _T:
        """The object kept under ``key``; ``factory()`` makes it on the first call only."""
        try:
            return self._kept[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        value = factory()
        # Kept even if the rest of this execution fails: a connection opened once
        # must not be opened again by the next attempt.
        return self._kept.setdefault(key, value)  # type: ignore[no-any-return]

    def forget(self, key: str) -> None:
        """Drop a kept object: the next ``keep(key, ...)`` calls its factory again."""
        self._kept.pop(key, None)

    # -- hooks -------------------------------------------------------------------------

    def on_dispose(self, fn: _F) -> _F:
        """Run ``fn(data)`` on this version when a new version has executed without error."""
        self._version.hooks["dispose"].append(fn)
        return fn

    def on_accept(self, fn: _F) -> _F:
        """Run ``fn(data)`` after this version replaced the previous one (not on first load)."""
        self._version.hooks["accept"].append(fn)
        return fn

    def on_unload(self, fn: _F) -> _F:
        """Run ``fn(data)`` when the module is removed for good."""
        self._version.hooks["unload"].append(fn)
        return fn

    def decline(self, reason: str = "declined by the module") -> None:
        """Changes to this module report ``needs_restart`` with ``reason`` instead of applying."""
        self._version.decline = str(reason)

    def depends_on(self, path: str | os.PathLike[str]) -> Path:
        """Re-execute this module when the file at ``path`` changes (relative: to the module).

        Returns the resolved path, so ``json.loads(hot.depends_on("cfg.json").read_text())``
        reads and declares in one go.
        """
        global _depends_epoch
        resolved = Path(path)
        if not resolved.is_absolute():
            resolved = self._directory() / resolved
        resolved = Path(os.path.realpath(resolved))
        with _LOCK:
            if resolved not in self._version.depends:
                self._version.depends.add(resolved)
                _depends_epoch += 1
        return resolved

    def _directory(self) -> Path:
        module = self._module() if self._module is not None else None
        origin = getattr(module, "__file__", None)
        return Path(origin).parent if isinstance(origin, str) else Path.cwd()

    # -- queries used by the reloader --------------------------------------------------

    @property
    def declined(self) -> str | None:
        return self._current.decline

    @property
    def depends(self) -> frozenset[Path]:
        return frozenset(self._current.depends)


def hot(name: str) -> HotContext:
    """The hot context of module ``name`` (call it as ``hotmod.hot(__name__)``).

    The same object for every version of the module. When no Reloader manages the
    module its hooks are simply never called, so code using it runs unchanged in
    production.
    """
    module = sys.modules.get(name)
    if not isinstance(module, ModuleType):
        return HotContext(None, name)  # not a loaded module: a context nothing will call
    return context_for(module)


def context_for(module: ModuleType) -> HotContext:
    with _LOCK:
        context = _CONTEXTS.get(module)
        if context is None:
            context = _CONTEXTS[module] = HotContext(module, module.__name__)
        return context


def existing_context(module: ModuleType) -> HotContext | None:
    return _CONTEXTS.get(module)


def depends_epoch() -> int:
    return _depends_epoch


# -- the transaction's side ------------------------------------------------------------


def begin(modules: Iterable[ModuleType]) -> None:
    """New versions are about to execute: collect their registrations apart."""
    for module in modules:
        context = context_for(module)
        context._incoming = _Version(generation=context._current.generation + 1)


def abandon(modules: Iterable[ModuleType]) -> None:
    """The reload was aborted: the running versions keep their hooks."""
    global _depends_epoch
    for module in modules:
        context = _CONTEXTS.get(module)
        if context is not None and context._incoming is not None:
            if context._incoming.depends:
                _depends_epoch += 1
            context._incoming = None


def adopt(modules: Iterable[ModuleType]) -> None:
    """The reload committed: the incoming versions become the running ones."""
    global _depends_epoch
    for module in modules:
        context = _CONTEXTS.get(module)
        if context is None or context._incoming is None:
            continue
        if context._incoming.depends != context._current.depends:
            _depends_epoch += 1
        context._current, context._incoming = context._incoming, None


def advance(modules: Iterable[ModuleType]) -> None:
    """A statement reload committed: the running version stays (its hooks and
    dependencies), one generation on."""
    for module in modules:
        context = _CONTEXTS.get(module)
        if context is not None:
            context._current.generation += 1


def _handlers(kind: HookKind, module: ModuleType, namespace: dict[str, Any]) -> list[Hook]:
    """The running version's handlers of one kind, its ``__hotmod_<kind>__`` last."""
    context = _CONTEXTS.get(module)
    handlers: list[Hook] = list(context._current.hooks[kind]) if context is not None else []
    dunder = namespace.get(DUNDER_HOOKS[kind])
    if callable(dunder):
        handlers.append(dunder)
    return handlers


def has_hooks(kind: HookKind, module: ModuleType, namespace: dict[str, Any]) -> bool:
    return bool(_handlers(kind, module, namespace))


def run_hooks(kind: HookKind, module: ModuleType, namespace: dict[str, Any]) -> list[str]:
    """Run one kind of hook of a module's running version; return a warning per failure.

    ``namespace`` supplies the ``__hotmod_<kind>__`` function of that version (for
    dispose, the snapshot taken before the new code ran).
    """
    handlers = _handlers(kind, module, namespace)
    context = context_for(module)
    problems: list[str] = []
    for handler in handlers:
        context._disposing = kind == "dispose"  # it sees its own version's generation
        try:
            handler(context.data)
        except (Exception, SystemExit) as exc:
            # As for module code: sys.exit() in a hook must not end the applying thread,
            # nor leave the reload half committed. Ctrl-C still propagates.
            where = _where(handler)
            label = getattr(handler, "__qualname__", repr(handler))
            message = f"{module.__name__}: {kind} hook {label} ({where}) raised {type(exc).__name__}: {exc}"
            logger.exception("%s", message)
            problems.append(message)
        finally:
            context._disposing = False
    return problems


def _where(fn: object) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return "?"
    return f"{code.co_filename}:{code.co_firstlineno}"


def declined(module: ModuleType) -> str | None:
    """Why ``module``'s running version refuses live reload, or None."""
    context = _CONTEXTS.get(module)
    if context is not None and context.declined is not None:
        return context.declined
    value = module.__dict__.get(DUNDER_DECLINE)
    if value:
        return value if isinstance(value, str) else "declined by the module (__hotmod_decline__)"
    return None


def kept_names(namespace: dict[str, Any]) -> tuple[str, ...]:
    names = namespace.get(DUNDER_KEEP)
    if isinstance(names, str):
        return (names,)
    if isinstance(names, (tuple, list, set, frozenset)):
        return tuple(n for n in names if isinstance(n, str))
    return ()


def unknown_dunders(namespace: dict[str, Any]) -> list[str]:
    return sorted(
        n for n in list(namespace) if n.startswith("__hotmod") and n.endswith("__") and n not in KNOWN_DUNDERS
    )


def unknown_dunder_warnings(namespace: dict[str, Any], code: CodeType | None, path: Path | None) -> list[str]:
    """A misspelt ``__hotmod_*__`` name must not be ignored silently: warn at its line."""
    messages = []
    for name in unknown_dunders(namespace):
        line = _binding_line(code, name) if code is not None else None
        where = f"{path}:{line}" if path is not None and line is not None else str(path or "?")
        known = ", ".join(sorted(KNOWN_DUNDERS))
        message = f"{where}: {name} is not a name hotmod knows (known: {known}); it is ignored"
        messages.append(message)
        try:
            warnings.warn_explicit(message, HotmodWarning, str(path or "<unknown>"), line or 0)
        except Warning:  # warnings turned into errors must not break the reload
            logger.warning("%s", message)
    return messages


def _binding_line(code: CodeType, name: str) -> int | None:
    import dis  # only when a misspelt name was found: not worth its import time otherwise

    for instruction in dis.get_instructions(code):
        if instruction.opname in ("STORE_NAME", "STORE_GLOBAL") and instruction.argval == name:
            return instruction.positions.lineno if instruction.positions else None
    return None


def unload(module: ModuleType) -> list[str]:
    """The module is removed for good: run its unload hooks and drop its context."""
    problems = run_hooks("unload", module, module.__dict__)
    with _LOCK:
        _CONTEXTS.pop(module, None)
    return problems
