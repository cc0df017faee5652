"""One reload transaction: compile, execute against snapshots, commit or restore.

``importlib.reload`` executes new code straight into the live namespace and, when the
code raises half-way, leaves the module half-updated. Here every module of a batch is
snapshotted before it runs; if any of them raises, every snapshot is put back and the
previous version is exactly what it was. The namespace is never cleared (another thread
may be calling into it), so a restore re-sets the old values first and only then
removes the names the failed run added.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any

from . import _frameworks, _hot, _statements
from ._patching import Patcher, PatchReport
from ._registration_sweep import sweep
from ._source import (
    Source,
    bound_names,
    compile_source,
    error_line,
    imported_modules,
    refresh_linecache,
)
from .errors import ReloadError

__all__ = [
    "BeforeCommit",
    "Outcome",
    "RebindImporters",
    "Unit",
    "compile_units",
    "dependency_order",
    "execute",
    "old_version_visible",
    "uses_plain_source_loader",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Unit:
    """One module to re-execute."""

    name: str
    module: ModuleType
    path: Path | None
    source: Source | None
    old_names: frozenset[str] | None  # what the previous version's source bound, if known
    code: CodeType | None = None
    new_names: frozenset[str] | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)
    # A statement plan ready to apply (only what changed runs), or None: the module
    # code runs again as a whole.
    statements: _statements.Prepared | None = None
    # How this unit was reloaded, for the result: "statements", or "module" and why.
    strategy: str = "module"
    # Definitions an earlier reload removed that this version defines again: the new
    # objects merge into these, so references held from before reconnect.
    revive: dict[str, Any] = field(default_factory=dict)
    # What this reload removed (name -> object), for a later version to revive.
    pruned: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    error: ReloadError | None = None
    names_pruned: int = 0
    warnings: list[str] = field(default_factory=list)
    report: PatchReport = field(default_factory=PatchReport)
    # (name, old value, new value) of names a module now binds to another object
    rebound: list[tuple[str, Any, Any]] = field(default_factory=list)
    # old definitions that could not be updated in place -> the new object
    replaced: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    # ``from m import x`` copies in importers (and added namespaces) pointed at new values
    importers_rebound: int = 0
    # a framework adapter refused the change: why (the result is needs_restart)
    needs_restart: str | None = None


def uses_plain_source_loader(module: ModuleType) -> bool:
    """True when compiling the file ourselves is what the module's loader would do."""
    spec = module.__dict__.get("__spec__")
    loader = getattr(spec, "loader", None) or module.__dict__.get("__loader__")
    return type(loader) is SourceFileLoader or getattr(loader, "hotmod_compiles_source", False) is True


def _reload_error(exc: BaseException, unit: Unit, stage: str) -> ReloadError:
    path = unit.path
    line = error_line(exc, path) if path is not None else None
    where = f"{path}:{line}" if line is not None else str(path or unit.name)
    detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    message = f"{where}: {type(exc).__name__} while {stage} {unit.name}: {detail}"
    error = ReloadError(message, module=unit.name, path=path, lineno=line)
    error.__cause__ = exc
    return error


def compile_units(units: list[Unit]) -> ReloadError | None:
    """Compile every unit that has source; the first failure aborts the batch."""
    for unit in units:
        if unit.source is None or unit.statements is not None or not uses_plain_source_loader(unit.module):
            continue  # a statement plan compiled what it needs, and knows the names bound
        try:
            if unit.code is None:
                unit.code = compile_source(unit.source)
        # ValueError: NUL bytes (3.11); RecursionError, MemoryError: a source nested too
        # deep to parse. Each is the new version's fault: reported like a syntax error.
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            if unit.path is not None and unit.source is not None:
                refresh_linecache(unit.source)
            return _reload_error(exc, unit, "compiling")
        unit.new_names, star = bound_names(unit.code)
        if star:
            unit.new_names = None  # ``import *`` binds names we cannot list: prune nothing
    return None


