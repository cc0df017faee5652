"""B9: one function edited in a module whose top level takes 1 s, in a notebook-style shell.

Each tool runs in a child of its own with a real IPython ``InteractiveShell``; the module
(its top level sleeps 1 s: data or a model loaded at import) is imported in a cell, then
one function of it is edited and saved, several times:

- hotmod: ``%load_ext hotmod`` with ``%hotmod backend polling`` (a stat of each tracked
  file before the cell: the change is found without waiting for a file event), timed:
  its pre-run-cell handler, which applies the edit before the cell runs;
- IPython's ``%autoreload 2`` (IPython 9 patches the changed functions when it can, and
  re-executes the module otherwise), timed: its pre-run-cell handler;
- jurigged, which applies edits from its own watcher thread: its refresh of the file,
  called directly (the work its thread does after a 50 ms debounce).

The figure is what the cell after the save waits for. Every edit is checked: that cell
returns the new value.

``python -m benchmarks.peers.notebook [--quick]`` prints the rows as one JSON line.
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

MODULE = "benchmarks.peers.notebook"
FIGURE = "B9 1 s module top level, one function edited -> applied before the next cell"
HOTMOD = "hotmod (%load_ext hotmod)"
AUTORELOAD = "IPython autoreload"
JURIGGED = "jurigged"
NEEDS = {HOTMOD: ("IPython",), AUTORELOAD: ("IPython",), JURIGGED: ("IPython", "jurigged")}
SLOW = '''"""Loads its data at import: 1 s."""

import time

time.sleep(1.0)
DATA = list(range(1000))


def total():
    return sum(DATA) + {n}


def describe():
    return f"{{len(DATA)}} items"
'''
_mtime = iter(range(1_600_000_000, 1_700_000_000))


def _save(path: Path, n: int) -> None:
    """Write in place with a new whole-second mtime: every tool sees the change."""
    path.write_text(SLOW.format(n=n))
    stamp = next(_mtime) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def _applier(tool: str, shell: Any, folder: Path) -> Callable[[Path], None]:
    if tool == HOTMOD:
        shell.run_cell("%load_ext hotmod")
        shell.run_cell("%hotmod backend polling")
        from hotmod import _ipython

        extension = _ipython._EXTENSIONS[id(shell)]
        return lambda path: extension.pre_run_cell(None)
    if tool == AUTORELOAD:
        shell.run_cell("%load_ext autoreload")
        shell.run_cell("%autoreload 2")
        magics = shell.magics_manager.registry["AutoreloadMagics"]
        return lambda path: magics.pre_run_cell(None)
    import jurigged  # type: ignore[import-untyped]

    watcher = jurigged.watch(pattern=f"{folder}/*.py", logger=lambda *a: None, autostart=False)
    return lambda path: watcher.refresh(str(path))


def child(tool: str, edits: int) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    home = os.getcwd()
    sys.dont_write_bytecode = True
    with tempfile.TemporaryDirectory(prefix="peer-b9-") as folder:
        path = Path(folder) / "b9_slow.py"
        _save(path, 0)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        os.chdir(folder)  # hotmod's extension watches the working directory
        shell = InteractiveShell.instance()
        apply = _applier(tool, shell, Path(folder))
        started = time.perf_counter()
        shell.run_cell("import b9_slow")
        log("b9", f"{tool}: import took {time.perf_counter() - started:.2f} s")
        apply(path)  # the cell after the import: each tool learns what is loaded
        values: list[float] = []
        for n in range(1, edits + 1):
            _save(path, n)
            started = time.perf_counter()
            apply(path)
            values.append(time.perf_counter() - started)
            result = shell.run_cell("b9_slow.total()")
            if result.result != sum(range(1000)) + n:
                raise RuntimeError(f"{tool}: edit {n} was not running after the cell's apply")
            log("b9", f"{tool}: edit {n} applied in {values[-1] * 1e3:.1f} ms")
        os.chdir(home)  # IPython's exit handler reads the working directory
    emit([row(FIGURE, tool, values)])


def run(quick: bool = False) -> list[dict[str, Any]]:
    edits = "3" if quick else "10"
    rows: list[dict[str, Any]] = []
    for tool in (HOTMOD, AUTORELOAD, JURIGGED):
        rows += run_child(MODULE, ["--child", tool, edits], 600, figure=FIGURE, tool=tool, needs=NEEDS[tool])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "EDITS"))
    args = parser.parse_args()
    if args.child:
        tool, edits = args.child
        child(tool, int(edits))
    else:
        emit(run(args.quick))


if __name__ == "__main__":
    main()
