"""Which loaded modules have their source under the watched roots.

No import hook is installed. ``sys.modules`` only grows by insertion, so comparing its
length is an O(1) test for "something was imported or removed since we last looked";
only then is it walked, and modules already seen are skipped by identity.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

from ._filters import PathFilter

__all__ = ["ModuleIndex", "is_extension", "module_origin"]


def module_origin(module: object) -> str | None:
    """The file a module was loaded from, without triggering lazy ``__getattr__``."""
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return None
    spec = namespace.get("__spec__")
    origin = None
    if spec is not None and getattr(spec, "has_location", False):
        origin = spec.origin
    if origin is None:
        origin = namespace.get("__file__")
    return origin if isinstance(origin, str) else None


def _last_entry(modules: dict[str, Any]) -> tuple[str, int] | None:
    try:
        name = next(reversed(modules))
    except (StopIteration, RuntimeError):  # empty, or changed size under us
        return None
    return name, id(modules.get(name))


def is_extension(path: Path) -> bool:
    return any(path.name.endswith(suffix) for suffix in EXTENSION_SUFFIXES)


class ModuleIndex:
    def __init__(self, path_filter: PathFilter) -> None:
        self._filter = path_filter
        self._prefixes = tuple(
            sorted({str(r) for r in path_filter.roots} | {os.path.abspath(r) for r in path_filter.roots})
        )
        self._seen_len = -1
        self._seen_last: tuple[str, int] | None = None
        #: wall-clock time (ns) of the scan before the last one, None before two scans
        self.previous_scan_ns: int | None = None
        self._last_scan_ns: int | None = None
        self._known: dict[str, object] = {}
        self._real_dirs: dict[str, str] = {}
        self.names_by_path: dict[Path, list[str]] = {}
        self.path_by_name: dict[str, Path] = {}

    def __len__(self) -> int:
        return len(self.path_by_name)

    def _realpath(self, absolute: str) -> str:
        """``os.path.realpath``, resolving each directory once: a process imports thousands
        of modules from a few dozen folders, and a full realpath stats every component."""
        head, tail = os.path.split(absolute)
        real_head = self._real_dirs.get(head)
        if real_head is None:
            real_head = self._real_dirs[head] = os.path.realpath(head)
        candidate = os.path.join(real_head, tail)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def resolve(self, origin: str) -> Path | None:
        """The tracked form of a module's file, or None when it is not ours."""
        absolute = os.path.abspath(origin)
        real = self._realpath(absolute)
        if not absolute.startswith(self._prefixes) and not real.startswith(self._prefixes):
            return None
        path = Path(real)
        # Excluded modules are tracked too: a change to one is declined (needs_restart),
        # never silently ignored.
        if self._filter.accepts(path, honour_exclude=False) or (
            is_extension(path) and self._filter.accepts(path, check_name=False, honour_exclude=False)
        ):
            return path
        return None

    def sync(self) -> tuple[list[Path], list[Path]]:
        """Catch up with ``sys.modules``; returns (newly tracked, no longer tracked) files."""
        modules = sys.modules
        # New entries go to the end of the dict: its length and its last entry change
        # whenever something was imported, even if something else was removed.
        length, last = len(modules), _last_entry(modules)
        if length == self._seen_len and self._seen_last == last:
            return [], []
        # Recorded as they were before the scan: a module imported by another thread
        # while this one scans changes them again, so the next sync scans for it (recorded
        # after the scan, it was taken as seen and never tracked).
        self._seen_len, self._seen_last = length, last
        added: list[Path] = []
        removed: list[Path] = []
        self.previous_scan_ns, self._last_scan_ns = self._last_scan_ns, time.time_ns()
        for name, module in list(modules.items()):
            if self._known.get(name, self) is module:
                continue
            self._known[name] = module
            if name in self.path_by_name:
                removed.extend(self._untrack(name))
            origin = module_origin(module)
            path = self.resolve(origin) if origin else None
            if path is not None:
                names = self.names_by_path.setdefault(path, [])
                if not names:
                    added.append(path)
                names.append(name)
                self.path_by_name[name] = path
        if len(self._known) != len(modules):
            for name in [n for n in self._known if n not in modules]:
                del self._known[name]
                removed.extend(self._untrack(name))
        return added, [p for p in removed if p not in self.names_by_path]

    def _untrack(self, name: str) -> Iterator[Path]:
        path = self.path_by_name.pop(name, None)
        if path is None:
            return
        names = self.names_by_path.get(path, [])
        if name in names:
            names.remove(name)
        if not names:
            self.names_by_path.pop(path, None)
            yield path

    def modules_for(self, path: Path) -> list[tuple[str, ModuleType]]:
        """Loaded modules whose file is ``path`` (usually one)."""
        found = []
        for name in self.names_by_path.get(path, ()):
            module = sys.modules.get(name)
            if isinstance(module, ModuleType):
                found.append((name, module))
        return found

    def forget(self) -> None:
        self._seen_len = -1
        self._seen_last = None
        self.previous_scan_ns = self._last_scan_ns = None
        self._known.clear()
        self._real_dirs.clear()
        self.names_by_path.clear()
        self.path_by_name.clear()