def dependency_order(units: list[Unit]) -> list[Unit]:
    """Order a batch so that a module runs after the batch modules it imports.

    The import graph is read from the new code's top-level imports (``from .helpers
    import any_tag`` takes an instance, which names no module) and from the live
    namespaces (module objects and the ``__module__`` of functions and classes). A
    package's own submodules count only when the package's code imports them: the import
    system binds every imported submodule on its package (``import pkg.sub`` sets
    ``pkg.sub``), and a submodule the package does not import, which does ``from pkg
    import X``, must run after the package, as in a fresh import, or it meets the
    package's old ``X``.
    """
    if len(units) < 2:
        return units
    by_name = {u.name: u for u in units}
    deps: dict[str, set[str]] = {}
    for unit in units:
        found: set[str] = set()
        parent = unit.name.rpartition(".")[0]
        while parent:
            if parent in by_name:
                found.add(parent)
            parent = parent.rpartition(".")[0]
        for value in list(unit.module.__dict__.values()):
            if isinstance(value, ModuleType):
                other = value.__dict__.get("__name__")
            elif isinstance(value, FunctionType):
                other = value.__module__
            elif isinstance(value, type):
                other = _type_module.__get__(value, type(value))  # never a metaclass property
            else:
                continue
            if isinstance(other, str) and other in by_name and other != unit.name:
                found.add(other)
        if unit.code is not None:
            imports = imported_modules(unit.code, _package_of(unit.module))
            found.update(m for m in imports if m in by_name and m != unit.name)
            found = {d for d in found if not _is_within(d, unit.name) or d in imports}
        deps[unit.name] = found
    ordered: list[Unit] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):  # 1: in progress (a cycle: keep going), 2: done
            return
        state[name] = 1
        for dep in sorted(deps[name]):
            visit(dep)
        state[name] = 2
        ordered.append(by_name[name])

    for unit in sorted(units, key=lambda u: u.name):
        visit(unit.name)
    return ordered


_type_module: Any = type.__dict__["__module__"]


def _package_of(module: ModuleType) -> str | None:
    """The package relative imports in ``module``'s code start from."""
    package = module.__dict__.get("__package__")
    if isinstance(package, str):
        return package
    name = module.__name__
    return name if hasattr(module, "__path__") else name.rpartition(".")[0]


def _is_within(name: str, package: str) -> bool:
    """``name`` is ``package`` itself or one of its submodules."""
    return name == package or name.startswith(f"{package}.")


def _restore(namespace: dict[str, Any], snapshot: Mapping[str, Any]) -> None:
    namespace.update(snapshot)  # old values back first: never a missing name
    for name in [n for n in namespace if n not in snapshot]:
        del namespace[name]


BeforeCommit = Callable[[list["Unit"]], ReloadError | None]
RebindImporters = Callable[["Outcome"], int]


