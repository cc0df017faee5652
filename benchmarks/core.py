"""hotmod's own core figures: write-to-new-code latency and idle poll cost.

B1: a loop calls into a small module while it is saved 50 times the way editors save
(temp file + rename); each figure is the time from the start of the save to the first
call that returned the new value, with the default ``Reloader`` (watchdog backend,
background apply). ``loop`` says how the calling loop behaves: ``2 kHz`` sleeps 0.5 ms
between calls (a game loop, a server between requests), ``busy`` never yields, so every
hop between threads waits for Python's switch interval. In the busy loop the saves come
from another process, as an editor's do (a save made by a thread of the measured process
would itself wait for the busy thread at each system call), and the time splits at the
moment the change is queued: the watcher's part (watchdog's threads) and hotmod's part.

B2: one ``poll()`` with N unrelated modules imported, the watchdog backend, nothing
changed.
"""

from __future__ import annotations

import importlib
import math
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import hotmod

from ._util import row, save_like_an_editor

SMALL = "def value():\n    return {n}\n\n\ndef helper(x):\n    return x * {n}\n"


def _import_fresh(folder: str, name: str) -> Any:
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def write_to_running(
    saves: int = 50, *, backend: str = "auto", busy: bool = False, queued: list[float] | None = None
) -> list[float]:
    """B1's latencies; with ``queued``, each save's time to reach hotmod's queue goes there."""
    from hotmod import _changes

    pushes: list[float] = []
    starts: list[float] = []
    push = _changes.ChangeQueue.push

    def timed_push(self: Any, paths: Any, *, settled: bool) -> None:
        pushes.append(time.perf_counter())
        push(self, paths, settled=settled)

    with tempfile.TemporaryDirectory(prefix="hotmod-b1-") as folder:
        path = Path(folder) / "b1_target.py"
        path.write_text(SMALL.format(n=0))
        module = _import_fresh(folder, "b1_target")
        saver = ExternalSaver() if busy else None
        try:
            with hotmod.Reloader([folder], backend=backend):  # type: ignore[arg-type]
                _changes.ChangeQueue.push = timed_push  # type: ignore[method-assign]
                # Saves land at a random phase of a polling cycle.
                latencies = measure_latency(
                    module,
                    path,
                    saves,
                    busy=busy,
                    jitter=0.5 if backend == "polling" else 0.01,
                    saver=saver,
                    starts=starts,
                )
        finally:
            _changes.ChangeQueue.push = push  # type: ignore[method-assign]
            if saver is not None:
                saver.close()
        if queued is not None:
            for started in starts:
                queued.append(min((t for t in pushes if t >= started), default=float("nan")) - started)
        sys.path.remove(folder)
        del sys.modules["b1_target"]
    return latencies


SAVER = """
import os, sys, time
for line in sys.stdin:
    path, n = line.rsplit(" ", 1)
    text = sys.argv[1].format(n=int(n))
    started = time.perf_counter()
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    print(repr(started), flush=True)
"""


class ExternalSaver:
    """Editor-style saves made by another process, which reports when each one started.

    ``time.perf_counter`` is ``CLOCK_MONOTONIC`` on Linux: the same clock in both processes.
    """

    def __init__(self) -> None:
        if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
            raise RuntimeError("the saver's clock is not comparable with this process's here")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, SMALL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def request(self, path: Path, n: int) -> None:
        """Ask for a save; the caller then waits for the new code, not for this process:
        a thread of the measured process woken by the save would compete with the threads
        that carry it (an editor's save wakes nobody in the process it reloads)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{path} {n}\n")
        self._proc.stdin.flush()

    def started(self) -> float:
        """When the save asked for last started, on this process's clock."""
        assert self._proc.stdout is not None
        return float(self._proc.stdout.readline())

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


def measure_latency(
    module: Any,
    path: Path,
    saves: int,
    *,
    busy: bool,
    jitter: float,
    in_place: bool = False,
    saver: ExternalSaver | None = None,
    starts: list[float] | None = None,
) -> list[float]:
    """Save ``path`` ``saves`` times while a loop calls ``module.value()``; each save's latency.

    Whatever reloader is watching ``path`` makes the new value appear; the latency is
    from the start of the save to the loop's first call that returns it.
    """
    latencies: list[float] = []
    rng = random.Random(1)
    seen: dict[int, float] = {}
    stop = threading.Event()
    arrived = threading.Event()

    def loop() -> None:
        last = -1
        while not stop.is_set():
            value = module.value()
            if value != last:
                seen[value] = time.perf_counter()
                last = value
                arrived.set()
            if not busy:
                time.sleep(0.0005)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        for n in range(1, saves + 1):
            started = time.perf_counter()
            if saver is not None:
                saver.request(path, n)
            elif in_place:
                path.write_text(SMALL.format(n=n))
            else:
                save_like_an_editor(path, SMALL.format(n=n))
            # Blocked on an event, not polling: a thread that wakes every few hundred µs
            # would itself take the GIL from the busy loop and hand it to the others.
            deadline = time.perf_counter() + 5
            while n not in seen and arrived.wait(max(0.0, deadline - time.perf_counter())):
                arrived.clear()
            if n not in seen:
                raise RuntimeError(f"save {n} was not running after 5 s")
            if saver is not None:
                started = saver.started()
            if starts is not None:
                starts.append(started)
            latencies.append(seen[n] - started)
            time.sleep(0.02 + rng.uniform(0, jitter))  # the next save is a separate one
    finally:
        stop.set()
        worker.join()
    return latencies


