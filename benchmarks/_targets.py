"""hotmod's targets, each said met or missed with the figure it was judged on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._util import fmt_value, reference

Rows = list[dict[str, Any]]


def _find(rows: Rows, figure: str, tool_prefix: str = "hotmod") -> dict[str, Any] | None:
    return next(
        (r for r in rows if r["figure"] == figure and r["tool"].startswith(tool_prefix) and "median" in r),
        None,
    )


def _fastest_peer(rows: Rows, figure: str) -> dict[str, Any] | None:
    peers = [
        r for r in rows if r["figure"] == figure and not r["tool"].startswith("hotmod") and "median" in r
    ]
    return min(peers, key=lambda r: r["median"], default=None)


NOT_MEASURED = "not measured in this run"


def _b1(rows: Rows) -> list[tuple[str, bool | None, str]]:
    mine = _find(rows, "B1 write -> new code running (2 kHz loop)", "hotmod watchdog")
    if mine is None:
        return [("B1 median <= 5 ms", None, NOT_MEASURED)]
    out: list[tuple[str, bool | None, str]] = [
        ("B1 median <= 5 ms", mine["median"] <= 0.005, fmt_value(mine["median"])),
        ("B1 p90 <= 10 ms", mine["p90"] <= 0.010, fmt_value(mine["p90"])),
    ]
    jurigged = _fastest_peer([r for r in rows if r["tool"].startswith("jurigged")], mine["figure"])
    if jurigged is not None:
        ratio = jurigged["median"] / mine["median"]
        out.append((">= 15x faster than jurigged", ratio >= 15, f"{ratio:.0f}x ({jurigged['tool']})"))
    restart = _fastest_peer(rows, "B1 write -> restarted app ready (starlette + flask)")
    if restart is not None:
        ratio = restart["median"] / mine["median"]
        out.append(
            (
                ">= 70x faster than the fastest restart reloader",
                ratio >= 70,
                f"{ratio:.0f}x ({restart['tool']})",
            )
        )
    return out


def _b4_against_reload(rows: Rows) -> list[tuple[str, bool | None, str]]:
    """Issue 17: a one-function edit of an 800-definition file is not slower than
    ``importlib.reload`` of the same file in the same run."""
    label = "B4 800 definitions <= importlib.reload (issue 17)"
    figure = "B4 one-function edit, 800 definitions"
    mine, peer = _find(rows, figure, "hotmod"), _find(rows, figure, "importlib.reload")
    if mine is None or peer is None:
        return [(label, None, NOT_MEASURED)]
    shown = f"{fmt_value(mine['median'])} vs {fmt_value(peer['median'])}"
    return [(label, mine["median"] <= peer["median"], shown)]


def _at_most(
    figure: str, tool: str, limit: float, label: str
) -> Callable[[Rows], list[tuple[str, bool | None, str]]]:
    def check(rows: Rows) -> list[tuple[str, bool | None, str]]:
        row = _find(rows, figure, tool)
        if row is None:
            return [(label, None, NOT_MEASURED)]
        return [(label, row["median"] <= limit, fmt_value(row["median"], row.get("unit", "s")))]

    return check


def _busy(rows: Rows) -> list[tuple[str, bool | None, str]]:
    mine = _find(rows, "B1 write -> new code running (busy loop)", "hotmod watchdog")
    if mine is None:
        return [("B1 busy loop median <= 5 ms", None, NOT_MEASURED)]
    return [
        ("B1 busy loop median <= 5 ms", mine["median"] <= 0.005, fmt_value(mine["median"])),
        ("B1 busy loop p90 <= 10 ms", mine["p90"] <= 0.010, fmt_value(mine["p90"])),
    ]


def _b4(rows: Rows) -> list[tuple[str, bool | None, str]]:
    out = []
    for size in (50, 200, 800):
        figure = f"B4 one-function edit, {size} definitions"
        mine, floor = reference(rows, figure), _find(rows, figure, "compile()")
        if mine is not None and floor is not None:
            ratio = mine["median"] / floor["median"]
            out.append((f"B4 <= 2x compile time ({size} definitions)", ratio <= 2, f"{ratio:.2f}x"))
    return out


CHECKS: list[Callable[[Rows], list[tuple[str, bool | None, str]]]] = [
    _b1,
    _busy,
    _at_most("B2 idle poll(), 5000 modules imported", "hotmod", 50e-6, "B2 poll() <= 50 µs at 5,000 modules"),
    _at_most(
        "B2 idle REPL cell, 5000 modules imported", "hotmod", 50e-6, "B2 cell <= 50 µs at 5,000 modules"
    ),
    _at_most(
        "B3 20-class module, method edit, 5,000,000 live objects", "hotmod", 0.015, "B3 method <= 15 ms at 5M"
    ),
    _at_most(
        "B3 20-class module, attribute edit, 5,000,000 live objects",
        "hotmod",
        0.015,
        "B3 attribute <= 15 ms at 5M",
    ),
    _b4,
    _at_most("B5 one scan, per watched file, 1,000 files", "hotmod", 5e-6, "B5 <= 5 µs per file (1,000)"),
    _at_most("B5 one scan, per watched file, 10,000 files", "hotmod", 5e-6, "B5 <= 5 µs per file (10,000)"),
    _at_most("B5 idle CPU, 1,000 files, 1 s interval", "hotmod", 0.5, "B5 idle CPU <= 0.5 % of a core"),
    _at_most("B6 import hotmod (-X importtime)", "hotmod", 0.030, "B6 import <= 30 ms"),
    _at_most(
        "B6 RSS growth per 1,000 reloads", "hotmod", 2 * 1024 * 1024, "B6 RSS <= 2 MB per 1,000 reloads"
    ),
    _at_most(
        "B6 threads left after 100 start/stop cycles", "hotmod Reloader", 0, "B6 no thread leak (Reloader)"
    ),
    _at_most(
        "B6 threads left after 100 start/stop cycles",
        "hotmod PluginFolder",
        0,
        "B6 no thread leak (PluginFolder)",
    ),
    _at_most(
        "B6 file descriptors left after 100 start/stop cycles",
        "hotmod Reloader",
        0,
        "B6 no fd leak (Reloader)",
    ),
    _at_most(
        "B6 file descriptors left after 100 start/stop cycles",
        "hotmod PluginFolder",
        0,
        "B6 no fd leak (PluginFolder)",
    ),
    _at_most(
        "B7 watcher CPU while another process reads 10,000 files x 10", "hotmod", 0.5, "B7 <= 0.5 s of CPU"
    ),
    _at_most(
        "B9 1 s module top level, one function edited -> applied before the next cell",
        "hotmod",
        0.005,
        "B9 one-function edit of a 1 s module <= 5 ms (issue 17)",
    ),
    _at_most(
        "B12 one method edited in a module of 50 pydantic models",
        "hotmod",
        0.005,
        "B12 one method of 50 pydantic models <= 5 ms (issue 17)",
    ),
    _b4_against_reload,
]


def check_targets(rows: Rows) -> str:
    lines = ["| target | met | figure |", "|---|---|---|"]
    for check in CHECKS:
        for label, met, shown in check(rows):
            verdict = "not measured" if met is None else "met" if met else "MISSED"
            lines.append(f"| {label} | {verdict} | {shown} |")
    return "\n".join(lines)
