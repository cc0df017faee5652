"""The statement planner: what an edit changed, statement by statement, and what must run.

The old source is exact (the import recorder's record, or the version last applied), so
the two versions can be compared statement by statement: top-level statements and, in
class bodies, members. Definitions (``def``, ``class``) are matched by name (and by
occurrence, for a property's getter and setter); other statements by their exact text.
Everything is linear in the size of the file: a statement's text is a slice of the
source, and no statement is compared with more than its one counterpart.

The plan says, for one module:

- which functions get new code in place: a ``def`` whose body, signature or docstring
  changed, or that only moved (comments and blank lines above it), keeps its function
  object, and every object the old ``def`` created gets the new code object compiled
  from the new file (so tracebacks point at the new lines). Decorators and class
  statements do not run again;
- which statements are new and run in the live namespace, in source order: a new
  ``def`` or ``class`` with its decorators, an import, an assignment to a new name, a
  new call such as ``app.include_router(r)``; and new methods of a kept class;
- which class members are gone (removed from the kept class);
- or, when anything else changed, that the whole module runs again (``fallback``) and
  which statement forced it, with its line: a changed assignment that code at import
  reads, a changed expression or ``if``/``try``/``with`` block, a changed decorator
  list, base list or class-level statement, a definition that turned into another kind.

One relaxation keeps frequent edits cheap and is sound: an assignment of a literal
(``TIMEOUT = 5``) whose name no other top-level statement reads while the module
executes (decorators, default values, class bodies and base lists count as reading)
runs alone. Functions that read it at call time see the new value, and importers'
copies are rebound like any changed name.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import CodeType
from typing import Literal

__all__ = ["Kind", "Patch", "Plan", "Source", "Stmt", "make"]

Kind = Literal["def", "class", "import", "assign", "docstring", "other"]


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement of a scope, as the planner sees it."""

    kind: Kind
    name: str | None  # def/class name; the one target of a plain assignment
    text: bytes  # the statement's source, without its decorators for a definition
    decorators: bytes  # the decorator lines of a definition (b"" otherwise)
    signature: bytes  # a function's arguments and return annotation; a class's bases
    lineno: int  # the first line (its first decorator's, for a decorated definition)
    end_lineno: int
    node: ast.stmt  # positions as parsed; the statement has moved ``shift`` lines since
    members: tuple[Stmt, ...] = ()  # a class body's statements
    reads: frozenset[str] = frozenset()  # names it reads while the module executes
    shift: int = 0
    binds: frozenset[str] = frozenset()  # module names it binds (top-level statements)
    star: bool = False  # it runs ``from m import *``

    def moved(self, delta: int) -> Stmt:
        if not delta:
            return self
        return Stmt(
            self.kind,
            self.name,
            self.text,
            self.decorators,
            self.signature,
            self.lineno + delta,
            self.end_lineno + delta,
            self.node,
            tuple(m.moved(delta) for m in self.members),
            self.reads,
            self.shift + delta,
            self.binds,
            self.star,
        )


@dataclass(slots=True)
class Patch:
    """A function whose code object is replaced in place."""

    old_qualname: str
    old_lineno: int  # the old code object's co_firstlineno: how live functions are found
    new_qualname: str
    new_lineno: int
    node: ast.FunctionDef | ast.AsyncFunctionDef
    class_path: tuple[str, ...]  # enclosing classes, outermost first
    signature_changed: bool  # defaults or annotations must be evaluated again
    # Only its position changed: the running code moved by the line difference (exactly
    # what compiling it there makes), nothing is compiled.
    moved_only: bool = False


