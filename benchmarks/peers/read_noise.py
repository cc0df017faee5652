"""B7 read noise: the CPU a watching process burns while another process only reads.

A project is read all the time by processes that change nothing: test runners, linters,
language servers, ``grep``, backup and indexing tools. A watcher that is woken by those
reads pays CPU in the application it is meant to serve.

Set-up: 10 folders of 1,000 small modules (quick: 10 of 200), all imported by a watching
child process with the folders on ``sys.path``. The parent sends ``start``, runs a separate
reader process that opens and reads every file 10 times (quick: 3) and waits for it,
sleeps 0.5 s, and sends ``stop``. The child counts its own CPU time
(``getrusage(RUSAGE_SELF)``, user + sys, every thread) from ``start``.

A watcher can still be working through queued events when ``stop`` arrives, so after
``stop`` the child keeps sampling its CPU every 0.1 s until three samples in a row are
idle (< 3 ms each). Figures:

- ``B7 watcher CPU while another process reads N files x R``: CPU from ``start`` to the
  end of the last busy sample: everything the reads cost the watcher, backlog included.
- ``B7 watcher CPU, same window, no reader``: the same child, the same protocol, with a
  window as long as the reader's plus the settle time and no reader: the idle cost to
  subtract.
- ``B7 watcher still busy 0.5 s after the reader exited``: wall time from ``stop`` to the
  end of the last busy sample (0 when idle by then): how long the backlog outlives the
  reads.
- ``B7 inotify queue overflows while another process reads``: how many times watchdog
  reported the kernel's event queue full (``fs.inotify.max_queued_events``, 16,384 by
  default) during the window. Each overflow drops events: the CPU figure is then a lower
  bound that depends on how fast the watcher drained its queue, and an edit saved during
  the reads can be missed.

Tools, each in its own child:

- ``hotmod watchdog``: ``hotmod.Reloader(folders).start()`` once every module is imported.
  hotmod schedules its watchdog watches with an ``event_filter`` that leaves out opens and
  close-without-write, so the kernel never queues read activity for it.
- ``jurigged``: ``jurigged.watch([<folder>/*.py, ...])`` (a quiet logger: the default one
  prints a line per watched file), then the imports, the order its ``jurigged script``
  runner uses. Its import sniffer registers each module as it is imported and schedules
  one handler per file on the file's folder; the child checks that all of them are
  registered before ``ready``.

After both windows the parent edits one module and the child checks that the new code
runs within 10 s, so a watcher that silently watched nothing cannot pass as cheap.

3 repetitions per tool (quick: 1), each in a new child, tools interleaved.

``python -m benchmarks.peers.read_noise [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from .._util import row
from ._child import emit_rows, failure_row, log, missing

MODULE = "benchmarks.peers.read_noise"
ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("hotmod watchdog", "jurigged")
FOLDERS = 10
SETTLE = 0.5
SAMPLE = 0.1
IDLE_CPU = 0.003  # CPU seconds per sample below which the watcher counts as idle
IDLE_SAMPLES = 3
BACKLOG_CAP = 900.0  # seconds a watcher may stay busy after stop before we give up waiting
READY_TIMEOUT = 900.0
READER_TIMEOUT = 1800.0
PROBE_TIMEOUT = 10.0
_probes = iter(range(1_000_000, 2_000_000))

READER = """\
import os, sys
reads, folders = int(sys.argv[1]), sys.argv[2:]
paths = [os.path.join(d, n) for d in folders for n in sorted(os.listdir(d)) if n.endswith(".py")]
for _ in range(reads):
    for p in paths:
        with open(p, "rb") as f:
            f.read()
