"""Reading, hashing and compiling module sources.

Sources are always compiled from their text. A cached ``.pyc`` is validated only by
whole-second mtime and size, so an edit that keeps the size and lands in the same
second as the previous write would run stale bytecode; ``importlib.reload`` falls into
exactly that trap. Hashing the text also lets a ``touch`` or a ``git checkout`` that
moves mtimes backwards be judged by content alone.
"""

from __future__ import annotations

import hashlib
import linecache
import opcode
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

__all__ = [
    "Source",
    "bound_names",
    "compile_source",
    "digest",
    "error_line",
    "imported_modules",
    "read_source",
    "refresh_linecache",
]

_STORE_OPS = frozenset(
    opcode.opmap[name] for name in ("STORE_NAME", "STORE_GLOBAL", "DELETE_NAME") if name in opcode.opmap
)
_IMPORT_STAR = opcode.opmap.get("IMPORT_STAR")
_EXTENDED_ARG = opcode.opmap["EXTENDED_ARG"]
_CALL_INTRINSIC_1 = opcode.opmap.get("CALL_INTRINSIC_1")
_INTRINSIC_IMPORT_STAR = 2  # CALL_INTRINSIC_1 operand for ``from m import *`` (3.12+)


@dataclass(frozen=True, slots=True)
class Source:
    """The bytes of a file as read once, and their digest."""

    path: Path
    data: bytes
    digest: bytes
    mtime_ns: int

    @property
    def empty(self) -> bool:
        return not self.data.strip()


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def read_source(path: Path) -> Source:
    """Read ``path`` once; raises ``OSError`` (missing, unreadable, a directory)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return Source(path, data, digest(data), st.st_mtime_ns)


def compile_source(source: Source) -> CodeType:
    """Compile module code from its text, with the real filename in every error."""
    # ``dont_inherit``: the reloader's own ``from __future__`` flags must not leak in.
    code = compile(source.data, str(source.path), "exec", dont_inherit=True)
    return code


def refresh_linecache(source: Source) -> None:
    """Make tracebacks show the new lines, not what linecache read earlier."""
    try:
        text = source.data.decode("utf-8")
    except UnicodeDecodeError:
        linecache.checkcache(str(source.path))
        return
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    mtime = source.mtime_ns / 1e9
    linecache.cache[str(source.path)] = (len(source.data), mtime, lines, str(source.path))


def _instructions(code: CodeType) -> Iterator[tuple[int, int]]:
    """(opcode, argument) of each instruction of ``code`` itself, not of nested code.

    Two bytes per instruction since 3.6; the inline caches of 3.11+ decode as harmless
    ``CACHE`` no-ops. Far cheaper than ``dis``.
    """
    raw = code.co_code
    ext = 0
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | ext
        if op == _EXTENDED_ARG:
            ext = arg << 8
            continue
        ext = 0
        yield op, arg


def bound_names(code: CodeType) -> tuple[frozenset[str], bool]:
    """Names that module-level code binds, and whether it runs ``import *``.

    Only the top-level code object is read: function and class bodies are separate
    code objects. Walking the raw bytecode (two bytes per instruction since 3.6, with
    inline caches that decode as harmless no-ops) is far cheaper than ``dis``.
    """
    names = code.co_names
    found: set[str] = set()
    star = False
    for op, arg in _instructions(code):
        if op in _STORE_OPS:
            found.add(names[arg])
        elif op == _IMPORT_STAR or (op == _CALL_INTRINSIC_1 and arg == _INTRINSIC_IMPORT_STAR):
            star = True
    return frozenset(found), star


def error_line(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` where ``exc`` was raised (deepest frame in that file)."""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return exc.lineno
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == str(path):
            line = lineno
    return line


_LOAD_CONST = opcode.opmap["LOAD_CONST"]
_CACHE = opcode.opmap.get("CACHE", 0)
_IMPORT_NAME = opcode.opmap["IMPORT_NAME"]


def imported_modules(code: CodeType, package: str | None) -> frozenset[str]:
    """Modules that top-level ``import``/``from ... import`` statements of ``code`` name.

    For ``from p import x`` both ``p`` and ``p.x`` are listed (``x`` may be a submodule).
    """
    found: set[str] = set()
    consts: list[object] = []
    for op, arg in _instructions(code):
        if op == _LOAD_CONST:
            consts.append(code.co_consts[arg])
            continue
        if op == _IMPORT_NAME:
            level = consts[-2] if len(consts) >= 2 and isinstance(consts[-2], int) else 0
            fromlist = consts[-1] if consts and isinstance(consts[-1], tuple) else ()
            base = _resolve(code.co_names[arg], level, package)
            if base is not None:
                if base:
                    found.add(base)
                found.update(f"{base}.{name}" if base else name for name in fromlist if isinstance(name, str))
        if op != _CACHE:
            consts.clear()
    return frozenset(found)


def _resolve(name: str, level: int, package: str | None) -> str | None:
    if level == 0:
        return name
    if not package:
        return None
    parts = package.split(".")
    if level - 1 > len(parts) - 1:
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base
