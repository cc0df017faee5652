"""Live reloading on a Dask cluster (the optional extra ``hotmod[dask]``).

Two set-ups, both built on ``distributed``'s own plugin and RPC APIs:

- Workers that share the client's disk: ``client.register_plugin(ReloadPlugin(paths))``.
  Each worker runs a :class:`hotmod.Reloader` over the same files and applies a save at a
  safe point between tasks. ``subscribe(client, listener)`` gives one result per save.
- Workers without the client's disk: ``with sync(client, paths) as s: ...``. The client
  watches its files, compiles each save, ships the changed texts with ``client.run``, and
  every worker applies them in one two-phase transaction: all commit, or all roll back.

The worker side lives in :mod:`hotmod._dask_worker`. Importing this module imports
``distributed``; ``import hotmod`` never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from distributed import Client, WorkerPlugin

from . import _dask_worker as _w
from ._apply_thread import Listener, Listeners
from ._changes import SWITCH, ChangeQueue
from ._filters import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, PathFilter
from ._source import Source, digest, read_source
from ._watch import BackendName, make_watcher
from .errors import HotmodError, ReloadError
from .reloader import Dependents, Reloader
from .result import STATUSES, ReloadResult, Status

__all__ = ["ClusterResult", "ReloadPlugin", "Sync", "subscribe", "sync"]

logger = logging.getLogger("hotmod.dask")

# The event topic the workers of a ReloadPlugin publish their results on.
TOPIC = "hotmod"

_SEVERITY: Mapping[Status, int] = {"noop": 0, "ok": 1, "needs_restart": 2, "failed": 3, "aborted": 3}
_COUNTERS = ("functions_patched", "classes_patched", "classes_replaced", "references_rebound", "names_pruned")


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterResult(ReloadResult):
    """One save across a cluster: a :class:`ReloadResult`, plus each worker's own.

    ``duration`` is the client's view (from the save being taken up to every worker's
    answer); each worker's result has its own ``duration``. ``error`` names the worker
    that refused the save (``tcp://...: path:line: ...``).
    """

    workers: Mapping[str, ReloadResult] = field(default_factory=dict)
    rolled_back: tuple[str, ...] = ()  # workers that had the new version ready and restored the old

    def __str__(self) -> str:
        return self.summary()  # ``subscribe(client, print)`` prints one line per save

    def summary(self) -> str:
        ms = self.duration * 1000
        names = ", ".join(self.modules) or ", ".join(p.name for p in self.paths) or "nothing"
        count = len(self.workers)
        each = "; ".join(
            f"{w} {'rolled back' if w in self.rolled_back else r.status} {r.duration * 1000:.1f} ms"
            for w, r in sorted(self.workers.items())
        )
        tail = f" [{each}]" if each else ""
        if self.status == "ok":
            return f"reloaded {names} on {count} worker(s) in {ms:.1f} ms{tail}"
        if self.status == "noop":
            return "no change"
        if not self.workers:
            return f"reload of {names} {self.status} on the client, nothing shipped: {self.error}"
        undone = ", rolled back everywhere" if self.rolled_back else ""
        return f"reload of {names} {self.status}{undone}, previous version kept: {self.error}{tail}"


def _from_payload(p: Mapping[str, Any]) -> ReloadResult:
    error: ReloadError | None = None
    if p.get("error"):
        path = p.get("error_path")
        error = ReloadError(
            str(p["error"]),
            module=p.get("error_module"),
            path=Path(path) if path else None,
            lineno=p.get("error_line"),
        )
    status = p.get("status", "aborted")
    counters: dict[str, Any] = {name: int(p.get(name) or 0) for name in _COUNTERS}
    return ReloadResult(
        status if status in STATUSES else "aborted",
        tuple(p.get("modules") or ()),
        tuple(Path(x) for x in p.get("paths") or ()),
        error,
        tuple(p.get("warnings") or ()),
        duration=float(p.get("duration") or 0.0),
        **counters,
    )


def _combine(
    workers: Mapping[str, ReloadResult],
    *,
    duration: float,
    paths: tuple[Path, ...] = (),
    rolled_back: Iterable[str] = (),
    status: Status | None = None,
    error: ReloadError | None = None,
) -> ClusterResult:
    undone = tuple(sorted(rolled_back))
    refusing = [(w, r) for w, r in sorted(workers.items()) if r.error is not None and w not in undone]
    # A worker that restored the old version because another refused is not the reason.
    deciding = [r for w, r in workers.items() if w not in undone] or list(workers.values())
    worst: Status = max((r.status for r in deciding), key=_SEVERITY.__getitem__, default="noop")
    if error is None and refusing:
        where, first = refusing[0]
        cause = first.error
        error = ReloadError(
            f"{where}: {cause}",
            module=getattr(cause, "module", None),
            path=getattr(cause, "path", None),
            lineno=getattr(cause, "lineno", None),
        )
        error.__cause__ = cause
    counters = {name: sum(getattr(r, name) for r in workers.values()) for name in _COUNTERS}
    return ClusterResult(
        status or worst,
        tuple(dict.fromkeys(m for r in workers.values() for m in r.modules)),
        paths or tuple(dict.fromkeys(p for r in workers.values() for p in r.paths)),
        error,
        tuple(f"{w}: {text}" for w, r in sorted(workers.items()) for text in r.warnings),
        duration,
        workers=dict(workers),
        rolled_back=undone,
        **counters,
    )


# -- workers sharing the client's disk -----------------------------------------------------------


class ReloadPlugin(WorkerPlugin):  # type: ignore[misc,unused-ignore]  # Any without distributed's types
    """A :class:`hotmod.Reloader` in every worker, applying at a safe point between tasks.

    ``paths`` are made absolute on the client (the workers share its disk). The other
    options are the Reloader's. A worker that joins later gets the plugin from the
    scheduler before it runs a task, and imports the current files.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        name: str = "hotmod-reload",
        backend: BackendName = "auto",
        debounce: float = 0.05,
        poll_interval: float = 0.5,
        include: Iterable[str] = DEFAULT_INCLUDE,
        exclude: Iterable[str] = DEFAULT_EXCLUDE,
        dependents: Dependents = "rebind",
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.name = name
        self.paths = tuple(os.path.abspath(os.fspath(p)) for p in paths)
        self.options: dict[str, Any] = {
            "backend": backend,
            "debounce": debounce,
            "poll_interval": poll_interval,
            "include": tuple(include),
            "exclude": tuple(exclude),
            "dependents": dependents,
        }
        self._fresh()

    def _fresh(self) -> None:
        """What each copy of the plugin builds for itself (the worker's is unpickled)."""
        self._reloader: Reloader | None = None
        self._worker: Any = None
        self._closing = threading.Event()
        self._digests: dict[Path, bytes] = {}
        self._seen_modules = 0
        self._undo: list[Callable[[], None]] = []

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "paths": self.paths, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name = state["name"]
        self.paths = state["paths"]
        self.options = state["options"]
        self._fresh()

    @property
    def reloader(self) -> Reloader | None:
        """The worker's reloader (None on the client, and before setup)."""
        return self._reloader

    def setup(self, worker: Any) -> None:
        self._worker = worker
        self._closing.clear()
        _w.install_gate(worker)
        self._undo.append(lambda: _w.remove_gate(worker))
        reloader = Reloader(
            self.paths, apply="background", _reader=self._read, _safe_point=self._safe_point, **self.options
        )
        self._reloader = reloader
        self._undo.append(reloader.subscribe(self._publish))
        self._undo.append(_w.add_after_task(self._track_new_modules))
        reloader.start()
        # Subscribers wait for this worker's result on each save from now on.
        worker.log_event(TOPIC, {"worker": worker.address, "plugin": self.name, "joined": True})

    def teardown(self, worker: Any) -> None:
        self._closing.set()
        if self._reloader is not None:
            self._reloader.close()
            self._reloader = None
        while self._undo:
            self._undo.pop()()
        with contextlib.suppress(Exception):  # a worker closing may not send it any more
            worker.log_event(TOPIC, {"worker": worker.address, "plugin": self.name, "left": True})

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "executing" and finish == "long-running":
            _w.task_seceded(self._worker, key)

    def _safe_point(self, apply: Callable[[], object]) -> bool:
        if not _w.GATE.acquire(None, cancelled=self._closing.is_set):
            return False
        try:
            apply()
        finally:
            _w.GATE.release()
        return True

    def _read(self, path: Path) -> Source:
        source = read_source(path)
        self._digests[path] = source.digest
        return source

    def _track_new_modules(self) -> None:
        """After a task: the modules it imported are watched from now on."""
        reloader = self._reloader
        if reloader is None or len(sys.modules) == self._seen_modules:
            return
        self._seen_modules = len(sys.modules)
        with contextlib.suppress(HotmodError):  # closed meanwhile
            _ = reloader.modules

    def _publish(self, result: ReloadResult) -> None:
        worker = self._worker
        # Which save this is: the content of each file, the same on every worker.
        key = ";".join(f"{p}={self._digests.get(p, b'').hex()}" for p in sorted(result.paths))
        worker.log_event(TOPIC, _w.payload(result, worker.address, plugin=self.name, key=key))


class _Hub:
    """A client's subscription to the ReloadPlugin results: one combined result per save."""

    def __init__(self, client: Client, settle: float) -> None:
        self.client = client
        self.settle = settle
        self.listeners = Listeners()
        self.expected: set[str] = set()
        self.groups: dict[str, dict[str, ReloadResult]] = {}
        self.timers: dict[str, Any] = {}
        self.subscribers = 0
        self.members: dict[str, set[str]] = {}  # plugin -> workers that said they run it

    def handle(self, event: tuple[float, Mapping[str, Any]]) -> None:
        _, msg = event
        if not isinstance(msg, Mapping) or "worker" not in msg:
            return
        plugin = str(msg.get("plugin"))
        worker = str(msg["worker"])
        members = self.members.setdefault(plugin, set())
        if msg.get("left"):
            members.discard(worker)
            self.expected.discard(worker)
            for key in [k for k in self.groups if k.startswith(f"{plugin}|")]:
                self._check(plugin, key)
            return
        members.add(worker)
        if msg.get("joined"):
            return
        key = f"{plugin}|{msg.get('key')}"
        self.groups.setdefault(key, {})[worker] = _from_payload(msg)
        if not self._check(plugin, key) and key not in self.timers:
            self.timers[key] = asyncio.get_running_loop().call_later(self.settle, self.flush, key)

    def _check(self, plugin: str, key: str) -> bool:
        """Emit the save's result if every worker with the plugin reported it."""
        if (self.expected | self.members.get(plugin, set())) <= set(self.groups.get(key, ())):
            self.flush(key)
            return True
        return False

    def flush(self, key: str) -> None:
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        group = self.groups.pop(key, None)
        if not group:
            return
        # Each worker applied on its own: the slowest one is how long the save took.
        result = _combine(group, duration=max(r.duration for r in group.values()))
        _log(result)
        self.listeners.emit(result)


_HUBS: dict[int, _Hub] = {}


def subscribe(
    client: Client, listener: Callable[[ClusterResult], object] | None = None, *, settle: float = 0.5
) -> Callable[[], None]:
    """Hear of every save a :class:`ReloadPlugin` applied, one combined result per save.

    The result is emitted once every worker known to have the plugin reported, or
    ``settle`` seconds after the first one did. ``listener`` runs on the client's event
    loop: keep it short, and never call the client synchronously from it. Each result is
    also logged (logger ``hotmod.dask``). Returns a function that unsubscribes.
    """
    hub = _HUBS.get(id(client))
    if hub is None or hub.client is not client:
        hub = _HUBS[id(client)] = _Hub(client, settle)
        hub.expected = set(client.scheduler_info().get("workers", {}))
        client.subscribe_topic(TOPIC, hub.handle)
    hub.subscribers += 1
    unsubscribe = hub.listeners.subscribe(listener) if listener is not None else (lambda: None)  # type: ignore[arg-type]
    done = False

    def stop() -> None:
        nonlocal done
        if done:
            return
        done = True
        unsubscribe()
        hub.subscribers -= 1
        if hub.subscribers == 0 and _HUBS.get(id(client)) is hub:
            del _HUBS[id(client)]
            with contextlib.suppress(Exception):  # the client may be closed already
                client.unsubscribe_topic(TOPIC)

    return stop


def _log(result: ClusterResult) -> None:
    if result.status == "ok":
        logger.info("%s", result.summary(), extra={"hotmod_result": result})
    elif result.status != "noop":
        logger.warning("%s", result.summary(), extra={"hotmod_result": result})


# -- workers without the client's disk -------------------------------------------------------------


class _SyncPlugin(WorkerPlugin):  # type: ignore[misc,unused-ignore]  # Any without distributed's types
    """Keeps a worker on the sync's current sources, from the moment it joins."""

    def __init__(self, sync_id: str) -> None:
        self.sync_id = sync_id
        self.name = f"hotmod-sync-{sync_id}"
        self._worker: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"sync_id": self.sync_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.sync_id = state["sync_id"]
        self.name = f"hotmod-sync-{self.sync_id}"
        self._worker = None

    async def setup(self, worker: Any) -> None:
        self._worker = worker
        _w.install_gate(worker)
        sync = _w.state(self.sync_id, worker.address)
        fetched = await _w.fetch(worker, self.sync_id)
        if fetched is not None:
            await _w.install(sync, *fetched)

    def teardown(self, worker: Any) -> None:
        _w.drop(self.sync_id)
        _w.remove_gate(worker)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "executing" and finish == "long-running":
            _w.task_seceded(self._worker, key)


def _module_name(path: Path) -> tuple[str, bool]:
    """The dotted name a file imports as: its folders with an ``__init__.py`` lead."""
    package = path.name == "__init__.py"
    parts = [] if package else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), package


