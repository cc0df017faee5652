"""The transaction's side of framework adapters: one call per hook, never fatal.

An adapter that raises is logged and reported as a warning; the reload goes on as if it
had no opinion. ``hotmod.adapters.active()`` decides which adapters take part (those
whose framework is imported), once per transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .adapters import Adapter, ModuleChange, active

__all__ = ["Hooks"]

if TYPE_CHECKING:
    from ._transaction import Unit

logger = logging.getLogger(__name__)


class Hooks:
    def __init__(self) -> None:
        self.adapters: list[Adapter] = active()
        self.changes: dict[int, ModuleChange] = {}
        self.warnings: list[str] = []

    def _change(self, unit: Unit) -> ModuleChange:
        change = self.changes.get(id(unit))
        if change is None:
            functions = (
                tuple(fn for _, fns, _ in unit.statements.targets for fn in fns) if unit.statements else ()
            )
            change = ModuleChange(unit.module, unit.path, unit.strategy, unit.snapshot, functions)
            self.changes[id(unit)] = change
        return change

    def _call(self, adapter: Adapter, hook: str, change: ModuleChange) -> object:
        try:
            return getattr(adapter, hook)(change)
        except Exception as exc:
            logger.exception("hotmod: %s.%s raised; ignored", type(adapter).__name__, hook)
            self.warnings.append(
                f"{change.module.__name__}: the {type(adapter).__name__} adapter's {hook} raised {exc!r}"
            )
            return None

    def prepare(self, unit: Unit) -> str | None:
        """Every adapter prepares; the first reason one gives refuses the unit before
        its new code runs (every adapter still prepared, so every one is told the abort)."""
        refusal: str | None = None
        for adapter in self.adapters:
            reason = self._call(adapter, "prepare", self._change(unit))
            if refusal is None and isinstance(reason, str) and reason:
                refusal = reason
        return refusal

    def refuse(self, units: Iterable[Unit]) -> tuple[Unit, str] | None:
        for unit in units:
            for adapter in self.adapters:
                reason = self._call(adapter, "refuse", self._change(unit))
                if isinstance(reason, str) and reason:
                    return unit, reason
        return None

    def aborted(self, units: Iterable[Unit]) -> None:
        for unit in units:
            for adapter in self.adapters:
                self._call(adapter, "aborted", self._change(unit))

    def committed(self, units: Iterable[Unit]) -> list[str]:
        found: list[str] = []
        for unit in units:
            for adapter in self.adapters:
                said = self._call(adapter, "committed", self._change(unit))
                if said:
                    found.extend(str(w) for w in said)  # type: ignore[attr-defined]
        return self.warnings + found
