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

__all__ = ["HEARTBEAT", "HEARTBEAT_S", "MAX_STREAMS", "RETRY_MS", "Broadcaster", "Deliver", "encode"]

Deliver = Callable[[bytes | None], None]  # None ends the stream

#: Open event streams at most, per middleware; one browser tab holds one. More are
#: refused (503) so that streams cannot take every thread or descriptor of the server.
MAX_STREAMS = 32

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
    """The set of open event streams, each told about every event.

    A stream is private (its client may see failure details) or public (it hears a
    redacted version of the same events).
    """

    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        if max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, not {max_streams}")
        self.max_streams = max_streams
        # A new id per process: a page that reconnects and hears another id knows the
        # server restarted, and reloads itself.
        self.server_id = os.urandom(8).hex()
        self._lock = threading.Lock()
        self._streams: dict[int, tuple[Deliver, bool]] = {}
        self._next = 0

    def hello(self) -> bytes:
        return f"retry: {RETRY_MS}\n".encode() + encode("hello", {"server": self.server_id})

    def subscribe(self, deliver: Deliver, *, private: bool = True) -> Callable[[], None] | None:
        """Add a stream; returns its unsubscribe, or None when ``max_streams`` are open."""
        with self._lock:
            if len(self._streams) >= self.max_streams:
                return None
            key = self._next
            self._next += 1
            self._streams[key] = (deliver, private)

        def unsubscribe() -> None:
            with self._lock:
                self._streams.pop(key, None)

        return unsubscribe

    @property
    def listeners(self) -> int:
        return len(self._streams)

    def publish(self, event: str, data: object, public: object = None) -> None:
        """Send ``data`` to private streams and ``public`` (default: ``data``) to the others."""
        chunk = encode(event, data)
        self._send(chunk, chunk if public is None else encode(event, public))

    def end_all(self) -> None:
        """End every open stream (the server is stopping)."""
        self._send(None, None)

    def _send(self, private: bytes | None, public: bytes | None) -> None:
        with self._lock:
            streams = list(self._streams.values())
        for deliver, is_private in streams:
            deliver(private if is_private else public)