print(len(paths))
"""


def _log(message: str) -> None:
    log("read_noise", message)


def _module_name(folder: int, index: int) -> str:
    return f"b7_d{folder:02d}_m{index:04d}"


def _module_source(folder: int, index: int, offset: int = 0) -> str:
    return (
        f'"""Module {index} of folder {folder}."""\n\nVALUE = {index}\n\n\n'
        f"def compute(x):\n    return x * {folder} + {offset} + VALUE\n\n\n"
        f"class Item:\n    size = {index}\n\n    def weight(self):\n        return self.size * 2\n"
    )


def make_tree(root: Path, per_folder: int) -> list[Path]:
    folders: list[Path] = []
    for d in range(FOLDERS):
        folder = root / f"pkgs{d:02d}"
        folder.mkdir()
        for i in range(per_folder):
            (folder / f"{_module_name(d, i)}.py").write_text(_module_source(d, i))
        folders.append(folder)
    return folders


# -- the watching child -------------------------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _import_all(folders: list[Path]) -> int:
    count = 0
    for folder in folders:
        for path in sorted(folder.glob("*.py")):
            importlib.import_module(path.stem)
            count += 1
    return count


def _start_watching(tool: str, folders: list[Path]) -> tuple[object, dict[str, Any]]:
    """Start ``tool`` on the folders, import every module; return the watcher and what it covers."""
    sys.path[:0] = [str(f) for f in folders]
    importlib.invalidate_caches()
    expected = sum(1 for f in folders for _ in f.glob("*.py"))
    info: dict[str, Any]
    if tool == "jurigged":
        import jurigged  # type: ignore[import-untyped]
        from jurigged.register import registry  # type: ignore[import-untyped]

        watcher = jurigged.watch([f"{f}/*.py" for f in folders], logger=lambda *args: None)
        imported = _import_all(folders)
        roots = {str(f) for f in folders}
        registered = sum(1 for name in registry.precache if os.path.dirname(name) in roots)
        # One handler per file, on its folder's watch (a private attribute, read for the report only).
        handlers = getattr(watcher.observer, "_handlers", {})
        info = {
            "imported": imported,
            "registered": registered,
            "watches": len(handlers),
            "handlers": sum(len(h) for h in handlers.values()),
        }
        if registered != expected:
            raise RuntimeError(f"jurigged registered {registered} of {expected} modules")
        return watcher, info
    if tool == "hotmod watchdog":
        import hotmod

        imported = _import_all(folders)
        reloader = hotmod.Reloader(folders).start()
        stats = reloader.stats
        info = {
            "imported": imported,
            "tracked": stats.tracked_modules,
            "watched_dirs": stats.watched_dirs,
            "polled_dirs": stats.polled_dirs,
            "backend": reloader.backend,
        }
        if reloader.backend != "watchdog" or stats.tracked_modules < expected or stats.polled_dirs:
            raise RuntimeError(f"hotmod does not watch every module with watchdog: {info}")
        return reloader, info
    raise SystemExit(f"unknown tool {tool!r}")


class _OverflowCounter(logging.Handler):
    """Counts watchdog's reports of a full kernel queue: events the watcher never saw."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage():
            self.count += 1


def _until_idle(cpu_start: float) -> tuple[float, float]:
    """Sample until the process is idle; (CPU since cpu_start, busy seconds after the call)."""
    last_busy_cpu = _cpu()
    began = last_busy_at = time.perf_counter()
    mark = last_busy_cpu
    idle = 0
    while idle < IDLE_SAMPLES and time.perf_counter() - began < BACKLOG_CAP:
        time.sleep(SAMPLE)
        now = _cpu()
        if now - mark < IDLE_CPU:
            idle += 1
        else:
            idle = 0
            last_busy_cpu, last_busy_at = now, time.perf_counter()
        mark = now
    if idle < IDLE_SAMPLES:
        print(f"watcher still busy {BACKLOG_CAP:.0f} s after stop", file=sys.stderr, flush=True)
    return last_busy_cpu - cpu_start, last_busy_at - began


def _probe(name: str, expected: int) -> dict[str, Any]:
    """Wait for an edit the parent just saved to be running: the watcher watches for real."""
    started = time.perf_counter()
    while time.perf_counter() - started < PROBE_TIMEOUT:
        if sys.modules[name].compute(0) == expected:
            return {"ok": True, "seconds": time.perf_counter() - started}
        time.sleep(0.01)
    return {"ok": False, "seconds": time.perf_counter() - started}


def watcher_child(tool: str, folders: list[Path]) -> None:
    started = time.perf_counter()
    watcher, info = _start_watching(tool, folders)
    info["setup_seconds"] = time.perf_counter() - started
    overflows = _OverflowCounter()
    logging.getLogger("watchdog").addHandler(overflows)
    print(json.dumps({"ready": info}), flush=True)
    cpu_start = 0.0
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            overflows.count = 0
            cpu_start = _cpu()
        elif command == "stop":
            window = _cpu() - cpu_start
            total, busy = _until_idle(cpu_start)
            report = {"window": window, "total": total, "busy_after_stop": busy, "overflows": overflows.count}
            print(json.dumps({"cpu": report}), flush=True)
        elif command.startswith("probe "):
            _, name, expected = command.split()
            print(json.dumps({"probe": _probe(name, int(expected))}), flush=True)
        elif command == "quit":
            break
    del watcher


# -- the parent ---------------------------------------------------------------------------------


class _Child:
    """A watching child spoken to line by line, every answer awaited with a deadline."""

    def __init__(self, tool: str, folders: list[Path]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, "--child", tool, *map(str, folders)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, key: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {key!r} from the watcher within {timeout:.0f} s") from None
            if line is None:
                raise RuntimeError(f"the watcher exited ({self.proc.wait(timeout=10)}) before {key!r}")
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                if key in message:
                    result: dict[str, Any] = message[key]
                    return result

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=30)


