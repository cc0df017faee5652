"""The worker side of ``hotmod.dask``: the task gate and the shipped-source transactions.

Everything here runs inside a Dask worker process. It imports nothing from Dask: the
worker object is only used through the few attributes named below (``executors``,
``active_threads``, ``address``, ``scheduler``, ``log_event``), so this module stays
cheap to import and the same code serves every supported ``distributed`` version.

The gate. Tasks run in the worker's thread pools; every function submitted to them is
wrapped so that it enters the gate before it runs and leaves it when it returns. A reload
takes the gate alone: it waits for the running tasks to finish, and tasks that start
meanwhile wait for it (milliseconds). A task therefore runs entirely on one version. A
task that secedes (``long-running``: ``worker_client``, ``secede()``) leaves the gate, or
it could wait forever for tasks the reload holds back.

Shipped sources. A sync keeps, per worker process, the source texts the client shipped
(module name -> bytes): the *committed* overlay. A meta-path finder serves them to later
imports, and a ``Reloader`` (manual backend, manual apply) reads them through its
``_reader`` seam instead of the worker's own copy on disk. A save is one transaction in
two phases: ``prepare`` executes the new code against snapshots and votes (the
transaction waits in the reloader's ``_before_commit`` seam, holding the gate);
``decide`` then commits, or restores every snapshot. Nothing on disk is written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any

from . import _transaction
from ._module_index import module_origin
from ._source import Source, digest, read_source
from .errors import ReloadError
from .reloader import Reloader
from .result import ReloadResult

__all__ = [
    "GATE",
    "METADATA_ROOT",
    "Gate",
    "Shipped",
    "SyncState",
    "add_after_task",
    "catch_up",
    "decide",
    "drop",
    "fetch",
    "install",
    "install_gate",
    "payload",
    "prepare",
    "remove_gate",
    "state",
    "task_seceded",
]

logger = logging.getLogger("hotmod.dask")

# The scheduler metadata key under which a sync publishes its committed sources.
METADATA_ROOT = "hotmod.dask"
# How often a reload waiting for tasks looks whether it was cancelled.
_WAIT_SLICE = 0.1


# -- the gate ------------------------------------------------------------------------------


class Gate:
    """Tasks inside run together; a reload holds it alone, between tasks.

    Not tied to a thread for the reload side: ``acquire`` and ``release`` may come from
    different calls on one thread only, which is how the callers use it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside: dict[int, int] = {}  # thread ident -> depth (a task running a task inline)
        self._waiting = 0  # reloads waiting for the running tasks
        self._held = False
        self._blocked = 0  # tasks waiting for a reload
        #: set while a reload waits for running tasks to finish (diagnostics and tests)
        self.contended = threading.Event()

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._inside)

    def wait_blocked(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` tasks wait for a reload (diagnostics and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._blocked >= count, timeout)

    def enter(self) -> None:
        me = threading.get_ident()
        with self._cond:
            depth = self._inside.get(me)
            if depth:
                self._inside[me] = depth + 1
                return
            if self._held or self._waiting:
                self._blocked += 1
                self._cond.notify_all()  # for whoever watches ``blocked``
                try:
                    while self._held or self._waiting:
                        self._cond.wait()
                finally:
                    self._blocked -= 1
            self._inside[me] = 1

    def leave(self) -> None:
        me = threading.get_ident()
        with self._cond:
            depth = self._inside.get(me)
            if depth is None:
                return  # it seceded: already out
            if depth > 1:
                self._inside[me] = depth - 1
            else:
                del self._inside[me]
                self._cond.notify_all()

    def release_thread(self, ident: int) -> None:
        """A task that seceded no longer holds back reloads."""
        with self._cond:
            if self._inside.pop(ident, None) is not None:
                self._cond.notify_all()

    def acquire(self, timeout: float | None = None, cancelled: Callable[[], bool] | None = None) -> bool:
        """Wait until no task runs, holding new ones back; False on timeout or cancel."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            try:
                while self._inside or self._held:
                    self.contended.set()
                    if cancelled is not None and cancelled():
                        return False
                    left = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._held = True
                return True
            finally:
                self._waiting -= 1
                self.contended.clear()
                if not self._held:
                    self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kwargs: Any) -> Any:
            self.enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()
                _after_task()

        return gated


# One gate per process: the modules a reload changes are the process's, whichever
# worker of the process (``processes=False``) runs the task.
GATE = Gate()
_gate_users: dict[int, int] = {}  # id(executor) -> plugins that asked for the gate
_gate_lock = threading.Lock()
_after_task_hooks: list[Callable[[], None]] = []


def _after_task() -> None:
    for hook in list(_after_task_hooks):
        try:
            hook()
        except Exception:
            logger.exception("hotmod: after-task hook failed")


def _executors(worker: Any) -> list[Any]:
    executors = getattr(worker, "executors", {})
    offload = executors.get("offload")
    seen: list[Any] = []
    for name, executor in executors.items():
        if name == "offload" or executor is offload or any(executor is e for e in seen):
            continue  # (de)serialization, not tasks
        if callable(getattr(executor, "submit", None)):
            seen.append(executor)
    return seen


def install_gate(worker: Any) -> None:
    """Route the tasks of ``worker``'s thread pools through :data:`GATE`."""
    with _gate_lock:
        for executor in _executors(worker):
            key = id(executor)
            count = _gate_users.get(key, 0)
            if count == 0:
                original = executor.submit

                def submit(fn: Callable[..., Any], /, *args: Any, _submit: Any = original, **kw: Any) -> Any:
                    return _submit(GATE.wrap(fn), *args, **kw)

                executor.submit = submit  # an instance attribute: deleting it undoes this
            _gate_users[key] = count + 1


def remove_gate(worker: Any) -> None:
    with _gate_lock:
        for executor in _executors(worker):
            key = id(executor)
            count = _gate_users.get(key, 0)
            if count <= 1:
                _gate_users.pop(key, None)
                if "submit" in vars(executor):
                    del executor.submit
            else:
                _gate_users[key] = count - 1


def task_seceded(worker: Any, key: object) -> None:
    """``executing -> long-running``: that task's thread leaves the gate."""
    threads = getattr(worker, "active_threads", {})
    for ident, running in list(threads.items()):
        if running == key:
            GATE.release_thread(ident)


def add_after_task(hook: Callable[[], None]) -> Callable[[], None]:
    _after_task_hooks.append(hook)

    def remove() -> None:
        if hook in _after_task_hooks:
            _after_task_hooks.remove(hook)

    return remove


# -- results across the wire -------------------------------------------------------------------


def payload(result: ReloadResult, worker: str, **extra: Any) -> dict[str, Any]:
    """A result as plain, msgpack-friendly data."""
    error = result.error
    return {
        "worker": worker,
        "status": result.status,
        "modules": list(result.modules),
        "paths": [str(p) for p in result.paths],
        "error": None if error is None else str(error),
        "error_type": None if error is None else type(error.__cause__ or error).__name__,
        "error_module": getattr(error, "module", None),
        "error_path": None if getattr(error, "path", None) is None else str(error.path),  # type: ignore[union-attr]
        "error_line": getattr(error, "lineno", None),
        "warnings": list(result.warnings),
        "duration": result.duration,
        "functions_patched": result.functions_patched,
        "classes_patched": result.classes_patched,
        "classes_replaced": result.classes_replaced,
        "references_rebound": result.references_rebound,
        "names_pruned": result.names_pruned,
        **extra,
    }


# -- shipped sources ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shipped:
    """One module's source as the client shipped it."""

    data: bytes
    package: bool  # an ``__init__.py``
    client_path: str  # where it lives on the client (tracebacks name it when the worker has no copy)
    digest: bytes = b""

    @classmethod
    def of(cls, data: bytes, package: bool, client_path: str) -> Shipped:
        return cls(data, package, client_path, digest(data))


def _unpack(sources: Mapping[str, Sequence[Any]]) -> dict[str, Shipped]:
    return {name: Shipped.of(bytes(v[0]), bool(v[1]), str(v[2])) for name, v in sources.items()}


@dataclass(slots=True)
class _Tx:
    """One transaction on this worker, driven by the client's prepare and decide calls."""

    txid: int
    changes: dict[str, Shipped]
    timeout: float
    voted: Future[dict[str, Any]] = field(default_factory=Future)
    finished: Future[dict[str, Any]] = field(default_factory=Future)
    decision: threading.Event = field(default_factory=threading.Event)
    commit: bool = False
    auto_commit: bool = False  # a catch-up install: nobody else to wait for
    imported: set[str] = field(default_factory=set)  # modules first imported with the new sources


class SyncState:
    """What one sync keeps in this worker process."""

    def __init__(self, sync_id: str) -> None:
        self.sync_id = sync_id
        self.version = -1  # -1: nothing known yet (a worker that just joined)
        self.committed: dict[str, Shipped] = {}
        self.pending: dict[str, Shipped] | None = None
        self.tx: _Tx | None = None
        self.lock = threading.Lock()  # one transaction at a time
        self.reloader: Reloader | None = None
        self.txs: dict[int, _Tx] = {}
        self.address = ""

    # What imports and the reloader see: the pending sources while a transaction runs.
    def lookup(self, name: str) -> Shipped | None:
        pending = self.pending
        if pending is not None and name in pending:
            return pending[name]
        return self.committed.get(name)

    def _by_path(self) -> dict[str, Shipped]:
        found: dict[str, Shipped] = {}
        for name in set(self.committed) | set(self.pending or ()):
            shipped = self.lookup(name)
            for path in self._paths_of([name]):
                if shipped is not None:
                    found[path] = shipped
        return found

    def read(self, path: Path) -> Source:
        shipped = self._by_path().get(str(path))
        if shipped is None:
            return read_source(path)
        # mtime 0: what a reloader finds tracked is taken as running, never re-checked.
        return Source(path, shipped.data, shipped.digest, 0)

    def before_commit(self, units: list[_transaction.Unit]) -> ReloadError | None:
        tx = self.tx
        if tx is None:
            return None
        return self._vote_and_wait(tx)

    def _vote_and_wait(self, tx: _Tx) -> ReloadError | None:
        if tx.auto_commit:
            tx.commit = True
            return None
        if not tx.voted.done():
            tx.voted.set_result({"vote": True})
        if not tx.decision.wait(tx.timeout):
            return ReloadError(f"no decision from the client within {tx.timeout:g} s; rolled back")
        if not tx.commit:
            return ReloadError("rolled back: another worker refused this version")
        return None

    @staticmethod
    def _paths_of(names: Iterable[str]) -> list[str]:
        """This worker's files of the imported modules among ``names``."""
        found: list[str] = []
        for name in names:
            module = sys.modules.get(name)
            origin = module_origin(module) if isinstance(module, ModuleType) else None
            if origin is not None:
                found.append(os.path.realpath(origin))
        return found

    def _reloader(self, names: set[str]) -> Reloader:
        """A reloader over the files of the imported modules among ``names``."""
        wanted = {Path(p) for p in self._paths_of(names)}
        current = self.reloader
        if current is not None and wanted <= set(current.paths):
            return current
        if current is not None:
            wanted |= set(current.paths)
            current.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a module shipped without a copy here has no file
            self.reloader = Reloader(
                sorted(wanted),
                backend="manual",
                apply="manual",
                debounce=0,
                _reader=self.read,
                _before_commit=self.before_commit,
            )
        return self.reloader

    def run(self, tx: _Tx) -> None:
        """The transaction, on a thread of its own (never the worker's event loop)."""
        started = time.perf_counter()
        result = ReloadResult("aborted", error=ReloadError("hotmod.dask: the transaction was interrupted"))
        try:
            with self.lock:
                result = self._run_locked(tx, started)
        except Exception as exc:
            error = ReloadError(f"hotmod.dask: the transaction failed on this worker: {exc!r}")
            error.__cause__ = exc
            result = ReloadResult("aborted", error=error)
            logger.exception("hotmod.dask: transaction %s failed", tx.txid)
        finally:
            result = replace(result, duration=time.perf_counter() - started)
            final = payload(result, self.address, committed=result.ok and tx.commit)
            if not tx.voted.done():
                tx.voted.set_result({"vote": False, "result": final})
            tx.finished.set_result(final)
            self.txs.pop(tx.txid, None)

    def _run_locked(self, tx: _Tx, started: float) -> ReloadResult:
        deadline_wait = tx.timeout
        if not GATE.acquire(deadline_wait):
            error = ReloadError(
                f"tasks still running on this worker after {deadline_wait:g} s; the save was not applied"
            )
            return ReloadResult("aborted", error=error, duration=time.perf_counter() - started)
        try:
            names = set(self.committed) | set(tx.changes)
            reloader = self._reloader(names)
            _ = reloader.modules  # track what was imported since, with what it runs
            self.pending = {**self.committed, **tx.changes}
            self.tx = tx
            reloader.notify(*self._paths_of(tx.changes))
            result = reloader.poll()
            if result.ok and result.status == "noop" and not tx.commit:
                # Nothing of this worker runs the changed modules yet: it still votes, and
                # holds back its tasks until the decision (they would import one version).
                refusal = self._vote_and_wait(tx)
                if refusal is not None:
                    result = ReloadResult("aborted", error=refusal)
            if result.ok:
                self.committed.update(tx.changes)
                self.version = tx.txid
                tx.commit = True
            else:
                tx.commit = False
                for name in tx.imported:
                    sys.modules.pop(name, None)  # imported with the refused sources
                # A fresh reloader next time: the one used would report the same content
                # as already refused.
                reloader.close()
                self.reloader = None
            return result
        finally:
            self.pending = None
            self.tx = None
            GATE.release()

    def close(self) -> None:
        with self.lock:
            if self.reloader is not None:
                self.reloader.close()
                self.reloader = None
            self.committed.clear()


_SYNCS: dict[str, SyncState] = {}
_syncs_lock = threading.Lock()


def state(sync_id: str, address: str = "") -> SyncState:
    with _syncs_lock:
        found = _SYNCS.get(sync_id)
        if found is None:
            found = _SYNCS[sync_id] = SyncState(sync_id)
            if not any(isinstance(f, _Finder) for f in sys.meta_path):
                sys.meta_path.insert(0, _Finder())
        if address:
            found.address = address
        return found


def drop(sync_id: str) -> None:
    with _syncs_lock:
        found = _SYNCS.pop(sync_id, None)
        if not _SYNCS:
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]
    if found is not None:
        found.close()


def _lookup(name: str) -> tuple[SyncState, Shipped] | None:
    for sync in list(_SYNCS.values()):
        shipped = sync.lookup(name)
        if shipped is not None:
            return sync, shipped
    return None


class _Loader(SourceFileLoader):
    """Loads a module from its shipped source rather than this worker's file."""

    hotmod_compiles_source = True  # the reloader compiles the text itself, like a plain file

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            found = _lookup(self.name)
            if found is not None:
                return found[1].data
        return super().get_data(path)

    def path_stats(self, path: str) -> Mapping[str, Any]:
        if path == self.path and _lookup(self.name) is not None:
            raise OSError("shipped by hotmod.dask: no bytecode cache")  # never a stale .pyc
        return super().path_stats(path)


class _Finder:
    """Serves shipped sources to imports of modules not imported yet."""

    @staticmethod
    def find_spec(
        fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        found = _lookup(fullname)
        if found is None:
            return None
        sync, shipped = found
        if sync.tx is not None and fullname in sync.tx.changes:
            sync.tx.imported.add(fullname)
        spec = PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, SourceFileLoader) and spec.origin:
            spec.loader = _Loader(fullname, spec.origin)
            return spec
        # Not in this worker's copy (a module created on the client): where it would be.
        leaf = fullname.rpartition(".")[2]
        base = next(iter(path)) if path else os.path.dirname(os.path.dirname(shipped.client_path))
        origin = (
            os.path.join(base, leaf, "__init__.py") if shipped.package else os.path.join(base, f"{leaf}.py")
        )
        locations = [os.path.dirname(origin)] if shipped.package else None
        return spec_from_file_location(
            fullname, origin, loader=_Loader(fullname, origin), submodule_search_locations=locations
        )


# -- the client's calls (through ``client.run``) -------------------------------------------------


async def fetch(worker: Any, sync_id: str) -> tuple[int, dict[str, Shipped]] | None:
    meta = await worker.scheduler.get_metadata(keys=[METADATA_ROOT, sync_id], default=None)
    if not meta:
        return None
    return int(meta["version"]), _unpack(meta["sources"])


async def _start(sync: SyncState, tx: _Tx) -> None:
    sync.txs[tx.txid] = tx
    thread = threading.Thread(target=sync.run, args=(tx,), name="hotmod-dask-transaction", daemon=True)
    thread.start()


async def prepare(  # noqa: PLR0917 (called by client.run, positionally)
    sync_id: str,
    txid: int,
    base: int,
    changes: Mapping[str, Sequence[Any]],
    timeout: float,
    dask_worker: Any = None,
) -> dict[str, Any]:
    """Phase one: run the new code against snapshots and vote; the transaction then waits."""
    sync = state(sync_id, dask_worker.address)
    shipped = _unpack(changes)
    if sync.version != base:
        # Joined, or missed a save while joining: start from what the client last committed.
        # They are applied with this save's changes: until then the worker runs its own
        # copy, which is what its reloader must take as running.
        fetched = await fetch(dask_worker, sync_id)
        if fetched is not None and fetched[0] == base:
            shipped = {**fetched[1], **shipped}
    tx = _Tx(txid, shipped, timeout)
    await _start(sync, tx)
    return await asyncio.wrap_future(tx.voted)


async def decide(sync_id: str, txid: int, commit: bool, dask_worker: Any = None) -> dict[str, Any]:
    """Phase two: commit or roll back, and report what this worker did."""
    sync = state(sync_id, dask_worker.address)
    tx = sync.txs.get(txid)
    if tx is None:
        return {"worker": dask_worker.address, "status": "noop", "missing": True}
    tx.commit = commit
    tx.decision.set()
    return await asyncio.wrap_future(tx.finished)


async def catch_up(sync_id: str, version: int, dask_worker: Any = None) -> dict[str, Any] | None:
    """Bring a worker that joined during a save to ``version``; None when it is there."""
    sync = state(sync_id, dask_worker.address)
    if sync.version >= version:
        return None
    fetched = await fetch(dask_worker, sync_id)
    if fetched is None or fetched[0] <= sync.version:
        return None
    return await install(sync, *fetched)


async def install(sync: SyncState, version: int, sources: dict[str, Shipped]) -> dict[str, Any] | None:
    """Apply the committed sources on this worker alone (it joined after they were shipped)."""
    if version <= sync.version:
        return None
    if not sources and not sync.committed:
        with sync.lock:
            sync.version = max(sync.version, version)
        return None
    tx = _Tx(version, sources, timeout=float("inf"), auto_commit=True)
    tx.commit = True
    await _start(sync, tx)
    return await asyncio.wrap_future(tx.finished)
