"""``%load_ext hotmod``: pending changes apply before each IPython or Jupyter cell.

The pre-run-cell event fires after the cell is read and before it runs, which is
the one safe point: nothing of the user's runs while a reload applies, and the cell
sees every change saved before it was submitted.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

from ._session import Session, describe
from ._switch import disabled
from ._watch import BackendName
from .errors import HotmodError
from .result import ReloadResult

__all__ = ["USAGE", "load", "unload"]

USAGE = """\
%hotmod                 status: folders watched, modules tracked, recent reloads and errors
%hotmod on | off        apply changes before each cell, or stop (changes wait meanwhile)
%hotmod paths [DIR...]  show what is watched, or watch only these folders (by default: all
                        your code, every module outside the standard library and installed
                        packages; %hotmod paths --all goes back to that)
%hotmod backend NAME    how changes are found: auto (kernel file events), polling (a stat
                        of each tracked file before each cell: network and container mounts)
%hotmod reload NAME...  re-execute these modules now, changed or not"""

_BACKENDS: dict[str, BackendName] = {"auto": "auto", "watchdog": "watchdog", "polling": "polling"}

# One extension per shell; %reload_ext replaces it.
_EXTENSIONS: dict[int, _Extension] = {}


def load(shell: Any) -> None:
    unload(shell)
    if disabled():
        print("hotmod: HOTMOD=0 in the environment; reloading is off", file=sys.stderr)
        return
    _EXTENSIONS[id(shell)] = _Extension(shell)


def unload(shell: Any) -> None:
    extension = _EXTENSIONS.pop(id(shell), None)
    if extension is not None:
        extension.close()


class _Extension:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.session = Session(None, shell.user_ns)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.register_magic_function(self.magic, "line", "hotmod")

    def close(self) -> None:
        self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
        self.session.close()

    def pre_run_cell(self, info: object = None) -> None:
        # An exception here would be shown as an IPython internal error, and the cell
        # must run whatever happened: report and carry on.
        try:
            results = self.session.apply()
            notices = self.session.notices()
        except Exception as exc:
            print(f"hotmod: could not apply changes: {exc!r}", file=sys.stderr)
            return
        _show(results, self.session)
        for line in notices:
            print(line, file=sys.stderr)

    def magic(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"hotmod: {exc}\n{USAGE}", file=sys.stderr)
            return
        command, args = (words[0], words[1:]) if words else ("status", [])
        try:
            if command == "status" and not args:
                print("\n".join(self.session.status()))
            elif command in ("on", "off") and not args:
                self.session.enabled = command == "on"
                print(f"hotmod: {'applying changes before each cell' if command == 'on' else 'off'}")
                if command == "on":
                    _show(self.session.apply(), self.session)
            elif command == "paths":
                if args == ["--all"]:
                    self.session.reconfigure(user_code=True)
                elif args:
                    self.session.reconfigure(paths=[os.path.expanduser(a) for a in args])
                print(f"hotmod: watching {self.session.watching}")
            elif command == "backend" and len(args) == 1 and args[0] in _BACKENDS:
                self.session.reconfigure(backend=_BACKENDS[args[0]])
                print(f"hotmod: finding changes with the {self.session.reloader.backend} backend")
            elif command == "reload" and args:
                for name in args:
                    self.session.reloader.reload(name)
                _show(self.session.apply(), self.session)
            else:
                print(USAGE)
        except HotmodError as exc:
            print(f"hotmod: {exc}", file=sys.stderr)


def _show(results: list[ReloadResult], session: Session) -> None:
    for result in results:
        stream = sys.stdout if result.ok else sys.stderr
        lines = describe(result)
        if lines and session.first_time():
            lines.insert(0, session.tracking_line())
        for text in lines:
            print(text, file=stream)
