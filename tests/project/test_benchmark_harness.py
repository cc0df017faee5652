"""The benchmark harness finishes: a peer that fails, hangs or is not installed is a row.

Fake peer modules in a temporary folder stand in for the real ones; the one that hangs
blocks on a pipe nobody writes, and a tiny timeout ends it.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.peers import Peer
from benchmarks.peers._child import run_child

FAKES = {
    "fake_fails": """
        import sys
        print("fake_fails: measuring", file=sys.stderr, flush=True)
        raise RuntimeError("boom in the peer")
    """,
    "fake_hangs": """
        import os, sys
        print(f"fake_hangs: pid {os.getpid()}", file=sys.stderr, flush=True)
        read_end, _ = os.pipe()
        os.read(read_end, 1)  # nobody writes: blocks until killed
    """,
    "fake_needs_more": """
        raise SystemExit("run although a package it needs is missing")
    """,
    "fake_silent": """
        print("no rows here")
    """,
    # Reads what the harness wrote before it ran, and reports how many rows it found.
    "fake_counts": """
        import json, os
        rows = json.loads(open(os.environ["FAKE_RESULTS"]).read())["rows"]
        n = len(rows)
        print(json.dumps({"rows": [{"figure": "rows written before me", "tool": "fake_counts",
            "unit": "count", "n": 1, "median": n, "p90": n, "min": n, "max": n}]}))
    """,
}


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "fakes"
    folder.mkdir()
    for name, source in FAKES.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(folder))  # the harness looks modules up before running them
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    return folder


def test_a_failing_child_is_a_row_with_the_end_of_its_output(fakes: Path) -> None:
    rows = run_child("fake_fails", [], 60, figure="F", tool="T")

    assert len(rows) == 1
    assert (rows[0]["figure"], rows[0]["tool"]) == ("F", "T")
    assert rows[0]["note"] == "failed: exited 1"
    assert "fake_fails: measuring" in rows[0]["tail"]
    assert "RuntimeError: boom in the peer" in rows[0]["tail"]
    assert "median" not in rows[0]


def test_a_child_past_its_timeout_is_ended_and_is_a_row(fakes: Path) -> None:
    rows = run_child("fake_hangs", [], 0.5, figure="F", tool="T")

    assert rows[0]["note"] == "failed: timed out after 0.5 s"
    pid = int(rows[0]["tail"].split("pid ")[1].split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_a_child_that_prints_no_rows_is_a_row(fakes: Path) -> None:
    rows = run_child("fake_silent", [], 60, figure="F", tool="T")

    assert rows[0]["note"] == "failed: printed no rows"
    assert "no rows here" in rows[0]["tail"]


def test_a_tool_whose_package_is_missing_is_skipped_not_run(fakes: Path) -> None:
    rows = run_child("fake_fails", [], 60, figure="F", tool="T", needs=("json", "no_such_package_hm23"))

    assert rows == [
        {
            "figure": "F",
            "tool": "T",
            "unit": "s",
            "note": "skipped: no_such_package_hm23 not installed",
            "tail": "",
        }
    ]


def test_the_run_goes_on_past_failures_and_writes_after_every_part(
    fakes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("FAKE_RESULTS", str(out / "benchmarks-partial.json"))
    peers = (
        Peer("fake_fails"),
        Peer("fake_hangs", timeout=0.5),
        Peer("fake_needs_more", needs=("no_such_package_hm23",)),
        Peer("fake_not_written_yet"),
        Peer("fake_counts"),
    )
    args = ["--out", str(out)]
    for peer in peers:
        args += ["--only", peer.module]

    assert main(args, peers=peers) == 0

    rows = json.loads((out / "benchmarks-partial.json").read_text())["rows"]
    assert [(r["figure"], r.get("note")) for r in rows] == [
        ("fake_fails", "failed: exited 1"),
        ("fake_hangs", "failed: timed out after 0.5 s"),
        ("fake_needs_more", "skipped: no_such_package_hm23 not installed (pip install -e '.[bench]')"),
        ("fake_not_written_yet", "skipped: module not written yet"),
        ("rows written before me", None),
    ]
    assert rows[-1]["median"] == 4  # the four rows before it were on disk when it ran
    table = (out / "benchmarks-partial.md").read_text()
    assert "In progress" not in table
    assert "| fake_hangs | (whole module) | failed: timed out after 0.5 s |" in table
    assert "RuntimeError: boom in the peer" in table  # the tail of the failed part
