"""The Reloader: the public face over tracking, planning, the engine and the thread.

- ``_tracking``: which files belong to which modules, and exactly what each runs;
- ``_planner`` / ``_plan`` / ``_statements``: what an edit changed and what must run;
- ``_engine``: one batch of changes through one transaction (``_transaction``);
- ``_state``: what every reloader of the process shares (the lock, what runs, forks);
- this module: options, lifecycle, the watcher and the applying thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType, TracebackType
from typing import Literal, Self

# _imports: imported for its effect, the import recorder installed with the first open reloader
from . import _hot, _imports, _now, _state, _transaction  # noqa: F401
from ._apply_thread import ApplyThread, Listener, Listeners
from ._changes import ChangeQueue
from ._engine import IDLE, Dependents, Engine
from ._filters import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, PathFilter
from ._module_index import ModuleIndex
from ._planner import Planner, Strategy
from ._source import Source, read_source
from ._tracking import Tracker
from ._watch import BackendName, make_watcher
from .errors import HotmodError, HotmodWarning, ReloadError
from .result import ReloadResult, ReloadStats

logger = logging.getLogger(__name__)

ApplyMode = Literal["background", "manual"]
__all__ = ["ApplyMode", "Dependents", "Reloader", "Seams", "Strategy"]

# The process-wide lock (see _state): two reloaders may track the same module.
_RELOAD_LOCK = _state.RELOAD_LOCK

# How often a closed gate (a REPL running a statement) is looked at again.
_SAFE_POINT_RETRY = 0.05
# How often the watcher's threads are checked for life (a dead one is restarted).
_HEALTH_EVERY = 1.0


class Seams:
    """What a host built on a reloader inside hotmod (``PluginFolder``) may ask of it,
    instead of reaching into its attributes."""

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader

    def refresh(self) -> None:
        """Catch up with ``sys.modules`` now (call with the reload lock held)."""
        self._reloader._sync()

    def compare_all(self) -> None:
        """Queue every tracked file for a content comparison."""
        self._reloader._queue_everything()

    def watch_file(self, path: Path) -> None:
        """Watch one more file (a folder's sentinel, say), tracked or not."""
        self._reloader._watcher.add(path)

    def wake(self) -> None:
        """Wake whatever waits for changes."""
        self._reloader._queue.wake()

    def wait_for_changes(self, timeout: float) -> None:
        """Block until a change is queued (or ``wake()``), at most ``timeout`` seconds."""
        self._reloader._queue.wait(timeout)


class Reloader:
    """Watches the modules under ``paths`` and applies edits to the running process.

    The guide (docs/guide/reloader.md) has the full contract. In short: ``poll()`` detects and applies
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
        self._filter = PathFilter(roots, include, exclude)
        # A plugin folder reads through its trust checks and runs setup/teardown between
        # execution and commit; a plain reloader does neither.
        read = _reader or read_source
        # A host that knows when its own code is idle has the background thread apply
        # there: a REPL while its prompt waits for input, a web server on its event loop
        # or between requests. The safe point runs the apply function and returns True,
        # or returns False when now is not a good time; the changes stay queued.
        self._safe_point = _safe_point
        self._queue = ChangeQueue(debounce)
        self._watcher = make_watcher(backend, self._queue, self._filter.name_accepted)
        self.backend: str = self._watcher.name
        self._planner = Planner(strategy)
        self._tracker = Tracker(
            ModuleIndex(self._filter), read, self._queue, self._watcher, self._planner.forget
        )
        self._engine = Engine(
            self._tracker,
            self._planner,
            self._queue,
            self._filter,
            read,
            debounce=debounce,
            dependents=dependents,
            before_commit=_before_commit,
        )
        self._listeners = Listeners()
        self._seams = Seams(self)
        self._apply_thread = ApplyThread("hotmod-reloader", self._run, self._queue.wake)
        self._watching = False
        self._next_health_check = 0.0
        self._closed = False
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
                self._apply_thread.start()
        return self

    def stop(self) -> None:
        """Stop watching and applying; tracking is kept and ``start()`` resumes."""
        self._apply_thread.stop()
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
            self._tracker.clear()
            self._planner.clear()
            self._queue.clear()
            self._listeners.clear()
            self._engine.namespaces.clear()

    def _unload_all(self) -> None:
        self._sync()
        tracked = set(self._tracker.modules.path_by_name)
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
        state = "closed" if self._closed else ("running" if self._apply_thread.started else "idle")
        roots = ", ".join(str(p) for p in self.paths)
        tracked = len(self._tracker.files)
        return f"<hotmod.Reloader {state} backend={self.backend} paths=[{roots}] tracked={tracked}>"

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
                    for p, names in self._tracker.modules.names_by_path.items()
                    if names and self._filter.exclusion(p) is None
                }
            )

    @property
    def stats(self) -> ReloadStats:
        with _RELOAD_LOCK:
            return self._engine.stats(
                len(self._tracker.modules), self._watcher.watched_dirs, self._watcher.polled_dirs
            )

    @property
    def running(self) -> bool:
        return self._apply_thread.alive

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(result)`` after every reload that did something."""
        return self._listeners.subscribe(listener)

    def add_namespace(self, namespace: dict[str, object]) -> Callable[[], None]:
        """Rebind names in ``namespace`` (a REPL's globals, say) like an importer's.

        Returns a function that stops doing so.
        """
        self._engine.namespaces.append(namespace)

        def remove() -> None:
            self._engine.namespaces[:] = [n for n in self._engine.namespaces if n is not namespace]

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
        if result is not IDLE:
            self._listeners.emit(result)
        return result

    def reload(self, target: ModuleType | str | os.PathLike[str]) -> ReloadResult:
        """Re-execute one module (object, dotted name or file path), changed or not."""
        self._check_open()
        with _RELOAD_LOCK:
            self._sync()
            result = self._engine.reload_target(target)
        self._listeners.emit(result)
        return result

    def _apply_now(self) -> ReloadResult:
        """Compare every tracked file with what runs and apply the differences (reload_now)."""
        self._queue_everything()
        return self.poll()

    def _queue_everything(self) -> None:
        self._check_open()
        with _RELOAD_LOCK:
            self._sync()
            self._engine.reported = frozenset()  # an explicit request hears of standing failures again
            self._queue.push(list(self._tracker.files), settled=True)

    def _poll_locked(self) -> ReloadResult:
        self._sync()
        self._check_watcher()
        if self._watching:
            self._watcher.flush()  # saves made before this call, still in the kernel's queue
        if self._watcher.needs_scan:
            self._watcher.scan()
        ready, waited = self._queue.take_ready()
        if not ready:
            return IDLE
        return self._engine.apply(ready, waited)

    def _sync(self) -> None:
        """Catch up with ``sys.modules`` (new imports tracked, removed ones forgotten)."""
        self._tracker.sync()

    # -- the import recorder's calls (from the importing thread; no reload lock) ------

    def _wants_import(self, origin: str) -> bool:
        return not self._closed and self._tracker.wants_import(origin)

    def _imported(self, module: ModuleType, origin: str) -> None:
        if not self._closed:
            self._tracker.imported(module, origin)

    # -- watching and the background thread -------------------------------------------

    def _resume_watching(self, *, rescan: bool) -> None:
        if self._watching:
            return
        self._watcher.start()
        self._watching = True
        if rescan:
            # Events that happened while stopped were not seen: compare contents once.
            self._queue.push(self._tracker.files, settled=True)

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
        was_running = self._apply_thread.started
        self._apply_thread.forget_thread()
        if self._watching:
            self._watcher.after_fork()
            self._queue.push(list(self._tracker.files), settled=True)
        if was_running:
            self._apply_thread.start()

    def _check_open(self) -> None:
        if self._closed:
            raise HotmodError("this Reloader is closed")

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
