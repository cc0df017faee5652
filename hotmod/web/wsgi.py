"""The WSGI middleware: live reload for Flask and any WSGI app.

Changes are applied between requests. A reload waits for the requests in flight to
finish (their responses included: a streamed body counts until the server closes it)
and requests that arrive meanwhile wait for the reload, so no request ever runs while a
module is half-way through its new version.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol

from ..watch import BackendName
from ._events import HEARTBEAT, HEARTBEAT_S
from ._html import NO_CACHE, inject, is_html
from ._live import LiveReload, Options

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


class _Finishing:
    """The app's response body, counted as in flight until the server closes it."""

    def __init__(
        self, body: Iterable[bytes], first: list[bytes], rest: Iterator[bytes], done: Callable[[], None]
    ):
        self._body = body
        self._first = first
        self._rest = rest
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        yield from self._rest

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


class WSGIMiddleware:
    """Reloads edited modules between requests and keeps open pages current.

    ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` for Flask, or wrap any WSGI app.
    WSGI has no startup event, so reloading starts with the first request. Options are
    those of :func:`hotmod.web.enable`, plus ``drain_timeout``: how long a reload waits
    for requests in flight (a long download, say) before it applies anyway.
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
        drain_timeout: float = 5.0,
        _find_assets: Callable[[], Iterable[str | os.PathLike[str]]] | None = None,
    ) -> None:
        self.app = app
        self.options = Options(
            paths, assets, events_path, inject, no_cache, backend, poll_interval, _find_assets
        )
        self.drain_timeout = drain_timeout
        self.gate = RequestGate()
        # Made at the first request, not here: a module re-executed by a reload makes a
        # new middleware for a new app object that is never served.
        self.live: LiveReload | None = None
        self._starting = threading.Lock()

    def close(self) -> None:
        """Stop reloading (a server embedding the app calls this on shutdown)."""
        live, self.live = self.live, None
        if live is not None:
            live.close()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        live = self.live or self._start()
        if environ.get("PATH_INFO") == self.options.events_path:
            return self._event_stream(live, start_response)
        self.gate.enter()
        try:
            return self._respond(live, environ, start_response)
        except BaseException:
            self.gate.leave()
            raise
        finally:
            self.gate.returned()

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
        injecting = self.options.inject and environ.get("REQUEST_METHOD") != "HEAD"
        no_cache = self.options.no_cache
        held: list[tuple[str, Headers, ExcInfo | None]] = []
        written: list[bytes] = []

        def starting(
            status: str, headers: Headers, exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if no_cache:
                headers = [(k, v) for k, v in headers if k.lower() != "cache-control"]
                headers.append(("Cache-Control", NO_CACHE))
            if injecting and is_html(_header(headers, "content-type"), _header(headers, "content-encoding")):
                held[:] = [(status, headers, exc_info)]
                return written.append  # the legacy write(): buffered like the body
            return start_response(status, headers, exc_info)

        body = self.app(environ, starting)
        rest = iter(body)
        # An app may call start_response as late as its first chunk (PEP 3333).
        first = list(itertools.islice(rest, 1))
        if not held:
            return _Finishing(body, first, rest, self.gate.leave)
        try:
            page = b"".join([*written, *first, *rest])
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        self.gate.leave()  # on an exception, __call__ does
        status, headers, exc_info = held[0]
        if page:
            page = inject(page, live.script)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(page))))
        start_response(status, headers, exc_info)
        return [page]

    def _event_stream(self, live: LiveReload, start_response: StartResponse) -> Iterable[bytes]:
        chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        unsubscribe = live.events.subscribe(chunks.put)
        start_response("200 OK", list(_EVENT_STREAM_HEADERS))

        def stream() -> Iterator[bytes]:
            # Not counted as in flight: it never ends, and reloads must not wait for it.
            try:
                yield live.events.hello()
                while True:
                    try:
                        chunk = chunks.get(timeout=HEARTBEAT_S)
                    except queue.Empty:
                        chunk = HEARTBEAT  # also how a closed connection is noticed
                    if chunk is None:
                        return
                    yield chunk
            finally:
                unsubscribe()

        return stream()


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
