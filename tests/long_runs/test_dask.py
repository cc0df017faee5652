"""hotmod.dask on a real ``distributed.LocalCluster``: two worker processes on loopback.

One cluster serves the whole module (starting one costs seconds on a small machine).
Each test uses a package of its own name, so the workers' ``sys.modules`` never mix
tests. Nothing sleeps: the tests wait on futures, on ``distributed.Event``s, and on
``threading.Event``s set by result listeners, always with a timeout.

The functions the workers run are defined here and imported there by name (the workers
inherit this process's ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")
import distributed

import hotmod.dask
from hotmod import _dask_worker

from ..support import Pkg, reload_error, write_replace

WAIT = 30.0  # seconds any one wait on the cluster may take before the test fails


# -- run on the workers ----------------------------------------------------------------------------


def call(module: str, function: str = "value") -> Any:
    return getattr(importlib.import_module(module), function)()


def where(module: str) -> tuple[int, str]:
    return os.getpid(), str(importlib.import_module(module).__file__)


def across(module: str, started: str, go: str) -> tuple[Any, Any]:
    """Call one function, wait until told, call another: both must be one version."""
    mod = importlib.import_module(module)
    first = mod.first()
    distributed.Event(started).set()
    if not distributed.Event(go).wait(WAIT):
        raise TimeoutError("never told to go on")
    return first, mod.second()


def seceding(module: str, started: str, go: str) -> Any:
    """Leave the worker's thread pool (as ``worker_client`` does), then wait."""
    first = importlib.import_module(module).value()
    distributed.secede()
    distributed.Event(started).set()
    if not distributed.Event(go).wait(WAIT):
        raise TimeoutError("never told to go on")
    return first


async def reload_waits(timeout: float) -> bool:
    """True once a reload on this worker is held back by a running task."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _dask_worker.GATE.contended.wait, timeout)


def remove_beside(module: str, name: str) -> None:
    os.remove(Path(str(importlib.import_module(module).__file__)).parent / name)


class OnPath(distributed.WorkerPlugin):
    """Workers import from ``folder`` (shared disk), or from a private copy of it."""

    def __init__(self, folder: str, *, private: bool) -> None:
        self.folder = folder
        self.private = private
        self.entry = ""

    def setup(self, worker: Any) -> None:
        entry = self.folder
        if self.private:
            entry = f"{self.folder}-worker-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            shutil.copytree(self.folder, entry)
        self.entry = entry
        sys.path.insert(0, entry)
        importlib.invalidate_caches()

    def teardown(self, worker: Any) -> None:
        if self.entry in sys.path:
            sys.path.remove(self.entry)


# What the fixtures give: a project maker, a way to put a folder on the workers' path,
# and a way to register a ReloadPlugin over a folder.
Project = Callable[[str], tuple[str, Path]]
OnPathFixture = Callable[[Path, bool], None]
PluginFixture = Callable[[Path], "Heard"]

# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Any, Any]]:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


@pytest.fixture
def client(cluster: tuple[Any, Any]) -> Any:
    return cluster[1]


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], tuple[str, Path]]:
    """A package ``<unique>/mod.py`` holding ``source``, in a folder of its own."""

    def make(source: str) -> tuple[str, Path]:
        name = f"dk_{uuid.uuid4().hex[:8]}"
        package = tmp_path / f"src-{name}" / name  # a folder of its own on sys.path
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "mod.py").write_text(textwrap.dedent(source))
        return name, package

    return make


@pytest.fixture
def on_path(client: Any) -> Iterator[Callable[[Path, bool], None]]:
    names: list[str] = []

    def register(folder: Path, private: bool) -> None:
        name = f"test-path-{uuid.uuid4().hex[:8]}"
        if private:
            # Every worker, even one joining later, copies the project as it is now.
            pristine = folder.parent / f"{folder.name}-{name}"
            shutil.copytree(folder, pristine)
            folder = pristine
        client.register_plugin(OnPath(str(folder), private=private), name=name)
        names.append(name)

    yield register
    for name in names:
        _unregister(client, name)


def _unregister(client: Any, name: str) -> None:
    """Unregister a worker plugin; a worker a test retired may still be closing, and
    distributed then raises KeyError for the plugin that worker already dropped, or a
    closed-connection error (an OSError) for the worker itself."""
    with contextlib.suppress(KeyError, OSError):
        client.unregister_worker_plugin(name)


def workers(client: Any) -> list[str]:
    return sorted(client.scheduler_info()["workers"])


def on_each(client: Any, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Run ``fn`` as a task on every worker (through the gate, like user code)."""
    futures = {w: client.submit(fn, *args, workers=[w], pure=False) for w in workers(client)}
    return {w: f.result(timeout=WAIT) for w, f in futures.items()}


