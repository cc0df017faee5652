"""The WSGI middleware: reloads between requests, a real Flask app served by werkzeug."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmod
import hotmod.web
from hotmod.web import RequestGate, WSGIMiddleware

from ..support import Pkg, write, write_replace
from ..support.webtools import EventStream, ignore_start_response

TIMEOUT = 10.0


def test_a_reload_waits_for_the_request_in_flight_and_holds_new_ones_back() -> None:
    gate = RequestGate()
    order: list[str] = []
    gate.enter()  # a request is running
    gate.returned()  # its body is still being sent
    reloading = threading.Event()

    def reload() -> None:
        reloading.set()
        order.append("reload")

    reloader = threading.Thread(target=gate.exclusive, args=(reload, TIMEOUT))
    reloader.start()
    arrived = threading.Event()

    def new_request() -> None:
        arrived.set()
        gate.enter()
        order.append("second request")
        gate.returned()
        gate.leave()

    second = threading.Thread(target=new_request)
    # The reload waits: nothing ran while the first request is in flight.
    assert not reloading.wait(0.2)
    second.start()
    assert arrived.wait(TIMEOUT)
    order.append("first request done")
    gate.leave()
    reloader.join(TIMEOUT)
    second.join(TIMEOUT)
    assert order == ["first request done", "reload", "second request"]


def test_a_request_nested_in_a_request_on_one_thread_passes_a_waiting_reload() -> None:
    gate = RequestGate()
    gate.enter()
    waiting = threading.Thread(target=gate.exclusive, args=(lambda: None, TIMEOUT))
    waiting.start()
    while not gate.reloading:
        waiting.join(0.001)
    gate.enter()  # would deadlock if it queued behind the reload
    gate.returned()
    gate.leave()
    gate.returned()
    gate.leave()
    waiting.join(TIMEOUT)
    assert not waiting.is_alive()
    assert gate.active == 0


def test_a_body_closed_on_another_thread_ends_the_request() -> None:
    gate = RequestGate()
    gate.enter()
    gate.returned()
    closer = threading.Thread(target=gate.leave)  # a server closing bodies from a pool
    closer.start()
    closer.join(TIMEOUT)
    assert gate.active == 0
    ran: list[bool] = []
    gate.exclusive(lambda: ran.append(True), TIMEOUT)
    assert ran == [True]


def test_a_reload_stops_waiting_for_a_request_that_never_ends(caplog: pytest.LogCaptureFixture) -> None:
    gate = RequestGate()
    gate.enter()
    ran: list[bool] = []
    gate.exclusive(lambda: ran.append(True), 0.05)
    assert ran == [True]
    assert "1 request(s) still running" in caplog.text
    gate.leave()


def local(environ: dict[str, Any]) -> dict[str, Any]:
    return {"HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1", **environ}


def call(app: Any, path: str = "/", method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, dict(headers)
        return lambda data: None

    body = app(local({"PATH_INFO": path, "REQUEST_METHOD": method}), start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return got["status"], got["headers"], data


def test_pages_get_the_script_and_only_app_code_counts_as_in_flight(pkg: Pkg) -> None:
    def page(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", "26")])
        return [b"<html><body>", b"</body></html>"]

    middleware = WSGIMiddleware(page, paths=[pkg.dir], backend="manual")
    try:
        status, headers, body = call(middleware)
        assert status == "200 OK"
        assert body.startswith(b"<html><body><script data-hotmod")
        assert int(headers["Content-Length"]) == len(body)
        assert headers["Cache-Control"] == "no-cache"
        _, head_headers, head_body = call(middleware, method="HEAD")
        assert head_body == b"<html><body></body></html>"  # the body is the server's to drop
        assert head_headers["Content-Length"] == headers["Content-Length"]

        seen: list[int] = []

        def stream(environ: dict[str, Any], start_response: Any) -> Any:
            start_response("200 OK", [("Content-Type", "text/plain")])
            seen.append(middleware.gate.active)
            yield b"a"
            seen.append(middleware.gate.active)
            yield b"b"

        middleware.app = stream
        body_iter = middleware(local({"PATH_INFO": "/", "REQUEST_METHOD": "GET"}), ignore_start_response)
        assert middleware.gate.active == 0  # the app call returned: nothing of it runs
        assert b"".join(body_iter) == b"ab"
        assert seen == [1, 1]  # while the body's generator runs, it counts
        assert middleware.gate.active == 0
        body_iter.close()  # type: ignore[attr-defined]
        assert middleware.gate.active == 0
    finally:
        middleware.close()


@pytest.fixture
def flask_app(pkg: Pkg) -> Iterator[tuple[Pkg, Any, int]]:
    pytest.importorskip("flask")
    from werkzeug.serving import make_server

    (pkg.dir / "templates").mkdir()
    (pkg.dir / "static").mkdir()
    write(pkg.dir / "templates" / "index.html", "<html><body><h1>{{ title }}</h1></body></html>")
    write(pkg.dir / "static" / "site.css", "h1 { color: blue }")
    pkg.module("helpers", "def title():\n    return 'first'\n")
    module = pkg.module(
        "site",
        "from flask import Flask, render_template\n"
        "import hotmod.web\n"
        "from . import helpers\n"
        "app = Flask(__name__)\n"
        "@app.get('/')\n"
        "def home():\n"
        "    return render_template('index.html', title=helpers.title())\n"
        f"hotmod.web.enable(app, paths=[{str(pkg.dir)!r}])\n",
    )
    server = make_server("127.0.0.1", 0, module.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pkg, module.app, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        module.app.wsgi_app.close()
        thread.join(TIMEOUT)


def get(port: int, path: str) -> tuple[dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


@pytest.mark.watchdog
def test_flask_app_follows_code_template_and_stylesheet_edits(flask_app: tuple[Pkg, Any, int]) -> None:
    pkg, app, port = flask_app
    headers, page = get(port, "/")
    assert "<h1>first</h1><script data-hotmod" in page
    assert headers["cache-control"] == "no-cache"
    events = EventStream(port)
    try:
        events.next("hello")
        write_replace(pkg.path("helpers"), "def title():\n    return 'second'\n")
        assert events.next("reload")["modules"] == [pkg.qualname("helpers")]
        assert "<h1>second</h1>" in get(port, "/")[1]

        write_replace(pkg.dir / "templates" / "index.html", "<html><body><h2>{{ title }}</h2></body></html>")
        assert events.next("reload")["assets"] == ["index.html"]
        assert "<h2>second</h2>" in get(port, "/")[1]  # Flask was told to re-read templates

        write_replace(pkg.dir / "static" / "site.css", "h1 { color: red }")
        assert events.next("css")["paths"] == ["site.css"]
        headers, css = get(port, "/static/site.css")
        assert css == "h1 { color: red }"
        assert headers["cache-control"] == "no-cache"
    finally:
        events.close()
    assert isinstance(app.wsgi_app, WSGIMiddleware)
    assert app.wsgi_app.live is not None
    assert isinstance(app.wsgi_app.live.reloader, hotmod.Reloader)


def test_enable_wraps_flask_and_finds_its_folders(tmp_path: Path) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("site", root_path=str(tmp_path))
    hotmod.web.enable(app, paths=[tmp_path], backend="manual")
    assert isinstance(app.wsgi_app, WSGIMiddleware)
    assert app.jinja_env.auto_reload is True
    find = app.wsgi_app.options.find_assets
    assert find is not None
    assert [Path(p) for p in find()] == [tmp_path / "static", tmp_path / "templates"]