def _spin(n: int) -> None:
    total = 0
    for i in range(n):
        total += i * i


def contended_threads(rounds: int, work: int = 2_000_000) -> dict[str, list[float]]:
    """What the 0.5 ms switch interval a waiting reloader holds costs threads that contend.

    Two threads that never block share the GIL; the shorter interval makes them swap it
    more often. Measured in alternation, with no reloader (the interpreter's 5 ms) and with
    a background ``Reloader`` open; the ratio of the two rows is the cost.
    """
    times: dict[str, list[float]] = {
        "no reloader (5 ms interval)": [],
        "background Reloader open (0.5 ms)": [],
    }

    def timed() -> float:
        threads = [threading.Thread(target=_spin, args=(work,)) for _ in range(2)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="hotmod-b1c-") as folder:
        for _ in range(rounds):
            times["no reloader (5 ms interval)"].append(timed())
            with hotmod.Reloader([folder]) as reloader:
                reloader.start()
                for _ in range(1000):  # until its applying thread waits (and holds 0.5 ms)
                    if sys.getswitchinterval() < 0.005:
                        break
                    time.sleep(0.001)
                times["background Reloader open (0.5 ms)"].append(timed())
    return times


def idle_poll(unrelated: int, *, batches: int = 20, per_batch: int = 2000) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="hotmod-b2-") as folder:
        other = Path(folder) / "unrelated"
        other.mkdir()
        for i in range(unrelated):
            (other / f"u_{i}.py").write_text(f"X = {i}\n")
        watched = Path(folder) / "watched"
        watched.mkdir()
        (watched / "b2_target.py").write_text(SMALL.format(n=0))
        sys.path.insert(0, str(other))
        _import_fresh(str(watched), "b2_target")
        for i in range(unrelated):
            importlib.import_module(f"u_{i}")
        per_call: list[float] = []
        with hotmod.Reloader([str(watched)], backend="watchdog", apply="manual") as reloader:
            reloader.poll()
            for _ in range(batches):
                started = time.perf_counter()
                for _ in range(per_batch):
                    reloader.poll()
                per_call.append((time.perf_counter() - started) / per_batch)
        for i in range(unrelated):
            del sys.modules[f"u_{i}"]
        del sys.modules["b2_target"]
        sys.path.remove(str(other))
        sys.path.remove(str(watched))
    return per_call


def classes_module(classes: int, edit: str, n: int) -> str:
    """B3's module: ``classes`` classes of 5 methods; version ``n`` of one method or attribute."""
    lines = []
    for c in range(classes):
        lines.append(f"class K{c}:")
        lines.append(f"    LIMIT = {n if edit == 'attribute' and c == 0 else 0}")
        for m in range(5):
            value = n if edit == "method" and c == 0 and m == 0 else m
            lines.append(f"    def m{m}(self):\n        return {value}")
    return "\n".join(lines) + "\n"


def _timed_edits(name: str, versions: list[str]) -> tuple[list[float], list[float]]:
    """Import ``versions[0]``, then apply each later version with one ``poll()``.

    Returns the poll durations and, beside them, how long ``compile()`` of the same
    text takes (the floor every reload pays).
    """
    durations: list[float] = []
    compiles: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"hotmod-{name}-") as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(versions[0])
        _import_fresh(folder, name)
        with hotmod.Reloader([folder], backend="manual", apply="manual") as reloader:
            for text in versions[1:]:
                path.write_text(text)
                started = time.perf_counter()
                compile(text, str(path), "exec", dont_inherit=True)
                compiles.append(time.perf_counter() - started)
                reloader.notify(path)
                started = time.perf_counter()
                result = reloader.poll()
                durations.append(time.perf_counter() - started)
                assert result.status == "ok", result
        sys.path.remove(folder)
        del sys.modules[name]
    return durations, compiles


def reload_with_heap(live_objects: int, edit: str, *, repeats: int = 15) -> list[float]:
    """B3: one edit of a 20-class module with ``live_objects`` extra objects alive."""
    heap: list[list[int]] = [[] for _ in range(live_objects)]  # GC-tracked, like a real application's data
    versions = [classes_module(20, edit, n) for n in range(repeats + 1)]
    durations, _ = _timed_edits("b3_classes", versions)
    del heap
    return durations