class Heard:
    """Combined results, with an event per wanted status."""

    def __init__(self) -> None:
        self.results: list[hotmod.ReloadResult] = []
        self.event = threading.Event()

    def __call__(self, result: hotmod.ReloadResult) -> None:
        self.results.append(result)
        self.event.set()

    def next(self) -> hotmod.dask.ClusterResult:
        assert self.event.wait(WAIT), "no result from the cluster"
        self.event.clear()
        result = self.results[-1]
        assert isinstance(result, hotmod.dask.ClusterResult), result  # what Sync and subscribe give
        return result


@pytest.fixture
def plugin(client: Any) -> Iterator[Callable[[Path], Heard]]:
    """Register a ReloadPlugin over a folder; its combined results are heard."""
    undo: list[Callable[[], None]] = []

    def register(folder: Path) -> Heard:
        heard = Heard()
        undo.append(hotmod.dask.subscribe(client, heard))
        name = f"hotmod-reload-{uuid.uuid4().hex[:8]}"
        client.register_plugin(hotmod.dask.ReloadPlugin([folder], name=name), name=name)
        undo.append(lambda: _unregister(client, name))
        return heard

    yield register
    while undo:
        undo.pop()()


# -- workers sharing the client's disk --------------------------------------------------------------


def test_plugin_edit_applied_on_every_worker(
    client: Any, project: Project, on_path: OnPathFixture, plugin: PluginFixture
) -> None:
    name, package = project("def value():\n    return 1\n")
    on_path(package.parent, False)
    heard = plugin(package)
    before = on_each(client, where, f"{name}.mod")
    assert {v for v in on_each(client, call, f"{name}.mod").values()} == {1}

    write_replace(package / "mod.py", "def value():\n    return 2\n")
    result = heard.next()

    assert result.status == "ok", result.summary()
    assert isinstance(result, hotmod.ReloadResult)
    assert sorted(result.workers) == workers(client)
    assert all(r.status == "ok" and r.modules == (f"{name}.mod",) for r in result.workers.values())
    assert "reloaded" in result.summary()
    assert str(result) == result.summary()  # subscribe(client, print): one line per save
    assert "2 worker(s)" in result.summary()
    # A task submitted after the save runs the new code, in the same worker processes.
    assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 2)
    assert on_each(client, where, f"{name}.mod") == before


def test_plugin_task_running_across_the_save_runs_one_version(
    client: Any, project: Project, on_path: OnPathFixture, plugin: PluginFixture
) -> None:
    name, package = project(
        """
        def first():
            return "old"

        def second():
            return "old"
        """
    )
    on_path(package.parent, False)
    heard = plugin(package)
    on_each(client, call, f"{name}.mod", "first")  # imported (and tracked) everywhere
    busy = workers(client)[0]
    started = distributed.Event(f"started-{name}")
    go = distributed.Event(f"go-{name}")
    task = client.submit(across, f"{name}.mod", started.name, go.name, workers=[busy], pure=False)
    assert started.wait(WAIT)

    write_replace(package / "mod.py", "def first():\n    return 'new'\n\ndef second():\n    return 'new'\n")
    # The busy worker saw the save and holds it until the task is done.
    assert client.run(reload_waits, WAIT, workers=[busy])[busy] is True
    assert not task.done()
    go.set()

    assert task.result(timeout=WAIT) == ("old", "old")
    result = heard.next()
    assert result.status == "ok", result.summary()
    assert sorted(result.workers) == workers(client)
    again = client.submit(across, f"{name}.mod", started.name, go.name, workers=[busy], pure=False)
    assert again.result(timeout=WAIT) == ("new", "new")


