"""Shared helpers: timing statistics, temporary module trees, result tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summarize(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": quantile(values, 0.9),
        "min": min(values),
        "max": max(values),
    }


def row(figure: str, tool: str, values: Sequence[float], unit: str = "s") -> dict[str, Any]:
    """One table row: a figure measured for one tool, in ``unit`` (s, cpu%, bytes, count)."""
    return {"figure": figure, "tool": tool, "unit": unit} | summarize(values)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }


def save_like_an_editor(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(name: str, rows: list[dict[str, Any]], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.json"
    target.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return target


def fmt_seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def fmt_value(value: float, unit: str = "s") -> str:
    if unit == "s":
        return fmt_seconds(value)
    if unit == "cpu%":
        return f"{value:.2f} % of a core"
    if unit == "bytes":
        return f"{value / 1024:.0f} KiB"
    return f"{value:g}"


# A restart reloader's figure compared with hotmod's figure for the same save.
COMPARED_WITH = {
    "B1 write -> restarted app ready (starlette + flask)": "B1 write -> new code running (2 kHz loop)",
}


def reference(rows: list[dict[str, Any]], figure: str) -> dict[str, Any] | None:
    """hotmod's row for ``figure`` (its default backend's when there are several)."""
    figure = COMPARED_WITH.get(figure, figure)
    mine = [r for r in rows if r["figure"] == figure and r["tool"].startswith("hotmod") and "median" in r]
    return next((r for r in mine if "watchdog" in r["tool"]), mine[0] if mine else None)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One line per row; peers get the ratio of their median to hotmod's, from this run."""
    lines = ["| figure | tool | median | p90 | n | peer / hotmod |", "|---|---|---|---|---|---|"]
    for row in rows:
        unit = row.get("unit", "s")
        if "median" not in row:
            lines.append(f"| {row['figure']} | {row['tool']} | {row.get('note', 'no figure')} | | | |")
            continue
        ratio = ""
        mine = reference(rows, row["figure"])
        is_peer = not row["tool"].startswith("hotmod") and "floor" not in row["tool"]
        if is_peer and mine is not None and mine["median"] > 0:
            ratio = f"{row['median'] / mine['median']:.1f}x"
        lines.append(
            f"| {row['figure']} | {row['tool']} | {fmt_value(row['median'], unit)} | "
            f"{fmt_value(row['p90'], unit)} | {row['n']} | {ratio} |"
        )
    return "\n".join(lines)