@dataclass(slots=True)
class Plan:
    fallback: str | None = None  # why the whole module must run again (with its line)
    patches: list[Patch] = field(default_factory=list)
    # new top-level statements, in source order
    run: list[ast.stmt] = field(default_factory=list)
    # (enclosing classes, statement) of new class members, in source order
    class_runs: list[tuple[tuple[str, ...], ast.stmt]] = field(default_factory=list)
    # (enclosing classes, name) of methods and nested classes no longer in the source
    class_removals: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    # (enclosing classes, docstring) of changed class docstrings; () is the module
    docstrings: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)
    # (first line, last line, lines moved) of unchanged statements that moved: the
    # functions compiled from those lines move with them
    moved: list[tuple[int, int, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.patches
            or self.run
            or self.class_runs
            or self.class_removals
            or self.docstrings
            or self.moved
        )


class _Fallback(Exception):
    pass


class Source:
    """A source split into its statements (offsets in the AST are UTF-8 bytes).

    Parsing a whole file into Python AST objects costs more than compiling it. The
    version a plan starts from is kept, so the next version is parsed only where it
    differs: the lines both share at the start and at the end are found, the
    statements they hold are taken over (moved by the difference in line count), and
    only the statements in between are parsed. Anything unusual parses the whole file.
    """

    def __init__(self, data: bytes, filename: str, previous: Source | None = None) -> None:
        self.data = data
        self.filename = filename
        self._lines = data.splitlines(keepends=True)
        self._starts: list[int] = []
        offset = 0
        for line in self._lines:
            self._starts.append(offset)
            offset += len(line)
        self._starts.append(offset)
        # The statements parsed for this version (all of them, or the changed region):
        # compiled, they give the code objects of whatever changed.
        self.parsed: ast.Module = ast.Module(body=[], type_ignores=[])
        index = self._incremental(previous) if previous is not None else None
        self.index = index if index is not None else self._parse_all()
        self.flags = _future_flags(self.index)

    def _parse_all(self) -> tuple[Stmt, ...]:
        self.parsed = ast.parse(self.data, self.filename)
        return tuple(_index(self, self.parsed.body, 0))

    def bound_names(self) -> frozenset[str] | None:
        """Names the top level binds; None when it runs ``import *`` (unknowable)."""
        if any(stmt.star for stmt in self.index):
            return None
        return frozenset(name for stmt in self.index for name in stmt.binds)

    def compile_changed(self) -> CodeType:
        """The parsed statements compiled at their real lines, with the file's
        ``__future__`` flags: the code objects of every changed definition."""
        code: CodeType = compile(self.parsed, self.filename, "exec", flags=self.flags, dont_inherit=True)
        return code

    def _incremental(self, old: Source) -> tuple[Stmt, ...] | None:
        old_lines, new_lines = old._lines, self._lines
        limit = min(len(old_lines), len(new_lines))
        head = 0
        while head < limit and old_lines[head] == new_lines[head]:
            head += 1
        if head == len(old_lines) == len(new_lines):
            return old.index
        tail = 0
        while tail < limit - head and old_lines[-1 - tail] == new_lines[-1 - tail]:
            tail += 1
        delta = len(new_lines) - len(old_lines)
        # The changed lines, 1-based and inclusive: old [head + 1, len(old) - tail]. The
        # statements wholly before and wholly after them are kept; a statement that
        # straddles them is parsed again whole, with whatever lies between.
        first, last = head + 1, len(old_lines) - tail
        before = [s for s in old.index if s.end_lineno < first]
        after = [s for s in old.index if s.lineno > max(last, head)]
        start = before[-1].end_lineno + 1 if before else 1
        end = after[0].lineno - 1 if after else len(old_lines)
        new_end = end + delta
        if new_end < start - 1 or (before and old_lines[before[-1].end_lineno - 1].rstrip().endswith(b"\\")):
            return None
        region = b"".join(new_lines[start - 1 : new_end])
        try:
            tree = ast.parse(region, self.filename)
        except (SyntaxError, ValueError):
            return None  # the whole file is parsed, and reports the error where it is
        if start > 1:
            ast.increment_lineno(tree, start - 1)
        self.parsed = tree
        middle = tuple(_index(self, tree.body, len(before)))
        return (*before, *middle, *(s.moved(delta) for s in after))

    def segment(self, node: ast.AST) -> bytes:
        start = self._starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self._starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return self.data[start:end]

    def read_at_import(self) -> set[str]:
        """Names module code reads while it executes (see ``_read_at_import``)."""
        return {name for stmt in self.index for name in stmt.reads}


def _future_flags(index: tuple[Stmt, ...]) -> int:
    import __future__

    flags = 0
    for stmt in index:
        node = stmt.node
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
    return flags


def _index(source: Source, body: list[ast.stmt], first_index: int) -> Iterator[Stmt]:
    for i, node in enumerate(body, first_index):
        end = node.end_lineno or node.lineno
        reads = frozenset(_read_at_import([node]))
        binds, star = _module_bindings(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            decorators = b"\n".join(source.segment(d) for d in node.decorator_list)
            lineno = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            text = source.segment(node)
            if isinstance(node, ast.ClassDef):
                signature = b",".join(source.segment(b) for b in [*node.bases, *node.keywords])
                members = tuple(_index(source, node.body, 0))
                yield Stmt(
                    "class",
                    node.name,
                    text,
                    decorators,
                    signature,
                    lineno,
                    end,
                    node,
                    members,
                    reads,
                    0,
                    binds,
                )
            else:
                signature = _signature(source, node)
                yield Stmt(
                    "def", node.name, text, decorators, signature, lineno, end, node, (), reads, 0, binds
                )
            continue
        kind: Kind = "other"
        name = None
        if i == 0 and _is_docstring(node):
            kind = "docstring"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            kind = "import"
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            kind, name = "assign", node.targets[0].id
        text = source.segment(node)
        yield Stmt(kind, name, text, b"", b"", node.lineno, end, node, (), reads, 0, binds, star)


def _signature(source: Source, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bytes:
    parts: list[bytes] = []
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None and arg.annotation is not None:
            parts.append(source.segment(arg.annotation))
    parts += [source.segment(d) for d in args.defaults]
    parts += [source.segment(d) if d is not None else b"-" for d in args.kw_defaults]
    if node.returns is not None:
        parts.append(source.segment(node.returns))
    return b"\0".join(parts)


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def make(old: Source, new: Source, filename: str, has_hooks: bool) -> Plan:
    """The plan that takes a module from ``old`` to ``new``."""
    plan = Plan()
    if has_hooks:
        plan.fallback = "the module has dispose/accept hooks, which expect it to run again"
        return plan
    try:
        _module_scope(old, new, plan, filename)
        _check_import_time_calls(new, plan, filename)
    except _Fallback as exc:
        return Plan(fallback=str(exc))
    return plan


def _check_import_time_calls(new: Source, plan: Plan, filename: str) -> None:
    """A changed function that module code calls while it executes (a decorator, a
    factory: ``f = make()``) made objects that a fresh import would make differently:
    those statements must run again, so the whole module does."""
    # A function that only moved behaves as it did: what it made at import still stands.
    top_level = {p.new_qualname: p for p in plan.patches if not p.class_path and not p.moved_only}
    if not top_level:
        return
    readers = new.read_at_import()
    for name, patch in top_level.items():
        if name in readers:
            raise _Fallback(
                f"{filename}:{patch.new_lineno}: {name} changed, and code that runs at import calls it "
                "(a decorator or a factory)"
            )


def _where(filename: str, stmt: Stmt) -> str:
    return f"{filename}:{stmt.lineno}"


def _pair_definitions(old: tuple[Stmt, ...], new: tuple[Stmt, ...]) -> tuple[dict[int, Stmt], list[Stmt]]:
    """new definition's index -> its old counterpart (by name and occurrence); old unmatched."""
    by_name: dict[str, list[Stmt]] = {}
    for stmt in old:
        if stmt.kind in ("def", "class") and stmt.name is not None:
            by_name.setdefault(stmt.name, []).append(stmt)
    seen: Counter[str] = Counter()
    pairs: dict[int, Stmt] = {}
    for i, stmt in enumerate(new):
        if stmt.kind in ("def", "class") and stmt.name is not None:
            candidates = by_name.get(stmt.name, [])
            k = seen[stmt.name]
            seen[stmt.name] += 1
            if k < len(candidates):
                pairs[i] = candidates[k]
    matched = {id(s) for s in pairs.values()}
    removed = [s for s in old if s.kind in ("def", "class") and id(s) not in matched]
    return pairs, removed


def _module_scope(old: Source, new: Source, plan: Plan, filename: str) -> None:
    pairs, removed_defs = _pair_definitions(old.index, new.index)
    for i, stmt in enumerate(new.index):
        if stmt.kind not in ("def", "class"):
            continue
        before = pairs.get(i)
        if before is None:
            plan.run.append(stmt.node)  # a new definition, with its decorators
            continue
        _definition(before, stmt, (), plan, filename)
    # A removed definition is pruned by name; one whose name another statement binds now
    # (``def f`` became ``f = make()``) leaves references to the old object behind.
    rebound = {name for s in new.index if s.kind not in ("def", "class") for name in s.binds}
    for stmt in removed_defs:
        if stmt.name in rebound:
            raise _Fallback(f"{_where(filename, stmt)}: {stmt.name} is no longer a definition")
    old_texts = Counter(s.text for s in old.index if s.kind not in ("def", "class"))
    new_texts = Counter(s.text for s in new.index if s.kind not in ("def", "class"))
    gone = old_texts - new_texts
    added = new_texts - old_texts
    removed_stmts = [s for s in old.index if s.kind not in ("def", "class") and gone[s.text] > 0]
    for stmt in removed_stmts:
        gone[stmt.text] -= 1
    changed_targets = {s.name for s in removed_stmts if s.kind == "assign"}
    for stmt in removed_stmts:
        if stmt.kind == "other":
            raise _Fallback(
                f"{_where(filename, stmt)}: a statement that ran at import changed or was removed"
            )
    readers: set[str] | None = None
    for stmt in new.index:
        if stmt.kind in ("def", "class") or added[stmt.text] <= 0:
            continue
        added[stmt.text] -= 1
        if stmt.kind == "docstring":
            assert isinstance(stmt.node, ast.Expr)
            assert isinstance(stmt.node.value, ast.Constant)
            doc = stmt.node.value.value
            plan.docstrings.append(((), doc if isinstance(doc, str) else None))
            continue
        if stmt.kind == "assign" and stmt.name in changed_targets:
            if readers is None:
                readers = new.read_at_import()
            if stmt.name in readers or not _is_literal(stmt.node):
                raise _Fallback(
                    f"{_where(filename, stmt)}: {stmt.name} changed, and code that runs at import "
                    f"reads it (or its value is not a literal)"
                )
        elif stmt.kind == "other" and removed_stmts:
            raise _Fallback(f"{_where(filename, stmt)}: a statement that runs at import changed")
        plan.run.append(stmt.node)
    if any(s.kind == "docstring" for s in removed_stmts) and not any(
        s.kind == "docstring" for s in new.index
    ):
        plan.docstrings.append(((), None))
    plan.run.sort(key=lambda node: node.lineno)
    _moved_statements(old.index, new.index, plan)


def _moved_statements(old: tuple[Stmt, ...], new: tuple[Stmt, ...], plan: Plan) -> None:
    """Statements other than definitions that kept their text but moved (functions
    defined under an ``if`` or ``try``, lambdas): the functions compiled from their
    lines move with them."""
    waiting: dict[bytes, list[Stmt]] = {}
    for stmt in old:
        if stmt.kind not in ("def", "class"):
            waiting.setdefault(stmt.text, []).append(stmt)
    for stmt in new:
        if stmt.kind in ("def", "class"):
            continue
        same = waiting.get(stmt.text)
        if not same:
            continue
        before = same.pop(0)
        if before.lineno != stmt.lineno:
            plan.moved.append((before.lineno, before.end_lineno, stmt.lineno - before.lineno))


def _definition(old: Stmt, new: Stmt, classes: tuple[str, ...], plan: Plan, filename: str) -> None:
    """A definition present in both versions."""
    where = _where(filename, new)
    if old.kind != new.kind:
        raise _Fallback(f"{where}: {new.name} is now a {'class' if new.kind == 'class' else 'function'}")
    if old.decorators != new.decorators:
        raise _Fallback(f"{where}: the decorators of {new.name} changed")
    if new.kind == "class":
        if old.signature != new.signature:
            raise _Fallback(f"{where}: the bases of class {new.name} changed")
        _class_scope(old, new, (*classes, new.name or ""), plan, filename)
        return
    if old.text == new.text and old.lineno == new.lineno:
        return  # untouched, and where it was
    assert isinstance(new.node, (ast.FunctionDef, ast.AsyncFunctionDef))
    prefix = "".join(f"{c}." for c in classes)
    plan.patches.append(
        Patch(
            old_qualname=prefix + (old.name or ""),
            old_lineno=old.lineno,
            new_qualname=prefix + (new.name or ""),
            new_lineno=new.lineno,
            node=new.node,
            class_path=classes,
            signature_changed=old.signature != new.signature,
            moved_only=old.text == new.text,
        )
    )


def _class_scope(old: Stmt, new: Stmt, classes: tuple[str, ...], plan: Plan, filename: str) -> None:
    pairs, removed = _pair_definitions(old.members, new.members)
    for i, stmt in enumerate(new.members):
        if stmt.kind not in ("def", "class"):
            continue
        before = pairs.get(i)
        if before is None:
            if stmt.kind == "class":
                raise _Fallback(f"{_where(filename, stmt)}: a class was added inside class {classes[-1]}")
            plan.class_runs.append((classes, stmt.node))
            continue
        _definition(before, stmt, classes, plan, filename)
    for stmt in removed:
        if stmt.name is not None and not any(s.name == stmt.name for s in new.members):
            plan.class_removals.append((classes, stmt.name))
    old_rest = [s for s in old.members if s.kind not in ("def", "class")]
    new_rest = [s for s in new.members if s.kind not in ("def", "class")]
    old_doc = next((s for s in old_rest if s.kind == "docstring"), None)
    new_doc = next((s for s in new_rest if s.kind == "docstring"), None)
    if (old_doc.text if old_doc else None) != (new_doc.text if new_doc else None):
        value = new_doc.node.value.value if new_doc is not None else None  # type: ignore[attr-defined]
        plan.docstrings.append((classes, value))
    if [s.text for s in old_rest if s.kind != "docstring"] != [
        s.text for s in new_rest if s.kind != "docstring"
    ]:
        changed = next(
            (n for o, n in zip(old_rest, new_rest, strict=False) if o.text != n.text),
            new_rest[-1] if new_rest else new,
        )
        raise _Fallback(
            f"{_where(filename, changed)}: a statement in the body of class {classes[-1]} changed"
        )


_NEW_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _module_bindings(node: ast.stmt) -> tuple[frozenset[str], bool]:
    """The module names a top-level statement binds (or deletes), and whether it runs
    ``from m import *``. Nested scopes bind their own names, not the module's."""
    names: set[str] = set()
    star = False
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(current.name)
            if current is not node:
                continue
            stack.extend(current.decorator_list)
            continue
        if isinstance(current, _NEW_SCOPES):
            continue
        if isinstance(current, ast.Name) and isinstance(current.ctx, (ast.Store, ast.Del)):
            names.add(current.id)
        elif isinstance(current, ast.alias):
            if current.name == "*":
                star = True
            else:
                names.add(current.asname or current.name.partition(".")[0])
        elif (isinstance(current, ast.ExceptHandler) and current.name) or (
            isinstance(current, (ast.MatchAs, ast.MatchStar)) and current.name
        ):
            names.add(current.name)
        elif isinstance(current, ast.MatchMapping) and current.rest:
            names.add(current.rest)
        stack.extend(ast.iter_child_nodes(current))
    return frozenset(names), star


def _is_literal(node: ast.stmt) -> bool:
    assert isinstance(node, ast.Assign)
    try:
        ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _read_at_import(body: list[ast.stmt]) -> set[str]:
    """Names that module code reads while it executes (not inside function bodies):
    every top-level statement, class bodies, decorators, default values, annotations
    evaluated at definition time, base lists."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if expr is not None:
                    visit(expr)
            return  # the body runs at call time
        if isinstance(node, ast.Lambda):
            for expr in [*node.args.defaults, *node.args.kw_defaults]:
                if expr is not None:
                    visit(expr)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            found.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in body:
        visit(stmt)
    return found