def test_plugin_seceded_task_does_not_hold_the_save(
    client: Any, project: Project, on_path: OnPathFixture, plugin: PluginFixture
) -> None:
    name, package = project("def value():\n    return 1\n")
    on_path(package.parent, False)
    heard = plugin(package)
    on_each(client, call, f"{name}.mod")
    started = distributed.Event(f"started-{name}")
    go = distributed.Event(f"go-{name}")
    task = client.submit(seceding, f"{name}.mod", started.name, go.name, pure=False)
    assert started.wait(WAIT)
    try:
        write_replace(package / "mod.py", "def value():\n    return 2\n")
        result = heard.next()  # while the seceded task still runs
        assert result.status == "ok", result.summary()
        assert not task.done()
        assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 2)
    finally:
        go.set()
    assert task.result(timeout=WAIT) == 1


def test_plugin_broken_save_refused_on_every_worker(
    client: Any, project: Project, on_path: OnPathFixture, plugin: PluginFixture
) -> None:
    name, package = project("def value():\n    return 1\n")
    on_path(package.parent, False)
    heard = plugin(package)
    on_each(client, call, f"{name}.mod")

    write_replace(package / "mod.py", "def value():\n    return 2\n\nbroken = (\n")
    result = heard.next()

    assert result.status == "aborted"
    assert sorted(result.workers) == workers(client)
    assert all(r.status == "aborted" for r in result.workers.values())
    assert result.error is not None
    assert reload_error(result).lineno == 4
    assert "SyntaxError" in str(result.error)
    assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 1)


# -- workers with a copy of their own -----------------------------------------------------------------


def test_sync_applies_each_save_to_private_copies(
    client: Any, project: Project, on_path: OnPathFixture
) -> None:
    name, package = project("def value():\n    return 1\n")
    on_path(package.parent, True)
    placed = on_each(client, where, f"{name}.mod")
    assert all(not path.startswith(str(package)) for _, path in placed.values())  # no shared disk

    heard = Heard()
    with hotmod.dask.sync(client, [package]) as sync:
        sync.subscribe(heard)
        write_replace(package / "mod.py", "def value():\n    return 2\n")
        result = heard.next()

        assert result.status == "ok", result.summary()
        assert sorted(result.workers) == workers(client)
        assert result.paths == (package / "mod.py",)
        assert sync.results == [result]
        assert sync.sources == {f"{name}.mod": b"def value():\n    return 2\n"}
        assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 2)
        assert on_each(client, where, f"{name}.mod") == placed  # same processes, own files
        # Nothing was written on the workers: their copies still hold the old text.
        assert all(Path(path).read_text() == "def value():\n    return 1\n" for _, path in placed.values())


def test_sync_task_running_across_the_save_runs_one_version(
    client: Any, project: Project, on_path: OnPathFixture
) -> None:
    name, package = project("def first():\n    return 'old'\n\ndef second():\n    return 'old'\n")
    on_path(package.parent, True)
    on_each(client, call, f"{name}.mod", "first")
    busy = workers(client)[0]
    started = distributed.Event(f"started-{name}")
    go = distributed.Event(f"go-{name}")
    heard = Heard()
    with hotmod.dask.sync(client, [package]) as sync:
        sync.subscribe(heard)
        task = client.submit(across, f"{name}.mod", started.name, go.name, workers=[busy], pure=False)
        assert started.wait(WAIT)

        write_replace(
            package / "mod.py", "def first():\n    return 'new'\n\ndef second():\n    return 'new'\n"
        )
        # The busy worker's part of the transaction waits for the task; so does the save.
        assert client.run(reload_waits, WAIT, workers=[busy])[busy] is True
        assert not task.done()
        assert not heard.event.is_set()
        go.set()

        assert task.result(timeout=WAIT) == ("old", "old")
        result = heard.next()
        assert result.status == "ok", result.summary()
        again = client.submit(across, f"{name}.mod", started.name, go.name, workers=[busy], pure=False)
        assert again.result(timeout=WAIT) == ("new", "new")


