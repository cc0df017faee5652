"""The ASGI middleware in process: where reloads run, what responses get, enable()."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import hotmod
import hotmod.web
from hotmod.web.asgi import ASGIMiddleware, Message, Receive, Scope, Send

from ..support import Pkg, write

TIMEOUT = 10.0
LOCAL = [(b"host", b"127.0.0.1:8000")]


class Recorder:
    """An ASGI ``send`` that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def responder(content_type: bytes, chunks: list[bytes], extra: tuple[tuple[bytes, bytes], ...] = ()) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        length = str(sum(map(len, chunks))).encode()
        headers = [(b"content-type", content_type), (b"content-length", length), *extra]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})

    return app


async def no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def request(middleware: ASGIMiddleware, path: str = "/", method: str = "GET") -> Recorder:
    send = Recorder()
    scope = {"type": "http", "path": path, "method": method, "headers": LOCAL}

    async def run() -> None:
        await middleware(scope, no_body, send)
        await asyncio.to_thread(close, middleware)

    asyncio.run(run())
    return send


def close(middleware: ASGIMiddleware) -> None:
    if middleware.live is not None:
        middleware.live.close()


@pytest.fixture
def quiet(pkg: Pkg) -> dict[str, Any]:
    return {"paths": [pkg.dir], "backend": "manual"}


def test_script_goes_before_the_last_body_tag_and_the_length_follows(quiet: dict[str, Any]) -> None:
    page = [b"<html><body><p>body</p>", b"</body></html>"]
    sent = request(ASGIMiddleware(responder(b"text/html; charset=utf-8", page), **quiet))
    body = sent.body
    assert body.startswith(b"<html><body><p>body</p><script data-hotmod")
    assert body.endswith(b"</script></body></html>")
    assert int(sent.headers[b"content-length"]) == len(body)
    assert sent.headers[b"cache-control"] == b"no-cache"
    assert b'data-events="/__hotmod__/events"' in body


def test_other_responses_pass_untouched_but_for_the_cache_header(quiet: dict[str, Any]) -> None:
    css = [b"h1 { color: red }"]
    app = responder(b"text/css", css, ((b"cache-control", b"max-age=3600"),))
    sent = request(ASGIMiddleware(app, **quiet))
    assert sent.body == css[0]
    assert sent.headers[b"cache-control"] == b"no-cache"
    assert len(sent.messages) == 2

    html = [b"<p>x</p>"]
    sent = request(ASGIMiddleware(responder(b"text/html", html, ((b"content-encoding", b"gzip"),)), **quiet))
    assert sent.body == html[0]  # compressed: left alone
    sent = request(ASGIMiddleware(responder(b"text/html", html), **quiet), method="HEAD")
    assert sent.body == html[0]
    sent = request(ASGIMiddleware(responder(b"text/html", html), inject=False, no_cache=False, **quiet))
    assert sent.body == html[0]
    assert b"cache-control" not in sent.headers


def test_reloads_run_on_the_event_loop_thread_without_a_request(pkg: Pkg) -> None:
    module = pkg.module("views", "def title():\n    return 'old'\n")
    middleware = ASGIMiddleware(responder(b"text/plain", [b"ok"]), paths=[pkg.dir], backend="manual")
    threads: list[int] = []

    async def run() -> int:
        loop_thread = threading.get_ident()
        await middleware(
            {"type": "http", "path": "/", "method": "GET", "headers": LOCAL}, no_body, Recorder()
        )
        live = middleware.live
        assert live is not None
        applied = asyncio.Event()

        def listener(result: hotmod.ReloadResult) -> None:
            threads.append(threading.get_ident())
            applied.set()

        live.reloader.subscribe(listener)
        write(pkg.path("views"), "def title():\n    return 'new'\n")
        live.reloader.notify(pkg.path("views"))  # what the watcher does; no request follows
        await asyncio.wait_for(applied.wait(), TIMEOUT)
        await asyncio.to_thread(live.close)
        return loop_thread

    loop_thread = asyncio.run(run())
    assert threads == [loop_thread]
    assert module.title() == "new"


def test_event_stream_says_hello_then_announces_reloads_and_ends_on_shutdown(pkg: Pkg) -> None:
    pkg.module("views", "X = 1\n")
    middleware = ASGIMiddleware(responder(b"text/plain", [b"ok"]), paths=[pkg.dir], backend="manual")
    send = Recorder()
    shutdown = asyncio.Event()

    async def lifespan_receive() -> dict[str, Any]:
        if not getattr(lifespan_receive, "started", False):
            lifespan_receive.started = True  # type: ignore[attr-defined]
            return {"type": "lifespan.startup"}
        await shutdown.wait()
        return {"type": "lifespan.shutdown"}

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})

    middleware.app = lifespan_app

    async def run() -> None:
        lifespan = asyncio.create_task(middleware({"type": "lifespan"}, lifespan_receive, Recorder()))
        while middleware.live is None:
            await asyncio.sleep(0)
        live = middleware.live
        disconnected = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await disconnected.wait()
            return {"type": "http.disconnect"}

        scope = {"type": "http", "path": "/__hotmod__/events", "method": "GET", "headers": LOCAL}
        stream = asyncio.create_task(middleware(scope, receive, send))
        while live.events.listeners == 0:
            await asyncio.sleep(0)
        applied = asyncio.Event()
        live.reloader.subscribe(lambda result: applied.set())
        write(pkg.path("views"), "X = 2\n")
        live.reloader.notify(pkg.path("views"))
        await asyncio.wait_for(applied.wait(), TIMEOUT)
        shutdown.set()  # the stream sends what it was given, then ends
        await asyncio.wait_for(lifespan, TIMEOUT)
        await asyncio.wait_for(stream, TIMEOUT)
        assert middleware.live is None

    asyncio.run(run())
    assert send.headers[b"content-type"].startswith(b"text/event-stream")
    assert send.messages[1]["body"].startswith(b'retry: 250\nevent: hello\ndata: {"server":')
    reload = next(m["body"] for m in send.messages if b"event: reload" in m.get("body", b""))
    assert reload.startswith(b'event: reload\ndata: {"modules":["' + pkg.qualname("views").encode())
    assert send.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_enable_adds_the_middleware_to_starlette_and_finds_static_folders(tmp_path: Path) -> None:
    starlette = pytest.importorskip("starlette.applications")
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    static = tmp_path / "static"
    static.mkdir()
    app = starlette.Starlette(routes=[Mount("/s", app=StaticFiles(directory=static))])
    assert hotmod.web.enable(app, paths=[tmp_path], backend="manual") is app
    middleware = app.user_middleware[0]
    assert middleware.cls is ASGIMiddleware
    find = middleware.kwargs["_find_assets"]
    assert [Path(p) for p in find()] == [static]


def test_enable_refuses_what_it_does_not_know_and_can_be_switched_off() -> None:
    with pytest.raises(TypeError, match="Starlette, FastAPI and Flask"):
        hotmod.web.enable(object())
    app = object()
    assert hotmod.web.enable(app, enabled=False) is app
