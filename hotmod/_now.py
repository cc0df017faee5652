"""``hotmod.reload_now()``: apply every active reloader's pending changes, now.

Meant for a debugger's prompt. A debugger may have suspended every other thread,
the watcher's included, so nothing is taken from the event queues: every tracked file
is compared with what runs. That costs a read per tracked file, which an explicit
request can afford. ``reload_now(path)`` applies one file, with no reloader open too.

Every wait ends: the reload lock and the change queue's lock are taken with a timeout,
and a timeout is a ``failed`` result that says which thread to resume, never a hang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from . import _appliers, _frames
from ._module_index import is_extension
from ._state import RELOAD_LOCK
from .errors import HotmodError, ReloadError
from .reloader import Reloader
from .result import ReloadResult, combine

__all__ = ["reload_now"]


def reload_now(path: str | os.PathLike[str] | None = None, *, timeout: float = 5.0) -> ReloadResult:
    """Apply the pending changes of every open Reloader and PluginFolder, on this thread.

    Every tracked file is compared with the version running, so changes are found even
    while a debugger holds the watcher threads. Returns one result whose counters add
    up every reloader's (``result.report()`` prints them all). Functions on a paused
    stack keep running the code they started with (``result.stale_frames`` lists them,
    ``result.stale_closures`` the closures made before the edit); their next call runs
    the new code.

    With ``path``, only that file: applied by the open reloader that tracks it, or, when
    none does, by a temporary one over its folder (which first checks what each module
    there runs against its file). A file that is not Python source is a ``failed``
    result; a compiled extension ``needs_restart``.

    If another thread holds the reload lock for longer than ``timeout`` seconds (a
    thread paused by a debugger in the middle of a reload), the result is ``failed`` and
    its error says so: resume that thread, then try again.
    """
    started = time.perf_counter()
    if not RELOAD_LOCK.acquire(timeout=timeout):
        return _failed(
            HotmodError(
                f"another thread has been applying a reload for over {timeout:g} s "
                "(paused by the debugger?); resume it and call reload_now() again"
            ),
            started,
        )
    try:
        with _frames.explicit():  # closures that keep old code are looked for too
            if path is not None:
                return _reload_path(Path(os.path.realpath(os.fspath(path))), started)
            return combine([applier._apply_now() for applier in _appliers.active()])
    except HotmodError as exc:  # the change queue held by a suspended thread, say
        return _failed(exc, started)
    finally:
        RELOAD_LOCK.release()


def _failed(error: Exception, started: float, path: Path | None = None) -> ReloadResult:
    paths = (path,) if path is not None else ()
    return ReloadResult("failed", paths=paths, error=error, duration=time.perf_counter() - started)


def _reload_path(path: Path, started: float) -> ReloadResult:
    if is_extension(path):
        error = ReloadError(
            f"{path} is a compiled extension module; restart to load the rebuilt file.", path=path
        )
        return ReloadResult(
            "needs_restart", paths=(path,), error=error, duration=time.perf_counter() - started
        )
    if not path.is_file():
        return _failed(FileNotFoundError(f"no such file: {path}"), started, path)
    for applier in _appliers.active():
        if _tracks(applier, path):
            applier.notify(path)
            return applier.poll()
    if path.suffix not in (".py", ".pyw"):
        return _failed(
            HotmodError(f"{path} is not Python source, and no open reloader tracks it"), started, path
        )
    # No reloader is open over it: a temporary one, told of nothing but this file. It
    # compares what each module of the folder runs with its file as it opens.
    temporary = Reloader([path.parent], backend="manual", apply="manual")
    try:
        if not _tracks(temporary, path):
            return _failed(HotmodError(f"no loaded module comes from {path}"), started, path)
        temporary.notify(path)
        return temporary.poll()  # a noop when what runs is what the file holds
    finally:
        temporary.close()


def _tracks(applier: object, path: Path) -> bool:
    """Whether ``applier`` (a Reloader or a PluginFolder) tracks the file ``path``."""
    reloader: Any = getattr(applier, "_reloader", applier)
    try:
        reloader.modules  # catch up with sys.modules first  # noqa: B018
    except HotmodError:  # closed meanwhile
        return False
    files = getattr(getattr(reloader, "_tracker", None), "files", {})
    return path in files
