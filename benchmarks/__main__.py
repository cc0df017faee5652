"""``python -m benchmarks [--quick]``: measure and print a table; JSON in benchmarks/results/."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import core
from ._util import machine, markdown_table, write_results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rows = core.run(quick=args.quick)
    table = markdown_table(rows)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['platform']}, Python {info['python']}\n")
    print(table)
    target = write_results("core", rows, args.out)
    (args.out / "core.md").write_text(table + "\n")
    print(f"\nwritten: {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
