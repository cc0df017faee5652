"""An interactive session's reloader: what the plain REPL, IPython and Jupyter share.

A session reloads the modules under its paths, rebinds ``from m import x`` names in
the user's namespace like any importer's, and turns each result into the one compact
line (plus a short traceback into the user's file) that the prompt shows.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from .reloader import Reloader
from .result import ReloadResult
from .watch import BackendName

_HOTMOD_DIR = str(Path(__file__).resolve().parent) + os.sep
_TRACEBACK_FRAMES = 4  # the innermost frames of the user's code; enough to find the line
_HISTORY = 20
_STATUS_NAMES = 12
_STATUS_RECENT = 5


class Session:
    """One reloader for an interactive namespace, with the results not shown yet."""

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        namespace: dict[str, object],
        *,
        backend: BackendName = "auto",
        poll_interval: float = 0.5,
        background: bool = False,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.namespace = namespace
        self.backend: BackendName = backend
        self.poll_interval = poll_interval
        self.background = background
        self.gate = gate
        self.enabled = True
        self.history: collections.deque[ReloadResult] = collections.deque(maxlen=_HISTORY)
        self._unseen: list[ReloadResult] = []
        self._lock = threading.Lock()
        # The session shows every result itself. Without a handler of the user's on the
        # hotmod logger, logging's last-resort handler would print the warnings a second
        # time, from the reloader's thread, across the prompt.
        self._silencer = logging.NullHandler()
        logging.getLogger("hotmod").addHandler(self._silencer)
        self.reloader = self._make_reloader(paths)

    def _make_reloader(self, paths: Iterable[str | os.PathLike[str]]) -> Reloader:
        reloader = Reloader(
            list(paths),
            backend=self.backend,
            poll_interval=self.poll_interval,
            apply="background" if self.background else "manual",
            _safe_point=None if self.gate is None else self._when_gate_open,
        )
        reloader.add_namespace(self.namespace)
        reloader.subscribe(self._record)
        if self.background:
            reloader.start()
        return reloader

    def _when_gate_open(self, apply: Callable[[], object]) -> bool:
        assert self.gate is not None
        if not self.gate():
            return False
        apply()
        return True

    @property
    def paths(self) -> tuple[Path, ...]:
        return self.reloader.paths

    def reconfigure(
        self, paths: Iterable[str | os.PathLike[str]] | None = None, backend: BackendName | None = None
    ) -> None:
        """Watch other folders, or watch another way; modules keep their current versions."""
        if backend is not None:
            self.backend = backend
        new = self._make_reloader(self.paths if paths is None else paths)
        old, self.reloader = self.reloader, new
        old.close()

    def _record(self, result: ReloadResult) -> None:
        with self._lock:
            self.history.append(result)
            self._unseen.append(result)

    def apply(self) -> list[ReloadResult]:
        """Apply what is pending (when enabled); every result not shown yet, oldest first."""
        if self.enabled:
            self.reloader.poll()  # results arrive through _record, as the thread's do
        with self._lock:
            unseen, self._unseen = self._unseen, []
        return unseen

    def status(self) -> list[str]:
        """What ``%hotmod`` shows: state, folders, tracked modules, totals, recent results."""
        stats = self.reloader.stats
        names = sorted(self.reloader.modules.values())
        shown = ", ".join(names[:_STATUS_NAMES]) + (", ..." if len(names) > _STATUS_NAMES else "")
        counts = stats.counts
        lines = [
            f"hotmod: {'on' if self.enabled else 'off'} (backend {self.reloader.backend}), "
            f"watching {', '.join(str(p) for p in self.paths)}",
            f"  {len(names)} module(s) tracked" + (f": {shown}" if names else ""),
            f"  {counts['ok']} reloaded, {counts['aborted']} aborted, {counts['failed']} failed, "
            f"{counts['needs_restart']} needing a restart",
        ]
        recent = [r for r in self.history if r.status != "noop"][-_STATUS_RECENT:]
        if recent:
            lines.append("  recent:")
            lines += [f"    {r.summary()}" for r in recent]
        return lines

    def close(self) -> None:
        self.reloader.close()
        logging.getLogger("hotmod").removeHandler(self._silencer)


def describe(result: ReloadResult) -> list[str]:
    """One line per result, and for code that failed, where it failed in the user's file."""
    if result.status == "noop":
        return []
    lines = [f"hotmod: {result.summary()}"]
    lines += [f"hotmod: warning: {w}" for w in result.warnings]
    if result.status == "aborted" and result.error is not None:
        cause = result.error.__cause__
        if isinstance(cause, BaseException):
            lines += ["  " + line for line in short_traceback(cause)]
    return lines


def short_traceback(exc: BaseException) -> list[str]:
    """The exception with the frames of the user's files only, innermost last."""
    if isinstance(exc, SyntaxError):
        text = traceback.format_exception_only(type(exc), exc)
    else:
        summary = traceback.TracebackException.from_exception(exc)
        frames = [f for f in summary.stack if not f.filename.startswith(_HOTMOD_DIR)]
        stack = traceback.StackSummary.from_list(frames[-_TRACEBACK_FRAMES:])
        text = [*stack.format(), *summary.format_exception_only()]
    return [line for chunk in text for line in chunk.rstrip("\n").split("\n")]
