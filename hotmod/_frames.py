"""After a committed reload: the frames left running old code, and the stale bytecode.

- A frame that was executing a function when its code was replaced finishes in the old
  code: CPython refuses ``frame.f_code`` assignment. A debugger paused in the edited
  function then shows that frame at a line of the old text. The result lists such
  frames, in every thread (``sys._current_frames()``: a debugger's paused stack too).
- Closures made before the edit and held elsewhere (a handler a factory returned) keep
  the old code too; an explicit request (``reload_now()``) lists them, when the new code
  makes functions at all.
- The module's cached bytecode (``__pycache__/*.pyc``) is removed: an edit of the same
  size saved within the same second leaves a ``.pyc`` whose recorded size and mtime still
  match, and the next process would run the old text.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import CodeType, FrameType, FunctionType, MethodType, ModuleType

from ._kinds import is_a
from .result import ReloadResult

__all__ = ["after_commit", "explicit", "remove_bytecode", "stale_closures", "stale_frames"]


def after_commit(result: ReloadResult, modules: Iterable[ModuleType]) -> ReloadResult:
    """``result`` with the stale frames and closures of ``modules``; their ``.pyc`` removed."""
    for path in result.paths:
        remove_bytecode(path)
    files = _files(modules)
    if not files:
        return result
    frames = stale_frames(files)
    closures = stale_closures(files) if getattr(_explicit, "active", False) else ()
    if frames or closures:
        result = replace(result, stale_frames=frames, stale_closures=closures)
    return result


# Set while an explicit request (``reload_now()``, the debug protocol's request) applies
# on this thread: only then are closures looked for, a walk over every object the garbage
# collector tracks (about 0.1 s per million), too slow for every save.
_explicit = threading.local()


@contextlib.contextmanager
def explicit() -> Iterator[None]:
    """Within: reloads on this thread also look for closures that keep old code."""
    before = getattr(_explicit, "active", False)
    _explicit.active = True
    try:
        yield
    finally:
        _explicit.active = before


def remove_bytecode(path: Path) -> None:
    if path.suffix != ".py":
        return
    for optimization in ("", "1", "2"):
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            os.unlink(importlib.util.cache_from_source(str(path), optimization=optimization))


def _files(modules: Iterable[ModuleType]) -> dict[str, set[CodeType]]:
    """File name (as code objects record it) -> the code its module runs now."""
    files: dict[str, set[CodeType]] = {}
    for module in modules:
        origin = getattr(module, "__file__", None)
        if not isinstance(origin, str):
            continue
        live = _live_codes(module)
        for name in {origin, os.path.realpath(origin)}:
            files.setdefault(name, set()).update(live)
    return files


def stale_frames(files: dict[str, set[CodeType]]) -> tuple[str, ...]:
    """Frames executing code of ``files`` that their modules no longer hold."""
    names = {t.ident: t.name for t in threading.enumerate()}
    found: list[str] = []
    for ident, top in sys._current_frames().items():
        frame: FrameType | None = top
        while frame is not None:
            code = frame.f_code
            current = files.get(code.co_filename)
            if current is not None and code.co_name != "<module>" and code not in current:
                where = f"{code.co_filename}:{frame.f_lineno}"
                found.append(f"{code.co_qualname} ({where}) in thread {names.get(ident, ident)}")
            frame = frame.f_back
    return tuple(found)


def stale_closures(files: dict[str, set[CodeType]]) -> tuple[str, ...]:
    """Functions made before the edit by code that makes functions (closures, lambdas
    returned by a factory) and held outside the module: they keep the old code.

    Only looked for when the new code makes functions itself: the search walks every
    object the garbage collector tracks.
    """
    if not any(_makes_functions(code) for live in files.values() for code in live):
        return ()
    counts: dict[CodeType, int] = {}
    for obj in gc.get_objects():
        if type(obj) is FunctionType:
            code = obj.__code__
            live = files.get(code.co_filename)
            if live is not None and "<locals>" in code.co_qualname and code not in live:
                counts[code] = counts.get(code, 0) + 1
    return tuple(
        f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno}): {n} made before the edit"
        for code, n in counts.items()
    )


def _makes_functions(code: CodeType) -> bool:
    return "<locals>" in code.co_qualname or any(isinstance(c, CodeType) for c in code.co_consts)


def _live_codes(module: ModuleType) -> set[CodeType]:
    """Every code object the module's functions, classes and closures run now."""
    codes: set[CodeType] = set()
    seen: set[int] = set()
    stack: list[object] = list(module.__dict__.values())
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if is_a(obj, staticmethod) or is_a(obj, classmethod) or is_a(obj, MethodType):
            stack.append(obj.__func__)
        elif is_a(obj, property):
            stack.extend((obj.fget, obj.fset, obj.fdel))
        elif is_a(obj, FunctionType):
            _add_code(obj.__code__, codes)
            stack.extend(cell.cell_contents for cell in obj.__closure__ or () if _filled(cell))
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is not None:
                stack.append(wrapped)
        elif is_a(obj, type) and obj.__module__ == module.__name__:
            stack.extend(vars(obj).values())
    return codes


def _filled(cell: object) -> bool:
    try:
        cell.cell_contents  # type: ignore[attr-defined]  # noqa: B018
    except ValueError:
        return False
    return True


def _add_code(code: CodeType, codes: set[CodeType]) -> None:
    if code in codes:
        return
    codes.add(code)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _add_code(const, codes)
