"""B2 per REPL cell: what an idle cell pays a reloader, with N modules imported.

Each tool runs in its own child with a real IPython ``InteractiveShell``: ``%load_ext
hotmod`` (watching a folder with one module) or ``%load_ext autoreload`` with
``%autoreload 2``; N unrelated modules (real files) are imported. The figure is the
tool's own pre-run-cell handler, called with nothing changed: what every cell costs
before the user's code runs.

``python -m benchmarks.peers.cells [--quick]`` prints the rows as one JSON line.
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
from ._child import emit, run_child

MODULE = "benchmarks.peers.cells"


def _handler(tool: str, shell: Any) -> Callable[[], object]:
    if tool == "hotmod (%load_ext hotmod)":
        shell.run_cell("%load_ext hotmod")
        from hotmod import _ipython

        extension = _ipython._EXTENSIONS[id(shell)]
        return lambda: extension.pre_run_cell(None)
    shell.run_cell("%load_ext autoreload")
    shell.run_cell("%autoreload 2")
    magics = shell.magics_manager.registry["AutoreloadMagics"]
    return lambda: magics.pre_run_cell(None)


def child(tool: str, unrelated: int, batches: int) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="peer-b2-") as folder:
        other, watched = Path(folder) / "unrelated", Path(folder) / "watched"
        other.mkdir()
        watched.mkdir()
        for i in range(unrelated):
            (other / f"u_{i}.py").write_text(f"X = {i}\n")
        (watched / "b2_target.py").write_text("def value():\n    return 0\n")
        sys.path[:0] = [str(other), str(watched)]
        importlib.invalidate_caches()
        for i in range(unrelated):
            importlib.import_module(f"u_{i}")
        importlib.import_module("b2_target")
        os.chdir(watched)  # the extension watches the working directory
        shell = InteractiveShell.instance()
        cell = _handler(tool, shell)
        cell()  # the cell after the imports: both tools learn what is loaded here
        per_cell: list[float] = []
        per_batch = 2000 if tool.startswith("hotmod") else max(1, 20_000 // max(unrelated, 1))
        for _ in range(batches):
            started = time.perf_counter()
            for _ in range(per_batch):
                cell()
            per_cell.append((time.perf_counter() - started) / per_batch)
        os.chdir(home)  # IPython's exit handler reads the working directory
    figure = f"B2 idle REPL cell, {unrelated} modules imported"
    emit([row(figure, tool, per_cell)])


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for tool in ("hotmod (%load_ext hotmod)", "IPython autoreload"):
        for count in (0, 1000, 5000):
            args = ["--child", tool, str(count), "5" if quick else "20"]
            figure = f"B2 idle REPL cell, {count} modules imported"
            rows += run_child(MODULE, args, 600, figure=figure, tool=tool, needs=("IPython",))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "MODULES", "BATCHES"))
    args = parser.parse_args()
    if args.child:
        tool, count, batches = args.child
        child(tool, int(count), int(batches))
    else:
        emit(run(args.quick))


if __name__ == "__main__":
    main()
