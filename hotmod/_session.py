"""An interactive session's reloader: what the plain REPL, IPython and Jupyter share.

A session reloads the modules under its paths, rebinds ``from m import x`` names in
the user's namespace like any importer's, and turns each result into the one compact
line (plus a short traceback into the user's file) that the prompt shows.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from ._filters import USER_CODE_ROOT, is_user_code
from ._module_index import module_origin
from ._watch import BackendName
from .reloader import Reloader
from .result import ReloadResult

__all__ = ["USER_CODE", "Session", "describe", "short_traceback"]

_HOTMOD_DIR = str(Path(__file__).resolve().parent) + os.sep
_TRACEBACK_FRAMES = 4  # the innermost frames of the user's code; enough to find the line
_HISTORY = 20
_STATUS_NAMES = 12
_STATUS_RECENT = 5


USER_CODE = "your code (every module outside the standard library and installed packages)"


class Session:
    """One reloader for an interactive namespace, with the results not shown yet.

    Given no paths, a session tracks the user's code wherever it lives: every module
    imported from outside the standard library, installed packages and hotmod (the
    working directory, folders on ``sys.path``, editable installs). Given paths, a
    module of the user's imported from elsewhere is named once, so an edit to it is
    never ignored silently.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] | None,
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
        self._notices: list[str] = []  # lines to show at the next prompt
        self._named: set[str] = set()  # untracked modules already named
        self._seen_modules = 0  # len(sys.modules) when untracked modules were last looked for
        self._told_tracked = False
        # The session shows every result itself. Without a handler of the user's on the
        # hotmod logger, logging's last-resort handler would print the warnings a second
        # time, from the reloader's thread, across the prompt.
        self._silencer = logging.NullHandler()
        logging.getLogger("hotmod").addHandler(self._silencer)
        self.reloader = self._make_reloader(paths)

    def _make_reloader(self, paths: Iterable[str | os.PathLike[str]] | None) -> Reloader:
        self.user_code = paths is None
        reloader = Reloader(
            [USER_CODE_ROOT] if paths is None else list(paths),
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

    @property
    def watching(self) -> str:
        """What the session tracks, in words."""
        return USER_CODE if self.user_code else ", ".join(str(p) for p in self.paths)

    def reconfigure(
        self,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        backend: BackendName | None = None,
        *,
        user_code: bool = False,
    ) -> None:
        """Watch other folders (or, with ``user_code``, all the user's code), or watch
        another way; modules keep their current versions."""
        if backend is not None:
            self.backend = backend
        if user_code:
            wanted: Iterable[str | os.PathLike[str]] | None = None
        elif paths is None:
            wanted = None if self.user_code else self.paths
        else:
            wanted = paths
        self._named.clear()
        self._seen_modules = 0
        new = self._make_reloader(wanted)
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

    def notices(self) -> list[str]:
        """Lines to show once: what is tracked (with the first reload) and the user's
        modules imported from outside the watched paths."""
        if not self.user_code and len(sys.modules) != self._seen_modules:
            self._seen_modules = len(sys.modules)
            tracked = set(self.reloader.modules.values())
            for name, module in list(sys.modules.items()):
                if name in self._named or name in tracked or name == "__main__":
                    continue
                origin = module_origin(module)
                if (
                    origin
                    and origin.endswith(".py")
                    and is_user_code(origin)
                    and not self._under_paths(origin)
                ):
                    self._named.add(name)
                    self._notices.append(
                        f"hotmod: {name} ({origin}) is not tracked: it is outside {self.watching}, so its "
                        "edits are not applied (%hotmod paths, or hotmod.repl.enable(paths), changes that)"
                    )
        notices, self._notices = self._notices, []
        return notices

    def _under_paths(self, origin: str) -> bool:
        real = os.path.realpath(origin)
        return any(real == str(p) or real.startswith(str(p).rstrip(os.sep) + os.sep) for p in self.paths)

    def tracking_line(self) -> str:
        """Said with the first reload: what the session tracks."""
        count = len(self.reloader.modules)
        return f"hotmod: tracking {count} module(s) of {self.watching}"

    def first_time(self) -> bool:
        """True once: the first reload of the session is shown with what is tracked."""
        first, self._told_tracked = not self._told_tracked, True
        return first

    def status(self) -> list[str]:
        """What ``%hotmod`` shows: state, folders, tracked modules, totals, recent results."""
        stats = self.reloader.stats
        names = sorted(self.reloader.modules.values())
        shown = ", ".join(names[:_STATUS_NAMES]) + (", ..." if len(names) > _STATUS_NAMES else "")
        counts = stats.counts
        lines = [
            f"hotmod: {'on' if self.enabled else 'off'} (backend {self.reloader.backend}), "
            f"watching {self.watching}",
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
