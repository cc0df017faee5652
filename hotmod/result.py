"""The outcome of one reload transaction, and running totals over many."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["STATUSES", "ReloadResult", "ReloadStats", "Status", "combine"]

Status = Literal["ok", "noop", "aborted", "failed", "needs_restart"]
STATUSES: tuple[Status, ...] = ("ok", "noop", "aborted", "failed", "needs_restart")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one ``poll()`` or ``reload()`` did.

    ``status`` is one of:

    - ``"ok"``: every changed module was re-executed and committed;
    - ``"noop"``: nothing to do (no change, or only changes already reported);
    - ``"aborted"``: compiling or executing the new code raised; every module of the
      batch was restored and the previous version keeps running;
    - ``"failed"``: a changed file could not be read (deleted, unreadable, not a file);
      nothing was applied;
    - ``"needs_restart"``: the batch holds a change that cannot be applied in place
      (``__main__``, a C extension, a declined module); nothing was applied.
    """

    status: Status
    modules: tuple[str, ...] = ()
    paths: tuple[Path, ...] = ()
    error: BaseException | None = None
    warnings: tuple[str, ...] = ()
    duration: float = 0.0
    functions_patched: int = 0
    classes_patched: int = 0
    classes_replaced: int = 0
    references_rebound: int = 0
    names_pruned: int = 0
    #: (module, how it was reloaded) for each module: ``"statements"`` when only what
    #: changed ran, or ``"module: <why>"`` when its whole code ran again, with the file
    #: and line of the statement that required it
    strategies: tuple[tuple[str, str], ...] = ()
    #: frames (of any thread) still executing code this reload replaced, as
    #: ``"function (file:old line) in thread name"``: they finish in the old code (CPython
    #: cannot swap a running frame's code); their next call runs the new one
    stale_frames: tuple[str, ...] = ()
    #: closures made before the edit and held elsewhere (a handler a factory returned),
    #: which keep the old code, as ``"qualname (file:line): N made before the edit"``;
    #: looked for by ``reload_now()`` and the debugger's request only
    stale_closures: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "noop")

    def summary(self) -> str:
        """One human-readable line, as logged."""
        ms = self.duration * 1000
        names = ", ".join(self.modules) or ", ".join(p.name for p in self.paths) or "nothing"
        if self.status == "ok":
            return f"reloaded {names} in {ms:.1f} ms"
        if self.status == "noop":
            return "no change"
        if self.status == "needs_restart":
            # The refused module, not the whole batch: the others apply on the next poll.
            refused = getattr(self.error, "module", None) or names
            return f"{refused} needs a restart: {self.error}"
        verb = "aborted" if self.status == "aborted" else "failed"
        return f"reload of {names} {verb}, previous version kept: {self.error}"

    def report(self) -> str:
        """The summary and every counter, as a debugger's hot-reload report shows them."""
        counters = (
            f"{len(self.modules)} module(s) reloaded, {self.functions_patched} function(s) patched, "
            f"{self.classes_patched} class(es) patched, {self.classes_replaced} replaced, "
            f"{self.references_rebound} reference(s) rebound, {self.names_pruned} name(s) pruned, "
            f"{len(self.warnings)} warning(s), {len(self.stale_frames)} stale frame(s)"
        )
        lines = [self.summary(), counters, *(f"{m}: {how}" for m, how in self.strategies)]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"still running old code: {f}" for f in self.stale_frames]
        lines += [f"closure keeps old code: {c}" for c in self.stale_closures]
        return "\n".join(lines)


# Which status a result made of several keeps: the most serious one.
_SEVERITY: Mapping[Status, int] = {"noop": 0, "ok": 1, "needs_restart": 2, "failed": 3, "aborted": 3}


def combine(results: Iterable[ReloadResult]) -> ReloadResult:
    """One result for several transactions (a poll of many plugins, every reloader at once)."""
    items = [r for r in results if r.status != "noop"]
    if not items:
        return ReloadResult("noop")
    if len(items) == 1:
        return items[0]
    worst = max(items, key=lambda r: _SEVERITY[r.status])
    return ReloadResult(
        worst.status,
        tuple(dict.fromkeys(m for r in items for m in r.modules)),
        tuple(dict.fromkeys(p for r in items for p in r.paths)),
        next((r.error for r in items if r.error is not None), None),
        tuple(w for r in items for w in r.warnings),
        duration=sum(r.duration for r in items),
        functions_patched=sum(r.functions_patched for r in items),
        classes_patched=sum(r.classes_patched for r in items),
        classes_replaced=sum(r.classes_replaced for r in items),
        references_rebound=sum(r.references_rebound for r in items),
        names_pruned=sum(r.names_pruned for r in items),
        strategies=tuple(s for r in items for s in r.strategies),
        stale_frames=tuple(f for r in items for f in r.stale_frames),
        stale_closures=tuple(c for r in items for c in r.stale_closures),
    )


_NO_COUNTS: Mapping[Status, int] = {s: 0 for s in STATUSES}


@dataclass(frozen=True, slots=True)
class ReloadStats:
    """Running totals of a reloader, for diagnostics and dashboards."""

    counts: Mapping[Status, int] = field(default_factory=lambda: dict(_NO_COUNTS))
    total_duration: float = 0.0
    max_duration: float = 0.0
    last: ReloadResult | None = None
    tracked_modules: int = 0
    watched_dirs: int = 0
    polled_dirs: int = 0

    @property
    def reloads(self) -> int:
        """Transactions that did something (every status but ``noop``)."""
        return sum(n for s, n in self.counts.items() if s != "noop")
