"""Running one tool per child process, and the JSON line each child prints.

Peers install import hooks, watchers and threads that cannot be undone; each tool is
measured in a fresh interpreter so none of them runs during another's measurement.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
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


# How much of a failed child's output its row keeps.
TAIL_CHARS = 2000


class ChildFailed(RuntimeError):
    """A child that exited non-zero, ran past its timeout, or printed no result."""

    def __init__(self, command: str, reason: str, tail: str) -> None:
        super().__init__(f"{command}: {reason}")
        self.command = command
        self.reason = reason
        self.tail = tail


def missing(needs: Sequence[str]) -> list[str]:
    """Which of the importable names in ``needs`` are not installed."""
    return [name for name in needs if importlib.util.find_spec(name) is None]


def child_output(
    module: str, args: Sequence[str], timeout: float, key: str = "rows", *, cwd: Path = PROJECT
) -> Any:
    """Run ``python -m module args``; what it emitted under ``key``. Raises ChildFailed.

    The child runs in a session of its own, so that a timeout kills whatever it started
    too. Its stderr (progress and diagnostics) is passed on once it ends.
    """
    command = " ".join([f"python -m {module}", *args])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            returncode: int | None = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(child)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    sys.stderr.write(stderr)
    sys.stderr.flush()
    tail = (stderr + stdout)[-TAIL_CHARS:]
    if returncode is None:
        raise ChildFailed(command, f"timed out after {timeout:g} s", tail)
    if returncode != 0:
        raise ChildFailed(command, f"exited {returncode}", tail)
    lines = [line for line in stdout.splitlines() if line.startswith(f'{{"{key}"')]
    if not lines:
        raise ChildFailed(command, f"printed no {key}", tail)
    return json.loads(lines[-1])[key]


def _kill_group(child: subprocess.Popen[str]) -> None:
    """End the child and everything it started (a timed-out child, or its leftovers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def failure_row(figure: str, tool: str, note: str, tail: str = "") -> dict[str, Any]:
    """A row that says why a figure is missing; the tail of the child's output goes with it."""
    return {"figure": figure, "tool": tool, "unit": "s", "note": note, "tail": tail}


def run_child(
    module: str,
    args: Sequence[str],
    timeout: float,
    *,
    figure: str | None = None,
    tool: str | None = None,
    needs: Sequence[str] = (),
    cwd: Path = PROJECT,
) -> list[dict[str, Any]]:
    """The rows a child emits; a child that cannot run, fails or times out becomes one row
    saying so (``figure`` and ``tool`` name it), and the run goes on.
    """
    figure = figure or module
    tool = tool or " ".join(args) or "(all)"
    absent = missing(needs)
    if absent:
        return [failure_row(figure, tool, f"skipped: {', '.join(absent)} not installed")]
    try:
        rows: list[dict[str, Any]] = child_output(module, args, timeout, cwd=cwd)
    except ChildFailed as failed:
        log("child", f"FAILED {failed}")
        return [failure_row(figure, tool, f"failed: {failed.reason}", failed.tail)]
    return rows
