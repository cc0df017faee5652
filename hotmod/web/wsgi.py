"""The WSGI middleware: live reload for Flask and any WSGI app.

Changes are applied between requests. A reload waits for the app code in flight to
finish (the app call, and each step of a streamed body: the body's generator producing
one chunk, or closing) and app code that starts meanwhile waits for the reload, so no
request ever runs while a module is half-way through its new version. The time the
server spends writing a chunk to the client does not count: a slow client holds no one
back.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol

from .._switch import disabled
from .._watch import BackendName
from ._access import Verdict
from ._events import HEARTBEAT, HEARTBEAT_S, MAX_STREAMS
from ._html import Injector, may_inject, rewrite, with_no_cache
from ._live import LiveReload, Options

__all__ = [
    "CLIENT_CHECK_S",
    "ExcInfo",
    "Headers",
    "RequestGate",
    "StartResponse",
    "WSGIApp",
    "WSGIMiddleware",
]

logger = logging.getLogger("hotmod.web")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
Headers = list[tuple[str, str]]


class StartResponse(Protocol):
    def __call__(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None, /
    ) -> Callable[[bytes], object]: ...


WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_EVENT_STREAM_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]


class RequestGate:
    """Requests share the app; a reload has it alone.

    A reload that is waiting holds new requests back, so a steady stream of requests
    cannot starve it; one request nested in another on the same thread passes.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._reloads = 0  # waiting or running
        self._depth = threading.local()

    @property
    def active(self) -> int:
        """Requests in flight."""
        return self._active

    @property
    def reloading(self) -> bool:
        """A reload is waiting for requests to finish, or running."""
        return self._reloads > 0

    def enter(self) -> None:
        """A request starts: wait for a reload that is waiting or running."""
        depth = getattr(self._depth, "n", 0)
        with self._cond:
            if depth == 0:  # a nested call must not queue behind a reload its caller blocks
                self._cond.wait_for(lambda: self._reloads == 0)
            self._active += 1
        self._depth.n = depth + 1

    def returned(self) -> None:
        """The app call that :meth:`enter` preceded returned (or raised), on this thread."""
        self._depth.n -= 1

    def leave(self) -> None:
        """The request is over, body included; servers may close a body on any thread."""
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def exclusive(self, apply: Callable[[], object], drain_timeout: float) -> None:
        """Run ``apply`` once no request is in flight (or after ``drain_timeout``)."""
        with self._cond:
            self._reloads += 1
            if not self._cond.wait_for(lambda: self._active == 0, drain_timeout):
                logger.warning(
                    "hotmod: %d request(s) still running after %.0f s; reloading anyway, "
                    "they finish on the code they started with",
                    self._active,
                    drain_timeout,
                )
        try:
            apply()
        finally:
            with self._cond:
                self._reloads -= 1
                self._cond.notify_all()


class _Body:
    """The app's response body, passed through the gate one step at a time.

    Only the app's own code counts as in flight: producing a chunk, and closing. While
    the server writes a chunk to a slow client, a reload may run (the body's generator
    resumes in the code it started with, as an ASGI coroutine would), so one client
    that never reads cannot hold every other request back.
    """

    def __init__(
        self,
        body: Iterable[bytes],
        gate: RequestGate,
        process: Callable[[bytes], bytes],
        finish: Callable[[], bytes],
    ) -> None:
        self._body = body
        self._gate = gate
        self._process = process
        self._finish = finish
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        gate = self._gate
        gate.enter()
        try:
            chunks = iter(self._body)
        finally:
            gate.returned()
            gate.leave()
        while True:
            gate.enter()
            try:
                chunk = next(chunks, None)
            finally:
                gate.returned()
                gate.leave()
            if chunk is None:
                break
            out = self._process(chunk)
            if out:
                yield out
        tail = self._finish()
        if tail:
            yield tail

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._body, "close", None)
        if close is not None:
            self._gate.enter()
            try:
                close()
            finally:
                self._gate.returned()
                self._gate.leave()


