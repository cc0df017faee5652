"""A Debug Adapter Protocol client, as an editor is one: a socket and JSON messages.

It talks to a program started under ``python -m debugpy --listen HOST:PORT
--wait-for-client``: ``initialize``, ``attach``, breakpoints, ``configurationDone``, then
requests and events. Every read waits on the socket with ``select`` and a deadline;
nothing sleeps. The debugpy tests and ``benchmarks/peers/debugger.py`` use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TIMEOUT", "Client", "Message", "debuggee", "debuggee_env", "finish", "free_port", "launch"]

Message = dict[str, Any]

TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def debuggee_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HOME=str(tmp_path))
    # pydevd's note that frozen standard-library modules cannot carry breakpoints
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.pop("PYTHONBREAKPOINT", None)
    env.update(extra)
    return env


def launch(port: int, args: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "debugpy", "--listen", f"127.0.0.1:{port}", "--wait-for-client", *args]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class Client:
    """One DAP connection: ``request()`` waits for its response, events are kept."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0
        self.buffer = b""
        self.events: list[Message] = []
        self.responses: dict[int, Message] = {}

    @classmethod
    def connect(cls, port: int, process: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> Client:
        """Connect once the adapter listens (an editor retries the same way)."""
        deadline = time.monotonic() + timeout
        assert process.stderr is not None
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return cls(sock)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"debugpy did not listen on {port}: {process.stderr.read().decode(errors='replace')}"
                    ) from None
                # Wait on the debuggee's stderr pipe (it says why, should it fail) before retrying.
                select.select([process.stderr], [], [], 0.05)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, command: str, arguments: Message | None = None) -> int:
        self.seq += 1
        message: Message = {"seq": self.seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        data = json.dumps(message).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        return self.seq

    def request(self, command: str, arguments: Message | None = None, timeout: float = TIMEOUT) -> Message:
        seq = self.send(command, arguments)
        return self.response(seq, timeout)

    def response(self, seq: int, timeout: float = TIMEOUT) -> Message:
        deadline = time.monotonic() + timeout
        while seq not in self.responses:
            self._read_one(deadline, f"the response to request {seq}")
        return self.responses.pop(seq)

    def wait_event(
        self, name: str, predicate: Callable[[Message], bool] = lambda e: True, timeout: float = TIMEOUT
    ) -> Message:
        """The first event ``name`` (already received or to come) that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("event") == name and predicate(event):
                    self.events.remove(event)
                    return event
            seen = len(self.events)
            self._read_one(deadline, f"event {name!r}")

    def events_named(self, name: str) -> Iterator[Message]:
        return (e for e in self.events if e.get("event") == name)

    def _read_one(self, deadline: float, what: str) -> None:
        while True:
            message = self._parse()
            if message is not None:
                if message.get("type") == "response":
                    self.responses[int(message["request_seq"])] = message
                elif message.get("type") == "event":
                    self.events.append(message)
                return
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                seen = [e.get("event") for e in self.events]
                raise AssertionError(f"no {what} from the debugger; events so far: {seen}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"the debugger closed the connection while waiting for {what}")
            self.buffer += chunk

    def _parse(self) -> Message | None:
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return None
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line)
        length = int(next(v for k, v in fields.items() if k.strip().lower() == b"content-length"))
        if len(rest) < length:
            return None
        self.buffer = rest[length:]
        message: Message = json.loads(rest[:length])
        return message

    def start(self, breakpoints: dict[Path, list[int]], *, just_my_code: bool = True) -> Message:
        """initialize, attach, breakpoints, configurationDone; returns the first ``stopped``."""
        init = self.request(
            "initialize",
            {
                "clientID": "hotmod-tests",
                "adapterID": "debugpy",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
            },
        )
        assert init["success"], init
        attach = self.send("attach", {"justMyCode": just_my_code})
        self.wait_event("initialized")
        for path, lines in breakpoints.items():
            done = self.request(
                "setBreakpoints", {"source": {"path": str(path)}, "breakpoints": [{"line": n} for n in lines]}
            )
            assert done["success"], done
        assert self.request("configurationDone")["success"]
        assert self.response(attach)["success"]
        return self.wait_event("stopped")


def finish(process: subprocess.Popen[bytes], client: Client, timeout: float = TIMEOUT) -> tuple[str, str]:
    """The debuggee's output once it exits (killed if it does not).

    The connection is closed first: debugpy's adapter process shares the debuggee's
    output pipes and stays until its client goes.
    """
    client.close()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out.decode(errors="replace"), err.decode(errors="replace")


@contextlib.contextmanager
def debuggee(
    args: Sequence[str], cwd: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], Client]]:
    """A program started under debugpy with a client connected; killed on the way out if
    a failed assertion left it running."""
    port = free_port()
    process = launch(port, args, cwd, env)
    client = Client.connect(port, process)
    try:
        yield process, client
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
