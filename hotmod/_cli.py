"""The command line (``python -m hotmod`` and the ``hotmod`` script).

The only place in hotmod that configures logging.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence

from . import __version__
from .errors import HotmodError

__all__ = ["DEFAULT_POLL", "build_parser", "main", "run_parser", "split_run_args"]

DEFAULT_POLL = 0.5


def _configure_logging(verbosity: int) -> None:
    levels = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}
    level = levels.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hotmod: %(message)s"))
    root = logging.getLogger("hotmod")
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def _prog() -> str:
    """How the user called us: the ``hotmod`` script or ``python -m hotmod``."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return "hotmod" if name in ("hotmod", "hotmod.exe") else "python -m hotmod"


def _add_watch_options(parser: argparse.ArgumentParser, default_folder: str) -> None:
    parser.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="PATH",
        help=f"reload the modules under PATH (repeatable; default: {default_folder})",
    )
    parser.add_argument(
        "--poll",
        nargs="?",
        type=float,
        const=DEFAULT_POLL,
        metavar="SECONDS",
        help=f"look for changes by polling every SECONDS (default {DEFAULT_POLL}) instead of "
        "kernel file events: for network and container-mounted folders",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Reload edited Python modules inside a running process, keeping its state. "
        "Without a command, starts an interactive Python session that reloads the modules "
        "under the working directory before each prompt.",
    )
    parser.add_argument("--version", action="version", version=f"hotmod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser(commands.add_parser("run", help="run a script or module with reloading on", add_help=False))
    repl = commands.add_parser(
        "repl",
        help="an interactive session with reloading on (the default command)",
        description="Start Python's own interactive prompt with hotmod.repl.enable(): edits to "
        "modules under the watched folders apply before each prompt, and names imported with "
        "'from m import x' are rebound. PYTHONSTARTUP is run as usual.",
    )
    _add_watch_options(repl, "the working directory")
    demo = commands.add_parser(
        "demo",
        help="a self-running demonstration of a live reload (a few seconds, needs nothing else)",
        description="Writes a small module to a temporary folder, calls it in a loop, edits it "
        "the way an editor saves, and shows the new code running in the same process with its "
        "state and its objects kept; then a broken edit that is refused while the old code "
        "keeps running, and its fix.",
    )
    demo.add_argument("--backend", default="auto", choices=("auto", "watchdog", "polling"))
    demo.add_argument("-v", "--verbose", action="count", default=0, help="log every reload")
    return parser


def run_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``run``'s options. Parsing stops at the program: what follows it is the program's."""
    parser.prog = f"{_prog()} run"
    parser.usage = f"{_prog()} run [--watch PATH] [--poll [SECONDS]] [-v | -q] (SCRIPT | -m MODULE) [ARG ...]"
    parser.epilog = (
        "Options go before SCRIPT or -m MODULE; every word after them is the program's. "
        "Exit status: the program's own (sys.exit, 1 for an uncaught exception, 130 for Ctrl-C); "
        "2 if hotmod could not start it."
    )
    parser.description = (
        "Run a Python program the way 'python SCRIPT' or 'python -m MODULE' would (same sys.argv, "
        "sys.path and exit status) while the modules it imports reload as they are saved. Each "
        "reload is reported on stderr in one line. The script itself (__main__) cannot be "
        "re-executed in place: an edit to it is reported once, and needs a restart."
    )
    parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
    _add_watch_options(parser, "the script's folder; with -m, the working directory")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="also log each file tracked")
    parser.add_argument(
        "-q", "--quiet", action="count", default=0, help="report only reloads that fail (-qq: nothing)"
    )
    parser.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a module as a script, like python -m"
    )
    parser.add_argument("script", nargs="?", metavar="SCRIPT", help="the program's file")
    parser.add_argument("args", nargs="*", metavar="ARG", help="passed to the program as sys.argv[1:]")
    return parser


def split_run_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``run``'s arguments into hotmod's options and the program's command line.

    The program starts at the first word that is not an option of ours, or at ``-m``;
    everything after it, ``-v`` and ``--help`` included, belongs to the program.
    """
    ours: list[str] = []
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return ours, words[i + 1 :]
        if word == "-m" or (word.startswith("-m") and not word.startswith("--")):
            module = word[2:] or (words[i + 1] if i + 1 < len(words) else "")
            rest = words[i + 1 :] if word[2:] else words[i + 2 :]
            return [*ours, "-m", module] if module else [*ours, "-m"], rest
        if word == "--watch" and i + 1 < len(words):
            ours += words[i : i + 2]
            i += 2
            continue
        if word == "--poll" and i + 1 < len(words) and _is_number(words[i + 1]):
            ours += words[i : i + 2]
            i += 2
            continue
        if not word.startswith("-") or word == "-":
            return ours, words[i:]
        ours.append(word)
        i += 1
    return ours, []


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return _run(argv[1:])
    if not argv or argv[0] not in ("repl", "demo", "-h", "--help", "--version"):
        argv = ["repl", *argv]  # no command: the interactive session, with these options
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        _configure_logging(-2 + 2 * args.verbose)  # the demo prints each result itself
        return run_demo(backend=args.backend)
    return _repl(args.watch, args.poll)


def _run(argv: list[str]) -> int:
    parser = run_parser(argparse.ArgumentParser(add_help=False))
    ours, program = split_run_args(argv)
    options = parser.parse_args(ours)
    if options.script is not None:  # an option's value was taken for the script: not ours
        parser.error(f"unrecognized arguments: {options.script}")
    if options.module is None:
        if not program:
            parser.error("a SCRIPT or -m MODULE is required")
        target, program = program[0], program[1:]
    else:
        target = options.module
    if options.verbose and options.quiet:
        parser.error("-v and -q cannot be used together")
    _configure_logging(options.verbose or -options.quiet)
    from ._runner import run_program

    try:
        return run_program(
            target, program, as_module=options.module is not None, watch=options.watch, poll=options.poll
        )
    except HotmodError as exc:
        print(f"hotmod: {exc}", file=sys.stderr)
        return 2


def _repl(watch: list[str], poll: float | None) -> int:
    """Python's own prompt (the new one on 3.13), with hotmod.repl enabled first."""
    paths = [os.path.abspath(p) for p in watch] or None  # None: all the user's code
    setup = f"__import__('hotmod.repl').repl._start_session({paths!r}, {poll!r})"
    command = [sys.executable, "-i", "-c", setup]
    if os.name == "posix":
        sys.stdout.flush()
        os.execv(sys.executable, command)  # the prompt gets the terminal and the signals
    return subprocess.call(command)  # pragma: no cover - Windows has no real exec
