"""``python -m benchmarks [--quick]``: hotmod and its peers, measured in one run.

hotmod's own figures run in this process (``benchmarks/core.py``); every peer runs in
child processes of its own (``benchmarks/peers/``), since peers install import hooks,
watchers and threads that cannot be undone. Ratios are taken within the run. The table
goes to stdout and to ``benchmarks/results/benchmarks.md``, the rows to ``.json``.
Peers come from the ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

from . import core
from ._targets import check_targets
from ._util import machine, markdown_table, write_results
from .peers._child import run_child

PEERS = (
    "benchmarks.peers.latency",
    "benchmarks.peers.cells",
    "benchmarks.peers.edits",
    "benchmarks.peers.polling",
    "benchmarks.peers.footprint",
    "benchmarks.peers.read_noise",
    "benchmarks.peers.web_page",
)
# What the peer modules need from the bench extra.
PEER_PACKAGES = ("jurigged", "IPython", "watchfiles", "hupper", "starlette", "flask", "uvicorn", "playwright")
PEER_TIMEOUT = 3600.0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions: a few minutes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", choices=("core", *PEERS), action="append", help="run only these parts")
    args = parser.parse_args()
    started = time.monotonic()
    missing = [p for p in PEER_PACKAGES if importlib.util.find_spec(p) is None]
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    parts = args.only or ["core", *PEERS]
    if "core" in parts:
        rows += core.run(quick=args.quick)
    for module in (p for p in PEERS if p in parts):
        if missing:
            notes.append(f"{module} skipped: {', '.join(missing)} not installed (pip install -e '.[bench]')")
            continue
        print(f"running {module} ...", flush=True)
        rows += run_child(module, ["--quick"] if args.quick else [], PEER_TIMEOUT)
    info = machine()
    header = (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}, Python {info['python']}; "
        f"`python -m benchmarks{' --quick' if args.quick else ''}`, {time.monotonic() - started:.0f} s."
    )
    table = markdown_table(rows)
    targets = check_targets(rows)
    text = "\n\n".join([header, table, targets, *notes])
    print("\n" + text)
    # A partial or quick run never replaces the full results the README quotes.
    name = "benchmarks" + ("-partial" if args.only else "") + ("-quick" if args.quick else "")
    target = write_results(name, rows, args.out)
    target.with_suffix(".md").write_text(text + "\n")
    print(f"\nwritten: {target} and {target.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
