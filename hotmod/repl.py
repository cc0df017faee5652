"""Reloading in the plain Python REPL: ``hotmod.repl.enable()``.

Works in ``python`` / ``python -i``, in ``code.interact`` and in the new REPL of
Python 3.13. Two mechanisms, because no REPL offers a hook between reading a
statement and running it:

- While the prompt waits for input, the reloader's thread applies each save at once,
  so an edit made while the prompt waited is live for the statement typed next. While
  a statement runs, changes wait: code the user is running never changes under it.
- ``sys.ps1`` is replaced by a prompt that applies whatever is still pending and shows
  one line per reload above the prompt.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from types import CodeType, FrameType
from typing import Any

from ._session import Session, describe
from ._switch import disabled
from ._watch import BackendName
from .reloader import Reloader

__all__ = ["disable", "enable", "enabled"]

_session: Session | None = None
_previous_ps1: Any = None
_had_ps1 = False


def enable(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    backend: BackendName = "auto",
    poll_interval: float = 0.5,
    namespace: dict[str, object] | None = None,
) -> Reloader | None:
    """Reload the user's modules before each prompt.

    By default every module imported from outside the standard library and installed
    packages is tracked (the working directory, folders on ``sys.path``, editable
    installs); ``paths`` narrows that to these folders, and a module of the user's
    imported from elsewhere is then named once at the prompt.

    ``namespace`` (default: ``__main__``'s, the REPL's globals) gets its ``from m import x``
    names rebound like any importer's. Calling ``enable`` again replaces the session.
    Returns the session's :class:`~hotmod.Reloader`, or None when ``HOTMOD=0`` in the
    environment turned hotmod off (the prompt is left alone).
    """
    global _session, _previous_ps1, _had_ps1
    disable()
    if disabled():
        print("hotmod: HOTMOD=0 in the environment; reloading is off", file=sys.stderr)
        return None
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if namespace is None:
        namespace = sys.modules["__main__"].__dict__
    _session = Session(
        paths,
        namespace,
        backend=backend,
        poll_interval=poll_interval,
        background=True,
        gate=_waiting_for_input,
    )
    _had_ps1 = hasattr(sys, "ps1")
    _previous_ps1 = getattr(sys, "ps1", ">>> ")
    sys.ps1 = _Prompt(str(_previous_ps1))
    return _session.reloader


def disable() -> None:
    """Stop reloading and put the prompt back. Modules keep their current versions."""
    global _session
    session, _session = _session, None
    if session is None:
        return
    session.close()
    if isinstance(getattr(sys, "ps1", None), _Prompt):
        if _had_ps1:
            sys.ps1 = _previous_ps1
        else:
            del sys.ps1


def enabled() -> bool:
    return _session is not None


def _start_session(paths: list[str] | None, poll: float | None) -> None:
    """What ``python -m hotmod`` runs in the new interpreter before its prompt."""
    from . import __version__

    reloader = enable(paths, backend="polling" if poll is not None else "auto", poll_interval=poll or 0.5)
    if reloader is None or _session is None:
        return  # HOTMOD=0: a plain prompt
    print(
        f"Python {sys.version.split()[0]} with hotmod {__version__}: {_session.watching} "
        f"reloads before each prompt ({len(reloader.modules)} tracked now; hotmod.repl.disable() stops).",
        file=sys.stderr,
    )
    startup = os.environ.get("PYTHONSTARTUP")
    if startup and os.path.isfile(startup):
        # ``python -i -c`` skips the startup file that a bare ``python`` runs.
        with open(startup, "rb") as f:
            code = compile(f.read(), startup, "exec")
        exec(code, sys.modules["__main__"].__dict__)


def _show_pending() -> str:
    """Apply what is pending; the report lines (newline-terminated) for the prompt."""
    session = _session
    if session is None:
        return ""
    try:
        lines = [line for result in session.apply() for line in describe(result)]
        if lines and session.first_time():
            lines.insert(0, session.tracking_line())
        lines += session.notices()
    except Exception as exc:  # a prompt must never fail
        lines = [f"hotmod: could not apply changes: {exc!r}"]
    return "".join(line + "\n" for line in lines)


class _Prompt(str):
    """``sys.ps1`` that applies pending changes when the REPL asks for the prompt's text.

    The classic REPL and ``code.interact`` call ``str()`` once per prompt; the reports
    are printed to stderr, before the prompt. Python 3.13's REPL formats the prompt on
    every redraw of the input line, in raw terminal mode: there the reports become lines
    of the prompt itself, computed once per input (one input = one call of its
    ``multiline_input``, found on the stack).
    """

    _input_frame: FrameType | None = None
    _banner = ""

    def __str__(self) -> str:
        text = _show_pending()
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        frame = _pyrepl_input_frame()
        if frame is None or frame is not _Prompt._input_frame:
            _Prompt._input_frame = frame  # held so that a new input never reuses its id
            _Prompt._banner = _show_pending()
        return _Prompt._banner + str.__format__(str.__str__(self), spec)


def _pyrepl_input_frame() -> FrameType | None:
    frame: FrameType | None = sys._getframe(1)
    for _ in range(30):
        if frame is None:
            return None
        if frame.f_code.co_name == "multiline_input" and "_pyrepl" in frame.f_code.co_filename:
            return frame
        frame = frame.f_back
    return None


# While the main thread's innermost frame runs one of these files (or it has no frame:
# the classic REPL reading a line in C), the REPL is waiting for input.
_CODE_MODULE = os.path.join(os.path.dirname(threading.__file__), "code.py")
_PYREPL_PART = os.sep + "_pyrepl" + os.sep


def _waiting_for_input() -> bool:
    frame = sys._current_frames().get(threading.main_thread().ident or -1)
    return frame is None or _is_reading(frame.f_code)


def _is_reading(code: CodeType) -> bool:
    return code.co_filename == _CODE_MODULE or _PYREPL_PART in code.co_filename
