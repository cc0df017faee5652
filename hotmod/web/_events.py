"""Server-Sent Events: what the browser hears, and who is listening.

Subscribers are delivery callables, one per open event stream. They are called from
whichever thread produced the event (the reloader's, the asset watcher's, an event
loop's), so each one hands the chunk to its own stream in its own thread-safe way.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable

Deliver = Callable[[bytes | None], None]  # None ends the stream

# How soon a browser reconnects after the stream drops (a server restart, a network
# blip); EventSource's own default is several seconds.
RETRY_MS = 250
# Proxies and browsers drop a silent connection after a while; a comment line keeps it
# alive, and in WSGI it is also how a closed connection is noticed.
HEARTBEAT_S = 15.0


def encode(event: str, data: object) -> bytes:
    """One SSE message: an event name and a JSON payload."""
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


HEARTBEAT = b": ping\n\n"


class Broadcaster:
    """The set of open event streams, each told about every event."""

    def __init__(self) -> None:
        # A new id per process: a page that reconnects and hears another id knows the
        # server restarted, and reloads itself.
        self.server_id = os.urandom(8).hex()
        self._lock = threading.Lock()
        self._streams: dict[int, Deliver] = {}
        self._next = 0

    def hello(self) -> bytes:
        return f"retry: {RETRY_MS}\n".encode() + encode("hello", {"server": self.server_id})

    def subscribe(self, deliver: Deliver) -> Callable[[], None]:
        with self._lock:
            key = self._next
            self._next += 1
            self._streams[key] = deliver

        def unsubscribe() -> None:
            with self._lock:
                self._streams.pop(key, None)

        return unsubscribe

    @property
    def listeners(self) -> int:
        return len(self._streams)

    def publish(self, event: str, data: object) -> None:
        self._send(encode(event, data))

    def end_all(self) -> None:
        """End every open stream (the server is stopping)."""
        self._send(None)

    def _send(self, chunk: bytes | None) -> None:
        with self._lock:
            streams = list(self._streams.values())
        for deliver in streams:
            deliver(chunk)
