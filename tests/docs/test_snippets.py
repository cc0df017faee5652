"""Every Python code block of the documentation and the README runs here.

The convention (described for writers in ``docs/contributing.md``):

- A fence whose language is ``python`` or ``py`` is run. The blocks of one page run in
  order, in one namespace, in a fresh interpreter whose working directory is an empty
  temporary folder: a later block may use what an earlier one defined.
- A fence with ``title="some/path.py"`` (a relative path) is a file, not code to run: it is
  written into that folder when the page reaches it, as a save from an editor would be.
  Files are how a page sets up a module and then edits it (an edit may be broken on
  purpose, to show a refused reload). Every Python file a page writes must be imported by
  the page's code before it ends.
- Every block that runs must hold at least one ``assert``: a block that only runs proves
  nothing about what the prose says.
- A block that cannot run here (it needs a browser, a cluster, a debugger, an endless loop,
  an interactive prompt) is preceded by an HTML comment that says why, which neither
  GitHub nor MkDocs shows::

      <!-- not-run: serves forever; tests/test_example_app.py serves this app -->

  ``pycon`` and ``ipython`` fences (transcripts of a prompt) are Python too: they must be
  marked so.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

RUN_LANGUAGES = frozenset({"python", "py"})
TRANSCRIPT_LANGUAGES = frozenset({"pycon", "ipython"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_TITLE = re.compile(r"""\btitle=(["'])(?P<title>[^"']+)\1""")
_NOT_RUN = re.compile(r"^<!--\s*not-run:(?P<reason>.*?)-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    title: str | None
    code: str
    not_run: str | None  # the reason, when the block is marked not runnable

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in RUN_LANGUAGES or self.language in TRANSCRIPT_LANGUAGES

    @property
    def file(self) -> str | None:
        """The relative path this block is written to, when it is a file."""
        if self.title is None or self.title.startswith(("/", "~")) or self.not_run is not None:
            return None
        return self.title


def parse(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, with the directive written before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        info = match["info"].strip()
        language = info.split(maxsplit=1)[0].lower() if info else ""
        title_match = _TITLE.search(info)
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                break
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                language=language,
                title=title_match["title"] if title_match else None,
                code="\n".join(body) + "\n",
                not_run=_directive(lines, i),
            )
        )
        i = j + 1
    return blocks


def _directive(lines: list[str], fence_index: int) -> str | None:
    """The reason of a ``<!-- not-run: reason -->`` comment just before the fence."""
    k = fence_index - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k < 0:
        return None
    match = _NOT_RUN.match(lines[k].strip())
    return match["reason"].strip() if match else None


ALL_BLOCKS = [block for page in PAGES for block in parse(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.is_python]
RUN_PAGES = sorted(
    {b.page for b in PYTHON_BLOCKS if b.not_run is None and b.file is None},
    key=str,
)


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_pages_have_python_blocks() -> None:
    """The collector finds the blocks (a parser that finds none would pass everything)."""
    assert len(PAGES) > 10
    assert len(PYTHON_BLOCKS) > 20
    assert len(RUN_PAGES) > 5


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.where)
def test_every_python_block_runs_or_says_why_not(block: Block) -> None:
    if block.not_run is not None:
        assert len(block.not_run) >= 10, f"{block.where}: say why the block cannot run"
        return
    assert block.language not in TRANSCRIPT_LANGUAGES, (
        f"{block.where}: a {block.language} transcript cannot run: mark it <!-- not-run: why -->"
    )
    if block.file is not None:
        return  # a file may be broken on purpose; the page's run checks it was imported
    tree = ast.parse(block.code, filename=block.where)
    assert any(isinstance(node, ast.Assert) for node in ast.walk(tree)), (
        f"{block.where}: a block that runs asserts what the prose says"
    )


def test_readme_quick_start_commands() -> None:
    """The two quick-start commands of the README stay exactly these."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "$ python -m hotmod demo" in text
    assert '$ pip install -e ".[test]" && pytest' in text


# The interpreter that runs one page: blocks arrive as JSON on stdin; files are written,
# code is executed in one namespace. Code is compiled with the page's name and shifted to
# its line, so a traceback points into the Markdown file.
_RUNNER = r"""
import importlib, json, os, sys, traceback
sys.path.insert(0, os.getcwd())
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
loaded = set()  # every module file seen in sys.modules after a block ran

def seen():
    for m in list(sys.modules.values()):
        if getattr(m, "__file__", None):
            loaded.add(os.path.realpath(m.__file__))

for block in blocks:
    if block["file"] is not None:
        path = os.path.join(os.getcwd(), block["file"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(block["code"])
        importlib.invalidate_caches()
        continue
    code = compile("\n" * block["line"] + block["code"], block["page"], "exec")
    try:
        exec(code, namespace)
    except BaseException:
        print(json.dumps({"failed": block["where"], "traceback": traceback.format_exc()}))
        sys.stdout.flush()
        os._exit(1)
    seen()
unused = [
    b["where"]
    for b in blocks
    if b["file"] is not None and b["file"].endswith(".py")
    and os.path.realpath(os.path.join(os.getcwd(), b["file"])) not in loaded
]
print(json.dumps({"ran": sum(b["file"] is None for b in blocks), "unused_files": unused}))
sys.stdout.flush()
# Whatever a page left running (a reloader it did not close) must not hold the test up.
os._exit(0)
"""


@pytest.mark.parametrize("page", RUN_PAGES, ids=_page_id)
def test_page_blocks_run(page: Path, tmp_path: Path) -> None:
    chosen = sorted(
        (b for b in ALL_BLOCKS if b.page == page and b.not_run is None and (b.is_python or b.file)),
        key=lambda b: b.line,
    )
    blocks = [
        {"page": str(b.page), "where": b.where, "line": b.line, "code": b.code, "file": b.file}
        for b in chosen
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTMOD")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(blocks),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=50,
        check=False,
    )
    report_line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
    report = json.loads(report_line)
    assert proc.returncode == 0, (
        f"{report.get('failed', page)} failed:\n{report.get('traceback', '')}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    assert report["ran"] >= 1
    assert report["unused_files"] == [], f"files written but never imported: {report['unused_files']}"
