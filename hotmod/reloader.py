"""The Reloader: tracking, planning, the transaction, results."""

from __future__ import annotations

import ast
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType, ModuleType, TracebackType
from typing import Literal, Self

# _imports: imported for its effect, the import recorder installed with the first open reloader
from . import _hot, _imports, _now, _plan, _state, _statements, _transaction, _verify  # noqa: F401
from ._applier import ApplyThread, Listener, Listeners
from ._changes import ChangeQueue
from ._filters import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, PathFilter
from ._registry import ModuleRegistry, is_extension, module_origin
from ._source import Source, bound_names, compile_source, imported_modules, read_source
from ._trust import Untrusted
from .errors import HotmodError, HotmodWarning, ReloadError
from .result import STATUSES, ReloadResult, ReloadStats, Status
from .watch import BackendName, make_watcher

logger = logging.getLogger(__name__)

ApplyMode = Literal["background", "manual"]
Dependents = Literal["rebind", "reexec"]
Strategy = Literal["statements", "module"]

# The process-wide lock (see _state): two reloaders may track the same module.
_RELOAD_LOCK = _state.RELOAD_LOCK

_IDLE = ReloadResult("noop")

# Removed definitions remembered per file, so that they can come back.
_REMOVED_KEPT = 200

# How often a closed gate (a REPL running a statement) is looked at again.
_SAFE_POINT_RETRY = 0.05
# How often the watcher's threads are checked for life (a dead one is restarted).
_HEALTH_EVERY = 1.0

# A read failing with one of these means the file is not there: deleted, or its folder
# replaced by a file.
_GONE = (FileNotFoundError, NotADirectoryError)


@dataclass(slots=True)
class _FileState:
    """What we know of one tracked file."""

    digest: bytes | None  # content of the version now running (None: unknown)
    names: frozenset[str] | None = None  # names that version's source binds (None: unknown)
    missing: bool = False
    # modules the file's top-level code imports, and the content digest they were read from
    imports: tuple[bytes, frozenset[str]] | None = None


def _shared(value: object) -> bool:
    """Values two modules can hold as one object without either importing it from the
    other: ``None``, booleans, small ints and interned strings are the same object
    wherever they are written. A copy of such a value proves no import."""
    return value is None or isinstance(value, (bool, int, float, str, bytes, complex))


