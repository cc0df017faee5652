"""Running one tool per child process, and the JSON line each child prints.

Peers install import hooks, watchers and threads that cannot be undone; each tool is
measured in a fresh interpreter so none of them runs during another's measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]


def emit(payload: Any, key: str = "rows") -> None:
    """The one line a benchmark module (or a child of one) prints on stdout, as JSON."""
    print(json.dumps({key: payload}), flush=True)


def log(tag: str, message: str) -> None:
    """Progress on stderr, which the parent passes on; stdout is for the JSON line."""
    print(f"[{tag}] {message}", file=sys.stderr, flush=True)


def emit_rows(tag: str, run: Callable[..., list[dict[str, Any]]], quick: bool) -> int:
    """A benchmark module's main job: its rows, timed, emitted as the JSON line."""
    started = time.perf_counter()
    rows = run(quick=quick)
    log(tag, f"done in {time.perf_counter() - started:.1f} s")
    emit(rows)
    return 0


def run_child(module: str, args: list[str], timeout: float, key: str = "rows") -> Any:
    """Run ``python -m module args``; what it emitted under ``key``. Failures raise.

    The child's stderr (its progress and diagnostics) is passed on.
    """
    child = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    sys.stderr.write(child.stderr)
    if child.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} exited {child.returncode}")
    lines = [line for line in child.stdout.splitlines() if line.startswith(f'{{"{key}"')]
    if not lines:
        raise RuntimeError(f"{module} {' '.join(args)} printed no {key}:\n{child.stdout[-2000:]}")
    return json.loads(lines[-1])[key]
