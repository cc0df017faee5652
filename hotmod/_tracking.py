"""Tracking: which files belong to which loaded modules, and exactly what each runs.

A ``Tracker`` follows ``sys.modules`` (cheaply, see ``_module_index``), knows each tracked
file's state (the digest of the version running, the names it binds, whether it is
missing), the data files modules declared with ``hot.depends_on``, and the files changed
on disk but not running yet. When a module is first seen it learns what the module runs:
the import recorder's exact record, or, for a module imported before any reloader, a
comparison of its objects with its file (``_verify``); a difference queues the file.
"""

from __future__ import annotations

import ast
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from . import _hot, _state, _transaction, _verify
from ._changes import ChangeQueue
from ._module_index import ModuleIndex
from ._source import Source, bound_names, compile_source
from ._watch import Watcher

__all__ = ["FileState", "Tracker"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FileState:
    """What we know of one tracked file."""

    digest: bytes | None  # content of the version now running (None: unknown)
    names: frozenset[str] | None = None  # names that version's source binds (None: unknown)
    missing: bool = False
    # modules the file's top-level code imports, and the content digest they were read from
    imports: tuple[bytes, frozenset[str]] | None = None
    # content whose change was refused (needs a restart): reported once, not on every poll
    refused: bytes | None = None


class Tracker:
    """The tracked files of one reloader and what their modules run."""

    def __init__(
        self,
        modules: ModuleIndex,
        read: Callable[[Path], Source],
        queue: ChangeQueue,
        watcher: Watcher,
        forget: Callable[[Path], None],
    ) -> None:
        self.modules = modules
        self.read = read
        self.queue = queue
        self.watcher = watcher
        self.forget = forget  # what else the reloader keeps per file goes with it
        self.files: dict[Path, FileState] = {}
        self.dirty: set[Path] = set()  # changed on disk, not running yet
        # Why each file queued at tracking time is reloaded, said in that reload's result.
        self.notes: dict[Path, str] = {}
        # data file -> names of the modules that declared ``hot.depends_on`` on it
        self.data_deps: dict[Path, set[str]] = {}
        self._depends_seen = -1
        self.closed = False

    def clear(self) -> None:
        for path in self.files:
            self.watcher.discard(path)
        self.closed = True
        self.files.clear()
        self.notes.clear()
        self.dirty.clear()
        self.modules.forget()
        self.data_deps.clear()

    def sync(self) -> None:
        added, removed = self.modules.sync()
        if added or removed or _hot.depends_epoch() != self._depends_seen:
            self._sync_depends()
        for path in added:
            self.track(path)
            self.watcher.add(path)
        for path in removed:
            self.files.pop(path, None)
            self.notes.pop(path, None)
            self.forget(path)
            self.dirty.discard(path)
            self.watcher.discard(path)

    def _sync_depends(self) -> None:
        """Watch the data files the tracked modules' running versions depend on."""
        self._depends_seen = _hot.depends_epoch()
        wanted: dict[Path, set[str]] = {}
        for name in list(self.modules.path_by_name):
            module = sys.modules.get(name)
            context = _hot.existing_context(module) if isinstance(module, ModuleType) else None
            if context is not None:
                for path in context.depends:
                    wanted.setdefault(path, set()).add(name)
        for path in list(self.data_deps):
            if path not in wanted:
                del self.data_deps[path]
                if path not in self.modules.names_by_path:
                    self.files.pop(path, None)
                    self.dirty.discard(path)
                    self.watcher.discard(path)
        for path, names in wanted.items():
            if path not in self.files:
                try:
                    self.files[path] = FileState(self.read(path).digest)
                except OSError:
                    self.files[path] = FileState(None, missing=True)
                self.watcher.add(path)
                logger.debug("tracking data file %s for %s", path, ", ".join(sorted(names)))
            self.data_deps[path] = names

    def unload_all(self) -> None:
        """Remove the tracked modules for good, most recently imported first; their unload
        hooks run (a failing hook is logged, the others still run)."""
        tracked = set(self.modules.path_by_name)
        for name in reversed([n for n in list(sys.modules) if n in tracked]):
            module = sys.modules.get(name)
            if isinstance(module, ModuleType):
                _hot.unload(module)
            sys.modules.pop(name, None)

    def names_for(self, path: Path) -> list[str]:
        """The modules a tracked file belongs to: its own, or those depending on it."""
        return self.modules.names_by_path.get(path) or sorted(self.data_deps.get(path, ()))

    def track(self, path: Path) -> None:
        """Start tracking ``path``: learn exactly what its module runs.

        A module imported while a reloader was open had its source recorded by its
        import: that is what runs, and the file is compared with it by content. One
        imported before (a reloader started late, a forked worker) is compared with its
        file object by object (``_verify``); on any difference the file is queued, so the
        next poll reloads it, and the result says why. File timestamps decide nothing.
        """
        try:
            source = self.read(path)
        except OSError:
            self.files[path] = FileState(None)
            return
        modules = self.modules.modules_for(path)
        running = self.running(path)
        if running is not None:
            self.files[path] = FileState(running.digest)
            if running.digest != source.digest:
                self.changed_since_import(path, "changed since it was imported")
        else:
            difference = self.verify(path, source, modules)
            if difference is None:
                self.files[path] = FileState(source.digest)
                for _, module in modules:
                    _state.set_running(module, source.data, source.digest, "verified")
            else:
                # The names the running version's source bound: the file's when every code
                # object matched (only a literal differs); else also the definitions the
                # module holds under their own names, so a def removed since is pruned.
                names = self.file_names(source)
                if names is not None and not difference.code_matches:
                    names |= _verify.own_definitions(modules, str(path))
                self.files[path] = FileState(None, names)
                self.changed_since_import(path, f"changed since it was imported ({difference.what} differs)")
        logger.debug("tracking %s", path)
        for _, module in modules:
            if _hot.unknown_dunders(module.__dict__):
                try:
                    code = compile_source(source)
                except (SyntaxError, ValueError):
                    code = None
                _hot.unknown_dunder_warnings(module.__dict__, code, path)

    def changed_since_import(self, path: Path, why: str) -> None:
        self.notes[path] = f"{path.name} {why}"
        logger.info("hotmod: %s %s; reloading it", path, why)
        self.queue.push((path,), settled=True)

    def verify(
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
    def file_names(source: Source) -> frozenset[str] | None:
        try:
            names, star = bound_names(compile_source(source))
        except (SyntaxError, ValueError, RecursionError):
            return None
        return None if star else names

    def wants_import(self, origin: str) -> bool:
        return not self.closed and self.modules.resolve(origin) is not None

    def imported(self, module: ModuleType, origin: str) -> None:
        """A module under our paths was just imported: watch its file from now on."""
        if self.closed:
            return
        path = self.modules.resolve(origin)
        if path is not None:
            self.watcher.add(path)
            # Wakes the applying thread (and a safe point's), which tracks the module.
            self.queue.push((path,), settled=True)

    def running(self, path: Path) -> _state.Running | None:
        """The exact source every module of ``path`` runs, when they all run the same."""
        found: _state.Running | None = None
        for _, module in self.modules.modules_for(path):
            running = _state.running(module)
            if running is None or (found is not None and running.digest != found.digest):
                return None
            found = running
        return found

    def running_digest(self, path: Path, known: bytes | None) -> bytes | None:
        running = self.running(path)
        return running.digest if running is not None else known

    def old_names(self, path: Path | None, state: FileState) -> frozenset[str] | None:
        """The names the running version's source binds, learnt from its exact text."""
        if state.names is None and path is not None:
            running = self.running(path)
            if running is not None and running.digest == state.digest:
                try:
                    names, star = bound_names(compile_source(Source(path, running.data, running.digest, 0)))
                except (SyntaxError, ValueError):
                    return None
                state.names = None if star else names
        return state.names
