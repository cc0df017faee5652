"""B1 for the peers: from an editor-style save to the new code running.

- jurigged, default settings (watchdog events, 50 ms debounce), in a child process with
  the same 2 kHz calling loop as hotmod's row: the figure is from the start of the save
  to the first call that returns the new value.
- Restart reloaders, default settings: watchfiles ``run_process`` and hupper restart a
  child app that imports a modest web stack (starlette and flask) and the edited module,
  then prints ``ready <value>``; the figure is from the start of the save to that line
  from the restarted app. Each save is made 2 s after the app was ready: hupper learns
  which files to watch from its worker about once a second, and misses earlier saves.

``python -m benchmarks.peers.latency [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from .._util import row, save_like_an_editor
from ..core import SMALL, measure_latency
from ._child import emit, run_child

MODULE = "benchmarks.peers.latency"
READY_TIMEOUT = 60.0
SETTLE = 2.0

APP = """
import signal, sys
# A run started in the background by a shell inherits SIGINT ignored; watchfiles stops the
# app with SIGINT and, when that does nothing, waits 5 s before it kills it.
signal.signal(signal.SIGINT, signal.default_int_handler)
import flask, starlette.applications, starlette.routing  # the web stack a restart re-imports
import b1mod

app = starlette.applications.Starlette(routes=[])
print("ready", b1mod.value(), flush=True)
signal.pause() if hasattr(signal, "pause") else sys.stdin.read()
"""

HUPPER_MAIN = """
import runpy, sys

def main():
    runpy.run_path(sys.argv[1] if len(sys.argv) > 1 else "app.py", run_name="__main__")
"""

RESTART_FIGURE = "B1 write -> restarted app ready (starlette + flask)"
LAUNCHER_NEEDS = {"watchfiles run_process": "watchfiles", "hupper": "hupper"}
LAUNCHERS = {
    "watchfiles run_process": (
        "import sys, watchfiles\n"
        "watchfiles.run_process('.', target=f'{sys.executable} app.py', target_type='command')\n"
    ),
    "hupper": ("import sys, hupper\nsys.path.insert(0, '.')\nhupper.start_reloader('hupper_main.main')\n"),
}


def jurigged_child(saves: int) -> None:
    import importlib

    import jurigged  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="peer-b1-") as folder:
        path = Path(folder) / "b1_target.py"
        path.write_text(SMALL.format(n=0))
        watcher = jurigged.watch(pattern=f"{folder}/*.py", logger=lambda *a: None)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        module = importlib.import_module("b1_target")
        figure = "B1 write -> new code running (2 kHz loop)"
        rows: list[dict[str, Any]] = []
        try:
            measure_latency(module, path, 1, busy=False, jitter=0.01)
        except RuntimeError:
            # jurigged reacts to modify and create events only: a save by rename (a
            # temp file moved over the module, as most editors save) never applies.
            note = "editor-style save (rename) never applied"
            rows.append({"figure": figure, "tool": "jurigged", "unit": "s", "note": note})
        values = measure_latency(module, path, saves, busy=False, jitter=0.01, in_place=True)
        watcher.stop()
    tool = "jurigged (saves written in place)"
    emit([*rows, row(figure, tool, values)])


def restart_child(tool: str, saves: int) -> None:
    with tempfile.TemporaryDirectory(prefix="peer-restart-") as folder:
        root = Path(folder)
        (root / "b1mod.py").write_text("def value():\n    return 0\n")
        (root / "app.py").write_text(textwrap.dedent(APP))
        (root / "hupper_main.py").write_text(textwrap.dedent(HUPPER_MAIN))
        # A file, not ``-c``: hupper's worker process re-imports the launcher's main.
        (root / "launch.py").write_text(LAUNCHERS[tool])
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        launcher = subprocess.Popen(
            [sys.executable, "launch.py"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        ready: queue.Queue[tuple[float, str]] = queue.Queue()

        def read() -> None:
            assert launcher.stdout is not None
            for line in launcher.stdout:
                if line.startswith("ready "):
                    ready.put((time.perf_counter(), line.split()[1]))

        threading.Thread(target=read, daemon=True).start()
        values: list[float] = []
        try:
            _wait_ready(ready, "0")
            time.sleep(SETTLE)
            for n in range(1, saves + 1):
                started = time.perf_counter()
                save_like_an_editor(root / "b1mod.py", f"def value():\n    return {n}\n")
                values.append(_wait_ready(ready, str(n)) - started)
                # Settle before the next save: hupper's worker tells its monitor which files
                # to watch about once a second, so a save right after a restart is missed.
                time.sleep(SETTLE)
        finally:
            os.killpg(launcher.pid, 15)
            launcher.wait(timeout=30)
    emit([row(RESTART_FIGURE, tool, values)])


def _wait_ready(ready: queue.Queue[tuple[float, str]], value: str) -> float:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        at, seen = ready.get(timeout=max(0.0, deadline - time.monotonic()))
        if seen == value:
            return at


def run(quick: bool = False) -> list[dict[str, Any]]:
    saves = 5 if quick else 50
    figure = "B1 write -> new code running (2 kHz loop)"
    rows = run_child(
        MODULE, ["--child", "jurigged", str(saves)], 600, figure=figure, tool="jurigged", needs=("jurigged",)
    )
    for tool in LAUNCHERS:
        needs = (LAUNCHER_NEEDS[tool], "starlette", "flask")
        args = ["--child", tool, str(saves)]
        rows += run_child(MODULE, args, 60 + saves * 20, figure=RESTART_FIGURE, tool=tool, needs=needs)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "SAVES"))
    args = parser.parse_args()
    if args.child:
        tool, saves = args.child
        if tool == "jurigged":
            jurigged_child(int(saves))
        else:
            restart_child(tool, int(saves))
    else:
        emit(run(args.quick))


if __name__ == "__main__":
    main()