def test_sync_broken_save_never_leaves_the_client(
    client: Any, project: Project, on_path: OnPathFixture
) -> None:
    name, package = project("def value():\n    return 1\n")
    on_path(package.parent, True)
    on_each(client, call, f"{name}.mod")
    heard = Heard()
    with hotmod.dask.sync(client, [package]) as sync:
        sync.subscribe(heard)
        write_replace(package / "mod.py", "def value():\n    return 2 +\n")
        result = heard.next()

    assert result.status == "aborted"
    assert result.workers == {}
    assert "on the client, nothing shipped" in result.summary()
    assert result.error is not None
    assert (reload_error(result).module, reload_error(result).path, reload_error(result).lineno) == (
        f"{name}.mod",
        package / "mod.py",
        2,
    )
    assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 1)


def test_sync_one_worker_failing_rolls_back_the_others(
    client: Any, project: Project, on_path: OnPathFixture
) -> None:
    name, package = project("def value():\n    return 1\n")
    (package / "data.txt").write_text("2")
    on_path(package.parent, True)
    on_each(client, call, f"{name}.mod")
    healthy, failing = workers(client)
    client.run(remove_beside, f"{name}.mod", "data.txt", workers=[failing])  # only there

    heard = Heard()
    with hotmod.dask.sync(client, [package]) as sync:
        sync.subscribe(heard)
        write_replace(
            package / "mod.py",
            """
            import os
            CALLS = []

            with open(os.path.join(os.path.dirname(__file__), "data.txt")) as f:
                DATA = int(f.read())

            def value():
                return DATA
            """,
        )
        result = heard.next()

        assert result.status == "aborted", result.summary()
        assert result.rolled_back == (healthy,)
        assert result.workers[failing].status == "aborted"
        assert result.workers[healthy].status == "aborted"  # it had run the new code, then restored
        assert result.error is not None
        assert str(result.error).startswith(f"{failing}: ")
        assert "FileNotFoundError" in str(result.error)
        assert reload_error(result).lineno == 5
        error_path = reload_error(result).path
        assert error_path is not None
        assert error_path.name == "mod.py"

        assert "rolled back everywhere" in result.summary()
        assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 1)
        assert sync.sources == {}

        # The next save that every worker can run applies everywhere.
        write_replace(package / "mod.py", "def value():\n    return 3\n")
        fixed = heard.next()
        assert fixed.status == "ok", fixed.summary()
        assert on_each(client, call, f"{name}.mod") == dict.fromkeys(workers(client), 3)


def test_worker_joining_later_runs_the_current_code(
    cluster: tuple[Any, Any], project: Project, on_path: OnPathFixture, plugin: PluginFixture
) -> None:
    """One worker joins: the shipped sync and the shared-disk plugin both reach it."""
    local, client = cluster
    shipped, private = project("def value():\n    return 1\n")
    on_path(private.parent, True)
    shared, folder = project("def value():\n    return 'a'\n")
    on_path(folder.parent, False)
    heard_plugin = plugin(folder)
    on_each(client, call, f"{shipped}.mod")
    on_each(client, call, f"{shared}.mod")
    heard = Heard()
    with hotmod.dask.sync(client, [private]) as sync:
        sync.subscribe(heard)
        write_replace(private / "mod.py", "def value():\n    return 2\n")
        assert heard.next().status == "ok"
        write_replace(folder / "mod.py", "def value():\n    return 'b'\n")
        assert heard_plugin.next().status == "ok"
        old = set(workers(client))

        local.scale(3)
        client.wait_for_workers(3, timeout=WAIT)
        try:
            (joined,) = set(workers(client)) - old
            _, path = client.submit(where, f"{shipped}.mod", workers=[joined], pure=False).result(
                timeout=WAIT
            )
            assert Path(path).read_text() == "def value():\n    return 1\n"  # its own copy is old
            assert client.submit(call, f"{shipped}.mod", workers=[joined], pure=False).result(WAIT) == 2
            assert client.submit(call, f"{shared}.mod", workers=[joined], pure=False).result(WAIT) == "b"

            # The joined worker reloads like the others: the plugin reached it too.
            write_replace(folder / "mod.py", "def value():\n    return 'c'\n")
            result = heard_plugin.next()
            assert result.status == "ok", result.summary()
            assert joined in result.workers
            assert on_each(client, call, f"{shared}.mod") == dict.fromkeys(workers(client), "c")
        finally:
            local.scale(2)


# -- the worker side, in this process ------------------------------------------------------------


