"""MkDocs hook: the fault table comes from the tests, the one place it is written.

A page holding ``<!-- fault-table -->`` gets ``tests/faults/table.py``'s rows there, so
the docs show exactly the faults the tests check, with the test of each.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PLACEHOLDER = "<!-- fault-table -->"
ROOT = Path(__file__).resolve().parents[2]


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.faults import table

    return markdown.replace(PLACEHOLDER, table.markdown())