def execute(
    units: list[Unit],
    before_commit: BeforeCommit | None = None,
    rebind_importers: RebindImporters | None = None,
) -> Outcome:
    """Run every unit in order; all commit or all are restored.

    ``before_commit`` runs once every unit executed; an error it returns aborts the
    batch like an exception in module code. ``rebind_importers`` points the importers'
    copies at the new values during the commit, before the accept hooks run.
    """
    outcome = Outcome()
    done: list[Unit] = []
    ran_clean = False
    # Module code that runs again registers a new version's hooks; a statement reload
    # keeps the running version (its hooks, data-file dependencies) and only advances.
    modules = [u.module for u in units if u.statements is None]
    frameworks = _frameworks.Hooks()
    _hot.begin(modules)  # what the new code registers belongs to the incoming version
    # Warnings the new code raises (Django's "Reloading models is not advised", a
    # deprecation) belong in the result, not on a console no one reads.
    # The categories Python hides by default stay hidden.
    caught = warnings.catch_warnings(record=True)
    recorded = caught.__enter__()
    warnings.simplefilter("always")
    for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", hidden)
    try:
        for unit in units:
            namespace = unit.module.__dict__
            unit.snapshot = dict(namespace)
            done.append(unit)
            refused = frameworks.prepare(unit)
            if refused is not None:  # a framework that knows the run cannot succeed
                outcome.needs_restart = refused
                outcome.error = ReloadError(refused, module=unit.name, path=unit.path)
                break
            if unit.code is not None and unit.statements is None:
                _bind_submodules(unit.module, unit.code)
            if unit.source is not None:
                refresh_linecache(unit.source)
            try:
                if unit.statements is not None:
                    _statements.apply(unit.statements, unit.module, str(unit.path))
                elif unit.code is not None:
                    exec(unit.code, namespace)
                else:
                    _exec_with_loader(unit.module)
            except (Exception, SystemExit) as exc:
                # sys.exit() in module code refuses this version; it must not end
                # the process or the applying thread. Ctrl-C still propagates.
                outcome.error = _reload_error(exc, unit, "executing")
                break
        if outcome.error is None:
            refusal = frameworks.refuse(units)
            if refusal is not None:
                unit, reason = refusal
                outcome.needs_restart = reason
                outcome.error = ReloadError(reason, module=unit.name, path=unit.path)
        if outcome.error is None and before_commit is not None:
            outcome.error = before_commit(units)
        ran_clean = outcome.error is None
    finally:
        caught.__exit__(None, None, None)
        outcome.warnings.extend(_warning_text(w) for w in recorded)
        # Also on KeyboardInterrupt/SystemExit, which propagate after the restore.
        if not ran_clean:
            # Adapters first, while the failed run's objects are still in the namespace:
            # what it registered with a framework is taken back, the last module first
            # (each puts back the state it saw before it ran, which includes the earlier
            # modules' registrations: those must go after it).
            frameworks.aborted(reversed(done))
            for unit in reversed(done):
                if unit.statements is not None:
                    unit.statements.undo.restore()
                _restore(unit.module.__dict__, unit.snapshot)
            _hot.abandon(modules)
    if outcome.error is None:
        _commit(units, outcome, rebind_importers)
        outcome.warnings.extend(frameworks.committed(units))
    return outcome


def _warning_text(message: warnings.WarningMessage) -> str:
    return f"{message.filename}:{message.lineno}: {message.category.__name__}: {message.message}"


def _bind_submodules(package: ModuleType, code: CodeType) -> None:
    """Give a package the submodule names its first import had when its code ran.

    A first import binds ``pkg.sub`` as a side effect of ``from .sub import x``; running
    the package's code again finds ``pkg.sub`` in ``sys.modules`` and binds nothing. A
    package that cleans up with ``del sub`` would then raise NameError on every reload.
    The names are set before the code runs, so the code's own ``del`` still wins. Only
    the submodules the code imports are looked up: no scan of ``sys.modules``.
    """
    if not hasattr(package, "__path__"):
        return
    namespace = package.__dict__
    prefix = f"{package.__name__}."
    for name in imported_modules(code, package.__name__):
        leaf = name[len(prefix) :].partition(".")[0]
        if name.startswith(prefix) and leaf and leaf not in namespace:
            module = sys.modules.get(prefix + leaf)
            if isinstance(module, ModuleType):
                namespace[leaf] = module


