"""B8: from a save to the edited page, on the example web app (examples/web_app).

Each tool serves its own copy of the app with uvicorn; every save is editor-style (a
temp file renamed over ``pages.py``) and changes the page's title.

- **In the browser**: headless Chromium has the page open. The figure runs from the
  start of the save to the ``DOMContentLoaded`` of the page that shows the new title,
  read from the page's own clock (``performance.timeOrigin``, the same wall clock).
  hotmod: the server applies the edit in place, the page reloads on the event. uvicorn
  ``--reload``: the server restarts; the page carries hotmod's script with in-place
  reloading off (``paths=[]``), so it reconnects and reloads when the new server
  answers: the best a restart gets without someone pressing F5.
- **Over HTTP**: ``GET /status`` every 5 ms until the answer has the new title: the
  first moment any client could see the edit.

``python -m benchmarks.peers.web_page [--quick]`` prints the rows as one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .._util import row, save_like_an_editor
from ._child import PROJECT, emit, failure_row

EXAMPLE = PROJECT / "examples" / "web_app"
READY_TIMEOUT = 60.0
PAGE_TIMEOUT_MS = 60_000
TITLE = '"hotmod web example"'
BROWSER = "B8 save -> edited page shown in the browser (example web app)"
HTTP = "B8 save -> server answers with the edit (example web app, HTTP poll)"
TOOLS = ("hotmod.web (uvicorn, in place)", "uvicorn --reload")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOADED_AT = (
    "document.addEventListener('DOMContentLoaded', () => {"
    " window.__loadedAt = performance.timeOrigin + performance.now(); })"
)


class Served:
    def __init__(self, folder: Path, reload: bool) -> None:
        extra = ["--reload"] if reload else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", "0", "--log-level", "warning", *extra],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = self._port()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def _port(self) -> int:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            # --log-level warning hides the banner: find the port from the socket table.
            port = _listening_port(self.process.pid)
            if port:
                return port
            time.sleep(0.02)
        raise RuntimeError("uvicorn did not start")

    def title(self) -> str | None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/status")
            return str(json.loads(connection.getresponse().read())["title"])
        except (OSError, ValueError, http.client.HTTPException):
            return None  # restarting
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _listening_port(pid: int) -> int | None:
    """The TCP port the process listens on (under --reload, the supervisor holds it)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if match := re.fullmatch(r"socket:\[(\d+)\]", target):
            inodes.add(match.group(1))
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
            return int(fields[1].split(":")[1], 16)
    return None


def copy_app(folder: Path, in_place: bool) -> Path:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if not in_place:  # keep the page's script, drop hotmod's own reloading
        app = folder / "app.py"
        text = app.read_text()
        old = 'hotmod.web.enable(app, assets=[HERE / "templates"])'
        assert old in text
        app.write_text(text.replace(old, 'hotmod.web.enable(app, assets=[HERE / "templates"], paths=[])'))
    return folder


def measure(tool: str, reload: bool, saves: int, browser: Any | None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="b8-") as tmp:
        folder = copy_app(Path(tmp) / "web_app", in_place=not reload)
        pages = folder / "pages.py"
        original = pages.read_text()
        served = Served(folder, reload)
        shown: list[float] = []
        answered: list[float] = []
        try:
            page = None
            if browser is not None:
                context = browser.new_context()
                context.add_init_script(LOADED_AT)
                page = context.new_page()
                page.set_default_timeout(PAGE_TIMEOUT_MS)
                page.goto(f"http://127.0.0.1:{served.port}/")
            for i in range(saves):
                if page is not None:
                    page.wait_for_function("() => window.__hotmod && window.__hotmod.connected")
                title = f"edit {i}"
                time.sleep(1.0 if reload else 0.1)  # let the watcher and server settle
                started = time.time()
                save_like_an_editor(pages, original.replace(TITLE, json.dumps(title)))
                while served.title() != title:
                    time.sleep(0.005)
                answered.append(time.time() - started)
                if page is not None:
                    page.wait_for_function(f"() => document.title === {json.dumps(title)}")
                    shown.append(page.evaluate("() => window.__loadedAt") / 1000 - started)
            if page is not None:
                context.close()
        finally:
            served.stop()
    rows = [row(HTTP, tool, answered)]
    if shown:
        rows.append(row(BROWSER, tool, shown))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    saves = 5 if args.quick else 20
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    rows: list[dict[str, Any]] = []

    def run(browser: Any | None) -> None:
        for tool, reload in zip(TOOLS, (False, True), strict=True):
            rows.extend(measure(tool, reload, saves, browser))

    if chromium is None:
        print("B8: no chromium; the browser rows are skipped", file=sys.stderr)
        run(None)
        note = "skipped: no chromium here (Debian's chromium package)"
        rows.extend(failure_row(BROWSER, tool, note) for tool in TOOLS)
    else:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                run(browser)
            finally:
                browser.close()
    emit(rows)


if __name__ == "__main__":
    main()
