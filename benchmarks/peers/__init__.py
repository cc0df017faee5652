"""The peer benchmarks: hotmod beside the tools people use instead, each in child processes.

Each module here has ``run(quick) -> rows`` and a ``main()`` that prints them as one JSON
line (``_child.emit_rows``); ``python -m benchmarks`` runs each registered module as a
child of its own, and a module that fails or runs past its timeout becomes a row saying so.
Inside a module, measure each tool in a child with ``_child.run_child(..., figure=,
tool=, needs=)``: a tool that is not installed, fails or hangs becomes its own row and the
module's other rows still count.

**Adding a peer module is one line below**: its dotted name, the packages it cannot run
without (importable names; those of one tool only go to that tool's ``run_child``), and how
long it may take. A registered module that is not written yet is reported as missing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    module: str
    needs: tuple[str, ...] = ()  # importable names the whole module needs
    timeout: float = 3600.0  # seconds, the whole module in its child


PEERS: tuple[Peer, ...] = (
    Peer("benchmarks.peers.latency"),  # jurigged, watchfiles, hupper: checked per tool
    Peer("benchmarks.peers.cells", needs=("IPython",)),
    Peer("benchmarks.peers.edits"),  # IPython, jurigged: checked per tool
    Peer("benchmarks.peers.polling", needs=("watchdog",)),
    Peer("benchmarks.peers.footprint"),
    Peer("benchmarks.peers.read_noise", needs=("watchdog",)),
    Peer("benchmarks.peers.web_page", needs=("starlette", "uvicorn", "playwright")),
    Peer("benchmarks.peers.notebook", needs=("IPython",)),  # jurigged: checked per tool
    Peer("benchmarks.peers.tracking"),  # IPython, jurigged: checked per tool
    Peer("benchmarks.peers.cluster", needs=("distributed",)),
    Peer("benchmarks.peers.debugger", needs=("debugpy",)),
    Peer("benchmarks.peers.fastapi_app", needs=("fastapi", "uvicorn", "pydantic")),
)