class FakeScheduler:
    def __init__(self, metadata: Any) -> None:
        self.metadata = metadata

    async def get_metadata(self, keys: list[str], default: Any = None) -> Any:
        return self.metadata


class FakeWorker:
    """What ``_dask_worker`` uses of a worker: an address and the scheduler's metadata."""

    def __init__(self, metadata: Any) -> None:
        self.address = "tcp://fake:1"
        self.scheduler = FakeScheduler(metadata)


def test_worker_that_missed_a_save_applies_it_with_the_next(pkg: Pkg) -> None:
    one = pkg.module("one", "def value():\n    return 0\n")
    two = pkg.module("two", "def value():\n    return 0\n")
    sync_id = uuid.uuid4().hex
    # The client committed save 1 (to ``one``) while this worker was joining: it runs its
    # own copy, and hears of save 2 (to ``two``) first.
    missed = {pkg.qualname("one"): [b"def value():\n    return 1\n", False, "/client/one.py"]}
    worker = FakeWorker({"version": 1, "sources": missed})
    change = {pkg.qualname("two"): [b"def value():\n    return 2\n", False, "/client/two.py"]}
    try:
        vote = asyncio.run(_dask_worker.prepare(sync_id, 2, 1, change, WAIT, dask_worker=worker))
        assert vote == {"vote": True}
        final = asyncio.run(_dask_worker.decide(sync_id, 2, True, dask_worker=worker))
        assert final["status"] == "ok"
        assert final["committed"] is True
        assert sorted(final["modules"]) == [pkg.qualname("one"), pkg.qualname("two")]
        assert (one.value(), two.value()) == (1, 2)
        assert _dask_worker.state(sync_id).version == 2
    finally:
        _dask_worker.drop(sync_id)


def test_worker_rolls_back_when_told(pkg: Pkg) -> None:
    one = pkg.module("one", "def value():\n    return 0\n")
    sync_id = uuid.uuid4().hex
    worker = FakeWorker({"version": 0, "sources": {}})
    change = {pkg.qualname("one"): [b"def value():\n    return 1\n", False, "/client/one.py"]}
    try:
        vote = asyncio.run(_dask_worker.prepare(sync_id, 1, -1, change, WAIT, dask_worker=worker))
        assert vote == {"vote": True}
        final = asyncio.run(_dask_worker.decide(sync_id, 1, False, dask_worker=worker))
        assert final["status"] == "aborted"
        assert final["committed"] is False
        assert "rolled back" in final["error"]
        assert one.value() == 0
        assert _dask_worker.state(sync_id).committed == {}
    finally:
        _dask_worker.drop(sync_id)


def test_gate_holds_new_tasks_while_a_reload_waits_for_running_ones() -> None:
    gate = _dask_worker.Gate()
    order: list[str] = []
    in_task = threading.Event()
    finish_task = threading.Event()

    def task(label: str, hold: threading.Event | None = None) -> None:
        gate.enter()
        try:
            order.append(f"{label} start")
            if hold is not None:
                in_task.set()
                assert hold.wait(WAIT)
            order.append(f"{label} end")
        finally:
            gate.leave()

    running = threading.Thread(target=task, args=("old", finish_task))
    running.start()
    assert in_task.wait(WAIT)

    def reload() -> None:
        assert gate.acquire(WAIT)
        order.append("reload")
        gate.release()

    reloading = threading.Thread(target=reload)
    reloading.start()
    assert gate.contended.wait(WAIT)  # the reload waits for the running task
    late = threading.Thread(target=task, args=("late",))
    late.start()
    assert gate.wait_blocked(1, WAIT)  # the late task waits behind the reload
    assert gate.running == 1
    finish_task.set()
    for thread in (running, reloading, late):
        thread.join(WAIT)
    assert order == ["old start", "old end", "reload", "late start", "late end"]
    assert gate.acquire(0)  # free again
    gate.release()


def test_gate_reload_gives_up_after_its_timeout() -> None:
    gate = _dask_worker.Gate()
    gate.enter()
    try:
        assert gate.acquire(0.01) is False
        gate.release_thread(threading.get_ident())  # the task seceded
        assert gate.acquire(WAIT) is True
        gate.release()
    finally:
        gate.leave()
