"""End to end on loopback: uvicorn serves the example app in a child process, files are
edited on disk, and the running server follows without a restart."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import write_replace
from ..support.webtools import EventStream, Server, copy_example, replace_in

websockets_sync = pytest.importorskip("websockets.sync.client")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    server = Server(copy_example(tmp_path / "web_app"))
    try:
        yield server
    finally:
        server.stop()


def test_handler_edit_applies_at_next_request_and_keeps_state_and_websocket(served: Server) -> None:
    events = EventStream(served.port)
    with websockets_sync.connect(f"ws://127.0.0.1:{served.port}/ws", open_timeout=10) as socket:
        assert events.next("hello")["server"]
        socket.send("one")
        assert socket.recv(timeout=10) == "echo: one"
        served.get("/")
        served.get("/")
        before = served.status()
        assert before == {"title": "hotmod web example", "visits": 2, "messages": 1}

        replace_in(served.folder / "pages.py", '"hotmod web example"', '"edited while serving"')
        reload = events.next("reload")
        assert reload["modules"] == ["pages"]
        after = served.status()
        # New code, same process: the in-memory counters carried on.
        assert after == {"title": "edited while serving", "visits": 2, "messages": 1}
        code, _, page = served.get("/")
        assert code == 200
        assert '<h1 id="title">edited while serving</h1>' in page

        replace_in(served.folder / "chat.py", 'f"echo: {text}"', 'f"reply: {text.upper()}"')
        assert events.next("reload")["modules"] == ["chat"]
        # The socket opened before both edits is still open; its handler calls the new helper.
        socket.send("two")
        assert socket.recv(timeout=10) == "reply: TWO"
        assert served.status()["messages"] == 2
        assert served.process.poll() is None
    events.close()


def test_config_file_declared_with_depends_on_is_read_again(served: Server) -> None:
    events = EventStream(served.port)
    try:
        events.next("hello")
        _, _, page = served.get("/")
        assert "Hello from settings.json" in page
        write_replace(served.folder / "settings.json", '{"greeting": "Greeting re-read"}\n')
        assert events.next("reload")["modules"] == ["settings"]
        _, _, page = served.get("/")
        assert "Greeting re-read" in page
        assert 'Visits: <span id="visits">2</span>' in page
    finally:
        events.close()


def test_broken_edit_is_announced_with_its_line_and_the_old_code_keeps_serving(served: Server) -> None:
    events = EventStream(served.port)
    try:
        events.next("hello")
        pages = served.folder / "pages.py"
        good = pages.read_text()
        write_replace(pages, good.replace('return "hotmod web example"', 'return "half" +'))
        failed = events.next("failed")
        assert failed["status"] == "aborted"
        assert failed["file"] == str(pages.resolve())
        assert failed["line"] == good.splitlines().index('    return "hotmod web example"') + 1
        assert "SyntaxError" in str(failed["detail"]) or "invalid syntax" in str(failed["detail"])
        assert served.status()["title"] == "hotmod web example"
        write_replace(pages, good.replace("hotmod web example", "fixed"))
        assert events.next("reload")["modules"] == ["pages"]
        assert served.status()["title"] == "fixed"
    finally:
        events.close()


def test_pages_get_the_script_and_assets_are_announced_and_never_cached(served: Server) -> None:
    events = EventStream(served.port)
    try:
        events.next("hello")
        _, headers, page = served.get("/")
        assert headers["cache-control"] == "no-cache"
        assert int(headers["content-length"]) == len(page.encode())
        assert page.count("<script data-hotmod") == 1
        assert page.index("<script data-hotmod") < page.rindex("</body>")
        _, headers, css = served.get("/static/style.css")
        assert headers["cache-control"] == "no-cache"
        assert "data-hotmod" not in css

        write_replace(served.folder / "static" / "style.css", css.replace("40, 40, 120", "200, 0, 0"))
        assert events.next("css")["paths"] == ["style.css"]
        replace_in(served.folder / "templates" / "index.html", "Visits:", "Visit count:")
        assert events.next("reload")["assets"] == ["index.html"]
        _, _, page = served.get("/")
        assert "Visit count:" in page
    finally:
        events.close()


def test_stopping_the_server_ends_open_event_streams(served: Server) -> None:
    events = EventStream(served.port)
    events.next("hello")
    # uvicorn waits for open responses before it exits; the stream must end by itself.
    # (uvicorn re-raises the SIGTERM once it has shut down gracefully.)
    assert served.stop() == -signal.SIGTERM
    assert events.ended.wait(10)
    events.close()
    assert "Application shutdown complete" in served.output()
    assert "Waiting for connections to close" not in served.output()
