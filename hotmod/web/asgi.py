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

from .._switch import disabled
from .._watch import BackendName
from ._access import Verdict
from ._events import HEARTBEAT, HEARTBEAT_S, MAX_STREAMS
from ._html import Rewrite, may_inject, rewrite, with_no_cache
from ._live import LiveReload, Options

__all__ = ["ASGIApp", "ASGIMiddleware", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("hotmod.web")

_REFUSED_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
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
        allowed_hosts: Iterable[str] = (),
        max_streams: int = MAX_STREAMS,
        _find_assets: Callable[[], Iterable[str | os.PathLike[str]]] | None = None,
    ) -> None:
        self.app = app
        self.options = Options(
            paths=paths,
            assets=assets,
            events_path=events_path,
            inject=inject,
            no_cache=no_cache,
            backend=backend,
            poll_interval=poll_interval,
            allowed_hosts=allowed_hosts,
            max_streams=max_streams,
            find_assets=_find_assets,
        )
        # HOTMOD=0: a plain pass-through, no reloader, no stream, nothing injected.
        self.off = disabled()
        if self.off:
            logger.info("hotmod.web: HOTMOD=0 in the environment; live reload is off")
        # Made on the server's loop, not here: a module re-executed by a reload makes a
        # new middleware for a new app object that is never served, and must not start
        # a second reloader.
        self.live: LiveReload | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.off:
            await self.app(scope, receive, send)
            return
        if self.live is None:
            self._start(asyncio.get_running_loop())
        live = self.live
        assert live is not None
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._on_shutdown(receive), send)
        elif kind == "http":
            server = scope.get("server")
            live.check_listeners(str(server[0]) if server else None)
            is_stream = scope["path"] == self.options.events_path
            verdict = _verdict(live, scope, stream=is_stream)
            if is_stream:
                await self._event_stream(verdict, receive, send)
            elif verdict.allowed:
                await self.app(scope, receive, self._rewriting(scope, send))
            else:  # not ours to touch: the app answers as if hotmod were not there
                await self.app(scope, receive, send)
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
        """``send`` with no-cache headers, and the live-reload script in HTML pages.

        The response start of a page waits for its first body bytes (to see a byte-order
        mark); after that every chunk passes on as it comes.
        """
        live = self.live
        assert live is not None
        options = self.options
        head = scope.get("method") == "HEAD"
        path = str(scope.get("path", ""))
        held: Message | None = None
        decided: Rewrite | None = None

        def decide(start: Message, first: bytes) -> Message:
            nonlocal decided
            headers = _str_headers(start.get("headers", ()))
            decided = rewrite(
                int(start["status"]),
                headers,
                head=head,
                inject=options.inject,
                no_cache=options.no_cache,
                script=live.script_for,
                first=first,
                path=path,
                skipped=live.skipped,
            )
            return {**start, "headers": _byte_headers(decided.headers)}

        async def sending(message: Message) -> None:
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                headers = _str_headers(message.get("headers", ()))
                if options.inject and may_inject(int(message["status"]), headers):
                    held = message
                    return
                if options.no_cache:
                    message = {**message, "headers": _byte_headers(with_no_cache(headers))}
                await send(message)
                return
            if held is not None:
                start, body = held, message.get("body", b"")
                if kind == "http.response.body":
                    if not body and message.get("more_body", False):
                        return  # an empty first chunk says nothing yet
                    held = None
                    await send(decide(start, body))
                else:  # a file the server sends itself (pathsend): no script, no new length
                    held = None
                    headers = _str_headers(start.get("headers", ()))
                    if options.no_cache:
                        headers = with_no_cache(headers)
                    await send({**start, "headers": _byte_headers(headers)})
            injector = decided.injector if decided is not None else None
            if kind == "http.response.body" and injector is not None:
                more = message.get("more_body", False)
                body = injector.feed(message.get("body", b""))
                if not more:
                    body += injector.finish()
                message = {**message, "body": body}
            await send(message)

        return sending

    async def _event_stream(self, verdict: Verdict, receive: Receive, send: Send) -> None:
        live = self.live
        assert live is not None
        if not verdict.allowed:
            await _refuse(send, 403, b"hotmod live reload is not available to this client\n")
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def deliver(chunk: bytes | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, chunk)

        unsubscribe = live.events.subscribe(deliver, private=verdict.private)
        if unsubscribe is None:
            await _refuse(send, 503, b"hotmod live reload: too many open event streams\n", retry=True)
            return

        async def until_disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            queue.put_nowait(None)

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


def _verdict(live: LiveReload, scope: Scope, *, stream: bool) -> Verdict:
    headers = _str_headers(scope.get("headers", ()))
    host = next((v for k, v in headers if k.lower() == "host"), None)
    origin = next((v for k, v in headers if k.lower() == "origin"), None)
    client = scope.get("client")
    return live.access.check(host, str(client[0]) if client else None, origin, stream=stream)


async def _refuse(send: Send, status: int, text: bytes, *, retry: bool = False) -> None:
    headers = [*_REFUSED_HEADERS, (b"content-length", str(len(text)).encode())]
    if retry:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text, "more_body": False})


def _str_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


def _byte_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


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
