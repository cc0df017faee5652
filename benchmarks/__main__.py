"""``python -m benchmarks [--quick]``: hotmod and its peers, measured in one run.

hotmod's own figures run in this process (``benchmarks/core.py``); every peer module runs
in a child process of its own (``benchmarks/peers/``, registered in ``PEERS`` there), since
peers install import hooks, watchers and threads that cannot be undone. Ratios are taken
within the run. A part that fails, or runs past its timeout, becomes a row saying so (with
the tail of its output) and the run goes on; only hotmod's own part failing makes the exit
status non-zero. The results are written after every part: the table to
``benchmarks/results/benchmarks.md``, the rows to ``.json``; the table is printed at the
end. Peers come from the ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import core
from ._targets import check_targets
from ._util import machine, markdown_table, write_results
from .peers import PEERS, Peer
from .peers._child import TAIL_CHARS, failure_row, missing, run_child

Rows = list[dict[str, Any]]


def run_core(quick: bool) -> Rows:
    """hotmod's own figures, in this process; a failure is a row, not the end of the run."""
    try:
        return core.run(quick=quick)
    except Exception as exc:
        tail = traceback.format_exc()[-TAIL_CHARS:]
        print(tail, flush=True)
        return [failure_row("benchmarks.core", "hotmod", f"failed: {type(exc).__name__}: {exc}", tail)]


def run_peer(peer: Peer, quick: bool) -> Rows:
    """One peer module in its child: its rows, or one row saying why there are none."""
    import importlib.util

    if importlib.util.find_spec(peer.module) is None:
        return [failure_row(peer.module, "(whole module)", "skipped: module not written yet")]
    absent = missing(peer.needs)
    if absent:
        note = f"skipped: {', '.join(absent)} not installed (pip install -e '.[bench]')"
        return [failure_row(peer.module, "(whole module)", note)]
    return run_child(
        peer.module, ["--quick"] if quick else [], peer.timeout, figure=peer.module, tool="(whole module)"
    )


def report(rows: Rows, *, quick: bool, seconds: float, done: int, parts: int) -> str:
    info = machine()
    progress = "" if done == parts else f" In progress: {done} of {parts} parts measured."
    header = (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}, Python {info['python']}; "
        f"`python -m benchmarks{' --quick' if quick else ''}`, {seconds:.0f} s.{progress}"
    )
    failures = [r for r in rows if r.get("tail")]
    tails = [f"{r['figure']} / {r['tool']}: {r['note']}\n\n```\n{r['tail'].rstrip()}\n```" for r in failures]
    sections = [header, markdown_table(rows), check_targets(rows)]
    if tails:
        sections += ["Failed parts, with the end of their output:", *tails]
    return "\n\n".join(sections)


def main(argv: Sequence[str] | None = None, peers: Sequence[Peer] = PEERS) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions: a few minutes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    names = ("core", *(p.module for p in peers))
    parser.add_argument("--only", choices=names, action="append", help="run only these parts")
    args = parser.parse_args(argv)
    started = time.monotonic()
    parts = args.only or list(names)
    # A partial or quick run never replaces the full results the README quotes.
    name = "benchmarks" + ("-partial" if args.only else "") + ("-quick" if args.quick else "")
    rows: Rows = []
    core_failed = False
    for done, part in enumerate(parts, start=1):
        print(f"running {part} ...", flush=True)
        if part == "core":
            measured = run_core(args.quick)
            core_failed = any("median" not in r for r in measured)
            rows += measured
        else:
            rows += run_peer(next(p for p in peers if p.module == part), args.quick)
        text = report(rows, quick=args.quick, seconds=time.monotonic() - started, done=done, parts=len(parts))
        target = write_results(name, rows, args.out)
        target.with_suffix(".md").write_text(text + "\n")
    print("\n" + text)
    print(f"\nwritten: {target} and {target.with_suffix('.md').name}")
    # A peer that fails is a row; hotmod's own figures failing is a failure of hotmod.
    return 1 if core_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