def _read_everything(folders: list[Path], reads: int, expected: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", READER, str(reads), *map(str, folders)],
        capture_output=True,
        text=True,
        timeout=READER_TIMEOUT,
        check=True,
    )
    elapsed = time.perf_counter() - started
    if int(done.stdout) != expected:
        raise RuntimeError(f"the reader read {done.stdout.strip()} files, not {expected}")
    return elapsed


def measure(tool: str, folders: list[Path], reads: int, expected: int) -> dict[str, float]:
    """One child: a window with the reader, then as long a window without."""
    child = _Child(tool, folders)
    try:
        info = child.expect("ready", READY_TIMEOUT)
        _log(f"{tool}: ready {info}")

        child.send("start")
        reader_seconds = _read_everything(folders, reads, expected)
        time.sleep(SETTLE)
        child.send("stop")
        reading = child.expect("cpu", BACKLOG_CAP + 60)

        child.send("start")
        time.sleep(reader_seconds + SETTLE)
        child.send("stop")
        baseline = child.expect("cpu", BACKLOG_CAP + 60)

        # A watcher that watched nothing would burn nothing: check that an edit still gets in.
        marker = next(_probes)
        (folders[0] / f"{_module_name(0, 0)}.py").write_text(_module_source(0, 0, marker))
        child.send(f"probe {_module_name(0, 0)} {marker}")
        probe = child.expect("probe", PROBE_TIMEOUT + 30)
        if not probe["ok"]:
            raise RuntimeError(f"{tool} did not apply an edit within {PROBE_TIMEOUT:.0f} s after the reads")
    finally:
        child.close()
    _log(
        f"{tool}: reader {reader_seconds:.2f} s; CPU {reading['total']:.3f} s "
        f"(at stop {reading['window']:.3f} s, then busy {reading['busy_after_stop']:.2f} s more; "
        f"{reading['overflows']} inotify queue overflows); no reader {baseline['total']:.3f} s; "
        f"an edit afterwards ran after {probe['seconds']:.2f} s"
    )
    return {
        "reading": reading["total"],
        "baseline": baseline["total"],
        "backlog": reading["busy_after_stop"],
        "overflows": reading["overflows"],
        "reader": reader_seconds,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    per_folder = 200 if quick else 1000
    reads = 3 if quick else 10
    repetitions = 1 if quick else 3
    files = per_folder * FOLDERS
    results: dict[str, list[dict[str, float]]] = {tool: [] for tool in TOOLS}
    with tempfile.TemporaryDirectory(prefix="hotmod-b7-") as tmp:
        folders = make_tree(Path(os.path.realpath(tmp)), per_folder)
        _log(f"{files:,} modules in {FOLDERS} folders, {reads} reads each, {repetitions} repetitions")
        failed = {
            tool: "skipped: jurigged not installed"
            for tool in TOOLS
            if tool == "jurigged" and missing([tool])
        }
        for rep in range(repetitions):
            for tool in (t for t in TOOLS if t not in failed):
                _log(f"repetition {rep + 1}/{repetitions}: {tool}")
                try:
                    results[tool].append(measure(tool, folders, reads, files))
                except Exception as exc:  # this tool's row says so; the others still count
                    _log(f"{tool} FAILED: {exc!r}")
                    failed[tool] = f"failed: {type(exc).__name__}: {exc}"
    rows: list[dict[str, Any]] = []
    for tool, note in failed.items():
        rows.append(
            failure_row(f"B7 watcher CPU while another process reads {files:,} files x {reads}", tool, note)
        )
    for tool in (t for t in TOOLS if t not in failed):
        rows.append(
            row(
                f"B7 watcher CPU while another process reads {files:,} files x {reads}",
                tool,
                [r["reading"] for r in results[tool]],
                "s",
            )
        )
        rows.append(
            row(
                f"B7 watcher CPU, same window, no reader ({files:,} files watched)",
                tool,
                [r["baseline"] for r in results[tool]],
                "s",
            )
        )
        rows.append(
            row(
                f"B7 watcher still busy {SETTLE:g} s after the reader exited ({files:,} files x {reads})",
                tool,
                [r["backlog"] for r in results[tool]],
                "s",
            )
        )
        rows.append(
            row(
                f"B7 inotify queue overflows while another process reads {files:,} files x {reads}",
                tool,
                [r["overflows"] for r in results[tool]],
                "count",
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files read 3 times, one repetition")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("folders", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        watcher_child(args.child, args.folders)
        return 0
    return emit_rows("read_noise", run, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
