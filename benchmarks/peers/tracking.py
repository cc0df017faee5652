"""B10: taking over 1,000 modules imported before the reloader started.

A program imports its modules, then starts reloading (``hotmod.Reloader(...)`` in its
main, ``%load_ext`` after the imports in a notebook). Each tool, in a fresh child with
1,000 modules (10 folders of 100, real files with their bytecode cached) already
imported, is timed from the start of its set-up until it is ready to apply an edit:

- hotmod: ``Reloader(folders, apply="manual")`` plus its first ``poll()``: it tracks
  every module under the folders (and, as the engine verifies each module's code against
  its file at tracking time, that cost lands here); then one idle ``poll()``;
- jurigged: ``jurigged.watch(folders)``, which reads the source of every matching module
  already imported (it does not compare it with what runs);
- IPython's ``%autoreload 2``: ``%load_ext`` and ``%autoreload 2`` plus its first
  pre-run-cell check, which records every module's file time; then one idle check.

Every tool is then checked to apply an edit to one of the modules.

``python -m benchmarks.peers.tracking [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._util import row
from ._child import emit, log, run_child

MODULE = "benchmarks.peers.tracking"
MODULES = 1000
FOLDERS = 10
START = f"B10 start tracking {MODULES:,} modules imported before (set-up + first check)"
IDLE = f"B10 idle check after tracking {MODULES:,} modules imported before"
HOTMOD = "hotmod Reloader"
JURIGGED = "jurigged"
AUTORELOAD = "IPython autoreload"
NEEDS = {HOTMOD: (), JURIGGED: ("jurigged",), AUTORELOAD: ("IPython",)}
SOURCE = '"""Module {k}/{i}."""\n\nVALUE = {v}\n\n\ndef f(x):\n    return x + VALUE\n'


def _tree(root: Path) -> list[Path]:
    folders = []
    for k in range(FOLDERS):
        folder = root / f"d{k}"
        folder.mkdir()
        for i in range(MODULES // FOLDERS):
            (folder / f"b10_{k}_{i:03d}.py").write_text(SOURCE.format(k=k, i=i, v=i))
        folders.append(folder)
    return folders


def _import_all(folders: list[Path]) -> None:
    for folder in folders:
        sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    for folder in folders:
        for path in sorted(folder.glob("b10_*.py")):
            importlib.import_module(path.stem)


def _save(path: Path, text: str) -> None:
    """Write in place with an mtime well after the import's: every tool sees the change."""
    path.write_text(text)
    stamp = (int(time.time()) + 100) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def _prepare(tool: str) -> Any:
    """What is not timed: the tool's import (and IPython's shell), as a program has them."""
    if tool == HOTMOD:
        import hotmod

        return hotmod.Reloader  # resolves the lazy name: its import is not the figure
    if tool == JURIGGED:
        import jurigged  # type: ignore[import-untyped]

        return jurigged.watch
    import IPython.extensions.autoreload  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def _start(
    tool: str, prepared: Any, folders: list[Path]
) -> tuple[Callable[[], object], Callable[[Path], object]]:
    """Set ``tool`` up over the imported modules; its idle check, and how it applies an edit."""
    if tool == HOTMOD:
        reloader = prepared([str(f) for f in folders], apply="manual")
        reloader.poll()

        def apply(path: Path) -> object:
            reloader.notify(path)  # not waiting for the file event: the check is what counts
            return reloader.poll()

        return reloader.poll, apply
    if tool == JURIGGED:
        watcher = prepared(pattern=[str(f) for f in folders], logger=lambda *a: None, autostart=False)
        return lambda: None, lambda path: watcher.refresh(str(path))
    shell = prepared
    shell.run_cell("%load_ext autoreload")
    shell.run_cell("%autoreload 2")
    magics = shell.magics_manager.registry["AutoreloadMagics"]
    magics.pre_run_cell(None)
    return lambda: magics.pre_run_cell(None), lambda path: magics.pre_run_cell(None)


def child(tool: str, repeats: int) -> None:
    sys.dont_write_bytecode = False  # a real project's imports leave their bytecode cached
    starts: list[float] = []
    idles: list[float] = []
    with tempfile.TemporaryDirectory(prefix="peer-b10-") as tmp:
        folders = _tree(Path(os.path.realpath(tmp)))
        _import_all(folders)
        # One set-up per child: tools install hooks that cannot be undone, so a repeat
        # would measure a second instance. The repeats are children of their own.
        prepared = _prepare(tool)
        started = time.perf_counter()
        idle, apply = _start(tool, prepared, folders)
        starts.append(time.perf_counter() - started)
        for _ in range(repeats):
            started = time.perf_counter()
            idle()
            idles.append(time.perf_counter() - started)
        edited = folders[3] / "b10_3_042.py"
        _save(edited, SOURCE.format(k=3, i=42, v=1042))
        apply(edited)
        if sys.modules["b10_3_042"].f(0) != 1042:
            raise RuntimeError(f"{tool}: the edit after tracking did not apply")
    log("b10", f"{tool}: set-up {starts[0] * 1e3:.1f} ms")
    rows = [row(START, tool, starts)]
    if tool != JURIGGED:  # jurigged has no check of its own: its thread waits for file events
        rows.append(row(IDLE, tool, idles))
    emit(rows)


def run(quick: bool = False) -> list[dict[str, Any]]:
    children = 2 if quick else 5
    rows: list[dict[str, Any]] = []
    for tool in (HOTMOD, JURIGGED, AUTORELOAD):
        measured: list[dict[str, Any]] = []
        for _ in range(children):
            measured += run_child(
                MODULE, ["--child", tool, "20"], 600, figure=START, tool=tool, needs=NEEDS[tool]
            )
        rows += _merge(measured)
    return rows


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per figure from the children's rows (a failure row stands for itself)."""
    out: list[dict[str, Any]] = []
    values: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if "median" not in r:
            out.append(r)
            continue
        # Each child's samples: its one set-up, or its idle checks' median.
        values.setdefault((r["figure"], r["tool"]), []).append(r["median"])
    out += [row(figure, tool, v) for (figure, tool), v in values.items()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "REPEATS"))
    args = parser.parse_args()
    if args.child:
        tool, repeats = args.child
        child(tool, int(repeats))
    else:
        emit(run(args.quick))


if __name__ == "__main__":
    main()