class Sync:
    """Ships each save of the client's files to every worker; all apply it or none does.

    Made by :func:`sync`; ``close()`` (or leaving the ``with`` block) stops it. Workers
    keep running the last version they committed.
    """

    def __init__(
        self,
        client: Client,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        backend: BackendName = "auto",
        debounce: float = 0.05,
        poll_interval: float = 0.5,
        include: Iterable[str] = DEFAULT_INCLUDE,
        exclude: Iterable[str] = DEFAULT_EXCLUDE,
        timeout: float = 10.0,
    ) -> None:
        if getattr(client, "asynchronous", False):
            raise HotmodError("hotmod.dask.sync needs a synchronous Client (the one a notebook makes)")
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.client = client
        self.id = uuid.uuid4().hex[:12]
        self.paths = tuple(Path(os.path.realpath(os.fspath(p))) for p in paths)
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.results: list[ClusterResult] = []
        self._filter = PathFilter(self.paths, include, exclude)
        self._queue = ChangeQueue(debounce)
        self._watcher = make_watcher(backend, self._queue, self._filter.name_accepted)
        self.backend = self._watcher.name
        self._listeners = Listeners()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._version = 0
        self._sources: dict[str, tuple[bytes, bool, str]] = {}
        # What the workers run, as far as the client knows: its files when the sync began.
        self._known: dict[Path, bytes] = {}
        # Content the cluster refused: reported once; the file's next change is shipped.
        # (Kernel events can announce one save twice; it must not be rolled back twice.)
        self._refused: dict[Path, bytes] = {}
        for path in self._files():
            try:
                self._known[path] = read_source(path).digest
            except OSError:
                continue
            self._watcher.add(path)
        self._plugin_name = f"hotmod-sync-{self.id}"
        self._publish()
        client.register_plugin(_SyncPlugin(self.id), name=self._plugin_name)
        self._watcher.start()
        self._thread = threading.Thread(target=self._run, name="hotmod-dask-sync", daemon=True)
        self._thread.start()

    # -- public ---------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(result)`` after every save that did something (on the sync's thread)."""
        return self._listeners.subscribe(listener)

    def notify(self, *paths: str | os.PathLike[str]) -> None:
        """Tell the sync these files changed (the ``manual`` backend's only input)."""
        self._queue.push([Path(os.path.realpath(os.fspath(p))) for p in paths], settled=True)

    def poll(self) -> ClusterResult:
        """Ship the pending saves now, on this thread, and return the combined result."""
        if self._closed:
            raise HotmodError("this hotmod.dask sync is closed")
        with self._lock:
            if self._watcher.needs_scan:
                self._watcher.scan()
            ready, _ = self._queue.take_ready()
            if not ready:
                return ClusterResult("noop")
            result = self._ship(ready)
        if result.status != "noop":
            _log(result)
            self.results.append(result)
            self._listeners.emit(result)
            if result.ok:
                self._catch_up()
        return result

    @property
    def sources(self) -> Mapping[str, bytes]:
        """Module name -> the source text shipped and committed on every worker."""
        return {name: entry[0] for name, entry in self._sources.items()}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._queue.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.timeout)
        self._watcher.stop()
        try:
            self.client.unregister_worker_plugin(self._plugin_name)
            self.client.set_metadata([_w.METADATA_ROOT, self.id], None)
        except Exception:  # the cluster or the client went away first
            logger.debug("hotmod.dask: could not unregister the sync plugin", exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<hotmod.dask.Sync {state} version={self._version} paths={[str(p) for p in self.paths]}>"

    # -- the client side of a save ----------------------------------------------------------------

    def _files(self) -> Iterable[Path]:
        for root in self.paths:
            if root.is_file():
                if self._filter.accepts(root):
                    yield root
                continue
            for folder, dirs, files in os.walk(root):
                here = Path(folder)
                dirs[:] = sorted(d for d in dirs if self._filter.accepts(here / d, check_name=False))
                for name in sorted(files):
                    if self._filter.accepts(here / name):
                        yield here / name

    def _publish(self) -> None:
        value = {"version": self._version, "sources": {n: list(v) for n, v in self._sources.items()}}
        self.client.set_metadata([_w.METADATA_ROOT, self.id], value)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            SWITCH.release_thread(threading.get_ident())  # held while it waited on the queue

    def _loop(self) -> None:
        while not self._stopping.is_set():
            deadline = self._queue.next_deadline()
            timeout = self.poll_interval if deadline is None else max(0.0, deadline - time.monotonic())
            self._queue.wait(min(timeout, self.poll_interval))
            if self._stopping.is_set():
                break
            try:
                self.poll()
            except HotmodError:
                break
            except Exception:
                logger.exception("hotmod.dask: could not ship a save; still watching")

    def _ship(self, ready: list[Path]) -> ClusterResult:
        started = time.perf_counter()
        changes: dict[str, tuple[bytes, bool, str]] = {}
        digests: dict[Path, bytes] = {}
        for path in sorted(ready):
            if not self._filter.accepts(path):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue  # deleted or moved away: workers keep the module they run
            found = digest(data)
            if found in (self._known.get(path), self._refused.get(path)):
                continue
            self._watcher.add(path)  # a new file
            name, package = _module_name(path)
            try:
                compile(data, str(path), "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as exc:
                line = exc.lineno if isinstance(exc, SyntaxError) else None
                detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
                where = f"{path}:{line}" if line else str(path)
                error = ReloadError(
                    f"{where}: {type(exc).__name__} while compiling {name}: {detail}",
                    module=name,
                    path=path,
                    lineno=line,
                )
                error.__cause__ = exc
                self._refused[path] = found
                return ClusterResult(
                    "aborted", (name,), (path,), error, duration=time.perf_counter() - started
                )
            changes[name] = (data, package, str(path))
            digests[path] = found
        if not changes:
            return ClusterResult("noop")
        paths = tuple(digests)
        txid = self._version + 1
        wire = {name: list(entry) for name, entry in changes.items()}
        votes: dict[str, Any] = self.client.run(
            _w.prepare, self.id, txid, self._version, wire, self.timeout, on_error="return"
        )
        yes = sorted(w for w, v in votes.items() if isinstance(v, Mapping) and v.get("vote"))
        commit = len(yes) == len(votes)
        finals: dict[str, Any] = {}
        if yes:
            finals = self.client.run(_w.decide, self.id, txid, commit, workers=yes, on_error="return")
        workers: dict[str, ReloadResult] = {}
        for worker, vote in votes.items():
            answer = finals.get(worker) if worker in finals else vote
            if isinstance(answer, Mapping) and "result" in answer:
                answer = answer["result"]
            if isinstance(answer, Mapping):
                workers[worker] = _from_payload(answer)
            else:  # the call itself failed there (the worker died, say)
                error = ReloadError(f"hotmod.dask: the call failed: {answer!r}")
                workers[worker] = ReloadResult("aborted", error=error)
        duration = time.perf_counter() - started
        if not commit:
            self._refused.update(digests)
            return _combine(workers, duration=duration, paths=paths, rolled_back=yes)
        undone = [w for w in yes if not (isinstance(finals.get(w), Mapping) and finals[w].get("committed"))]
        if undone:
            # A worker gave up waiting for the decision: the cluster is split.
            error = ReloadError(
                f"{', '.join(undone)} rolled back after the others committed (no decision in "
                f"{self.timeout:g} s); restart them or save again"
            )
            return _combine(workers, duration=duration, paths=paths, status="failed", error=error)
        self._version = txid
        self._sources.update(changes)
        self._known.update(digests)
        for path in digests:
            self._refused.pop(path, None)
        self._publish()
        return _combine(workers, duration=duration, paths=paths, status="ok")

    def _catch_up(self) -> None:
        """Workers that joined while the save was on its way get it now."""
        self.client.run(_w.catch_up, self.id, self._version, on_error="return")


def sync(
    client: Client,
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    backend: BackendName = "auto",
    debounce: float = 0.05,
    poll_interval: float = 0.5,
    include: Iterable[str] = DEFAULT_INCLUDE,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    timeout: float = 10.0,
) -> Sync:
    """Watch ``paths`` on the client and keep every worker's modules on its saves.

    The workers import the same packages from a copy of their own (an image, a clone,
    an upload). Each save is compiled on the client (a syntax error never leaves it),
    then applied by every worker in one transaction; ``timeout`` bounds how long a worker
    waits for its running tasks, and for the client's decision.
    """
    return Sync(
        client,
        paths,
        backend=backend,
        debounce=debounce,
        poll_interval=poll_interval,
        include=include,
        exclude=exclude,
        timeout=timeout,
    )
