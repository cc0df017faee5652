"""B3 and B4 for the peers: what applying one edit costs, each tool in its own process.

- B3: a module of 20 classes of 5 methods, with N extra GC-tracked objects alive (an
  application's data); one method edited, or one class attribute. IPython's
  ``%autoreload 2`` (its pre-run-cell check, which is what a cell pays) and jurigged (its
  refresh of the file, called directly so that no debounce timer is counted).
- B4: one function edited in a module of N functions: jurigged and ``importlib.reload``.

The same sources as hotmod's rows in ``benchmarks/core.py``; every timed edit is checked
to have taken effect, outside the timed region.

``python -m benchmarks.peers.edits [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from .._util import row
from ..core import b4_source, classes_module
from ._child import emit, run_child

MODULE = "benchmarks.peers.edits"
CHILD_TIMEOUT = 1800.0
NEEDS = {"jurigged": ("jurigged",), "IPython autoreload": ("IPython",), "importlib.reload": ()}
_mtime = iter(range(1_600_000_000, 1_700_000_000))


def _save(path: Path, text: str) -> None:
    """Write in place with a new whole-second mtime: the mtime-based peers see it."""
    path.write_text(text)
    stamp = next(_mtime) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


class _Applier:
    """One tool's way of applying a saved edit to an imported module."""

    def __init__(self, tool: str, folder: Path) -> None:
        self.tool = tool
        self.apply: Callable[[Path, ModuleType], None]
        if tool == "jurigged":
            import jurigged  # type: ignore[import-untyped]

            watcher = jurigged.watch(pattern=f"{folder}/*.py", logger=lambda *a: None, autostart=False)
            self.apply = lambda path, module: watcher.refresh(str(path))
        elif tool == "IPython autoreload":
            from IPython.core.interactiveshell import InteractiveShell

            shell: Any = InteractiveShell.instance()
            shell.run_cell("%load_ext autoreload")
            shell.run_cell("%autoreload 2")
            magics = shell.magics_manager.registry["AutoreloadMagics"]
            self.apply = lambda path, module: magics.pre_run_cell(None)
        elif tool == "importlib.reload":
            self.apply = _reload
        else:
            raise SystemExit(f"unknown tool {tool!r}")


def _reload(path: Path, module: ModuleType) -> None:
    importlib.reload(module)


def timed_edits(
    tool: str, name: str, versions: list[str], check: Callable[[ModuleType, int], bool]
) -> list[float]:
    durations: list[float] = []
    sys.dont_write_bytecode = True  # a stale .pyc would hide an edit from importlib.reload
    with tempfile.TemporaryDirectory(prefix=f"peer-{name}-") as folder:
        path = Path(folder) / f"{name}.py"
        _save(path, versions[0])
        applier = _Applier(tool, Path(folder))
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        # The cell (or poll) after the import: autoreload records the module's mtime then.
        applier.apply(path, module)
        for n, text in enumerate(versions[1:], start=1):
            _save(path, text)
            started = time.perf_counter()
            applier.apply(path, module)
            durations.append(time.perf_counter() - started)
            if not check(sys.modules[name], n):
                raise RuntimeError(f"{tool}: edit {n} of {name} did not take effect")
    return durations


def child(tool: str, figure: str, size: int, edit: str, repeats: int) -> None:
    if figure == "B3":
        heap: list[list[int]] = [[] for _ in range(size)]
        gc.collect()
        versions = [classes_module(20, edit, n) for n in range(repeats + 1)]

        def check(module: ModuleType, n: int) -> bool:
            value = module.K0().m0() if edit == "method" else module.K0.LIMIT
            return bool(value == n)

        values = timed_edits(tool, "b3_classes", versions, check)
        label = f"B3 20-class module, {edit} edit, {size:,} live objects"
        del heap
    else:
        versions = [b4_source(size, n) for n in range(repeats + 1)]
        values = timed_edits(tool, "b4_defs", versions, lambda m, n: getattr(m, f"f{size // 2}")(0) == n)
        label = f"B4 one-function edit, {size} definitions"
    emit([row(label, tool, values)])


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    heaps = (0, 1_000_000) if quick else (0, 1_000_000, 5_000_000)
    for tool in ("IPython autoreload", "jurigged"):
        for live in heaps:
            for edit in ("method", "attribute"):
                # autoreload scans the whole heap per class: a few repeats say enough.
                repeats = 3 if (quick or (tool == "IPython autoreload" and live)) else 15
                args = ["--child", tool, "B3", str(live), edit, str(repeats)]
                figure = f"B3 20-class module, {edit} edit, {live:,} live objects"
                rows += run_child(MODULE, args, CHILD_TIMEOUT, figure=figure, tool=tool, needs=NEEDS[tool])
    for tool in ("jurigged", "importlib.reload"):
        for size in (50, 200, 800):
            args = ["--child", tool, "B4", str(size), "-", "5" if quick else "15"]
            figure = f"B4 one-function edit, {size} definitions"
            rows += run_child(MODULE, args, CHILD_TIMEOUT, figure=figure, tool=tool, needs=NEEDS[tool])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=5, metavar=("TOOL", "FIGURE", "SIZE", "EDIT", "REPEATS"))
    args = parser.parse_args()
    if args.child:
        tool, figure, size, edit, repeats = args.child
        child(tool, figure, int(size), edit, int(repeats))
    else:
        emit(run(args.quick))


if __name__ == "__main__":
    main()