class Reloader:
    """Watches the modules under ``paths`` and applies edits to the running process.

    See the README for the full contract. In short: ``poll()`` detects and applies
    pending changes on the calling thread; ``start()`` adds a thread that does it by
    itself (``apply="background"``); ``reload(target)`` re-executes one module now.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        *,
        backend: BackendName = "auto",
        apply: ApplyMode = "background",
        poll_interval: float = 0.5,
        debounce: float = 0.05,
        include: Iterable[str] = DEFAULT_INCLUDE,
        exclude: Iterable[str] = DEFAULT_EXCLUDE,
        dependents: Dependents = "rebind",
        strategy: Strategy = "statements",
        _reader: Callable[[Path], Source] | None = None,
        _before_commit: Callable[[list[_transaction.Unit]], ReloadError | None] | None = None,
        _safe_point: Callable[[Callable[[], object]], bool] | None = None,
    ) -> None:
        if backend not in ("auto", "watchdog", "polling", "manual"):
            raise ValueError(f"backend must be auto, watchdog, polling or manual, not {backend!r}")
        if apply not in ("background", "manual"):
            raise ValueError(f"apply must be 'background' or 'manual', not {apply!r}")
        if dependents not in ("rebind", "reexec"):
            raise ValueError(f"dependents must be 'rebind' or 'reexec', not {dependents!r}")
        if strategy not in ("statements", "module"):
            raise ValueError(f"strategy must be 'statements' or 'module', not {strategy!r}")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if debounce < 0:
            raise ValueError("debounce must not be negative")
        if paths is None:
            paths = [os.getcwd()]
        elif isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        roots = tuple(Path(os.path.realpath(os.fspath(p))) for p in paths)
        for root in roots:
            if not root.exists():
                warnings.warn(f"hotmod: watched path {root} does not exist", HotmodWarning, stacklevel=2)
        self.paths = roots
        self.apply = apply
        self.poll_interval = poll_interval
        self.debounce = debounce
        self.dependents = dependents
        self.strategy = strategy
        # path -> (digest, parsed source) of the version each statement plan starts from
        self._parsed: dict[Path, tuple[bytes, _plan.Source]] = {}
        # path -> definitions a reload removed (name -> object): one that comes back (an
        # editor that truncates, then writes) merges into its old object
        self._removed: dict[Path, dict[str, object]] = {}
        self._filter = PathFilter(roots, include, exclude)
        # A plugin folder reads through its trust checks and runs setup/teardown between
        # execution and commit; a plain reloader does neither.
        self._read = _reader or read_source
        self._before_commit = _before_commit
        # A host that knows when its own code is idle has the background thread apply
        # there: a REPL while its prompt waits for input, a web server on its event loop
        # or between requests. The safe point runs the apply function and returns True,
        # or returns False when now is not a good time; the changes stay queued.
        self._safe_point = _safe_point
        self._queue = ChangeQueue(debounce)
        self._registry = ModuleRegistry(self._filter)
        self._watcher = make_watcher(backend, self._queue, self._filter.name_accepted)
        self.backend: str = self._watcher.name
        self._files: dict[Path, _FileState] = {}
        self._dirty: set[Path] = set()  # changed on disk, not running yet
        self._reported: frozenset[tuple[Path, bytes | str]] = frozenset()
        self._listeners = Listeners()
        self._namespaces: list[dict[str, object]] = []
        # data file -> names of the modules that declared ``hot.depends_on`` on it
        self._data_deps: dict[Path, set[str]] = {}
        self._depends_seen = -1
        self._counts: dict[Status, int] = dict.fromkeys(STATUSES, 0)
        self._total = 0.0
        self._max = 0.0
        self._last: ReloadResult | None = None
        self._applier = ApplyThread("hotmod-reloader", self._run, self._queue.wake)
        self._watching = False
        self._next_health_check = 0.0
        self._closed = False
        # Why each file queued at tracking time is reloaded, said in that reload's result.
        self._notes: dict[Path, str] = {}
        # Open before the first look at sys.modules: from here on every import under our
        # paths is recorded exactly, and what came before is verified against its file.
        _state.open_member(self)
        with _RELOAD_LOCK:
            self._sync()
            self._resume_watching(rescan=False)
        _now.register(self)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Watch (if stopped) and, with ``apply="background"``, apply changes on a thread."""
        self._check_open()
        with _RELOAD_LOCK:
            self._resume_watching(rescan=True)
            if self.apply == "background":
                self._applier.start()
        return self

    def stop(self) -> None:
        """Stop watching and applying; tracking is kept and ``start()`` resumes."""
        self._applier.stop()
        with _RELOAD_LOCK:
            if self._watching:
                self._watcher.stop()
                self._watching = False

    def close(self, *, unload: bool = False) -> None:
        """Stop and forget everything this reloader set up. Idempotent.

        With ``unload=True`` the tracked modules are removed for good: their unload hooks
        run (most recently imported first) and they leave ``sys.modules``.
        """
        if self._closed:
            return
        _now.unregister(self)
        _state.close_member(self)
        self.stop()
        with _RELOAD_LOCK:
            if unload:
                self._unload_all()
            self._closed = True
            for path in self._files:
                self._watcher.discard(path)
            self._files.clear()
            self._notes.clear()
            self._removed.clear()
            self._parsed.clear()
            self._dirty.clear()
            self._registry.forget()
            self._queue.clear()
            self._listeners.clear()
            self._namespaces.clear()
            self._data_deps.clear()

    def _unload_all(self) -> None:
        self._sync()
        tracked = set(self._registry.path_by_name)
        for name in reversed([n for n in list(sys.modules) if n in tracked]):
            module = sys.modules.get(name)
            if isinstance(module, ModuleType):
                _hot.unload(module)  # a failing hook is logged; the others still run
            sys.modules.pop(name, None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._applier.started else "idle")
        roots = ", ".join(str(p) for p in self.paths)
        return f"<hotmod.Reloader {state} backend={self.backend} paths=[{roots}] tracked={len(self._files)}>"

    # -- public queries ----------------------------------------------------------------

    @property
    def modules(self) -> Mapping[Path, str]:
        """Source path -> module name of the modules that reload live (a snapshot).

        Modules matched by ``exclude`` are watched too, but only so that a change to one
        is reported as ``needs_restart``; they are not listed here.
        """
        with _RELOAD_LOCK:
            self._sync()
            return MappingProxyType(
                {
                    p: names[0]
                    for p, names in self._registry.names_by_path.items()
                    if names and self._filter.exclusion(p) is None
                }
            )

    @property
    def stats(self) -> ReloadStats:
        with _RELOAD_LOCK:
            return ReloadStats(
                counts=dict(self._counts),
                total_duration=self._total,
                max_duration=self._max,
                last=self._last,
                tracked_modules=len(self._registry),
                watched_dirs=self._watcher.watched_dirs,
                polled_dirs=self._watcher.polled_dirs,
            )

    @property
    def running(self) -> bool:
        return self._applier.alive

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(result)`` after every reload that did something."""
        return self._listeners.subscribe(listener)

    def add_namespace(self, namespace: dict[str, object]) -> Callable[[], None]:
        """Rebind names in ``namespace`` (a REPL's globals, say) like an importer's.

        Returns a function that stops doing so.
        """
        self._namespaces.append(namespace)

        def remove() -> None:
            self._namespaces[:] = [n for n in self._namespaces if n is not namespace]

        return remove

    def notify(self, *paths: str | os.PathLike[str]) -> None:
        """Tell the reloader these files changed (the manual backend's only input)."""
        found: list[Path] = []
        for p in paths:
            absolute = os.path.abspath(os.fspath(p))
            real = os.path.realpath(absolute)
            found.append(Path(real))
            # A tracked file that became a dangling symlink resolves to its missing target:
            # name it the way it is tracked too (its folder resolved, not itself), or the
            # change would go unheard. A name that is not tracked is ignored.
            own = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
            if own != real:
                found.append(Path(own))
        self._queue.push(found, settled=True)

    # -- applying ----------------------------------------------------------------------

    def poll(self) -> ReloadResult:
        """Detect and apply pending changes now, on this thread."""
        self._check_open()
        with _RELOAD_LOCK:
            result = self._poll_locked()
        if result is not _IDLE:
            self._emit(result)
        return result

    def reload(self, target: ModuleType | str | os.PathLike[str]) -> ReloadResult:
        """Re-execute one module (object, dotted name or file path), changed or not."""
        self._check_open()
        with _RELOAD_LOCK:
            self._sync()
            started = time.perf_counter()
            units, path = self._units_for_target(target)
            source = None
            # Zip imports and custom loaders read their own source in exec_module.
            if path is not None and _transaction.uses_plain_source_loader(units[0].module):
                try:
                    source = self._read(path)
                except OSError as exc:
                    return self._finish(self._read_failure(path, exc, units[0].name), started)
                for unit in units:
                    unit.source = source
            result = self._transact(units, {path: source} if path and source else {}, started, dedupe=False)
        self._emit(result)
        return result

    def _apply_now(self) -> ReloadResult:
        """Compare every tracked file with what runs and apply the differences (reload_now)."""
        self._queue_everything()
        return self.poll()

    def _queue_everything(self) -> None:
        self._check_open()
        with _RELOAD_LOCK:
            self._sync()
            self._reported = frozenset()  # an explicit request hears of standing failures again
            self._queue.push(list(self._files), settled=True)

    def _poll_locked(self) -> ReloadResult:
        self._sync()
        self._check_watcher()
        if self._watching:
            self._watcher.flush()  # saves made before this call, still in the kernel's queue
        if self._watcher.needs_scan:
            self._watcher.scan()
        ready, waited = self._queue.take_ready()
        if not ready:
            return _IDLE
        return self._apply(ready, waited)

    def _apply(self, ready: list[Path], waited: set[Path]) -> ReloadResult:
        started = time.perf_counter()
        batch = [p for p in ready if p in self._files]
        if not batch:
            return _IDLE
        sources: dict[Path, Source] = {}
        failures: list[tuple[Path, OSError]] = []
        changed = set(batch)
        for path in sorted(changed | self._dirty):
            state = self._files[path]
            try:
                source = self._read(path)
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
            state.digest = self._running_digest(path, state.digest)
            if source.digest == state.digest:
                # A touch, or an edit reverted to what is running.
                self._dirty.discard(path)
                state.missing = False
                logger.debug("%s: content unchanged", path)
                continue
            sources[path] = source
        if failures:
            first_path, first_exc = failures[0]
            self._dirty.update(sources)
            self._dirty.update(p for p, _ in failures)
            key = frozenset((p, f"{type(e).__name__}") for p, e in failures) | self._keys(sources)
            name = (self._names_for(first_path) or ["?"])[0]
            return self._finish(self._read_failure(first_path, first_exc, name), started, key)
        if not sources:
            return self._finish(ReloadResult("noop"), started)
        # A changed data file re-executes the modules that depend on it.
        for path in list(sources):
            for name in sorted(self._data_deps.get(path, ())):
                module_path = self._registry.path_by_name.get(name)
                if module_path is None or module_path in sources:
                    continue
                try:
                    sources[module_path] = self._read(module_path)
                except OSError:
                    continue  # the module's own file will report itself
        units: list[_transaction.Unit] = []
        for path, source in sources.items():
            state = self._files[path]
            for name, module in self._registry.modules_for(path):
                units.append(_transaction.Unit(name, module, path, source, self._old_names(path, state)))
        for unit in units:
            self._plan(unit)
        if self.dependents == "reexec":
            units.extend(self._importers_of(units))  # their whole code runs again
        return self._transact(units, sources, started)

    def _transact(
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
                    self._files[path].digest = source.digest
                    self._dirty.discard(path)
                else:
                    self._dirty.add(path)
                    self._queue.push((path,), settled=True)
            error = ReloadError(reason, module=unit.name, path=unit.path)
            return self._finish(ReloadResult("needs_restart", names, paths, error), started, key)
        compile_error = _transaction.compile_units(units)
        for unit in units:
            removed = self._removed.get(unit.path) if unit.path is not None else None
            if removed and unit.new_names is not None:
                unit.revive = {n: removed[n] for n in unit.new_names if n in removed}
        if compile_error is not None:
            outcome = _transaction.Outcome(compile_error)
        else:
            reloaded = {u.name for u in units}
            outcome = _transaction.execute(
                _transaction.dependency_order(units),
                self._before_commit,
                lambda done: self._rebind_importers(done.rebound, done.replaced, reloaded),
            )
        if outcome.error is not None:
            self._dirty.update(sources)
            return self._finish(
                ReloadResult("aborted", names, paths, outcome.error, tuple(outcome.warnings)), started, key
            )
        for unit in units:
            if unit.path is not None and (unit.pruned or unit.revive):
                removed = self._removed.setdefault(unit.path, {})
                for name in unit.revive:
                    removed.pop(name, None)
                removed.update(unit.pruned)
                while len(removed) > _REMOVED_KEPT:  # the oldest go first
                    del removed[next(iter(removed))]
        for path, source in sources.items():
            state = self._files.get(path)
            if state is None:
                continue
            state.digest = source.digest
            state.missing = False
            state.names = next((u.new_names for u in units if u.path == path), None)
            self._dirty.discard(path)
            for _, module in self._registry.modules_for(path):
                _state.set_running(module, source.data, source.digest, "applied")
        report = outcome.report
        notes = tuple(self._notes.pop(p) for p in sources if p in self._notes)
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
        return self._finish(result, started)

    def _plan(self, unit: _transaction.Unit) -> None:
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
            cached = self._parsed.get(unit.path)
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
        self._parsed[unit.path] = (unit.source.digest, new)

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
        for name in list(self._registry.path_by_name):
            module = sys.modules.get(name)
            if isinstance(module, ModuleType):
                yield name, module.__dict__
        for namespace in self._namespaces:
            yield None, namespace

    def _imports_any(self, name: str, modules: set[str]) -> bool:
        """Whether tracked module ``name``'s top-level code imports one of ``modules``."""
        path = self._registry.path_by_name.get(name)
        module = sys.modules.get(name)
        if path is None or path not in self._files or not isinstance(module, ModuleType):
            return True  # unknown: keep rebinding as before
        try:
            source = self._read(path)
        except OSError:
            return True
        return bool(self._imports_of(path, source, module) & modules)

    def _finish(
        self, result: ReloadResult, started: float, key: frozenset[tuple[Path, bytes | str]] | None = None
    ) -> ReloadResult:
        if key is not None:
            # The same broken content is reported once: an unchanged failure is a noop.
            if key == self._reported:
                result = ReloadResult("noop", paths=result.paths)
            self._reported = key
        else:
            self._reported = frozenset()
        result = replace(result, duration=time.perf_counter() - started)
        self._counts[result.status] += 1
        self._total += result.duration
        self._max = max(self._max, result.duration)
        self._last = result
        if result.status == "ok":
            logger.info("%s", result.summary(), extra={"hotmod_result": result})
        elif result.status != "noop":
            logger.warning("%s", result.summary(), extra={"hotmod_result": result})
        return result

    def _emit(self, result: ReloadResult) -> None:
        self._listeners.emit(result)

    # -- planning helpers --------------------------------------------------------------

    def _should_wait(self, path: Path, waited: set[Path], state: _FileState) -> bool:
        """A file briefly missing or empty mid-save is looked at again after settling."""
        if path in waited or self.debounce <= 0 or state.missing:
            return False
        self._queue.defer(path)
        return True

    @staticmethod
    def _keys(sources: Mapping[Path, Source]) -> frozenset[tuple[Path, bytes | str]]:
        return frozenset((p, s.digest) for p, s in sources.items())

    def _read_failure(self, path: Path, exc: OSError, name: str) -> ReloadResult:
        state = self._files.get(path)
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

    def _old_names(self, path: Path | None, state: _FileState) -> frozenset[str] | None:
        """The names the running version's source binds, learnt from its exact text."""
        if state.names is None and path is not None:
            running = self._running(path)
            if running is not None and running.digest == state.digest:
                try:
                    names, star = bound_names(compile_source(Source(path, running.data, running.digest, 0)))
                except (SyntaxError, ValueError):
                    return None
                state.names = None if star else names
        return state.names

    def _running(self, path: Path) -> _state.Running | None:
        """The exact source every module of ``path`` runs, when they all run the same."""
        found: _state.Running | None = None
        for _, module in self._registry.modules_for(path):
            running = _state.running(module)
            if running is None or (found is not None and running.digest != found.digest):
                return None
            found = running
        return found

    def _running_digest(self, path: Path, known: bytes | None) -> bytes | None:
        running = self._running(path)
        return running.digest if running is not None else known

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
        pattern = self._filter.exclusion(unit.path) if unit.path is not None else None
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
        for path in list(self._registry.names_by_path):
            for name, module in self._registry.modules_for(path):
                if name in changed:
                    continue
                try:
                    source = self._read(path)
                except OSError:
                    continue  # it will report itself when it is saved
                if self._imports_of(path, source, module) & changed:
                    unit = _transaction.Unit(
                        name, module, path, source, self._old_names(path, self._files[path])
                    )
                    extra.append(unit)
        return extra

    def _imports_of(self, path: Path, source: Source, module: ModuleType) -> frozenset[str]:
        """What ``path``'s top-level code imports; compiled once per content."""
        state = self._files[path]
        if state.imports is None or state.imports[0] != source.digest:
            try:
                code = compile_source(source)
            except (SyntaxError, ValueError):
                return frozenset()
            package = module.__dict__.get("__package__")
            found = imported_modules(code, package if isinstance(package, str) else None)
            state.imports = (source.digest, found)
        return state.imports[1]

    def _units_for_target(
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
            modules = self._registry.modules_for(target_path)
            if not modules:
                raise HotmodError(f"no loaded module comes from {target}")
        origin = module_origin(modules[0][1])
        path = Path(os.path.realpath(origin)) if origin else None
        if path is not None and path not in self._files and path.is_file():
            self._track(path)
        state = self._files.get(path) if path else None
        units = [
            _transaction.Unit(name, module, path, None, self._old_names(path, state) if state else None)
            for name, module in modules
        ]
        return units, path

    # -- tracking ----------------------------------------------------------------------

    def _sync(self) -> None:
        added, removed = self._registry.sync()
        if added or removed or _hot.depends_epoch() != self._depends_seen:
            self._sync_depends()
        for path in added:
            self._track(path)
            self._watcher.add(path)
        for path in removed:
            self._files.pop(path, None)
            self._notes.pop(path, None)
            self._removed.pop(path, None)
            self._parsed.pop(path, None)
            self._dirty.discard(path)
            self._watcher.discard(path)

    def _sync_depends(self) -> None:
        """Watch the data files the tracked modules' running versions depend on."""
        self._depends_seen = _hot.depends_epoch()
        wanted: dict[Path, set[str]] = {}
        for name in list(self._registry.path_by_name):
            module = sys.modules.get(name)
            context = _hot.existing_context(module) if isinstance(module, ModuleType) else None
            if context is not None:
                for path in context.depends:
                    wanted.setdefault(path, set()).add(name)
        for path in list(self._data_deps):
            if path not in wanted:
                del self._data_deps[path]
                if path not in self._registry.names_by_path:
                    self._files.pop(path, None)
                    self._dirty.discard(path)
                    self._watcher.discard(path)
        for path, names in wanted.items():
            if path not in self._files:
                try:
                    self._files[path] = _FileState(self._read(path).digest)
                except OSError:
                    self._files[path] = _FileState(None, missing=True)
                self._watcher.add(path)
                logger.debug("tracking data file %s for %s", path, ", ".join(sorted(names)))
            self._data_deps[path] = names

    def _names_for(self, path: Path) -> list[str]:
        """The modules a tracked file belongs to: its own, or those depending on it."""
        return self._registry.names_by_path.get(path) or sorted(self._data_deps.get(path, ()))

    def _track(self, path: Path) -> None:
        """Start tracking ``path``: learn exactly what its module runs.

        A module imported while a reloader was open had its source recorded by its
        import: that is what runs, and the file is compared with it by content. One
        imported before (a reloader started late, a forked worker) is compared with its
        file object by object (``_verify``); on any difference the file is queued, so the
        next poll reloads it, and the result says why. File timestamps decide nothing.
        """
        try:
            source = self._read(path)
        except OSError:
            self._files[path] = _FileState(None)
            return
        modules = self._registry.modules_for(path)
        running = self._running(path)
        if running is not None:
            self._files[path] = _FileState(running.digest)
            if running.digest != source.digest:
                self._changed_since_import(path, "changed since it was imported")
        else:
            difference = self._verify(path, source, modules)
            if difference is None:
                self._files[path] = _FileState(source.digest)
                for _, module in modules:
                    _state.set_running(module, source.data, source.digest, "verified")
            else:
                # The names the running version's source bound: the file's when every code
                # object matched (only a literal differs); else also the definitions the
                # module holds under their own names, so a def removed since is pruned.
                names = self._file_names(source)
                if names is not None and not difference.code_matches:
                    names |= _verify.own_definitions(modules, str(path))
                self._files[path] = _FileState(None, names)
                self._changed_since_import(path, f"changed since it was imported ({difference.what} differs)")
        logger.debug("tracking %s", path)
        for _, module in modules:
            if _hot.unknown_dunders(module.__dict__):
                try:
                    code = compile_source(source)
                except (SyntaxError, ValueError):
                    code = None
                _hot.unknown_dunder_warnings(module.__dict__, code, path)

    def _changed_since_import(self, path: Path, why: str) -> None:
        self._notes[path] = f"{path.name} {why}"
        logger.info("hotmod: %s %s; reloading it", path, why)
        self._queue.push((path,), settled=True)

    def _verify(
        self, path: Path, source: Source, modules: list[tuple[str, ModuleType]]
    ) -> _verify.Difference | None:
        """What differs between the running modules of ``path`` and its file, or None."""
        if not modules or not all(_transaction.uses_plain_source_loader(m) for _, m in modules):
            return None  # zip imports and custom loaders: their loader owns the source
        try:
            tree = ast.parse(source.data, str(path))
            code = compile(tree, str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return _verify.Difference("the file's syntax", code_matches=False)
        for _, module in modules:
            found = _verify.differences(tree, code, module, str(path))
            if found is not None:
                return found
        return None

    @staticmethod
    def _file_names(source: Source) -> frozenset[str] | None:
        try:
            names, star = bound_names(compile_source(source))
        except (SyntaxError, ValueError, RecursionError):
            return None
        return None if star else names

    # -- the import recorder's calls (from the importing thread; no reload lock) ------

    def _wants_import(self, origin: str) -> bool:
        return not self._closed and self._registry.resolve(origin) is not None

    def _imported(self, module: ModuleType, origin: str) -> None:
        """A module under our paths was just imported: watch its file from now on."""
        if self._closed:
            return
        path = self._registry.resolve(origin)
        if path is not None:
            self._watcher.add(path)
            # Wakes the applying thread (and a safe point's), which tracks the module.
            self._queue.push((path,), settled=True)

    def _resume_watching(self, *, rescan: bool) -> None:
        if self._watching:
            return
        self._watcher.start()
        self._watching = True
        if rescan:
            # Events that happened while stopped were not seen: compare contents once.
            self._queue.push(self._files, settled=True)

    def _check_watcher(self) -> None:
        """Restart a watcher thread that died (it says so, and queues a full compare)."""
        now = time.monotonic()
        if self._watching and now >= self._next_health_check:
            self._next_health_check = now + _HEALTH_EVERY
            self._watcher.ensure_running()

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, and the threads the parent ran started again.

        Only the forking thread exists in the child. What the modules run is the parent's
        (the record is the parent's memory, exact here too); events the parent's watcher
        had not read yet are lost to this process, so every tracked file is compared once.
        """
        if self._closed:
            return
        self._queue.after_fork()
        was_running = self._applier.started
        self._applier.forget_thread()
        if self._watching:
            self._watcher.after_fork()
            self._queue.push(list(self._files), settled=True)
        if was_running:
            self._applier.start()

    def _check_open(self) -> None:
        if self._closed:
            raise HotmodError("this Reloader is closed")

    # -- the background thread ---------------------------------------------------------

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            timeout = self.poll_interval
            deadline = self._queue.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
            self._queue.wait(timeout)
            if stopping.is_set():
                break
            try:
                self._check_watcher()
                if self._safe_point is None:
                    self.poll()
                elif not (self._queue.has_ready() or self._watcher.needs_scan):
                    # Nothing to apply: leave the host alone, but track what it imported
                    # meanwhile (a lazy import, a handler's), so that its saves are seen.
                    with _RELOAD_LOCK:
                        self._sync()
                elif not self._safe_point(self.poll):
                    stopping.wait(_SAFE_POINT_RETRY)
            except HotmodError:
                break  # closed under us
            except Exception:
                logger.exception("hotmod: unexpected error while applying changes; still watching")
