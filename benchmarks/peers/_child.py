"""Running one tool per child process, and the rows they print.

Peers install import hooks, watchers and threads that cannot be undone; each tool is
measured in a fresh interpreter so none of them runs during another's measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def emit(rows: list[dict[str, Any]]) -> None:
    """The one line a benchmark module prints on stdout: its rows, as JSON."""
    print(json.dumps({"rows": rows}), flush=True)


def run_child(module: str, args: list[str], timeout: float) -> list[dict[str, Any]]:
    """Run ``python -m module args`` and return the rows it printed; failures raise."""
    child = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if child.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} exited {child.returncode}:\n{child.stderr[-3000:]}")
    lines = [line for line in child.stdout.splitlines() if line.startswith('{"rows"')]
    if not lines:
        raise RuntimeError(f"{module} {' '.join(args)} printed no rows:\n{child.stdout[-2000:]}")
    rows: list[dict[str, Any]] = json.loads(lines[-1])["rows"]
    return rows
