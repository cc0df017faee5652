"""B5 polling: what polling-based change detection costs, hotmod against its peers.

``python -m benchmarks.peers.polling [--quick]`` prints one JSON line, ``{"rows": [...]}``;
progress goes to stderr.

Every tree is N small module files in folders of 1,000, each folder on ``sys.path``,
all imported (so each folder also holds the ``__pycache__`` the imports wrote). A tree is
written once and every tool, in this process or in a child, polls those same files.

"B5 one scan, per watched file, N files" (unit s): the time of one polling cycle with
nothing changed, run on the measuring thread, divided by N, for N = 1,000 and 10,000
(quick: 1,000). Nothing in a cycle waits, so this is CPU; it is the price of every
cycle whatever the interval, and the part that grows with the size of a project.

- "hotmod polling": ``Reloader.poll()`` with ``backend="polling"``: one ``stat`` per
  tracked module file, plus the check of ``sys.modules`` for new imports.
- "watchdog PollingObserver": one ``PollingEmitter.queue_events`` cycle per folder
  (a fresh ``DirectorySnapshot`` - a ``scandir`` and a ``stat`` of every entry - and a
  ``DirectorySnapshotDiff`` against the previous one), with the emitters a
  ``PollingObserver`` creates for non-recursive watches of the folders: the cheapest way
  to point it at them, and the way hotmod's own watchdog backend and jurigged schedule.
- "jurigged polling": the same cycle on the observer ``jurigged.watch(poll=...)`` builds
  (what ``jurigged --poll`` uses). In jurigged 0.6.1 that is watchdog's
  ``PollingObserverVFS`` with ``os.stat``/``os.scandir``, i.e. the very same emitter,
  with one non-recursive watch per folder of a registered module (and one handler per
  module file on it). It gets its own row anyway, measured on the observer jurigged
  built, in a child process: importing jurigged puts an import sniffer at the front of
  ``sys.meta_path``, which must not be in the process that measures hotmod.

Beside the rows, stderr gives two references from the same run: a bare ``os.stat`` of
every module file (the floor of any stat-based poller) and watchdog with
``recursive=True`` (the usual way to watch a source tree, which walks ``__pycache__`` too).

"B5 idle CPU, 1,000 files, 1 s interval" (unit cpu%): the CPU a watcher burns while
nothing changes, as percent of one core, over a 20 s window (quick: 4 s) with a 1 s
interval: what leaving a polling watcher on all day costs. Each tool runs in a fresh
child process, so no other watcher's threads run during its window; the child's main
thread only sleeps, and the process CPU time (all threads) is read before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEventHandler
from watchdog.observers.api import BaseObserver, EventEmitter
from watchdog.observers.polling import PollingObserver

from .._util import row, summarize
from ._child import ChildFailed, child_output, emit, emit_rows, failure_row, log, missing

if TYPE_CHECKING:
    import hotmod

HOTMOD = "hotmod polling"
WATCHDOG = "watchdog PollingObserver"
JURIGGED = "jurigged polling"
TOOLS = (HOTMOD, WATCHDOG, JURIGGED)

FILES_PER_FOLDER = 1000
INTERVAL = 1.0
IDLE_FILES = 1000
MODULE = "benchmarks.peers.polling"

MODULE_SOURCE = '"""Module {k}/{i}."""\n\nVALUE = {i}\n\n\ndef f(x):\n    return x + VALUE\n'


def _log(message: str) -> None:
    log("b5", message)


# -- module trees ----------------------------------------------------------------------


def _write_tree(root: Path, files: int) -> list[Path]:
    folders: list[Path] = []
    for k in range((files + FILES_PER_FOLDER - 1) // FILES_PER_FOLDER):
        folder = root / f"d{k}"
        folder.mkdir()
        for i in range(min(FILES_PER_FOLDER, files - k * FILES_PER_FOLDER)):
            (folder / f"b5_{k}_{i:04d}.py").write_text(MODULE_SOURCE.format(k=k, i=i))
        folders.append(folder)
    return folders


def _import_tree(folders: Sequence[Path], names: list[str]) -> None:
    """Import every module under ``folders``, adding each name to ``names`` as it goes."""
    for folder in folders:
        sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    # A real project's folders hold the __pycache__ its imports wrote, whatever
    # PYTHONDONTWRITEBYTECODE says where the benchmark runs: a directory snapshot
    # lists (and a recursive one walks) it.
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, False
    try:
        for folder in folders:
            for path in sorted(folder.glob("b5_*.py")):
                names.append(path.stem)
                importlib.import_module(path.stem)
    finally:
        sys.dont_write_bytecode = dont_write


@contextlib.contextmanager
def _written_tree(files: int) -> Iterator[list[Path]]:
    """N module files in a temporary directory, written once for every tool; yields the folders."""
    with tempfile.TemporaryDirectory(prefix="hotmod-b5-") as tmp:
        # realpath: every tool then sees the paths the modules were imported from.
        yield _write_tree(Path(os.path.realpath(tmp)), files)


def _folders_under(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.name.startswith("d")), key=lambda p: int(p.name[1:]))


@contextlib.contextmanager
def _imported(
    folders: Sequence[Path], *, before_import: Callable[[Sequence[Path]], None] | None = None
) -> Iterator[None]:
    """The modules under ``folders`` imported in this process, then forgotten."""
    names: list[str] = []
    try:
        if before_import is not None:
            before_import(folders)
        _import_tree(folders, names)
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        for folder in folders:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(folder))
        importlib.invalidate_caches()


# -- one scan --------------------------------------------------------------------------


def _cycle_sampler(observer: BaseObserver, per_sample: int) -> Callable[[], float]:
    """Seconds per polling cycle of every emitter ``observer`` made, its threads never started."""
    emitters: list[EventEmitter] = sorted(observer.emitters, key=lambda e: str(e.watch.path))
    for emitter in emitters:
        # What the emitter thread does first: the reference snapshot later cycles diff against.
        emitter.on_thread_start()

    def sample() -> float:
        started = time.perf_counter()
        for _ in range(per_sample):
            for emitter in emitters:
                # The thread calls queue_events(interval); the wait is idle time, not cost.
                emitter.queue_events(0)
        elapsed = (time.perf_counter() - started) / per_sample
        if not observer.event_queue.empty():
            raise RuntimeError("nothing changed, yet the polling emitter queued events")
        return elapsed

    return sample


def _watchdog_observer(folders: Sequence[Path], *, recursive: bool = False) -> BaseObserver:
    observer = PollingObserver(timeout=INTERVAL)
    handler = FileSystemEventHandler()
    for folder in folders:
        observer.schedule(handler, str(folder), recursive=recursive)
    return observer


def _hotmod_sampler(
    folders: Sequence[Path], files: int, per_sample: int
) -> tuple[Callable[[], float], hotmod.Reloader]:
    # Imported here, like jurigged: a child process loads only the tool it measures.
    import hotmod

    reloader = hotmod.Reloader([str(f) for f in folders], backend="polling", apply="manual")
    reloader.poll()  # the first poll takes in every imported module; later ones only stat
    tracked = reloader.stats.tracked_modules
    if tracked < files:
        raise RuntimeError(f"hotmod tracks {tracked} modules, expected {files}")

    def sample() -> float:
        started = time.perf_counter()
        for _ in range(per_sample):
            result = reloader.poll()
            if result.modules:
                raise RuntimeError(f"nothing changed, yet hotmod applied {result}")
        return (time.perf_counter() - started) / per_sample

    return sample, reloader


def _stat_floor_sampler(folders: Sequence[Path], per_sample: int) -> Callable[[], float]:
    """One bare ``os.stat`` of every module file: what no stat-based poller can beat."""
    paths = [str(p) for folder in folders for p in sorted(folder.glob("b5_*.py"))]

    def sample() -> float:
        started = time.perf_counter()
        for _ in range(per_sample):
            for path in paths:
                os.stat(path)
        return (time.perf_counter() - started) / per_sample

    return sample


def _interleaved(samplers: dict[str, Callable[[], float]], samples: int) -> dict[str, list[float]]:
    # Alternating the tools spreads any drift of the machine (frequency, other load)
    # over all of them instead of charging it to whichever ran last.
    values: dict[str, list[float]] = {name: [] for name in samplers}
    for _ in range(samples):
        for name, sample in samplers.items():
            values[name].append(sample())
    return values


def _per_sample(files: int, *, quick: bool) -> int:
    # About 20,000 file checks per sample (quick: 5,000): well above timer noise at
    # 1,000 files, still a couple of cycles at 10,000.
    return max(1, (5_000 if quick else 20_000) // files)


def scan_in_process(
    folders: Sequence[Path], files: int, samples: int, per_sample: int
) -> dict[str, list[float]]:
    """Seconds per cycle per file for hotmod and watchdog, on the same folders."""
    with _imported(folders):
        hotmod_sample, reloader = _hotmod_sampler(folders, files, per_sample)
        try:
            samplers = {
                HOTMOD: hotmod_sample,
                WATCHDOG: _cycle_sampler(_watchdog_observer(folders), per_sample),
                # Not rows: what a recursive watch adds by walking into __pycache__, and the floor.
                "watchdog recursive": _cycle_sampler(_watchdog_observer(folders, recursive=True), per_sample),
                "os.stat floor": _stat_floor_sampler(folders, per_sample),
            }
            per_cycle = _interleaved(samplers, samples)
        finally:
            reloader.close()
    return {name: [v / files for v in values] for name, values in per_cycle.items()}


# -- jurigged (child processes only) ---------------------------------------------------


def _jurigged_watch(folders: Sequence[Path], *, autostart: bool) -> Any:
    """``jurigged.watch`` as ``jurigged --poll 1 -w <folder> ...`` calls it."""
    from jurigged.live import (  # type: ignore[import-untyped]
        DEFAULT_DEBOUNCE,
        conservative_logger,
        watch,
    )

    return watch(
        pattern=[str(f) for f in folders],
        logger=conservative_logger,
        debounce=DEFAULT_DEBOUNCE,
        poll=INTERVAL,
        autostart=autostart,
    )


def _jurigged_scan(folders: Sequence[Path], files: int, samples: int, per_sample: int) -> list[float]:
    watcher: list[Any] = []
    # Watch first, then import, as the jurigged command does before running a program.
    with _imported(folders, before_import=lambda f: watcher.append(_jurigged_watch(f, autostart=False))):
        from jurigged.register import registry  # type: ignore[import-untyped]

        observer = watcher[0].observer
        _log(
            f"jurigged: {type(observer).__name__}, {len(observer.emitters)} emitters, "
            f"{len(registry.precache)} files registered, timeout {observer.timeout}"
        )
        if len(registry.precache) < files:
            raise RuntimeError(f"jurigged registered {len(registry.precache)} files, expected {files}")
        sample = _cycle_sampler(observer, per_sample)
        return [v / files for v in _interleaved({JURIGGED: sample}, samples)[JURIGGED]]


# -- idle CPU (child processes only) ---------------------------------------------------


@contextlib.contextmanager
def _running(tool: str, folders: Sequence[Path]) -> Iterator[None]:
    """``tool`` polling the imported modules under ``folders`` every second, in its threads."""
    if tool == JURIGGED:
        watcher: list[Any] = []
        with _imported(folders, before_import=lambda f: watcher.append(_jurigged_watch(f, autostart=True))):
            try:
                yield
            finally:
                watcher[0].stop()
                watcher[0].join()
        return
    with _imported(folders):
        if tool == HOTMOD:
            import hotmod

            reloader = hotmod.Reloader([str(f) for f in folders], backend="polling", poll_interval=INTERVAL)
            reloader.start()
            try:
                yield
            finally:
                reloader.close()
        elif tool == WATCHDOG:
            observer = _watchdog_observer(folders)
            observer.start()
            try:
                yield
            finally:
                observer.stop()
                observer.join()
        else:
            raise ValueError(f"unknown tool {tool!r}")


def _idle_cpu(tool: str, folders: Sequence[Path], seconds: float, settle: float) -> list[float]:
    with _running(tool, folders):
        # The first cycles take the reference snapshots and track the modules: start-up,
        # not idling.
        time.sleep(settle)
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return [100.0 * cpu / wall]


# -- orchestration ---------------------------------------------------------------------


def _child(args: argparse.Namespace) -> int:
    folders = _folders_under(args.root)
    if args.what == "scan":
        if args.child != JURIGGED:
            raise ValueError("only jurigged's scan runs in a child process")
        values = _jurigged_scan(folders, args.files, args.samples, args.per_sample)
    else:
        values = _idle_cpu(args.child, folders, args.seconds, args.settle)
    emit(values, key="values")
    return 0


def _run_child(tool: str, what: str, extra: list[str], timeout: float) -> list[float] | str:
    """The values a child measured, or why there are none (a note for the row)."""
    if tool == JURIGGED and missing(["jurigged"]):
        return "skipped: jurigged not installed"
    try:
        values = child_output(MODULE, ["--child", tool, "--what", what, *extra], timeout, key="values")
    except ChildFailed as failed:
        log("b5", f"FAILED {failed}\n{failed.tail}")
        return f"failed: {failed.reason}"
    return [float(v) for v in values]


def _row_or_note(figure: str, tool: str, values: list[float] | str, unit: str) -> dict[str, Any]:
    return failure_row(figure, tool, values) if isinstance(values, str) else row(figure, tool, values, unit)


def _scan_rows(folders: Sequence[Path], files: int, quick: bool) -> list[dict[str, Any]]:
    figure = f"B5 one scan, per watched file, {files:,} files"
    samples = 5 if quick else 15
    per_sample = _per_sample(files, quick=quick)
    _log(f"{figure}: hotmod and watchdog in this process")
    values: dict[str, list[float] | str] = dict(scan_in_process(folders, files, samples, per_sample))
    _log(f"{figure}: jurigged in a child process")
    options = ["--root", str(folders[0].parent), "--files", str(files)]
    options += ["--samples", str(samples), "--per-sample", str(per_sample)]
    values[JURIGGED] = _run_child(JURIGGED, "scan", options, timeout=300)
    for name in (*TOOLS, "watchdog recursive", "os.stat floor"):
        measured = values[name]
        if isinstance(measured, str):
            _log(f"  {name}: {measured}")
            continue
        median = summarize(measured)["median"]
        _log(f"  {name}: {median * 1e6:.2f} µs per file, {median * files * 1e3:.2f} ms per cycle")
    return [_row_or_note(figure, tool, values[tool], "s") for tool in TOOLS]


def _idle_rows(folders: Sequence[Path], quick: bool) -> list[dict[str, Any]]:
    figure = f"B5 idle CPU, {IDLE_FILES:,} files, {INTERVAL:g} s interval"
    seconds, settle = (4.0, 1.0) if quick else (20.0, 2.0)
    rows = []
    for tool in TOOLS:
        _log(f"{figure}: {tool}, {seconds:g} s in a child process")
        options = ["--root", str(folders[0].parent), "--seconds", str(seconds), "--settle", str(settle)]
        values = _run_child(tool, "idle", options, timeout=seconds + settle + 120)
        rows.append(_row_or_note(figure, tool, values, "cpu%"))
        _log(
            f"  {tool}: " + (values if isinstance(values, str) else f"{rows[-1]['median']:.3f} % of one core")
        )
    return rows


def run(*, quick: bool = False) -> list[dict[str, Any]]:
    # Each tree is written once and every tool, in this process or a child, polls the same
    # files (the first import writes __pycache__; later ones read it).
    with _written_tree(IDLE_FILES) as small:
        rows = _scan_rows(small, IDLE_FILES, quick)
        if not quick:
            with _written_tree(10_000) as large:
                rows += _scan_rows(large, 10_000, quick)
        rows += _idle_rows(small, quick)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.polling", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--what", choices=("scan", "idle"), default="idle", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--files", type=int, default=IDLE_FILES, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=15, help=argparse.SUPPRESS)
    parser.add_argument("--per-sample", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument("--settle", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    return emit_rows("b5", run, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
