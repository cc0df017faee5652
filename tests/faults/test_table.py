"""The fault table stays the truth: each row names a test that exists, each fault test has a row.

The test files are read, not imported: importing one would run its module-level skips.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from .table import FAULTS, markdown

TESTS = Path(__file__).resolve().parents[1]
# The files whose every test is a row of the table.
FAULT_FILES = ("faults/test_bad_input.py", "faults/test_faults.py", "watching/test_watcher_faults.py")


@cache
def defined_tests(file: str) -> frozenset[str]:
    tree = ast.parse((TESTS / file).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    )


def test_every_row_names_a_test_that_exists() -> None:
    missing = []
    for row in FAULTS:
        file, _, name = row.test.partition("::")
        if not (TESTS / file).is_file() or name not in defined_tests(file):
            missing.append(f"{row.id}: {row.test}")
    assert missing == []


def test_every_test_of_the_fault_files_has_a_row() -> None:
    rows = {row.test for row in FAULTS}
    unlisted = [f"{file}::{name}" for file in FAULT_FILES for name in sorted(defined_tests(file))]
    assert [test for test in unlisted if test not in rows] == []


def test_row_ids_are_unique_and_the_markdown_has_every_row() -> None:
    ids = [row.id for row in FAULTS]
    assert len(ids) == len(set(ids))
    table = markdown().splitlines()
    assert len(table) == 2 + len(FAULTS)
    assert all(line.startswith("| ") and line.endswith(" |") for line in table[2:])
