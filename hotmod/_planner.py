"""Planning: which strategy reloads each module, and what a statement plan needs.

A ``Planner`` holds what statement plans carry from one reload to the next: the
parsed version each plan starts from (so the next one is parsed only where it differs),
and the definitions reloads removed (so one that comes back merges into its old object).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from . import _hot, _plan, _state, _statements, _transaction

__all__ = ["REMOVED_KEPT", "Planner", "Strategy"]

Strategy = Literal["statements", "module"]

# Removed definitions remembered per file, so that they can come back.
REMOVED_KEPT = 200


class Planner:
    def __init__(self, strategy: Strategy) -> None:
        self.strategy: Strategy = strategy
        # path -> (digest, parsed source) of the version each statement plan starts from
        self.parsed: dict[Path, tuple[bytes, _plan.Source]] = {}
        # path -> definitions a reload removed (name -> object): one that comes back (an
        # editor that truncates, then writes) merges into its old object
        self.removed: dict[Path, dict[str, object]] = {}

    def plan(self, unit: _transaction.Unit) -> None:
        """Give ``unit`` a statement plan when only what changed can run (see _plan)."""
        if self.strategy != "statements" or unit.source is None or unit.path is None:
            return
        if not _transaction.uses_plain_source_loader(unit.module):
            unit.strategy = "module: its loader runs it"
            return
        running = _state.running(unit.module)
        if running is None:
            unit.strategy = "module: what it ran before is not known exactly"
            return
        if running.digest == unit.source.digest:
            unit.strategy = "module: its source is unchanged; a file it depends on changed"
            return
        filename = str(unit.path)
        try:
            cached = self.parsed.get(unit.path)
            old = cached[1] if cached is not None and cached[0] == running.digest else None
            if old is None:
                old = _plan.Source(running.data, filename)
            # Parsed only where it differs from the old version (see _plan.Source).
            new = _plan.Source(unit.source.data, filename, previous=old)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # compiling reports it, with the file and line
        namespace = unit.module.__dict__
        hooks = _hot.has_hooks("dispose", unit.module, namespace) or _hot.has_hooks(
            "accept", unit.module, namespace
        )
        plan = _plan.make(old, new, filename, hooks)
        if plan.fallback is not None:
            unit.strategy = f"module: {plan.fallback}"
            return
        try:
            code = new.compile_changed()  # only the parsed (changed) statements
            unit.statements = _statements.prepare(plan, code, new.flags, unit.module, filename)
        except _statements.NotFound as exc:
            unit.strategy = f"module: {exc}"
            return
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        unit.new_names = new.bound_names()
        unit.strategy = "statements"
        self.parsed[unit.path] = (unit.source.digest, new)

    def revive(self, units: list[_transaction.Unit]) -> None:
        """Give each unit the removed definitions its new version defines again."""
        for unit in units:
            removed = self.removed.get(unit.path) if unit.path is not None else None
            if removed and unit.new_names is not None:
                unit.revive = {n: removed[n] for n in unit.new_names if n in removed}

    def remember(self, units: list[_transaction.Unit]) -> None:
        """After a commit: what was removed may come back; what came back is home."""
        for unit in units:
            if unit.path is not None and (unit.pruned or unit.revive):
                removed = self.removed.setdefault(unit.path, {})
                for name in unit.revive:
                    removed.pop(name, None)
                removed.update(unit.pruned)
                while len(removed) > REMOVED_KEPT:  # the oldest go first
                    del removed[next(iter(removed))]

    def forget(self, path: Path) -> None:
        self.removed.pop(path, None)
        self.parsed.pop(path, None)

    def clear(self) -> None:
        self.removed.clear()
        self.parsed.clear()
