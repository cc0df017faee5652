"""B11: a FastAPI app with a pydantic model, edited while uvicorn serves it.

Each tool serves its own copy of a small project written to a temporary folder:
``models.py`` holds a pydantic ``Item`` whose ``label()`` method a route returns, and
``app.py`` creates ``app = FastAPI()``. hotmod's copy calls ``hotmod.web.enable(app)``
and is edited in place; the restart peer's copy is the same app without that line, served
by ``uvicorn --reload``. Every save is editor-style (a temp file renamed over the module).

- **A model method edited**: ``Item.label()`` returns a new string; the figure runs from
  the start of the save until ``GET /label`` answers with it (polled every 5 ms).
- **A route added**: a new ``@app.get`` endpoint appended to ``app.py`` (each save adds
  one more); the figure runs until ``GET`` on its path answers 200 with its body.
- **State**: ``GET /count`` bumps a plain module-level counter in ``app.py``; it is
  called a few times before the saves and once after them. The row is the count that
  last call saw: one more than before when the app's memory survived the saves, 1 when
  a restart lost it.

A tool that never serves an edit within ``EDIT_TIMEOUT`` gets a row saying so (with the
end of the server's output), not a figure.

``python -m benchmarks.peers.fastapi_app [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._util import fmt_seconds, row, save_like_an_editor
from ._child import TAIL_CHARS, emit_rows, failure_row, log
from .web_page import Served

TAG = "B11"
METHOD = "B11 save -> FastAPI app serves a pydantic model method's edit"
ROUTE = "B11 save -> FastAPI app serves a new route"
STATE = "B11 in-memory counter after the saves (3 requests before, 1 after; kept = 4)"
TOOLS = ("hotmod.web (uvicorn, in place)", "uvicorn --reload")
EDIT_TIMEOUT = 30.0  # seconds a save may take to be served before it counts as never served
COUNTS_BEFORE = 3

MODELS = """\
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float

    def label(self) -> str:
        return "LABEL"
"""

APP = """\
from fastapi import FastAPI

from models import Item

HITS = {"count": 0}  # in memory only: a restart starts it again
app = FastAPI()


@app.get("/label")
def label() -> dict[str, str]:
    return {"label": Item(name="pen", price=1.5).label()}


@app.get("/count")
def count() -> dict[str, int]:
    HITS["count"] += 1
    return {"count": HITS["count"]}
"""

ENABLE = """
import hotmod.web

hotmod.web.enable(app)
"""


def added_route(i: int) -> str:
    return textwrap.dedent(f"""

        @app.get("/added/{i}")
        def added_{i}() -> dict[str, int]:
            return {{"added": {i}}}
        """)


def get(port: int, path: str) -> tuple[int, Any] | None:
    """The status and JSON body of ``GET path``; None while the server cannot answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, None
    except (OSError, http.client.HTTPException):
        return None  # restarting
    finally:
        connection.close()


def served_output(served: Served) -> str:
    lines = []
    while True:
        try:
            lines.append(served.lines.get_nowait())
        except queue.Empty:
            return "".join(lines)[-TAIL_CHARS:]


def time_save(path: Path, text: str, answered: Callable[[], bool]) -> float | None:
    """Seconds from the start of an editor-style save until ``answered()``; None if never."""
    started = time.perf_counter()
    save_like_an_editor(path, text)
    deadline = started + EDIT_TIMEOUT
    while not answered():
        if time.perf_counter() > deadline:
            return None
        time.sleep(0.005)
    return time.perf_counter() - started


def measure(tool: str, reload: bool, saves: int) -> list[dict[str, Any]]:
    settle = 1.0 if reload else 0.1  # let the watcher and the server settle between saves
    with tempfile.TemporaryDirectory(prefix="b11-") as tmp:
        folder = Path(tmp)
        models, app = folder / "models.py", folder / "app.py"
        models.write_text(MODELS)
        app_text = APP if reload else APP + ENABLE
        app.write_text(app_text)
        served = Served(folder, reload)
        rows: list[dict[str, Any]] = []
        try:
            port = served.port
            deadline = time.monotonic() + EDIT_TIMEOUT
            while get(port, "/label") is None:  # listening is not yet answering
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app does not answer:\n{served_output(served)}")
                time.sleep(0.05)
            for _ in range(COUNTS_BEFORE):
                get(port, "/count")
            method: list[float] = []
            for i in range(saves):
                time.sleep(settle)
                want = f"label {i}"

                def new_label(want: str = want) -> bool:
                    return get(port, "/label") == (200, {"label": want})

                took = time_save(models, MODELS.replace('"LABEL"', json.dumps(want)), new_label)
                if took is None:
                    note = f"failed: save {i + 1} not served within {EDIT_TIMEOUT:g} s (GET /label)"
                    log(TAG, f"{tool}: {note}")
                    rows.append(failure_row(METHOD, tool, note, served_output(served)))
                    break
                method.append(took)
            else:
                rows.append(row(METHOD, tool, method))
            added: list[float] = []
            for i in range(saves):
                time.sleep(settle)
                app_text += added_route(i)

                def new_route(i: int = i) -> bool:
                    return get(port, f"/added/{i}") == (200, {"added": i})

                took = time_save(app, app_text, new_route)
                if took is None:
                    answer = get(port, f"/added/{i}")
                    note = (
                        f"failed: route {i + 1} not served within {EDIT_TIMEOUT:g} s "
                        f"(GET /added/{i} answers {answer})"
                    )
                    log(TAG, f"{tool}: {note}")
                    rows.append(failure_row(ROUTE, tool, note, served_output(served)))
                    break
                added.append(took)
            else:
                rows.append(row(ROUTE, tool, added))
            time.sleep(settle)
            answer = get(port, "/count")
            if answer is None or answer[0] != 200:
                rows.append(failure_row(STATE, tool, f"failed: GET /count answered {answer}"))
            else:
                rows.append(row(STATE, tool, [answer[1]["count"]], "count"))
        finally:
            served.stop()
    for r in rows:
        if r.get("unit") == "s" and "median" in r:
            log(TAG, f"{tool}: {r['figure']}: median {fmt_seconds(r['median'])}, p90 {fmt_seconds(r['p90'])}")
        elif "median" in r:
            log(TAG, f"{tool}: {r['figure']}: {r['median']:g}")
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    saves = 5 if quick else 20
    rows: list[dict[str, Any]] = []
    for tool, reload in zip(TOOLS, (False, True), strict=True):
        rows.extend(measure(tool, reload, saves))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 saves of each kind instead of 20")
    return emit_rows(TAG, run, parser.parse_args().quick)


if __name__ == "__main__":
    raise SystemExit(main())