class WSGIMiddleware:
    """Reloads edited modules between requests and keeps open pages current.

    ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` for Flask, or wrap any WSGI app.
    WSGI has no startup event, so reloading starts with the first request. Options are
    those of :func:`hotmod.web.enable`, plus ``drain_timeout``: how long a reload waits
    for the app code in flight (a slow handler, say) before it applies anyway.
    """

    def __init__(
        self,
        app: WSGIApp,
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
        drain_timeout: float = 5.0,
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
        self.drain_timeout = drain_timeout
        self.gate = RequestGate()
        # Made at the first request, not here: a module re-executed by a reload makes a
        # new middleware for a new app object that is never served.
        self.live: LiveReload | None = None
        self._starting = threading.Lock()
        # HOTMOD=0: a plain pass-through, no reloader, no stream, nothing injected.
        self.off = disabled()
        if self.off:
            logger.info("hotmod.web: HOTMOD=0 in the environment; live reload is off")

    def close(self) -> None:
        """Stop reloading (a server embedding the app calls this on shutdown)."""
        live, self.live = self.live, None
        if live is not None:
            live.close()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.off:
            return self.app(environ, start_response)
        live = self.live or self._start()
        live.check_listeners()  # SERVER_NAME may be a name from the Host header: not used
        is_stream = environ.get("PATH_INFO") == self.options.events_path
        verdict = live.access.check(
            environ.get("HTTP_HOST"), environ.get("REMOTE_ADDR"), environ.get("HTTP_ORIGIN"), stream=is_stream
        )
        if is_stream:
            return self._event_stream(live, verdict, environ, start_response)
        self.gate.enter()
        try:
            if not verdict.allowed:  # not ours to touch: the app answers as if we were not there
                body = self.app(environ, start_response)
                return _Body(body, self.gate, _same, _nothing)
            return self._respond(live, environ, start_response)
        finally:
            self.gate.returned()
            self.gate.leave()

    def _start(self) -> LiveReload:
        with self._starting:
            if self.live is None:
                live = LiveReload(self.options, self._between_requests)
                live.start()
                self.live = live
            return self.live

    def _between_requests(self, apply: Callable[[], object]) -> bool:
        self.gate.exclusive(apply, self.drain_timeout)
        return True

    def _respond(
        self, live: LiveReload, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        options = self.options
        head = environ.get("REQUEST_METHOD") == "HEAD"
        path = str(environ.get("PATH_INFO", ""))
        held: list[tuple[str, Headers, ExcInfo | None]] = []
        state: dict[str, Any] = {"injector": None, "write": None}

        def decide(first: bytes) -> None:
            status, headers, exc_info = held.pop()
            decided = rewrite(
                _status_code(status),
                headers,
                head=head,
                inject=options.inject,
                no_cache=options.no_cache,
                script=live.script_for,
                first=first,
                path=path,
                skipped=live.skipped,
            )
            state["injector"] = decided.injector
            state["write"] = start_response(status, decided.headers, exc_info)

        def process(chunk: bytes) -> bytes:
            if held:
                if not chunk:
                    return b""  # an empty first chunk says nothing yet
                decide(chunk)
            injector: Injector | None = state["injector"]
            return injector.feed(chunk) if injector is not None else chunk

        def finish() -> bytes:
            if held:
                decide(b"")
            injector: Injector | None = state["injector"]
            return injector.finish() if injector is not None else b""

        def write(data: bytes) -> object:  # the legacy write(): through the same path
            out = process(data)
            return state["write"](out) if out else None

        def starting(
            status: str, headers: Headers, exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if exc_info is not None and exc_info[1] is not None and state["write"] is not None:
                raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: headers are out
            if options.inject and may_inject(_status_code(status), headers):
                held[:] = [(status, list(headers), exc_info)]  # until the first bytes
                return write
            held.clear()
            if options.no_cache:
                headers = with_no_cache(list(headers))
            state["write"] = start_response(status, headers, exc_info)
            return state["write"]  # type: ignore[no-any-return]

        body = self.app(environ, starting)
        return _Body(body, self.gate, process, finish)

    def _event_stream(
        self, live: LiveReload, verdict: Verdict, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if not verdict.allowed:
            text = b"hotmod live reload is not available to this client\n"
            return _refuse(start_response, "403 Forbidden", text)
        chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        unsubscribe = live.events.subscribe(chunks.put, private=verdict.private)
        if unsubscribe is None:
            return _refuse(
                start_response,
                "503 Service Unavailable",
                b"hotmod live reload: too many open event streams\n",
                retry=True,
            )
        connection = _connection(environ)
        start_response("200 OK", list(_EVENT_STREAM_HEADERS))

        def stream() -> Iterator[bytes]:
            # Not counted as in flight: it never ends, and reloads must not wait for it.
            try:
                yield live.events.hello()
                quiet = 0.0
                while True:
                    # With the server's socket at hand, a client that left is seen within
                    # a second; without it, at the next heartbeat write.
                    wait = CLIENT_CHECK_S if connection is not None else HEARTBEAT_S
                    try:
                        chunk = chunks.get(timeout=wait)
                    except queue.Empty:
                        if connection is not None and _gone(connection):
                            return
                        quiet += wait
                        if quiet < HEARTBEAT_S:
                            continue
                        chunk = HEARTBEAT  # also how a closed connection is noticed
                    quiet = 0.0
                    if chunk is None:
                        return
                    yield chunk
            finally:
                unsubscribe()

        return stream()


CLIENT_CHECK_S = 1.0


def _connection(environ: dict[str, Any]) -> socket.socket | None:
    """The client's socket, where the server shares it (Werkzeug, Gunicorn)."""
    for key in ("werkzeug.socket", "gunicorn.socket"):
        candidate = environ.get(key)
        if isinstance(candidate, socket.socket):
            return candidate
    return None


def _gone(connection: socket.socket) -> bool:
    """The client closed its end (the socket reads as ended, without taking any data)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        return connection.recv(1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def _refuse(start_response: StartResponse, status: str, text: bytes, *, retry: bool = False) -> list[bytes]:
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(text))),
    ]
    if retry:
        headers.append(("Retry-After", "5"))
    start_response(status, headers)
    return [text]


def _status_code(status: str) -> int:
    try:
        return int(status.split(None, 1)[0])
    except (ValueError, IndexError):
        return 0


def _same(chunk: bytes) -> bytes:
    return chunk


def _nothing() -> bytes:
    return b""
