"""B6 footprint: what keeping hotmod in a process costs, beyond applying edits.

- ``B6 import hotmod (-X importtime)``: the cumulative import time of the top-level
  ``hotmod`` line of ``python -X importtime -c "import hotmod"``, in a fresh child each
  run. It is what an application's start-up pays for ``import hotmod`` alone, without the
  interpreter's own start-up, and without noise from the rest of the child's life.
- ``B6 import hotmod and first use of hotmod.hot / hotmod.Reloader``: ``import hotmod``
  loads its names on first use, so these say what a module calling ``hotmod.hot`` and an
  app building a reloader pay in all.
- ``B6 import hotmod (wall, child process)``: wall time of ``python -c "import hotmod"``
  minus that of ``python -c "pass"``, the two run back to back (the figure is over the
  per-pair differences). It includes what importtime does not see (reading ``.pth`` files
  is shared by both, but opening and mapping more files is not), at the price of more noise.
- ``B6 RSS growth per 1,000 reloads``: a child reloads a small module (functions, a class
  with an instance alive) through ``Reloader(backend="manual", apply="manual")``: 100
  warm-up reloads, then 1,000 measured ones, each a new literal, ``notify()`` and
  ``poll()`` asserting ``status == "ok"``. The VmRSS difference (after ``gc.collect()``)
  is scaled to 1,000 reloads. A long-lived dev server reloads thousands of times a day:
  anything kept per reload (old code objects, line caches, history) shows up here. The
  warm-up keeps one-off costs (lazy imports, first allocations of the caches) out.
- ``B6 threads/file descriptors left after 100 start/stop cycles``: a child counts
  ``threading.active_count()`` and ``/proc/self/fd`` entries, then creates, starts,
  stops and closes 100 ``Reloader`` (watchdog backend, one tracked module) and counts
  again; likewise 100 ``PluginFolder`` (one plugin) loaded, started and closed. Hosts that
  build a reloader per session or per test leak an inotify descriptor or an observer
  thread per cycle if ``close()`` misses one; the figure should be 0.

Every measurement runs in a fresh interpreter (``python -m benchmarks.peers.footprint
--child ...``), so nothing imported or started by one measurement is counted by another.

``python -m benchmarks.peers.footprint [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .._util import row
from ._child import PROJECT, child_output, emit, emit_rows, log

MODULE = "benchmarks.peers.footprint"
CHILD_TIMEOUT = 600.0
IMPORT_TIMEOUT = 60.0

RELOADS_PER_FIGURE = 1_000


def _log(message: str) -> None:
    log("footprint", message)


# -- import time -----------------------------------------------------------------------------


def _run_python(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    # With bytecode caching on, as in any installed environment: a process started with
    # PYTHONDONTWRITEBYTECODE compiles every module from source at each import.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT,
        check=False,
        cwd=PROJECT,
        env=env,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, done


def parse_importtime(stderr: str, module: str = "hotmod") -> float:
    """Cumulative seconds of the top-level ``module`` line of ``-X importtime`` output."""
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        # Nested imports are indented under their importer; the top level has one space.
        if len(fields) == 3 and fields[2].rstrip() == f" {module}":
            return int(fields[1]) / 1e6
    raise RuntimeError(f"no top-level {module!r} line in -X importtime output")


FIRST_USE = (
    "import time; t = time.perf_counter(); import hotmod; hotmod.{name}; print(time.perf_counter() - t)"
)


def first_use_times(name: str, runs: int) -> list[float]:
    """``import hotmod`` plus the first use of ``hotmod.<name>``, which loads what it needs."""
    values = []
    for _ in range(runs):
        _, done = _run_python(["-c", FIRST_USE.format(name=name)])
        values.append(float(done.stdout.strip()))
    return values


def import_times(runs: int) -> tuple[list[float], list[float]]:
    """(importtime cumulative seconds, wall(import hotmod) - wall(pass)) for each run."""
    # The first run may write .pyc files; it is not one of the measured ones.
    _run_python(["-c", "import hotmod"])
    cumulative: list[float] = []
    wall_diffs: list[float] = []
    for _ in range(runs):
        _, traced = _run_python(["-X", "importtime", "-c", "import hotmod"])
        cumulative.append(parse_importtime(traced.stderr))
        empty, _ = _run_python(["-c", "pass"])
        loaded, _ = _run_python(["-c", "import hotmod"])
        wall_diffs.append(loaded - empty)
    return cumulative, wall_diffs


# -- children ---------------------------------------------------------------------------------


def _run_child(args: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = child_output(MODULE, ["--child", *args], CHILD_TIMEOUT, key="child")
    return result


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _target_source(n: int) -> str:
    return (
        f"LIMIT = {n}\n\n\n"
        "def value():\n    return LIMIT\n\n\n"
        f"def scaled(x):\n    return x * 2 + {n}\n\n\n"
        "def describe(items):\n    return ', '.join(str(i) for i in items)\n\n\n"
        "class Counter:\n"
        f"    step = {n}\n\n"
        "    def __init__(self):\n        self.count = 0\n\n"
        "    def bump(self):\n        self.count += self.step\n        return self.count\n\n"
        "    @property\n    def doubled(self):\n        return self.count * 2\n"
    )


def _import_from(folder: Path, name: str) -> Any:
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    return importlib.import_module(name)


def rss_child(reloads: int, warmup: int) -> dict[str, Any]:
    import hotmod

    with tempfile.TemporaryDirectory(prefix="hotmod-b6-rss-") as tmp:
        folder = Path(os.path.realpath(tmp))
        path = folder / "b6_target.py"
        path.write_text(_target_source(0))
        module = _import_from(folder, "b6_target")
        # An instance stays alive across reloads, as application state would.
        counter = module.Counter()
        reloader = hotmod.Reloader([folder], backend="manual", apply="manual")
        version = 0

        def reload_once() -> None:
            nonlocal version
            version += 1
            path.write_text(_target_source(version))
            reloader.notify(path)
            result = reloader.poll()
            assert result.status == "ok", result
            assert module.value() == version
            counter.bump()

        for _ in range(warmup):
            reload_once()
        gc.collect()
        before = _rss_bytes()
        blocks = sys.getallocatedblocks()
        started = time.perf_counter()
        for _ in range(reloads):
            reload_once()
        elapsed = time.perf_counter() - started
        gc.collect()
        after = _rss_bytes()
        # RSS moves by whole pages; the interpreter's block count tells a Python-level leak apart.
        blocks = sys.getallocatedblocks() - blocks
        reloader.close()
    return {
        "before": before,
        "after": after,
        "reloads": reloads,
        "per_1000": (after - before) * RELOADS_PER_FIGURE / reloads,
        "seconds": elapsed,
        "blocks_per_1000": blocks * RELOADS_PER_FIGURE / reloads,
    }


def _alive(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def _thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def cycles_child(cycles: int) -> dict[str, Any]:
    import hotmod

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hotmod-b6-cycles-") as tmp:
        root = Path(os.path.realpath(tmp))
        tracked = root / "tracked"
        tracked.mkdir()
        (tracked / "b6_cycled.py").write_text(_target_source(0))
        _import_from(tracked, "b6_cycled")

        gc.collect()
        threads, fds, names = threading.active_count(), _open_fds(), _thread_names()
        started = time.perf_counter()
        for _ in range(cycles):
            reloader = hotmod.Reloader([tracked])
            assert reloader.backend == "watchdog", reloader.backend
            reloader.start()
            assert reloader.stats.watched_dirs == 1, reloader.stats
            reloader.stop()
            reloader.close()
        del reloader  # only objects nothing of ours refers to count as left behind
        gc.collect()
        out["reloader"] = {
            "threads": threading.active_count() - threads,
            "fds": _open_fds() - fds,
            "new_threads": sorted(set(_thread_names()) - set(names)),
            "seconds": time.perf_counter() - started,
            "alive": _alive(hotmod.Reloader),
        }

        # The trust checks refuse a folder writable by group or others, whatever the umask.
        plugins = root / "plugins"
        plugins.mkdir(mode=0o755)
        plugins.chmod(0o755)
        plugin = plugins / "greet.py"
        plugin.write_text(
            "def setup(ctx):\n    ctx.data['ready'] = True\n\n\ndef hello():\n    return 'hi'\n"
        )
        plugin.chmod(0o644)

        gc.collect()
        threads, fds, names = threading.active_count(), _open_fds(), _thread_names()
        started = time.perf_counter()
        for _ in range(cycles):
            folder = hotmod.PluginFolder(plugins)
            loaded = folder.load()
            assert loaded["greet"].state == "loaded", loaded["greet"]
            folder.start()
            folder.close()
        del folder, loaded
        gc.collect()
        out["plugin_folder"] = {
            "threads": threading.active_count() - threads,
            "fds": _open_fds() - fds,
            "new_threads": sorted(set(_thread_names()) - set(names)),
            "seconds": time.perf_counter() - started,
            "alive": _alive(hotmod.PluginFolder),
        }
    return out


# -- parent -----------------------------------------------------------------------------------


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    runs = 5 if quick else 15
    _log(f"import time, {runs} runs")
    cumulative, wall_diffs = import_times(runs)
    rows.append(row("B6 import hotmod (-X importtime)", "hotmod", cumulative, "s"))
    rows.append(row("B6 import hotmod (wall, child process)", "hotmod", wall_diffs, "s"))
    for name in ("hot", "Reloader"):
        figure = f"B6 import hotmod and first use of hotmod.{name} (timed in the child)"
        rows.append(row(figure, "hotmod", first_use_times(name, runs), "s"))

    reloads = 300 if quick else RELOADS_PER_FIGURE
    children = 1 if quick else 3
    growth: list[float] = []
    for i in range(children):
        result = _run_child(["rss", "--reloads", str(reloads), "--warmup", "100"])
        _log(
            f"RSS child {i + 1}/{children}: {result['before'] / 2**20:.1f} MiB -> "
            f"{result['after'] / 2**20:.1f} MiB over {reloads} reloads ({result['seconds']:.2f} s), "
            f"{result['per_1000'] / 1024:.1f} KiB per 1,000 "
            f"({result['blocks_per_1000']:+.0f} allocated blocks per 1,000)"
        )
        growth.append(float(result["per_1000"]))
    rows.append(row("B6 RSS growth per 1,000 reloads", "hotmod", growth, "bytes"))

    cycles = 100
    left: dict[tuple[str, str], list[float]] = {}
    for i in range(children):
        result = _run_child(["cycles", "--cycles", str(cycles)])
        for key, tool in (("reloader", "hotmod Reloader"), ("plugin_folder", "hotmod PluginFolder")):
            part = result[key]
            _log(
                f"cycles child {i + 1}/{children}, {tool}: {part['threads']} threads, {part['fds']} fds left "
                f"after {cycles} cycles ({part['seconds']:.2f} s); new threads: {part['new_threads']}; "
                f"{part['alive']} objects still alive"
            )
            left.setdefault((tool, "threads"), []).append(float(part["threads"]))
            left.setdefault((tool, "fds"), []).append(float(part["fds"]))
    for tool in ("hotmod Reloader", "hotmod PluginFolder"):
        figure = f"B6 threads left after {cycles} start/stop cycles"
        rows.append(row(figure, tool, left[(tool, "threads")], "count"))
    for tool in ("hotmod Reloader", "hotmod PluginFolder"):
        figure = f"B6 file descriptors left after {cycles} start/stop cycles"
        rows.append(row(figure, tool, left[(tool, "fds")], "count"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, 300 reloads, one child each")
    parser.add_argument("--child", choices=["rss", "cycles"], help=argparse.SUPPRESS)
    parser.add_argument("--reloads", type=int, default=RELOADS_PER_FIGURE, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--cycles", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "rss":
        emit(rss_child(args.reloads, args.warmup), key="child")
        return 0
    if args.child == "cycles":
        emit(cycles_child(args.cycles), key="child")
        return 0
    return emit_rows("footprint", run, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
