"""The ASGI middleware: live reload for Starlette, FastAPI and any ASGI app.

Changes are applied on the server's event loop: the reloader's thread notices a saved
file, schedules the apply as a callback on the loop and waits for it. Handler coroutines
run on that same thread, so a reload happens between their steps, never beside one; a
coroutine suspended at an ``await`` resumes in its old code and its next calls reach the
new code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import FrameType
from typing import Any

from ..watch import BackendName
from ._events import HEARTBEAT, HEARTBEAT_S
from ._html import NO_CACHE, inject, is_html
from ._live import LiveReload, Options

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("hotmod.web")

_EVENT_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events through as they come
]


class ASGIMiddleware:
    """Reloads edited modules in the running server and keeps open pages current.

    ``app.add_middleware(ASGIMiddleware)`` for Starlette and FastAPI, or wrap any ASGI
    app. Reloading starts with the server (its lifespan startup, or the first request
    when lifespan is off). Options are those of :func:`hotmod.web.enable`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        assets: Iterable[str | os.PathLike[str]] = (),
        events_path: str = "/__hotmod__/events",
        inject: bool = True,
        no_cache: bool = True,
        backend: BackendName = "auto",
        poll_interval: float = 0.5,
        _find_assets: Callable[[], Iterable[str | os.PathLike[str]]] | None = None,
    ) -> None:
        self.app = app
        self.options = Options(
            paths, assets, events_path, inject, no_cache, backend, poll_interval, _find_assets
        )
        # Made on the server's loop, not here: a module re-executed by a reload makes a
        # new middleware for a new app object that is never served, and must not start
        # a second reloader.
        self.live: LiveReload | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.live is None:
            self._start(asyncio.get_running_loop())
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._on_shutdown(receive), send)
        elif kind == "http" and scope["path"] == self.options.events_path:
            await self._event_stream(receive, send)
        elif kind == "http":
            await self.app(scope, receive, self._rewriting(scope, send))
        else:  # websockets pass through untouched: they stay open across reloads
            await self.app(scope, receive, send)

    # -- starting and stopping -----------------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        live = LiveReload(self.options, self._on_loop)
        self.live = live
        live.start()
        _end_streams_on_exit(live, loop)

    def _on_shutdown(self, receive: Receive) -> Receive:
        async def receiving() -> Message:
            message = await receive()
            live = self.live
            if message["type"] == "lifespan.shutdown" and live is not None:
                self.live = None
                # Another thread: closing joins the reloader's thread, which may be
                # waiting for this loop to run an apply.
                await asyncio.to_thread(live.close)
            return message

        return receiving

    def _on_loop(self, apply: Callable[[], object]) -> bool:
        """The reloader's safe point: run ``apply`` on the loop, wait for it to finish."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        done: concurrent.futures.Future[object] = concurrent.futures.Future()

        def run() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(apply())
                except BaseException as exc:
                    done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # closed meanwhile: the server has stopped
            return False
        while True:
            try:
                done.result(timeout=0.5)  # re-raises what apply raised, on this thread
                return True
            except TimeoutError:
                # A busy loop just delays the reload; a stopped one never runs it.
                if not loop.is_running() and done.cancel():
                    return False

    # -- responses -------------------------------------------------------------------

    def _rewriting(self, scope: Scope, send: Send) -> Send:
        """``send`` with no-cache headers, and the live-reload script in HTML pages."""
        live = self.live
        assert live is not None
        no_cache = self.options.no_cache
        injecting = self.options.inject and scope.get("method") != "HEAD"
        held: Message | None = None
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if no_cache:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", NO_CACHE.encode()))
                message = {**message, "headers": headers}
                if injecting and is_html(
                    _header(headers, b"content-type"), _header(headers, b"content-encoding")
                ):
                    held = message  # sent with the finished body, whose length changes
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                if body:
                    body = inject(body, live.script)
                headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                start, held = {**held, "headers": headers}, None
                await send(start)
                message = {"type": "http.response.body", "body": body, "more_body": False}
            await send(message)

        return sending

    async def _event_stream(self, receive: Receive, send: Send) -> None:
        live = self.live
        assert live is not None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def deliver(chunk: bytes | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, chunk)

        async def until_disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            queue.put_nowait(None)

        unsubscribe = live.events.subscribe(deliver)
        watching = loop.create_task(until_disconnected())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _EVENT_STREAM_HEADERS})
            await send({"type": "http.response.body", "body": live.events.hello(), "more_body": True})
            while True:
                try:
                    chunk = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    chunk = HEARTBEAT
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the browser went away mid-send
            pass
        finally:
            unsubscribe()
            watching.cancel()


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _end_streams_on_exit(live: LiveReload, loop: asyncio.AbstractEventLoop) -> None:
    """End the event streams when the server is told to stop.

    A server stops gracefully by waiting for open responses to finish, and an event
    stream never finishes by itself: without this, Ctrl-C (or the SIGTERM a restarting
    supervisor sends) would hang while a page is open. The server's own handlers, which
    it installs before serving and restores after, still run.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if callable(previous):
            signal.signal(signum, functools.partial(_ending_streams, live, loop, previous))


def _ending_streams(
    live: LiveReload,
    loop: asyncio.AbstractEventLoop,
    previous: Callable[[int, FrameType | None], object],
    signum: int,
    frame: FrameType | None,
) -> None:
    # A signal handler may interrupt any code on this thread: take no lock here, hand
    # the work to the loop.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(live.events.end_all)
    previous(signum, frame)
