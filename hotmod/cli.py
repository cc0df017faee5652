"""The command line. The only place in hotmod that configures logging."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__


def _configure_logging(verbosity: int) -> None:
    levels = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}
    level = levels.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hotmod: %(message)s"))
    root = logging.getLogger("hotmod")
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hotmod",
        description="Reload edited Python modules inside a running process, keeping its state.",
    )
    parser.add_argument("--version", action="version", version=f"hotmod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="a self-running demonstration of a live reload (a few seconds, needs nothing else)",
        description="Writes a small module to a temporary folder, calls it in a loop, edits it "
        "the way an editor saves, and shows the new code running in the same process; then a "
        "broken edit that is refused while the old code keeps running, and its fix.",
    )
    demo.add_argument("--backend", default="auto", choices=("auto", "watchdog", "polling"))
    demo.add_argument("-v", "--verbose", action="count", default=0, help="log every reload")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        _configure_logging(-2 + 2 * args.verbose)  # the demo prints each result itself
        return run_demo(backend=args.backend)
    parser.print_help()
    return 0
