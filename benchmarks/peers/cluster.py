"""Clusters: from a save to every Dask worker running the new code, beside ``client.restart()``.

One ``LocalCluster(n_workers=2, processes=True)`` on loopback, measured in this order:

- ``hotmod.dask.ReloadPlugin`` (the workers share the client's disk): each save is made
  like an editor (temp file, rename); the figure is from the start of the save to the
  first moment every worker's module returns the new value (the client asks all workers
  with ``client.run`` in a loop, a round trip of about a millisecond).
- ``hotmod.dask.sync`` (each worker imports from a private copy of its own): the figure
  is from the start of the save to the combined result, which the client has once every
  worker committed; every worker is then asked once that it runs the new value.
- ``client.restart()``: the time the call takes, then to the first task that runs the new
  code, on the same cluster and with the same state in it.

Before the saves the cluster holds 10 MB of scattered data, a persisted bag and an actor
that counted to 5; after the saves, and again after the restart, the benchmark looks at
what is still there and whether the worker processes are the same.

``python -m benchmarks.peers.cluster [--quick]`` prints the figures on stderr and the
rows as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .._util import fmt_seconds, row, save_like_an_editor
from ._child import emit, log

TAG = "cluster"
FIGURE = "save -> every worker of a 2-process LocalCluster runs the new code"
WAIT = 30.0
DATA_BYTES = 10 * 1024 * 1024


# -- on the workers --------------------------------------------------------------------------------


def _value(module: str) -> int:
    return int(importlib.import_module(module).value())


def _double(x: int) -> int:
    return 2 * x


class Counter:
    """An actor whose state a restart loses."""

    n = 0  # on the class too: an actor's proxy reads only attributes its class has

    def increment(self) -> int:
        self.n += 1
        return self.n


def _path_plugin() -> Any:
    from distributed import WorkerPlugin

    class OnPath(WorkerPlugin):  # type: ignore[misc]
        """Import from ``folder``, or from a private copy of it (no shared disk)."""

        def __init__(self, folder: str, private: bool) -> None:
            self.folder = folder
            self.private = private

        def setup(self, worker: Any) -> None:
            entry = self.folder
            if self.private:
                entry = f"{self.folder}-worker-{os.getpid()}"
                shutil.copytree(self.folder, entry, dirs_exist_ok=True)
            sys.path.insert(0, entry)
            importlib.invalidate_caches()

    return OnPath


# -- measuring ---------------------------------------------------------------------------------------


def _project(root: Path, name: str) -> Path:
    package = root / name / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def value():\n    return 0\n")
    return package


def _all_run(client: Any, module: str, value: int) -> bool:
    return set(client.run(_value, module).values()) == {value}


def _shared_disk(client: Any, package: Path, saves: int) -> list[float]:
    import hotmod.dask

    module = f"{package.name}.mod"
    client.register_plugin(_path_plugin()(str(package.parent), False), name="bench-shared-path")
    client.register_plugin(hotmod.dask.ReloadPlugin([package]), name="bench-reload")
    workers = sorted(client.scheduler_info()["workers"])
    for worker in workers:  # imported by a task on each worker: tracked from then on
        client.submit(_value, module, workers=[worker], pure=False).result(timeout=WAIT)
    gaps = []
    for n in range(1, saves + 1):
        started = time.perf_counter()
        save_like_an_editor(package / "mod.py", f"def value():\n    return {n}\n")
        while not _all_run(client, module, n):
            if time.perf_counter() - started > WAIT:
                raise TimeoutError(f"save {n} never reached every worker")
        gaps.append(time.perf_counter() - started)
    client.unregister_worker_plugin("bench-reload")
    return gaps


def _shipped(client: Any, package: Path, saves: int) -> tuple[list[float], str]:
    import hotmod.dask

    module = f"{package.name}.mod"
    pristine = package.parent.parent / "pristine"
    shutil.copytree(package.parent, pristine)
    client.register_plugin(_path_plugin()(str(pristine), True), name="bench-private-path")
    client.run(_value, module)  # imported on every worker
    gaps = []
    done = threading.Event()
    last = ""
    with hotmod.dask.sync(client, [package]) as sync:
        sync.subscribe(lambda result: done.set())
        for n in range(1, saves + 1):
            done.clear()
            started = time.perf_counter()
            save_like_an_editor(package / "mod.py", f"def value():\n    return {n}\n")
            if not done.wait(WAIT):
                raise TimeoutError(f"save {n} was never applied")
            gaps.append(time.perf_counter() - started)
            result = sync.results[-1]
            if result.status != "ok" or not _all_run(client, module, n):
                raise RuntimeError(f"save {n}: {result.summary()}")
            last = result.summary()
    return gaps, last


def _state(client: Any) -> dict[str, Any]:
    """10 MB scattered, a persisted bag, an actor that counted to 5."""
    import dask.bag

    data = client.scatter(os.urandom(DATA_BYTES))
    bag = client.persist(dask.bag.from_sequence(range(1000), npartitions=8).map(_double))
    counter = client.submit(Counter, actor=True).result(timeout=WAIT)
    for _ in range(5):
        counter.increment().result()
    return {"data": data, "bag": bag, "counter": counter, "pids": client.run(os.getpid)}


def _kept(client: Any, state: dict[str, Any]) -> dict[str, Any]:
    """What of ``state`` is still there, each look bounded by a short timeout."""
    kept: dict[str, Any] = {}
    try:
        kept["data_bytes"] = len(state["data"].result(timeout=5))
    except Exception as exc:
        kept["data_bytes"] = 0
        kept["data_error"] = type(exc).__name__
    try:
        kept["bag_ok"] = int(sum(state["bag"].compute(timeout=5)) == 999_000)
    except Exception as exc:
        kept["bag_ok"] = 0
        kept["bag_error"] = type(exc).__name__
    try:
        kept["actor_count"] = int(state["counter"].n)
    except Exception as exc:
        kept["actor_count"] = 0
        kept["actor_error"] = type(exc).__name__
    pids = client.run(os.getpid)
    kept["workers_replaced"] = len(set(state["pids"].values()) - set(pids.values()))
    return kept


def _restart(client: Any, package: Path, value: int) -> tuple[float, float]:
    module = f"{package.name}.mod"
    started = time.perf_counter()
    client.restart()
    restarted = time.perf_counter() - started
    got = client.submit(_value, module, pure=False).result(timeout=WAIT)
    running = time.perf_counter() - started
    if got != value:
        raise RuntimeError(f"after the restart a task returned {got}, not {value}")
    return restarted, running


def run(quick: bool = False) -> list[dict[str, Any]]:
    from distributed import Client, LocalCluster

    saves = 5 if quick else 30
    restarts = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    root = Path(tempfile.mkdtemp(prefix="hotmod-cluster-"))
    try:
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            state = _state(client)
            shared = _project(root / "shared", "bench_shared")
            gaps = _shared_disk(client, shared, saves)
            rows.append(row(FIGURE, "hotmod.dask.ReloadPlugin (shared disk)", gaps))
            shipped = _project(root / "shipped", "bench_shipped")
            gaps, last = _shipped(client, shipped, saves)
            rows.append(row(FIGURE, "hotmod.dask.sync (shipped, private copies)", gaps))
            log(TAG, f"last shipped save: {last}")
            kept = _kept(client, state)
            restart_calls: list[float] = []
            restart_running: list[float] = []
            lost: dict[str, Any] = {}
            for i in range(restarts):
                restarted, running = _restart(client, shared, saves)
                restart_calls.append(restarted)
                restart_running.append(running)
                if i == 0:
                    lost = _kept(client, state)
                    state = _state(client)  # the next restart has something to lose too
            rows.append(row(FIGURE, "client.restart() then a task", restart_running))
            rows.append(row("client.restart() call", "client.restart()", restart_calls))
            for key, unit in (
                ("data_bytes", "bytes"),
                ("bag_ok", "count"),
                ("actor_count", "count"),
                ("workers_replaced", "count"),
            ):
                rows.append(row(f"after the saves: {key}", "hotmod.dask", [kept[key]], unit))
                rows.append(row(f"after the saves: {key}", "client.restart()", [lost[key]], unit))
            _report(rows, kept, lost)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def _report(rows: list[dict[str, Any]], kept: dict[str, Any], lost: dict[str, Any]) -> None:
    for r in rows:
        if r["unit"] == "s":
            log(
                TAG,
                f"{r['tool']}: median {fmt_seconds(r['median'])}, p90 {fmt_seconds(r['p90'])}, "
                f"max {fmt_seconds(r['max'])} (n={r['n']})",
            )
    log(TAG, f"kept by hotmod.dask: {kept}")
    log(TAG, f"after client.restart(): {lost}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 saves and 1 restart")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run(quick=args.quick)
    log(TAG, f"done in {time.perf_counter() - started:.1f} s")
    emit(rows)


if __name__ == "__main__":
    main()