def one_function_edit(definitions: int, *, repeats: int = 15) -> tuple[list[float], list[float]]:
    """B4: edit one function of a module with ``definitions`` functions; and compile time."""

    return _timed_edits("b4_defs", [b4_source(definitions, n) for n in range(repeats + 1)])


def b4_source(definitions: int, n: int) -> str:
    """B4's module: ``definitions`` functions; version ``n`` of the middle one."""
    body = [f"def f{i}(x):\n    return x + {n if i == definitions // 2 else i}\n" for i in range(definitions)]
    return "\n".join(body)


def pydantic_models_source(models: int, n: int) -> str:
    """B12's module: ``models`` pydantic models with a method each; version ``n`` of one."""
    lines = ["from pydantic import BaseModel", ""]
    for i in range(models):
        value = n if i == models // 2 else i
        lines += [f"class M{i}(BaseModel):", "    name: str", "    size: int = 0", ""]
        lines += ["    def label(self) -> str:", f"        return f'{{self.name}}-{value}'", ""]
    return "\n".join(lines)


def pydantic_method_edit(models: int = 50, *, repeats: int = 15) -> list[float]:
    """B12 (issue 17): one method of a module of ``models`` pydantic models edited; each
    model must still validate to its own class, and the edit must run."""
    durations, _ = _timed_edits("b12_models", [pydantic_models_source(models, n) for n in range(repeats + 1)])
    return durations


def _pydantic_checked(models: int, repeats: int) -> list[float]:
    durations = pydantic_method_edit(models, repeats=repeats)
    # The same edits once more, checking validation and the new code after each.
    with tempfile.TemporaryDirectory(prefix="hotmod-b12check-") as folder:
        path = Path(folder) / "b12_check.py"
        path.write_text(pydantic_models_source(models, 0))
        module = _import_fresh(folder, "b12_check")
        with hotmod.Reloader([folder], backend="manual", apply="manual") as reloader:
            for n in range(1, 3):
                path.write_text(pydantic_models_source(models, n))
                reloader.notify(path)
                assert reloader.poll().status == "ok"
                for i in range(models):
                    cls = getattr(module, f"M{i}")
                    made = cls.model_validate({"name": "x"})
                    if type(made) is not cls:
                        raise RuntimeError(f"M{i} validated to another class after the edit")
                middle = getattr(module, f"M{models // 2}").model_validate({"name": "x"})
                if middle.label() != f"x-{n}":
                    raise RuntimeError("the edited method did not run its new code")
        sys.path.remove(folder)
        del sys.modules["b12_check"]
    return durations


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    saves = 20 if quick else 50
    values = write_to_running(saves)
    rows.append(row("B1 write -> new code running (2 kHz loop)", "hotmod watchdog", values))
    queued: list[float] = []
    values = write_to_running(saves, busy=True, queued=queued)
    rows.append(row("B1 write -> new code running (busy loop)", "hotmod watchdog", values))
    parts = zip(queued, values, strict=True)
    steps = [(q, v - q) for q, v in parts if not math.isnan(q)]  # nan: no push after that save
    if steps:
        figure = "B1 busy loop, split: write -> change queued (kernel event to queue)"
        rows.append(row(figure, "hotmod watchdog", [q for q, _ in steps]))
        figure = "B1 busy loop, split: queued -> new code running (hotmod)"
        rows.append(row(figure, "hotmod watchdog", [a for _, a in steps]))
    for label, values in contended_threads(rounds=3 if quick else 7).items():
        rows.append(row("B1 cost: two CPU-bound threads, time for a fixed amount of work", label, values))
    values = write_to_running(saves, backend="polling")
    rows.append(row("B1 write -> new code running (2 kHz loop)", "hotmod polling 0.5 s", values))
    for count in (0, 1000, 5000):
        values = idle_poll(count, batches=5 if quick else 20)
        rows.append(row(f"B2 idle poll(), {count} modules imported", "hotmod watchdog", values))
    for live in (0, 1_000_000) if quick else (0, 1_000_000, 5_000_000):
        for edit in ("method", "attribute"):
            values = reload_with_heap(live, edit)
            figure = f"B3 20-class module, {edit} edit, {live:,} live objects"
            rows.append(row(figure, "hotmod", values))
    for size in (50, 200, 800):
        values, compiles = one_function_edit(size)
        figure = f"B4 one-function edit, {size} definitions"
        rows.append(row(figure, "hotmod", values))
        rows.append(row(figure, "compile() floor", compiles))
    try:
        import pydantic  # noqa: F401  (the bench and test extras have it)
    except ImportError:
        pass
    else:
        values = _pydantic_checked(50, repeats=5 if quick else 15)
        rows.append(row("B12 one method edited in a module of 50 pydantic models", "hotmod", values))
    return rows
