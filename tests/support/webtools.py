"""Helpers for the web tests: a uvicorn child serving a copy of the example app, an
event-stream reader, and small HTTP and WebSocket clients. Every wait has a timeout."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from hotmod.web.wsgi import ExcInfo

from . import write_replace

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_app"
START_TIMEOUT = 30.0
EVENT_TIMEOUT = 10.0


def replace_in(path: Path, old: str, new: str) -> None:
    """Save ``path`` with ``old`` replaced by ``new``, the way editors save."""
    text = path.read_text()
    assert old in text
    write_replace(path, text.replace(old, new))


def copy_example(folder: Path) -> Path:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


class Server:
    """``python -m uvicorn app:app`` in ``folder``, on a free loopback port."""

    def __init__(self, folder: Path, *extra: str, port: int = 0) -> None:
        self.folder = folder
        self.lines: list[str] = []
        self._ready: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port), *extra],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = self.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._ready.put(line)

    def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT) -> int:
        """Wait for a log line matching ``pattern``; returns its first group as a number."""
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return int(match.group(1)) if match.groups() else 0
        while True:
            try:
                line = self._ready.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}") from None
            if match := regex.search(line):
                return int(match.group(1)) if match.groups() else 0

    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=EVENT_TIMEOUT)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, response.read().decode()
        finally:
            connection.close()

    def status(self) -> dict[str, object]:
        code, _, body = self.get("/status")
        assert code == 200, body
        result = json.loads(body)
        assert isinstance(result, dict)
        return result

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=EVENT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(EVENT_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


class EventStream:
    """Reads ``/__hotmod__/events`` on a thread; ``next(name)`` waits for one event."""

    def __init__(self, port: int, path: str = "/__hotmod__/events") -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._connection.request("GET", path, headers={"Accept": "text/event-stream"})
        # Kept here: the connection lets go of its socket for a "Connection: close" reply.
        self._socket = self._connection.sock
        self.response = self._connection.getresponse()
        self.events: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        name, data = "message", ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    self.events.put((name, json.loads(data)))
                    name, data = "message", ""
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()

    def next(self, name: str, timeout: float = EVENT_TIMEOUT) -> dict[str, object]:
        """The next event called ``name``; events of other names before it are skipped."""
        while True:
            try:
                got, data = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {name!r} event within {timeout} s") from None
            if got == name:
                return data

    def close(self) -> None:
        if self._socket is not None and not self.ended.is_set():
            self._socket.shutdown(socket.SHUT_RDWR)  # the reader sees the end, then we close
        self.ended.wait(EVENT_TIMEOUT)
        self.response.close()
        self._connection.close()


def ignore_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /
) -> Callable[[bytes], object]:
    """A WSGI ``start_response`` for tests that only read the body."""
    return lambda data: None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root, in a container, on a machine whose network is closed: no sandbox, no GPU,
# and none of the background requests that would only be refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
