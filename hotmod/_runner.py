"""``python -m hotmod run``: run a program as ``python`` would, with reloading on.

The program runs in this process as ``__main__``, with ``sys.argv`` and ``sys.path[0]``
set the way ``python script.py`` and ``python -m pkg.mod`` set them. Its exit status
and its traceback are what ``python`` would give, without hotmod's own frames.
"""

from __future__ import annotations

import builtins
import importlib.util
import logging
import os
import runpy
import sys
from pathlib import Path
from types import ModuleType, TracebackType

from ._switch import disabled
from .errors import HotmodError
from .reloader import Reloader
from .result import ReloadResult

__all__ = ["run_program"]

_SIGINT_STATUS = 130  # what shells report for a program ended by Ctrl-C


def run_program(
    target: str,
    args: list[str],
    *,
    as_module: bool,
    watch: list[str],
    poll: float | None,
) -> int:
    """Run ``target`` (a script path, or a module name with ``as_module``); its exit status."""
    if as_module:
        _set_path0(os.getcwd())
        paths = watch or [_module_root(target)]
        sys.argv = [target, *args]  # runpy puts the module's file in argv[0]
    else:
        script = Path(target)
        if not script.exists():
            raise HotmodError(f"can't open file {target!r}: no such file")
        # A folder runs its __main__.py and goes on sys.path itself.
        folder = os.path.realpath(target if script.is_dir() else os.path.dirname(os.path.realpath(target)))
        _set_path0(folder)
        paths = watch or [folder]
        sys.argv = [target, *args]
    reloader: Reloader | None = None
    if disabled():
        # HOTMOD=0: the program runs exactly as ``python`` would run it.
        print("hotmod: HOTMOD=0 in the environment; running without reloading", file=sys.stderr)
    else:
        reloader = Reloader(
            paths,
            backend="polling" if poll is not None else "auto",
            poll_interval=poll if poll is not None else 0.5,
        )
        logging.getLogger("hotmod.reloader").addFilter(_MainEditOnce())
        reloader.start()
    try:
        if as_module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        elif os.path.isfile(target):
            _run_script(target, reloader)
        else:
            runpy.run_path(target, run_name="__main__")  # a folder or zip with __main__.py
    except SystemExit as exc:
        return _exit_status(exc.code)
    except BaseException as exc:
        tb = _program_frames(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return _SIGINT_STATUS if isinstance(exc, KeyboardInterrupt) else 1
    # Threads the program left running may still call into edited code: the reloader
    # keeps applying until the interpreter exits (its own threads are daemons).
    return 0


def _run_script(path: str, reloader: Reloader | None) -> None:
    """Run a script file as ``__main__``, tracked from its first line on.

    The reloader looks at the new ``__main__`` before any of its code runs, so an edit
    to the script made at any moment is known for one (runpy would run it before the
    reloader could look, and an edit to code outside functions would go unnoticed).
    """
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec", dont_inherit=True)
    main = ModuleType("__main__")
    main.__dict__.update(
        __file__=path,
        __cached__=None,
        __loader__=None,
        __package__=None,
        __spec__=None,
        __builtins__=builtins,
    )
    # Left in place afterwards, as python does: threads the program leaves running and
    # pickles of its classes still find ``__main__``. Removed and added back, not just
    # replaced: the reloader notices new entries by the end of ``sys.modules``.
    sys.modules.pop("__main__", None)
    sys.modules["__main__"] = main
    if reloader is not None:
        reloader.poll()
    exec(code, main.__dict__)


class _MainEditOnce(logging.Filter):
    """Let the first report of an edit to the running script through, not the repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        result = getattr(record, "hotmod_result", None)
        if not isinstance(result, ReloadResult) or result.status != "needs_restart":
            return True
        if getattr(result.error, "module", None) != "__main__":
            return True  # a declined module or an extension: each of those is said every time
        said, self.said = self.said, True
        return not said


def _set_path0(folder: str) -> None:
    """Put the program's folder first on ``sys.path``, in place of hotmod's own entry.

    That entry is the working directory under ``python -m hotmod`` and the scripts
    folder under the ``hotmod`` console script; under ``python -P`` there is none.
    """
    ours = {os.path.realpath(os.getcwd()), os.path.realpath(os.path.dirname(sys.argv[0] or "."))}
    if sys.path and os.path.realpath(sys.path[0] or os.getcwd()) in ours:
        sys.path[0] = folder
    else:
        sys.path.insert(0, folder)


def _module_root(name: str) -> str:
    """The working directory if the module comes from there, else its package's folder."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise HotmodError(f"no module named {name!r} ({exc})") from exc
    if spec is None or spec.origin is None:
        raise HotmodError(f"no module named {name!r}")
    origin = Path(os.path.realpath(spec.origin))
    cwd = Path(os.path.realpath(os.getcwd()))
    if origin.is_relative_to(cwd):
        return str(cwd)
    top = name.partition(".")[0]
    top_spec = importlib.util.find_spec(top)
    locations = top_spec.submodule_search_locations if top_spec else None
    return str(next(iter(locations))) if locations else str(origin.parent)


def _exit_status(code: object) -> int:
    """What ``python`` exits with for ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _program_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the program's first frame on: runpy and hotmod are not its code."""
    skip = ("<frozen runpy>", runpy.__file__ or "<runpy>", os.path.dirname(__file__) + os.sep)
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(skip):
        tb = tb.tb_next
    return tb
