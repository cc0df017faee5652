"""Reading, hashing and compiling module sources.

Sources are always compiled from their text. A cached ``.pyc`` is validated only by
whole-second mtime and size, so an edit that keeps the size and lands in the same
second as the previous write would run stale bytecode; ``importlib.reload`` falls into
exactly that trap. Hashing the text also lets a ``touch`` or a ``git checkout`` that
moves mtimes backwards be judged by content alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import linecache
import opcode
import os
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FunctionType

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


def _code_by_qualname(code: CodeType, into: dict[str, list[CodeType]]) -> dict[str, list[CodeType]]:
    """Every nested code object, by qualified name (lambdas share one: hence lists)."""
    for const in code.co_consts:
        if isinstance(const, CodeType):
            into.setdefault(const.co_qualname, []).append(const)
            _code_by_qualname(const, into)
    return into


_LOAD_CONST = opcode.opmap["LOAD_CONST"]
_LOAD_NAME = opcode.opmap["LOAD_NAME"]
_CACHE = opcode.opmap.get("CACHE", 0)
_STORE_NAME = opcode.opmap["STORE_NAME"]
_PLAIN = (int, str, bytes, float, bool, type(None))


def _top_level_bindings(code: CodeType) -> tuple[dict[str, object], dict[str, str]]:
    """``NAME = <literal>`` and ``NAME = OTHER`` statements of module code."""
    found: dict[str, object] = {}
    aliases: dict[str, str] = {}
    stores: dict[str, int] = {}
    nothing = last_const = object()
    last_name: str | None = None
    for op, arg in _instructions(code):
        if op == _LOAD_CONST:
            last_const, last_name = code.co_consts[arg], None
            continue
        if op == _LOAD_NAME:
            last_const, last_name = nothing, code.co_names[arg]
            continue
        if op == _STORE_NAME:
            name = code.co_names[arg]
            stores[name] = stores.get(name, 0) + 1
            if last_const is not nothing and isinstance(last_const, _PLAIN):
                found[name] = last_const
            elif last_name is not None:
                aliases[name] = last_name
        if op != _CACHE:
            last_const, last_name = nothing, None
    # A name stored more than once (branches, augmented assignment) has no one value.
    once = {name for name, count in stores.items() if count == 1}
    return (
        {k: v for k, v in found.items() if k in once},
        {k: v for k, v in aliases.items() if k in once},
    )


def runs_this_source(code: CodeType, namespace: dict[str, object], module_name: str) -> bool:
    """Whether a loaded module plausibly came from ``code`` (compiled from its file now).

    Used when a module is first seen after its file was written: compares the code of
    every function and method the module holds, and its top-level literal constants.
    Only code objects and plain literals are compared, never user objects.
    """
    compiled = _code_by_qualname(code, {})
    pending: list[object] = []
    for value in list(namespace.values()):
        if isinstance(value, type) and value.__dict__.get("__module__") == module_name:
            pending.extend(value.__dict__.values())
            # Literal class attributes: compare them with the class body's own.
            for body in compiled.get(value.__qualname__, ()):
                if not _literals_match(_top_level_bindings(body)[0], value.__dict__):
                    return False
        else:
            pending.append(value)
    seen: set[int] = set()
    while pending:
        fn = pending.pop()
        fn = getattr(fn, "__func__", fn) if isinstance(fn, (staticmethod, classmethod)) else fn
        if not isinstance(fn, FunctionType) or id(fn) in seen or fn.__module__ != module_name:
            continue
        seen.add(id(fn))
        if not any(twin == fn.__code__ for twin in compiled.get(fn.__code__.co_qualname, ())):
            return False
        for cell in fn.__closure__ or ():  # a decorator's wrapper holds the decorated function
            with contextlib.suppress(ValueError):
                pending.append(cell.cell_contents)
    literals, aliases = _top_level_bindings(code)
    if not _literals_match(literals, namespace):
        return False
    return all(namespace.get(name) is namespace.get(other) for name, other in aliases.items())


def _literals_match(literals: dict[str, object], namespace: Mapping[str, object]) -> bool:
    for name, literal in literals.items():
        current = namespace.get(name, literal)
        if type(current) is not type(literal) or current != literal:
            return False
    return True


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
