"""The engine: one batch of changed files, planned, executed in one transaction, committed.

``Engine.apply`` reads the changed files, skips what did not change (by content), brings
in the modules that depend on a changed data file, plans each module (``_planner``),
refuses what cannot be applied in place (``needs_restart``), and runs the transaction
(``_transaction``) with the importers' copies rebound before the accept hooks. It keeps
the running totals and reports each result once.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Literal

from . import _frames, _hot, _state, _transaction
from ._changes import ChangeQueue
from ._filters import PathFilter
from ._module_index import ModuleIndex, is_extension, module_origin
from ._planner import Planner, Strategy
from ._source import Source, compile_source, imported_modules
from ._tracking import FileState, Tracker
from ._trust import Untrusted
from ._watch import Watcher
from .errors import HotmodError, ReloadError
from .result import STATUSES, ReloadResult, ReloadStats, Status

__all__ = ["IDLE", "Dependents", "Engine", "results_logger"]

logger = logging.getLogger(__name__)
# One line per result, under the name hosts and users filter and configure.
results_logger = logging.getLogger("hotmod.reloader")

Dependents = Literal["rebind", "reexec"]

IDLE = ReloadResult("noop")

# A read failing with one of these means the file is not there: deleted, or its folder
# replaced by a file.
_GONE = (FileNotFoundError, NotADirectoryError)


def _shared(value: object) -> bool:
    """Values two modules can hold as one object without either importing it from the
    other: ``None``, booleans, small ints and interned strings are the same object
    wherever they are written. A copy of such a value proves no import."""
    return value is None or isinstance(value, (bool, int, float, str, bytes, complex))


class Engine:
    """Applies batches of changes for one reloader (always under the reload lock)."""

    def __init__(
        self,
        path_filter: PathFilter,
        read: Callable[[Path], Source],
        queue: ChangeQueue,
        watcher: Watcher,
        *,
        strategy: Strategy,
        debounce: float,
        dependents: Dependents,
        before_commit: Callable[[list[_transaction.Unit]], ReloadError | None] | None,
    ) -> None:
        self.planner = Planner(strategy)
        self.tracker = Tracker(ModuleIndex(path_filter), read, queue, watcher, self.planner.forget)
        self.queue = queue
        self.filter = path_filter
        self.read = read
        self.debounce = debounce
        self.dependents = dependents
        # A plugin folder runs setup/teardown between execution and commit.
        self.before_commit = before_commit
        self.namespaces: list[dict[str, object]] = []
        self.reported: frozenset[tuple[Path, bytes | str]] = frozenset()
        self._counts: dict[Status, int] = dict.fromkeys(STATUSES, 0)
        self._total = 0.0
        self._max = 0.0
        self._last: ReloadResult | None = None

    def reload_target(self, target: ModuleType | str | os.PathLike[str]) -> ReloadResult:
        """Re-execute one module (object, dotted name or file path), changed or not."""
        started = time.perf_counter()
        units, path = self.units_for_target(target)
        source = None
        # Zip imports and custom loaders read their own source in exec_module.
        if path is not None and _transaction.uses_plain_source_loader(units[0].module):
            try:
                source = self.read(path)
            except OSError as exc:
                return self.finish(self.read_failure(path, exc, units[0].name), started)
            for unit in units:
                unit.source = source
        return self.transact(units, {path: source} if path and source else {}, started, dedupe=False)

    def stats(self, tracked: int, watched: int, polled: int) -> ReloadStats:
        return ReloadStats(
            counts=dict(self._counts),
            total_duration=self._total,
            max_duration=self._max,
            last=self._last,
            tracked_modules=tracked,
            watched_dirs=watched,
            polled_dirs=polled,
        )

    def apply(self, ready: list[Path], waited: set[Path]) -> ReloadResult:
        started = time.perf_counter()
        batch = [p for p in ready if p in self.tracker.files]
        if not batch:
            return IDLE
        sources: dict[Path, Source] = {}
        failures: list[tuple[Path, OSError]] = []
        changed = set(batch)
        for path in sorted(changed | self.tracker.dirty):
            state = self.tracker.files[path]
            try:
                source = self.read(path)
            except OSError as exc:
                if path not in changed:
                    # Carried over from the poll that reported it: it joins a batch again
                    # once it can be read, and meanwhile holds up no other file's edit.
                    continue
                if self._should_wait(path, waited, state):
                    continue
                if isinstance(exc, _GONE):
                    state.missing = True  # each of them: files deleted together are reported once
                failures.append((path, exc))
                continue
            if source.empty and self._should_wait(path, waited, state):
                continue
            # What runs is what the last reloader to apply this file applied, whichever.
            state.digest = self.tracker.running_digest(path, state.digest)
            if source.digest in (state.digest, state.refused):
                # A touch, an edit reverted to what is running, or content whose change
                # was already reported as needing a restart.
                self.tracker.dirty.discard(path)
                state.missing = False
                logger.debug("%s: content unchanged", path)
                continue
            sources[path] = source
        if failures:
            first_path, first_exc = failures[0]
            self.tracker.dirty.update(sources)
            self.tracker.dirty.update(p for p, _ in failures)
            key = frozenset((p, f"{type(e).__name__}") for p, e in failures) | self._keys(sources)
            name = (self.tracker.names_for(first_path) or ["?"])[0]
            return self.finish(self.read_failure(first_path, first_exc, name), started, key)
        if not sources:
            return self.finish(ReloadResult("noop"), started)
        # A changed data file re-executes the modules that depend on it.
        for path in list(sources):
            for name in sorted(self.tracker.data_deps.get(path, ())):
                module_path = self.tracker.modules.path_by_name.get(name)
                if module_path is None or module_path in sources:
                    continue
                try:
                    sources[module_path] = self.read(module_path)
                except OSError:
                    continue  # the module's own file will report itself
        units: list[_transaction.Unit] = []
        for path, source in sources.items():
            state = self.tracker.files[path]
            for name, module in self.tracker.modules.modules_for(path):
                units.append(
                    _transaction.Unit(name, module, path, source, self.tracker.old_names(path, state))
                )
        for unit in units:
            self.planner.plan(unit)
        if self.dependents == "reexec":
            units.extend(self._importers_of(units))  # their whole code runs again
        return self.transact(units, sources, started)

    def transact(
        self,
        units: list[_transaction.Unit],
        sources: Mapping[Path, Source],
        started: float,
        *,
        dedupe: bool = True,
    ) -> ReloadResult:
        key = self._keys(sources) if dedupe else None
        names = tuple(u.name for u in units)
        paths = tuple(sources)
        refusal = next((r for u in units if (r := self._refusal(u))), None)
        if refusal is not None:
            unit, reason = refusal
            for path, source in sources.items():
                # Reported once; the other files of the batch apply on the next poll.
                if any(u.path == path and self._refusal(u) for u in units):
                    self.tracker.files[path].refused = source.digest
                    self.tracker.dirty.discard(path)
                else:
                    self.tracker.dirty.add(path)
                    self.queue.push((path,), settled=True)
            error = ReloadError(reason, module=unit.name, path=unit.path)
            return self.finish(ReloadResult("needs_restart", names, paths, error), started, key)
        compile_error = _transaction.compile_units(units)
        self.planner.revive(units)
        if compile_error is not None:
            outcome = _transaction.Outcome(compile_error)
        else:
            reloaded = {u.name for u in units}
            outcome = _transaction.execute(
                _transaction.dependency_order(units),
                self.before_commit,
                lambda done: self._rebind_importers(done.rebound, done.replaced, reloaded),
            )
        if outcome.error is not None and outcome.needs_restart is not None:
            # A framework cannot take this change in place: reported once, as a refusal.
            for path, source in sources.items():
                self.tracker.files[path].refused = source.digest
                self.tracker.dirty.discard(path)
            result = ReloadResult("needs_restart", names, paths, outcome.error, tuple(outcome.warnings))
            return self.finish(result, started, key)
        if outcome.error is not None:
            self.tracker.dirty.update(sources)
            return self.finish(
                ReloadResult("aborted", names, paths, outcome.error, tuple(outcome.warnings)), started, key
            )
        self.planner.remember(units)
        for path, source in sources.items():
            state = self.tracker.files.get(path)
            if state is None:
                continue
            state.digest = source.digest
            state.missing = False
            state.names = next((u.new_names for u in units if u.path == path), None)
            self.tracker.dirty.discard(path)
            for _, module in self.tracker.modules.modules_for(path):
                _state.set_running(module, source.data, source.digest, "applied")
        report = outcome.report
        notes = tuple(self.tracker.notes.pop(p) for p in sources if p in self.tracker.notes)
        result = ReloadResult(
            "ok",
            names,
            paths,
            None,
            notes + tuple(outcome.warnings),
            functions_patched=report.functions_patched,
            classes_patched=report.classes_patched,
            classes_replaced=report.classes_replaced,
            references_rebound=outcome.importers_rebound + report.references_rebound,
            names_pruned=outcome.names_pruned,
            strategies=tuple((u.name, u.strategy) for u in units),
        )
        # Frames left in the replaced code are reported; the .pyc no longer matches the file.
        result = _frames.after_commit(result, [u.module for u in units])
        return self.finish(result, started)

    def _rebind_importers(
        self,
        changes: list[tuple[str, object, object]],
        replaced: Mapping[int, tuple[object, object]],
        reloaded: set[str],
    ) -> int:
        """Point ``from m import x`` copies in other tracked modules at the new value.

        A copy is rebound only while it is still the old object (an importer that rebound
        the name itself keeps its choice), and under the same name: ``f = foo`` becoming
        ``f = bar`` moves importers' ``f``, never their ``foo``. A definition that could
        not be updated in place (a replaced class) is followed under any name.
        """
        if (not changes and not replaced) or self.dependents == "reexec":
            return 0
        by_name: dict[str, tuple[object, object]] = {name: (old, new) for name, old, new in changes}
        count = 0
        for name, namespace in self._importer_namespaces():
            for key, value in list(namespace.items()):
                hit = by_name.get(key)
                if hit is None or hit[0] is not value:
                    hit = replaced.get(id(value))
                    if hit is None or hit[0] is not value:
                        continue
                elif _shared(value) and name is not None and not self._imports_any(name, reloaded):
                    continue  # its own ``DEBUG = False``, not a copy of the reloaded one's
                namespace[key] = hit[1]
                count += 1
        return count

    def _importer_namespaces(self) -> Iterable[tuple[str | None, dict[str, object]]]:
        """(module name, globals) of the tracked modules; (None, namespace) for added ones.

        The batch's own modules are included: one that ran before the module it imports
        from (a package and its submodules import each other) copied the old value.
        """
        for name in list(self.tracker.modules.path_by_name):
            module = sys.modules.get(name)
            if isinstance(module, ModuleType):
                yield name, module.__dict__
        for namespace in self.namespaces:
            yield None, namespace

    def _imports_any(self, name: str, modules: set[str]) -> bool:
        """Whether tracked module ``name``'s top-level code imports one of ``modules``."""
        path = self.tracker.modules.path_by_name.get(name)
        module = sys.modules.get(name)
        if path is None or path not in self.tracker.files or not isinstance(module, ModuleType):
            return True  # unknown: keep rebinding as before
        try:
            source = self.read(path)
        except OSError:
            return True
        return bool(self._imports_of(path, source, module) & modules)

    def finish(
        self, result: ReloadResult, started: float, key: frozenset[tuple[Path, bytes | str]] | None = None
    ) -> ReloadResult:
        if key is not None:
            # The same broken content is reported once: an unchanged failure is a noop.
            if key == self.reported:
                result = ReloadResult("noop", paths=result.paths)
            self.reported = key
        else:
            self.reported = frozenset()
        result = replace(result, duration=time.perf_counter() - started)
        self._counts[result.status] += 1
        self._total += result.duration
        self._max = max(self._max, result.duration)
        self._last = result
        if result.status == "ok":
            results_logger.info("%s", result.summary(), extra={"hotmod_result": result})
        elif result.status != "noop":
            results_logger.warning("%s", result.summary(), extra={"hotmod_result": result})
        return result

    def _should_wait(self, path: Path, waited: set[Path], state: FileState) -> bool:
        """A file briefly missing or empty mid-save is looked at again after settling."""
        if path in waited or self.debounce <= 0 or state.missing:
            return False
        self.queue.defer(path)
        return True

    @staticmethod
    def _keys(sources: Mapping[Path, Source]) -> frozenset[tuple[Path, bytes | str]]:
        return frozenset((p, s.digest) for p, s in sources.items())

    def read_failure(self, path: Path, exc: OSError, name: str) -> ReloadResult:
        state = self.tracker.files.get(path)
        if isinstance(exc, _GONE):
            if state is not None:
                state.missing = True
            reason = "was deleted; the loaded version keeps running"
        elif isinstance(exc, IsADirectoryError):
            reason = "is no longer a file; the loaded version keeps running"
        elif isinstance(exc, Untrusted):
            reason = f"is refused ({exc}); the loaded version keeps running"
        elif isinstance(exc, PermissionError):
            reason = "cannot be read (permission denied); the loaded version keeps running"
        else:
            reason = f"cannot be read ({exc.strerror or exc}); the loaded version keeps running"
        error = ReloadError(f"{path}: {reason}", module=name, path=path)
        error.__cause__ = exc
        return ReloadResult("failed", (), (path,), error)

    def _refusal(self, unit: _transaction.Unit) -> tuple[_transaction.Unit, str] | None:
        where = unit.path or unit.name
        if unit.name == "__main__":
            return unit, (
                f"{where} is the running __main__ script; it cannot be re-executed in place. "
                "Restart the program to run the edited script (edits to the modules it imports apply live)."
            )
        if unit.path is not None and is_extension(unit.path):
            return (
                unit,
                f"{where} is a compiled extension module ({unit.name}); restart to load the rebuilt file.",
            )
        reason = _hot.declined(unit.module)
        if reason is not None:
            return unit, f"{where}: {unit.name} declines live reload ({reason}); restart to apply the change."
        pattern = self.filter.exclusion(unit.path) if unit.path is not None else None
        if pattern is not None:
            return unit, (
                f"{where}: {unit.name} is excluded from live reload (exclude pattern {pattern!r}); "
                "restart to apply the change."
            )
        return None

    def _importers_of(self, units: list[_transaction.Unit]) -> list[_transaction.Unit]:
        """Tracked modules whose top-level imports name a module of the batch."""
        changed = {u.name for u in units}
        extra: list[_transaction.Unit] = []
        for path in list(self.tracker.modules.names_by_path):
            for name, module in self.tracker.modules.modules_for(path):
                if name in changed:
                    continue
                try:
                    source = self.read(path)
                except OSError:
                    continue  # it will report itself when it is saved
                if self._imports_of(path, source, module) & changed:
                    unit = _transaction.Unit(
                        name, module, path, source, self.tracker.old_names(path, self.tracker.files[path])
                    )
                    extra.append(unit)
        return extra

    def _imports_of(self, path: Path, source: Source, module: ModuleType) -> frozenset[str]:
        """What ``path``'s top-level code imports; compiled once per content."""
        state = self.tracker.files[path]
        if state.imports is None or state.imports[0] != source.digest:
            try:
                code = compile_source(source)
            except (SyntaxError, ValueError):
                return frozenset()
            package = module.__dict__.get("__package__")
            found = imported_modules(code, package if isinstance(package, str) else None)
            state.imports = (source.digest, found)
        return state.imports[1]

    def units_for_target(
        self, target: ModuleType | str | os.PathLike[str]
    ) -> tuple[list[_transaction.Unit], Path | None]:
        if isinstance(target, ModuleType):
            name = target.__name__
            if sys.modules.get(name) is not target:
                raise HotmodError(f"module {name!r} is not the one in sys.modules")
            modules = [(name, target)]
        elif isinstance(target, str) and target in sys.modules and os.sep not in target:
            module = sys.modules[target]
            if not isinstance(module, ModuleType):
                raise HotmodError(f"sys.modules[{target!r}] is not a module")
            modules = [(target, module)]
        else:
            target_path = Path(os.path.realpath(os.fspath(target)))
            modules = self.tracker.modules.modules_for(target_path)
            if not modules:
                raise HotmodError(f"no loaded module comes from {target}")
        origin = module_origin(modules[0][1])
        path = Path(os.path.realpath(origin)) if origin else None
        if path is not None and path not in self.tracker.files and path.is_file():
            self.tracker.track(path)
        state = self.tracker.files.get(path) if path else None
        units = [
            _transaction.Unit(
                name, module, path, None, self.tracker.old_names(path, state) if state else None
            )
            for name, module in modules
        ]
        return units, path
