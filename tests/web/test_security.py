"""hotmod.web under attack (issue 19, findings 1-6): each test performs the attack and
checks that it now gets nothing. In process (ASGI messages, WSGI calls) where that
shows it, on a real server (uvicorn, Werkzeug) where the server is part of it."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmod
import hotmod.web
from hotmod.web import WSGIMiddleware
from hotmod.web._html import Injector, cache_control
from hotmod.web.asgi import ASGIMiddleware, Message, Receive, Scope, Send
from hotmod.web.wsgi import ExcInfo

from ..support import Pkg, write
from ..support.webtools import Server, copy_example, ignore_start_response

TIMEOUT = 10.0
LOCAL = [(b"host", b"127.0.0.1:8000")]
SECRET = "postgresql://app:hunter2@db.internal/prod"


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self.arrived.set()

    @property
    def start(self) -> Message:
        return self.messages[0]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.start["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def responder(
    content_type: bytes, chunks: list[bytes], extra: tuple[tuple[bytes, bytes], ...] = (), status: int = 200
) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        length = str(sum(map(len, chunks))).encode()
        headers = [(b"content-type", content_type), (b"content-length", length), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})
        if not chunks:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def scope(
    path: str = "/",
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: str = "127.0.0.1",
) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "method": method,
        "headers": LOCAL if headers is None else headers,
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
    }


def request(middleware: ASGIMiddleware, **options: Any) -> Recorder:
    send = Recorder()

    async def run() -> None:
        await middleware(scope(**options), no_body, send)
        await asyncio.to_thread(close, middleware)

    asyncio.run(run())
    return send


def close(middleware: ASGIMiddleware) -> None:
    if middleware.live is not None:
        middleware.live.close()


@pytest.fixture
def quiet(pkg: Pkg) -> dict[str, Any]:
    return {"paths": [pkg.dir], "backend": "manual"}


PAGE = [b"<html><body><p>page</p>", b"</body></html>"]


# -- 1: who may connect, and what details go where ---------------------------------------------------


def test_a_foreign_host_gets_neither_the_stream_nor_the_script(quiet: dict[str, Any]) -> None:
    rebinding = [(b"host", b"attacker.example:8000")]
    sent = request(
        ASGIMiddleware(responder(b"text/html", PAGE), **quiet), path="/__hotmod__/events", headers=rebinding
    )
    assert sent.start["status"] == 403
    assert b"event:" not in sent.body
    page = request(ASGIMiddleware(responder(b"text/html", PAGE), **quiet), headers=rebinding)
    assert page.body == b"".join(PAGE)  # the app's answer, untouched
    assert b"cache-control" not in page.headers

    for headers in ([], [(b"host", b"localhost:8000"), (b"origin", b"http://attacker.example")]):
        sent = request(
            ASGIMiddleware(responder(b"text/html", PAGE), **quiet), path="/__hotmod__/events", headers=headers
        )
        assert sent.start["status"] == 403
    # A page on another local port (another dev server) may not read this one's stream.
    other_port = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:3000")]
    sent = request(
        ASGIMiddleware(responder(b"text/html", PAGE), **quiet), path="/__hotmod__/events", headers=other_port
    )
    assert sent.start["status"] == 403


def test_a_client_beyond_loopback_is_refused_even_with_a_loopback_host(quiet: dict[str, Any]) -> None:
    middleware = ASGIMiddleware(responder(b"text/html", PAGE), **quiet)
    sent = request(middleware, path="/__hotmod__/events", client="203.0.113.9")
    assert sent.start["status"] == 403
    public = [(b"host", b"app.example.com")]
    sent = request(
        ASGIMiddleware(responder(b"text/html", PAGE), **quiet), headers=public, client="203.0.113.9"
    )
    assert b"data-hotmod" not in sent.body
    assert sent.body == b"".join(PAGE)
    # The finding's production case: a public client naming the public host.
    sent = request(
        ASGIMiddleware(responder(b"text/html", PAGE), **quiet),
        path="/__hotmod__/events",
        headers=public,
        client="203.0.113.9",
    )
    assert sent.start["status"] == 403
    # Listed, the name is served to clients anywhere (without failure details).
    listed = ASGIMiddleware(responder(b"text/html", PAGE), allowed_hosts=["app.example.com"], **quiet)
    sent = request(listed, headers=public, client="203.0.113.9")
    assert b"data-hotmod" in sent.body


@pytest.mark.parametrize(
    ("host", "client", "allowed"),
    [
        ("localhost:8000", "127.0.0.1", True),
        ("app.localhost", "::1", True),
        ("[::1]:8000", "::ffff:127.0.0.1", True),
        ("127.0.0.2", "127.0.0.1", True),
        ("0.0.0.0:8000", "127.0.0.1", False),  # browsers once sent this to loopback
        ("localhost.attacker.example", "127.0.0.1", False),
        ("dev.example.test", "10.0.0.5", True),
        ("sub.dev.example.test", "10.0.0.5", False),
        ("api.shop.test", "10.0.0.5", True),
        ("shop.test", "10.0.0.5", True),
        ("evilshop.test", "10.0.0.5", False),
        ("localhost:8000", "10.0.0.5", False),
        ("localhost:80:80", "127.0.0.1", False),
        (None, "127.0.0.1", False),
    ],
)
def test_which_hosts_and_clients_are_allowed(host: str | None, client: str, allowed: bool) -> None:
    from hotmod.web._access import Access

    access = Access(["dev.example.test", ".shop.test"])
    assert access.check(host, client).allowed is allowed


def test_allowed_hosts_that_are_not_host_names_get_a_clear_error() -> None:
    with pytest.raises(TypeError, match="a list of host names"):
        ASGIMiddleware(responder(b"text/html", PAGE), allowed_hosts="dev.example")
    with pytest.raises(ValueError, match=r"'dev\.example:http' is not a host name"):
        WSGIMiddleware(lambda e, s: [], allowed_hosts=["dev.example:http"])
    with pytest.raises(ValueError, match="max_streams must be at least 1"):
        ASGIMiddleware(responder(b"text/html", PAGE), max_streams=0)


async def _failure_events(
    pkg: Pkg, streams: dict[str, tuple[list[tuple[bytes, bytes]], str]]
) -> dict[str, bytes]:
    """Open one stream per entry, make a reload fail with a secret in its message."""
    pkg.module("db", "URL = 'sqlite://'\n")
    middleware = ASGIMiddleware(
        responder(b"text/plain", [b"ok"]), paths=[pkg.dir], backend="manual", allowed_hosts=["dev.example"]
    )
    await middleware(scope(), no_body, Recorder())
    live = middleware.live
    assert live is not None
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    sends = {name: Recorder() for name in streams}
    tasks = [
        asyncio.create_task(
            middleware(scope("/__hotmod__/events", headers=h, client=c), receive, sends[name])
        )
        for name, (h, c) in streams.items()
    ]
    while live.events.listeners < len(streams):
        await asyncio.sleep(0)
    applied = asyncio.Event()
    live.reloader.subscribe(lambda result: applied.set())
    write(pkg.path("db"), f"URL = 'x'\nraise RuntimeError('cannot connect to {SECRET}')\n")
    live.reloader.notify(pkg.path("db"))
    await asyncio.wait_for(applied.wait(), TIMEOUT)
    for send in sends.values():  # the event is on its way through the loop
        while b"event: failed" not in send.body:
            send.arrived.clear()
            await asyncio.wait_for(send.arrived.wait(), TIMEOUT)
    gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    await asyncio.to_thread(live.close)
    return {name: send.body for name, send in sends.items()}


def test_failure_details_go_to_loopback_clients_only(pkg: Pkg) -> None:
    bodies = asyncio.run(
        _failure_events(
            pkg,
            {
                "local": (LOCAL, "127.0.0.1"),
                "remote": ([(b"host", b"dev.example:8000")], "192.168.1.20"),
            },
        )
    )
    local = _event(bodies["local"], "failed")
    assert SECRET in str(local["detail"])
    assert local["file"] == str(pkg.path("db"))
    remote = _event(bodies["remote"], "failed")
    assert remote == {
        "status": "aborted",
        "summary": "the last edit did not apply (details in the server's log)",
        "detail": None,
        "file": None,
        "line": None,
    }
    assert SECRET.encode() not in bodies["remote"]
    assert str(pkg.dir).encode() not in bodies["remote"]


def _event(body: bytes, name: str) -> dict[str, Any]:
    for block in body.split(b"\n\n"):
        lines = block.split(b"\n")
        if f"event: {name}".encode() in lines:
            data = next(line[5:] for line in lines if line.startswith(b"data:"))
            result: dict[str, Any] = json.loads(data)
            return result
    raise AssertionError(f"no {name} event in {body!r}")


def test_the_real_server_refuses_a_rebinding_host(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    server = Server(copy_example(tmp_path / "web_app"))
    try:
        for host in ("attacker.example", f"attacker.example:{server.port}"):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            connection.request("GET", "/__hotmod__/events", headers={"Host": host})
            response = connection.getresponse()
            assert response.status == 403
            assert b"event:" not in response.read()
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            connection.request("GET", "/", headers={"Host": host})
            page = connection.getresponse().read()
            connection.close()
            assert b"<h1" in page
            assert b"data-hotmod" not in page
    finally:
        server.stop()
    assert "Host 'attacker.example' is not allowed" in server.output()


# -- 2: pages stream through; nothing is held -----------------------------------------------------------


def test_an_endless_page_streams_through_in_step(quiet: dict[str, Any]) -> None:
    produced: list[int] = []
    chunk = b"<p>" + b"x" * 65536 + b"</p>"
    client = Recorder()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": b"<html><body>", "more_body": True})
        for n in range(200):  # 13 MiB; the finding's stream never ended
            produced.append(n)
            # Each chunk has reached the client before the next one is made.
            assert len(client.messages) == n + 2, "the middleware is holding the page back"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"</body></html>", "more_body": False})

    middleware = ASGIMiddleware(app, **quiet)

    async def run() -> None:
        await middleware(scope(), no_body, client)
        await asyncio.to_thread(close, middleware)

    asyncio.run(run())
    assert len(produced) == 200
    assert max(len(m.get("body", b"")) for m in client.messages[1:-1]) <= len(chunk) + 16
    assert client.body.endswith(b"</script></body></html>")
    assert b"content-length" not in client.headers


def test_an_endless_wsgi_page_streams_through_in_step(pkg: Pkg) -> None:
    produced: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        n = 0
        while True:  # never ends: the finding's server grew to 930 MiB
            produced.append(n)
            yield b"<p>" + b"x" * 65536 + b"</p>"
            n += 1

    middleware = WSGIMiddleware(app, paths=[pkg.dir], backend="manual")
    environ = {
        "PATH_INFO": "/",
        "REQUEST_METHOD": "GET",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    try:
        headers: list[Any] = []

        def start_response(
            status: str, h: list[tuple[str, str]], exc_info: ExcInfo | None = None, /
        ) -> Callable[[bytes], object]:
            headers.append(h)
            return lambda data: None

        body = middleware(environ, start_response)
        chunks = iter(body)
        for n in range(100):
            out = next(chunks)
            assert len(produced) == n + 1  # one made, one passed on
            assert len(out) >= 65536 - 16
        body.close()  # type: ignore[attr-defined]
        assert "Content-Length" not in dict(headers[0])
    finally:
        middleware.close()


def _inject_all(snippet: bytes, page: bytes, sizes: list[int]) -> bytes:
    injector = Injector(snippet)
    out, at = [], 0
    for size in sizes:
        out.append(injector.feed(page[at : at + size]))
        at += size
    out.append(injector.feed(page[at:]))
    out.append(injector.finish())
    return b"".join(out)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (b"<html><body><p>x</p></body></html>", b"<html><body><p>x</p>@@</body></html>"),
        # A "</body>" in a script (before or after the real one) is not the place.
        (
            b'<body><script>document.write("</body>")</script><p>after</p></body>',
            b'<body><script>document.write("</body>")</script><p>after</p>@@</body>',
        ),
        (
            b'<body><p>x</p></body><script>var s = "</body>";</script>',
            b'<body><p>x</p>@@</body><script>var s = "</body>";</script>',
        ),
        (
            b"<body><!-- </body> --><div title='</body>'>y</div></BODY >",
            b"<body><!-- </body> --><div title='</body>'>y</div>@@</BODY >",
        ),
        (b"<body><textarea></body></textarea>", b"<body><textarea></body></textarea>@@"),
        (b"<p>no closing tag", b"<p>no closing tag@@"),
        (b"", b""),
    ],
)
def test_the_script_goes_at_the_first_real_closing_tag_whatever_the_chunks(
    page: bytes, expected: bytes
) -> None:
    for cut in range(len(page) + 1):
        assert _inject_all(b"@@", page, [cut]) == expected
    assert _inject_all(b"@@", page, [1] * len(page)) == expected


# -- 3: off in production --------------------------------------------------------------------------------


def test_hotmod_0_turns_enable_and_the_middlewares_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOTMOD", "0")
    starlette = pytest.importorskip("starlette.applications")
    app = starlette.Starlette()
    assert hotmod.web.enable(app, paths=[tmp_path], backend="manual") is app
    assert app.user_middleware == []

    middleware = ASGIMiddleware(responder(b"text/html", PAGE), paths=[tmp_path], backend="manual")
    sent = request(middleware, path="/__hotmod__/events")
    assert middleware.live is None  # no reloader, no watcher
    assert sent.body == b"".join(PAGE)  # the app answered the stream's path itself

    calls: list[str] = []

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<body></body>"]

    wrapped = WSGIMiddleware(wsgi_app, paths=[tmp_path], backend="manual")
    assert wrapped({"PATH_INFO": "/__hotmod__/events"}, ignore_start_response) == [b"<body></body>"]
    assert calls == ["/__hotmod__/events"]
    assert wrapped.live is None

    monkeypatch.setenv("HOTMOD", "1")
    from hotmod._switch import disabled

    assert not disabled()


def test_a_server_listening_beyond_loopback_is_warned_about_once(
    quiet: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="hotmod.web"):
            request(ASGIMiddleware(responder(b"text/html", PAGE), **quiet))
    warnings = [r.getMessage() for r in caplog.records if "other machines can reach" in r.getMessage()]
    assert len(warnings) == 1
    assert f"0.0.0.0:{port}" in warnings[0]
    assert "HOTMOD=0" in warnings[0]


# -- 4: limits --------------------------------------------------------------------------------------------


def test_event_streams_are_capped(quiet: dict[str, Any]) -> None:
    middleware = ASGIMiddleware(responder(b"text/plain", [b"ok"]), max_streams=2, **quiet)

    async def run() -> list[Recorder]:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        sends = [Recorder() for _ in range(3)]
        tasks = [asyncio.create_task(middleware(scope("/__hotmod__/events"), receive, s)) for s in sends[:2]]
        while middleware.live is None or middleware.live.events.listeners < 2:
            await asyncio.sleep(0)
        await asyncio.wait_for(middleware(scope("/__hotmod__/events"), receive, sends[2]), TIMEOUT)
        gone.set()
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
        assert middleware.live.events.listeners == 0  # the streams left with their clients
        await asyncio.to_thread(close, middleware)
        return sends

    first, second, third = asyncio.run(run())
    assert first.start["status"] == second.start["status"] == 200
    assert third.start["status"] == 503
    assert third.headers[b"retry-after"] == b"5"


@pytest.fixture
def werkzeug_server(pkg: Pkg) -> Iterator[tuple[WSGIMiddleware, int, dict[str, Any]]]:
    pytest.importorskip("werkzeug")
    from werkzeug.serving import make_server

    shared: dict[str, Any] = {"produced": threading.Event(), "chunks": 0}
    pkg.module("views", "def title():\n    return 'first'\n")

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        if environ["PATH_INFO"] == "/download":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return _download(shared)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([pkg.import_("views").title().encode()])

    middleware = WSGIMiddleware(app, paths=[pkg.dir], backend="manual", drain_timeout=30, max_streams=4)
    # hotmod.web.wsgi.StartResponse takes an exc_info whose traceback may be None, typeshed's
    # (which werkzeug's server passes) does not: the protocol is wider than PEP 3333's.
    server = make_server("127.0.0.1", 0, middleware, threaded=True)  # type: ignore[arg-type]

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield middleware, server.server_port, shared
    finally:
        server.shutdown()
        server.server_close()
        middleware.close()
        thread.join(TIMEOUT)


def _download(shared: dict[str, Any]) -> Iterator[bytes]:
    block = b"\0" * 65536
    for _ in range(2048):  # 128 MiB: far more than any socket buffer
        shared["chunks"] += 1
        shared["produced"].set()
        yield block


def _get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()


def test_a_client_that_never_reads_a_download_stalls_no_one(
    pkg: Pkg, werkzeug_server: tuple[WSGIMiddleware, int, dict[str, Any]]
) -> None:
    middleware, port, shared = werkzeug_server
    assert _get(port, "/") == b"first"  # starts the reloader
    stuck = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stuck.sendall(b"GET /download HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
        assert shared["produced"].wait(TIMEOUT)
        live = middleware.live
        assert live is not None
        applied = threading.Event()
        live.reloader.subscribe(lambda result: applied.set())
        write(pkg.path("views"), "def title():\n    return 'second'\n")
        live.reloader.notify(pkg.path("views"))
        # Before: the reload waited drain_timeout (30 s here) for the download to close,
        # and every request behind it waited too.
        assert applied.wait(TIMEOUT), "the reload waited for the stuck download"
        assert _get(port, "/") == b"second"
        assert shared["chunks"] < 2048  # the download really is stuck
    finally:
        stuck.close()


def test_a_wsgi_stream_is_dropped_soon_after_its_client_goes(
    werkzeug_server: tuple[WSGIMiddleware, int, dict[str, Any]],
) -> None:
    middleware, port, _ = werkzeug_server
    assert _get(port, "/") == b"first"
    live = middleware.live
    assert live is not None
    dropped = threading.Event()
    subscribe = live.events.subscribe

    def watched(deliver: Any, *, private: bool = True) -> Any:
        unsubscribe = subscribe(deliver, private=private)
        assert unsubscribe is not None

        def leave() -> None:
            unsubscribe()
            dropped.set()

        return leave

    live.events.subscribe = watched  # type: ignore[method-assign]
    client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    client.sendall(b"GET /__hotmod__/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert b"event: hello" in _read_until(client, b"event: hello")
    assert live.events.listeners == 1
    client.close()
    # Before: noticed at the next heartbeat, 15 s later; a thread held meanwhile.
    assert dropped.wait(5.0)
    assert live.events.listeners == 0


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        more = sock.recv(4096)
        if not more:
            break
        data += more
    return data


def test_the_stream_cap_holds_on_a_threaded_server(
    werkzeug_server: tuple[WSGIMiddleware, int, dict[str, Any]],
) -> None:
    _, port, _ = werkzeug_server
    assert _get(port, "/") == b"first"
    clients = []
    try:
        for _ in range(4):
            client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            client.sendall(b"GET /__hotmod__/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"event: hello" in _read_until(client, b"event: hello")
            clients.append(client)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        connection.request("GET", "/__hotmod__/events")
        response = connection.getresponse()
        assert response.status == 503
        response.read()
        connection.close()
        assert _get(port, "/") == b"first"  # the server still answers
    finally:
        for client in clients:
            client.close()


# -- 5: cache headers are never weakened --------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("no-store, private", None),
        ("no-store", None),
        ("private, max-age=60", "private, no-cache"),
        ("public, max-age=3600, immutable", "public, no-cache"),
        ("max-age=0, must-revalidate", "must-revalidate, no-cache"),
        ("no-cache", None),
    ],
)
def test_cache_control_is_merged_never_weakened(given: str, sent: str | None) -> None:
    assert cache_control([given]) == sent


def test_a_no_store_json_answer_keeps_its_headers(quiet: dict[str, Any]) -> None:
    body = [b'{"token": "t"}']
    extra = ((b"cache-control", b"no-store, private"), (b"etag", b'"v1"'))
    sent = request(ASGIMiddleware(responder(b"application/json", body, extra), **quiet))
    assert sent.headers[b"cache-control"] == b"no-store, private"
    assert sent.headers[b"etag"] == b'"v1"'
    assert sent.headers[b"content-length"] == b"14"
    assert sent.body == body[0]


# -- 6: injection correctness ------------------------------------------------------------------


def test_partial_empty_and_not_modified_responses_are_left_alone(quiet: dict[str, Any]) -> None:
    ranged = ((b"content-range", b"bytes 0-9/100"),)
    sent = request(ASGIMiddleware(responder(b"text/html", [b"<html><bod"], ranged, status=206), **quiet))
    assert sent.body == b"<html><bod"
    assert sent.headers[b"content-length"] == b"10"
    for status in (204, 304):

        async def bare(scope: Scope, receive: Receive, send: Send, status: int = status) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/html")],
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        sent = request(ASGIMiddleware(bare, **quiet))
        assert b"content-length" not in sent.headers
        assert sent.body == b""


def test_head_and_get_report_the_same_length_and_the_etag_goes(quiet: dict[str, Any]) -> None:
    extra = ((b"etag", b'"abc"'), (b"cache-control", b"max-age=60"))
    get = request(ASGIMiddleware(responder(b"text/html; charset=utf-8", PAGE, extra), **quiet))
    assert int(get.headers[b"content-length"]) == len(get.body) > len(b"".join(PAGE))
    assert b"etag" not in get.headers

    async def head_app(scope: Scope, receive: Receive, send: Send) -> None:
        length = str(len(b"".join(PAGE))).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", length), *extra]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    head = request(ASGIMiddleware(head_app, **quiet), method="HEAD")
    assert head.headers[b"content-length"] == get.headers[b"content-length"]
    assert b"etag" not in head.headers
    assert head.body == b""


def test_pages_in_a_charset_that_is_not_ascii_based_are_not_corrupted(
    quiet: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    page = "<html><body><p>héllo</p></body></html>".encode("utf-16")
    with caplog.at_level(logging.INFO, logger="hotmod.web"):
        sent = request(ASGIMiddleware(responder(b"text/html; charset=utf-16", [page]), **quiet))
        assert sent.body == page
        unlabelled = request(ASGIMiddleware(responder(b"text/html", [page]), **quiet))
        assert unlabelled.body == page  # its byte-order mark says UTF-16
    assert "no live reload on /" in caplog.text
    latin = "<html><body><p>héllo</p></body></html>".encode("latin-1")
    sent = request(ASGIMiddleware(responder(b"text/html; charset=iso-8859-1", [latin]), **quiet))
    assert sent.body.startswith("<html><body><p>héllo</p><script".encode("latin-1"))


def test_pathsend_keeps_its_response_start(quiet: dict[str, Any], tmp_path: Path) -> None:
    page = write(tmp_path / "page.html", "<html><body></body></html>")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html"), (b"content-length", b"26"), (b"etag", b'"f"')]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(page)})

    sent = request(ASGIMiddleware(app, **quiet))
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.pathsend"]
    assert sent.headers[b"content-length"] == b"26"
    assert sent.headers[b"etag"] == b'"f"'


def test_a_nonce_policy_is_reused_and_a_strict_policy_is_respected(
    quiet: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    policy = b"default-src 'self'; script-src 'nonce-r4nd0m' 'strict-dynamic'"
    sent = request(
        ASGIMiddleware(responder(b"text/html", PAGE, ((b"content-security-policy", policy),)), **quiet)
    )
    assert b'<script nonce="r4nd0m" data-hotmod' in sent.body
    assert sent.headers[b"content-security-policy"] == policy  # not weakened
    assert int(sent.headers[b"content-length"]) == len(sent.body)

    strict = b"script-src 'self'"
    with caplog.at_level(logging.INFO, logger="hotmod.web"):
        sent = request(
            ASGIMiddleware(responder(b"text/html", PAGE, ((b"content-security-policy", strict),)), **quiet)
        )
    assert sent.body == b"".join(PAGE)
    assert sent.headers[b"content-security-policy"] == strict
    assert "Content-Security-Policy allows no inline script" in caplog.text


def test_wsgi_leaves_partial_responses_and_keeps_head_and_get_lengths_equal(pkg: Pkg) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/range":
            start_response(
                "206 Partial Content", [("Content-Type", "text/html"), ("Content-Range", "bytes 0-3/9")]
            )
            return [b"<htm"]
        headers = [("Content-Type", "text/html"), ("Content-Length", "26"), ("ETag", '"e"')]
        start_response("200 OK", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"<html><body></body></html>"]

    middleware = WSGIMiddleware(app, paths=[pkg.dir], backend="manual")
    try:
        results = {}
        for method, path in (("GET", "/"), ("HEAD", "/"), ("GET", "/range")):
            got: dict[str, Any] = {}

            def start_response(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None, got: dict[str, Any] = got
            ) -> Any:
                got["status"], got["headers"] = status, dict(headers)
                return lambda data: None

            environ = {
                "PATH_INFO": path,
                "REQUEST_METHOD": method,
                "HTTP_HOST": "localhost",
                "REMOTE_ADDR": "::1",
            }
            body = middleware(environ, start_response)
            got["body"] = b"".join(body)
            body.close()  # type: ignore[attr-defined]
            results[method, path] = got
        get, head, ranged = results["GET", "/"], results["HEAD", "/"], results["GET", "/range"]
        assert int(get["headers"]["Content-Length"]) == len(get["body"])
        assert head["headers"]["Content-Length"] == get["headers"]["Content-Length"]
        assert "ETag" not in get["headers"]
        assert ranged["body"] == b"<htm"
        assert "Content-Length" not in ranged["headers"]
    finally:
        middleware.close()
