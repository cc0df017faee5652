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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType, TracebackType
from typing import Literal, Self

# _imports: imported for its effect, the import recorder installed with the first open reloader
from . import _appliers, _hot, _imports, _options, _state, _transaction  # noqa: F401
from ._apply_thread import ApplyThread, Listener, Listeners, SafePoint, apply_loop
from ._detection import Detection
from ._engine import IDLE, Dependents, Engine
from ._filters import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, PathFilter
from ._planner import Strategy
from ._source import Source, read_source
from ._watch import BackendName
from .errors import HotmodError, ReloadError
from .result import ReloadResult, ReloadStats

logger = logging.getLogger(__name__)

ApplyMode = Literal["background", "manual"]
__all__ = ["ApplyMode", "Dependents", "Reloader", "Seams", "Strategy"]

# The process-wide lock (see _state): two reloaders may track the same module.
_RELOAD_LOCK = _state.RELOAD_LOCK


@dataclass(frozen=True)
class Seams:
    """What a host built on a reloader inside hotmod (``PluginFolder``) may ask of it,
    instead of reaching into its attributes."""

    refresh: Callable[[], None]  # catch up with sys.modules now (reload lock held)
    compare_all: Callable[[], None]  # queue every tracked file for a content comparison
    watch_file: Callable[[Path], None]  # watch one more file (a folder's sentinel), tracked or not
    wake: Callable[[], None]  # wake whatever waits for changes
    wait_for_changes: Callable[[float], None]  # block until a change is queued, at most so long


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
        # A host that knows when its own code is idle has the background thread apply
        # there (a REPL while its prompt waits, a web server between requests): the safe
        # point runs the apply and returns True, or False when now is not a good time.
        _safe_point: SafePoint | None = None,
    ) -> None:
        _options.check(
            backend=backend,
            apply=apply,
            dependents=dependents,
            strategy=strategy,
            poll_interval=poll_interval,
            debounce=debounce,
        )
        roots = _options.roots(paths)
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
        self._detection = Detection(backend, debounce, self._filter.name_accepted)
        self._queue, self._watcher = self._detection.queue, self._detection.watcher
        self.backend: str = self._watcher.name
        self._engine = Engine(
            self._filter,
            read,
            self._queue,
            self._watcher,
            strategy=strategy,
            debounce=debounce,
            dependents=dependents,
            before_commit=_before_commit,
        )
        self._tracker, self._planner = self._engine.tracker, self._engine.planner
        self._listeners = Listeners()
        self._seams = Seams(
            self._sync, self._queue_everything, self._watcher.add, self._queue.wake, self._queue.wait
        )
        self._apply_thread = ApplyThread(
            "hotmod-reloader",
            lambda stopping: apply_loop(
                stopping,
                self._detection,
                poll_interval=self.poll_interval,
                poll=self.poll,
                catch_up=self._catch_up,
                safe_point=_safe_point,
            ),
            self._queue.wake,
        )
        self._closed = False
        # Open before the first look at sys.modules: from here on every import under our
        # paths is recorded exactly, and what came before is verified against its file.
        _state.open_member(self)
        with _RELOAD_LOCK:
            self._sync()
            self._detection.resume(self._tracker.files, rescan=False)
        _appliers.register(self)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Watch (if stopped) and, with ``apply="background"``, apply changes on a thread."""
        self._check_open()
        with _RELOAD_LOCK:
            # Events of the time it was stopped were not seen: contents are compared once.
            self._detection.resume(self._tracker.files, rescan=True)
            if self.apply == "background":
                self._apply_thread.start()
        return self

    def stop(self) -> None:
        """Stop watching and applying; tracking is kept and ``start()`` resumes."""
        self._apply_thread.stop()
        with _RELOAD_LOCK:
            self._detection.pause()

    def close(self, *, unload: bool = False) -> None:
        """Stop and forget everything this reloader set up. Idempotent.

        With ``unload=True`` the tracked modules are removed for good: their unload hooks
        run (most recently imported first) and they leave ``sys.modules``.
        """
        if self._closed:
            return
        _appliers.unregister(self)
        _state.close_member(self)
        self.stop()
        with _RELOAD_LOCK:
            if unload:
                self._sync()
                self._tracker.unload_all()
            self._closed = True
            self._tracker.clear()
            self._planner.clear()
            self._queue.clear()
            self._listeners.clear()
            self._engine.namespaces.clear()

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
        self._detection.notify(paths)

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
        ready, waited = self._detection.take()
        if not ready:
            return IDLE
        return self._engine.apply(ready, waited)

    def _sync(self) -> None:
        """Catch up with ``sys.modules`` (new imports tracked, removed ones forgotten)."""
        self._tracker.sync()

    def _catch_up(self) -> None:
        with _RELOAD_LOCK:
            self._sync()

    # -- the import recorder's calls (from the importing thread; no reload lock) ------

    def _wants_import(self, origin: str) -> bool:
        return not self._closed and self._tracker.wants_import(origin)

    def _imported(self, module: ModuleType, origin: str) -> None:
        if not self._closed:
            self._tracker.imported(module, origin)

    # -- the background thread and forks --------------------------------------------

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, and the threads the parent ran started again.

        Only the forking thread exists in the child. What the modules run is the parent's
        (the record is the parent's memory, exact here too); events the parent's watcher
        had not read yet are lost to this process, so every tracked file is compared once.
        """
        if self._closed:
            return
        self._detection.after_fork(self._tracker.files)
        was_running = self._apply_thread.started
        self._apply_thread.forget_thread()
        if was_running:
            self._apply_thread.start()

    def _check_open(self) -> None:
        if self._closed:
            raise HotmodError("this Reloader is closed")
