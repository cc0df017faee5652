"""The import recorder: the exact source every tracked module's import compiled.

Installed as the first entry of ``sys.meta_path`` while at least one reloader is open,
removed after the last one closes (importing hotmod installs nothing). It asks the
finders after it, in their order, and changes nothing about what they find, except for
a module whose file is a plain source file under an open reloader's paths: that spec's
loader becomes a :class:`RecordingLoader`, which compiles the module from the bytes it
read (never from a cached ``.pyc``, which is validated only by whole-second mtime and
size) and records those bytes as what the module object runs.

With that record the first edit after an import is planned like every later one,
whatever the file's mtimes say and whatever the edit changed. The loader then tells
every open reloader of the new module at once, from the importing thread, so the file is
watched from the moment it was imported; no reload lock is taken here (another thread
holding it may be waiting for this very import).

Zip imports, namespace packages and other loaders are left exactly as they were; their
modules are verified against their files instead (``_verify``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, SourceFileLoader
from types import CodeType, ModuleType

from . import _state
from ._source import digest

__all__ = ["RecordingLoader", "installed"]

_local = threading.local()  # re-entrancy guard: a finder after us may import


class RecordingLoader(SourceFileLoader):
    """A source-file loader that compiles from the text it read and records that text."""

    # The reloader compiles this module's later versions itself, as for SourceFileLoader.
    hotmod_compiles_source = True

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        data = self.get_data(path)
        code = self.source_to_code(data, path)
        self.hotmod_source = data
        return code

    def exec_module(self, module: ModuleType) -> None:
        code = self.get_code(module.__name__)
        # Recorded before the code runs: a reloader that meets the module half-imported
        # already knows what it runs.
        _state.set_running(module, self.hotmod_source, digest(self.hotmod_source), "imported")
        exec(code, module.__dict__)
        origin = self.path
        for member in _state.members():
            member._imported(module, origin)


class _Recorder:
    """A meta-path finder that delegates to the others and wraps tracked source loaders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if getattr(_local, "busy", False):
            return None
        _local.busy = True
        try:
            spec = self._delegate(fullname, path, target)
        finally:
            _local.busy = False
        if spec is None:
            return None
        loader = spec.loader
        if type(loader) is SourceFileLoader and isinstance(spec.origin, str) and _wanted(spec.origin):
            spec.loader = RecordingLoader(loader.name, loader.path)
        return spec

    def _delegate(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> ModuleSpec | None:
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None

    def invalidate_caches(self) -> None:
        pass


def _wanted(origin: str) -> bool:
    return any(member._wants_import(origin) for member in _state.members())


_RECORDER = _Recorder()


def _install(first_open: bool) -> None:
    if first_open:
        if _RECORDER not in sys.meta_path:
            sys.meta_path.insert(0, _RECORDER)
    else:
        while _RECORDER in sys.meta_path:
            sys.meta_path.remove(_RECORDER)


def installed() -> bool:
    return _RECORDER in sys.meta_path


_state.on_open_change(_install)