def _commit(units: list[Unit], outcome: Outcome, rebind_importers: RebindImporters | None) -> None:
    """Hand over from the old versions to the new ones, in one order:

    dispose hooks of the outgoing versions (reverse import order, before any patching,
    so they run the old code); kept names put back; the old objects kept and updated in
    place; registries repointed; stale names pruned; importers' copies and added
    namespaces rebound; then the accept hooks of the incoming versions (import order),
    which so see the new version everywhere. A hook that raises is reported, never
    fatal: the new version is committed either way.
    """
    for unit in reversed(units):
        if _hot.has_hooks("dispose", unit.module, unit.snapshot):
            outcome.warnings.extend(_dispose_old_version(unit))
    for unit in units:
        namespace = unit.module.__dict__
        for name in _hot.kept_names(namespace):
            if name in unit.snapshot:
                namespace[name] = unit.snapshot[name]
    patcher = Patcher()
    whole = [u for u in units if u.statements is None]  # the units whose new objects merge
    for unit in units:
        namespace = unit.module.__dict__
        if unit.statements is not None:
            # Only definitions that come back merge: everything else kept its identity.
            revived = [n for n in namespace if n in unit.revive and n not in unit.snapshot]
            patcher.merge_namespace(unit.name, namespace, unit.revive, revived)
            continue
        bound = unit.new_names
        # Namespace order is definition order: a base class merges before its subclasses.
        names = [n for n in namespace if bound is None or n in bound]
        patcher.merge_namespace(unit.name, namespace, {**unit.revive, **unit.snapshot}, names)
    patcher.repoint_fresh()
    for unit in whole:
        patcher.adopt_instances(unit.module.__dict__)
    patcher.report.references_rebound += sweep(
        patcher.substitutions(),
        [u.module.__dict__ for u in units],
        [k for k in patcher.kept.values() if isinstance(k, type)],
    )
    for unit in units:
        namespace = unit.module.__dict__
        outcome.names_pruned += _prune(unit)
        for name, old in unit.snapshot.items():
            new = namespace.get(name, old)
            if new is not old:
                outcome.rebound.append((name, old, new))
    outcome.report = patcher.report
    outcome.replaced = patcher.replaced
    outcome.warnings.extend(patcher.report.warnings)
    if rebind_importers is not None:
        outcome.importers_rebound = rebind_importers(outcome)
    _hot.adopt(u.module for u in whole)
    _hot.advance(u.module for u in units if u.statements is not None)
    for unit in units:
        if unit.statements is not None:
            outcome.report.functions_patched += sum(len(fns) for _, fns, _ in unit.statements.targets)
            outcome.report.classes_patched += unit.statements.classes_touched
            outcome.warnings.extend(unit.statements.plan.warnings)
    for unit in units:
        outcome.warnings.extend(_hot.run_hooks("accept", unit.module, unit.module.__dict__))
        code = unit.statements.code if unit.statements is not None else unit.code
        outcome.warnings.extend(_hot.unknown_dunder_warnings(unit.module.__dict__, code, unit.path))


@contextmanager
def old_version_visible(unit: Unit) -> Iterator[None]:
    """Put the outgoing version back in the module's namespace for a while."""
    namespace = unit.module.__dict__
    incoming = dict(namespace)
    _restore(namespace, unit.snapshot)
    try:
        yield
    finally:
        _restore(namespace, incoming)


def _dispose_old_version(unit: Unit) -> list[str]:
    """Run the outgoing version's dispose hooks against its own globals.

    The namespace is shared by every version, and the new code has already rebound its
    names: a hook reading ``worker`` or ``stop`` as globals would otherwise stop the
    new thread instead of the old one. The old version is put back (consistent, as it
    was before this reload) while its hooks run, then the new one again.
    """
    with old_version_visible(unit):
        return _hot.run_hooks("dispose", unit.module, unit.module.__dict__)


def _exec_with_loader(module: ModuleType) -> None:
    """Modules from zips and custom finders: their own loader runs them, as reload does."""
    spec = module.__dict__.get("__spec__")
    loader = getattr(spec, "loader", None)
    exec_module = getattr(loader, "exec_module", None)
    if exec_module is None:
        raise ImportError(f"{module.__name__} has no loader that can execute it again")
    exec_module(module)


def _prune(unit: Unit) -> int:
    """Remove names the previous source bound and the new source no longer binds.

    Names created at run time (by a function's ``global`` statement, or set from
    outside) were never bound by the source and stay.
    """
    if unit.old_names is None or unit.new_names is None:
        return 0
    namespace = unit.module.__dict__
    stale = [
        name
        for name in unit.old_names - unit.new_names
        if name in namespace
        and not (name.startswith("__") and name.endswith("__"))
        and namespace[name] is unit.snapshot.get(name, namespace)
    ]
    for name in stale:
        unit.pruned[name] = namespace.pop(name)
    return len(stale)
