"""hotmod under debugpy, driven over the Debug Adapter Protocol by a real client.

The client below is a socket and JSON messages. It talks to a program started under
``python -m debugpy --listen HOST:PORT --wait-for-client`` exactly as an editor would:
``initialize``, ``attach``, breakpoints, ``configurationDone``, then requests and events.
Every read waits on the socket with ``select`` and a deadline; nothing sleeps.
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

import pytest

from .conftest import write, write_replace

pytest.importorskip("debugpy")

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


# --- the tests ---------------------------------------------------------------------

HELPER = """\
def value():
    return "old"
"""

HELPER_NEW = """\
def value():
    return "new"
"""

APP = """\
import helper

def work():
    first = helper.value()
    second = helper.value()  # line 5: the breakpoint; the next call runs the new code
    print("values", first, second, flush=True)

work()
print("after", helper.value(), flush=True)
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = Path(os.path.realpath(tmp_path))
    write(root / "helper.py", HELPER)
    write(root / "app.py", APP)
    return root


def _session(app: Path, *hotmod_args: str, **env: str) -> tuple[subprocess.Popen[bytes], Client, int]:
    port = free_port()
    process = launch(port, ["-m", "hotmod", "run", *hotmod_args, "app.py"], app, debuggee_env(app, **env))
    return process, Client.connect(port, process), port


def test_reload_request_while_paused(app: Path) -> None:
    """Paused in a function of the edited file: the request reloads it, says what it
    patched and which frame still runs the old code, and the next call runs the new."""
    # Polling once a minute: only the request applies the save.
    process, client, _ = _session(app, "--poll", "60")
    try:
        stopped = client.start({app / "helper.py": [2]})
        assert stopped["body"]["reason"] == "breakpoint", stopped
        capabilities = client.wait_event("capabilities")
        assert capabilities["body"]["capabilities"]["supportsHotmodReload"] is True
        write_replace(app / "helper.py", HELPER_NEW)
        response = client.request("hotmod/reload", {"source": {"path": str(app / "helper.py")}})
        assert response["success"], response
        body = response["body"]
        assert body["status"] == "ok", body
        assert body["modules"] == ["helper"]
        assert body["counters"]["modulesReloaded"] == 1
        assert body["counters"]["functionsPatched"] == 1
        assert body["durationMs"] > 0
        # The paused frame is inside value() at line 2 of the old text.
        assert body["staleFrames"] == [f"value ({app / 'helper.py'}:2) in thread MainThread"], body
        assert "1 stale frame(s)" in body["report"]
        loaded = client.wait_event("loadedSource", timeout=5)
        source = {"name": "helper.py", "path": str(app / "helper.py")}
        assert loaded["body"] == {"reason": "changed", "source": source}
        # Asked again: nothing changed since.
        again = client.request("hotmod/reload")
        assert again["body"]["status"] == "noop", again
        assert not list(client.events_named("hotmod/reloadResult"))
        # The breakpoint was in the first call: continue through the second.
        cleared = client.request("setBreakpoints", {"source": source, "breakpoints": []})
        assert cleared["success"], cleared
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    # The frame paused in value() finished in its old code; the next call ran the new.
    assert "values old new" in out, (out, err)
    assert "after new" in out, (out, err)


def test_reload_now_in_the_debug_console_does_not_hang(app: Path) -> None:
    """hotmod traced by the debugger (justMyCode off): its threads are still never
    suspended, so ``reload_now()`` evaluated on the paused frame answers at once."""
    process, client, _ = _session(app, "--poll", "60")
    try:
        stopped = client.start({app / "app.py": [5]}, just_my_code=False)
        thread = stopped["body"]["threadId"]
        trace = client.request("stackTrace", {"threadId": thread})
        frame = trace["body"]["stackFrames"][0]
        assert frame["name"] == "work", frame
        write_replace(app / "helper.py", HELPER_NEW)
        started = time.monotonic()
        evaluated = client.request(
            "evaluate",
            {
                "expression": "__import__('hotmod').reload_now().report()",
                "frameId": frame["id"],
                "context": "repl",
            },
            timeout=20,
        )
        elapsed = time.monotonic() - started
        assert evaluated["success"], evaluated
        assert "reloaded helper in" in evaluated["body"]["result"], evaluated
        assert elapsed < 5, elapsed
        # Typed in the console, not asked over the protocol: the result is an event too.
        event = client.wait_event("hotmod/reloadResult", timeout=5)
        assert event["body"]["status"] == "ok"
        assert event["body"]["modules"] == ["helper"]
        client.wait_event("loadedSource", timeout=5)
        assert client.request("continue", {"threadId": thread})["success"]
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    assert "values old new" in out, (out, err)


def test_a_save_applied_by_the_watcher_is_reported_as_an_event(app: Path) -> None:
    """With the watcher on, a save while paused is applied by hotmod's own thread (never
    suspended) and reaches the client as a ``hotmod/reloadResult`` event."""
    process, client, _ = _session(app)
    try:
        stopped = client.start({app / "app.py": [5]})
        write_replace(app / "helper.py", HELPER_NEW)
        event = client.wait_event("hotmod/reloadResult", timeout=20)
        body = event["body"]
        assert body["status"] == "ok", body
        assert body["modules"] == ["helper"]
        assert body["counters"]["functionsPatched"] == 1
        loaded = client.wait_event("loadedSource", timeout=5)
        assert loaded["body"]["source"]["path"] == str(app / "helper.py")
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    assert "values old new" in out, (out, err)


def test_a_breakpoint_in_module_code_does_not_stop_the_reload(app: Path) -> None:
    """hotmod as a library (excluded from the debugged code, as an installed package is):
    a breakpoint on a module-level line the reload runs again does not stop hotmod's
    thread in the middle of the reload, holding the reload lock."""
    write(app / "helper.py", 'LABEL = "old"\n\n' + HELPER)
    hotmod_dir = Path(__file__).resolve().parent.parent / "hotmod"
    process, client, _ = _session(app)
    try:
        init = client.request("initialize", {"clientID": "hotmod-tests", "adapterID": "debugpy"})
        assert init["success"], init
        attach = client.send(
            "attach", {"justMyCode": True, "rules": [{"path": str(hotmod_dir), "include": False}]}
        )
        client.wait_event("initialized")
        bp = {"source": {"path": str(app / "app.py")}, "breakpoints": [{"line": 5}]}
        assert client.request("setBreakpoints", bp)["success"]
        assert client.request("configurationDone")["success"]
        assert client.response(attach)["success"]
        stopped = client.wait_event("stopped")
        # Now a breakpoint on helper's first line, which the edit below changes.
        bp = {"source": {"path": str(app / "helper.py")}, "breakpoints": [{"line": 1}]}
        assert client.request("setBreakpoints", bp)["success"]
        write_replace(app / "helper.py", 'LABEL = "new"\n\n' + HELPER_NEW)
        event = client.wait_event("hotmod/reloadResult", timeout=20)
        assert event["body"]["status"] == "ok", event
        assert not list(client.events_named("stopped"))
        check = client.request("hotmod/reload", timeout=10)
        assert check["body"]["status"] == "noop", check
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    assert "values old new" in out, (out, err)


@pytest.mark.parametrize("how", ["request", "environment"])
def test_reload_on_continue(app: Path, how: str) -> None:
    env = {"HOTMOD_RELOAD_ON_CONTINUE": "1"} if how == "environment" else {}
    process, client, _ = _session(app, "--poll", "60", **env)
    try:
        stopped = client.start({app / "app.py": [5]})
        switched = client.request("hotmod/reload", {"reloadOnContinue": True} if how == "request" else {})
        assert switched["body"]["reloadOnContinue"] is True, switched
        assert switched["body"]["status"] == "noop"
        write_replace(app / "helper.py", HELPER_NEW)
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        event = client.wait_event("hotmod/reloadResult", timeout=10)
        assert event["body"]["trigger"] == "continue", event
        assert event["body"]["status"] == "ok", event
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    # Applied before the paused thread ran again.
    assert "values old new" in out, (out, err)


def test_a_non_python_file_is_a_failed_result(app: Path) -> None:
    write(app / "notes.txt", "hello\n")
    process, client, _ = _session(app, "--poll", "60")
    try:
        stopped = client.start({app / "app.py": [5]})
        response = client.request("hotmod/reload", {"source": {"path": str(app / "notes.txt")}})
        assert response["success"], response
        assert response["body"]["status"] == "failed", response
        assert "not Python source" in response["body"]["error"]
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    assert "values old old" in out, (out, err)


PLUGIN_APP = """\
import pathlib
import hotmod

folder = hotmod.PluginFolder(pathlib.Path(__file__).parent / "plugins")
folder.load()
folder.start()

def work():
    before = folder.plugins["p"].module.X  # line 9: the breakpoint
    print("plugin", before, folder.plugins["p"].module.X, flush=True)

work()
folder.close()
"""


def test_a_plugin_folder_reload_reaches_the_client_once(app: Path) -> None:
    (app / "plugins").mkdir()
    write(app / "plugins" / "p.py", "X = 1\n")
    write(app / "plugin_app.py", PLUGIN_APP)
    port = free_port()
    process = launch(port, ["plugin_app.py"], app, debuggee_env(app))
    client = Client.connect(port, process)
    try:
        stopped = client.start({app / "plugin_app.py": [9]})
        write_replace(app / "plugins" / "p.py", "X = 2\n")
        event = client.wait_event("hotmod/reloadResult", timeout=20)
        assert event["body"]["status"] == "ok", event
        assert event["body"]["paths"] == [str(app / "plugins" / "p.py")]
        # Anything told of the same reload was sent before this answer.
        assert client.request("threads")["success"]
        assert list(client.events_named("hotmod/reloadResult")) == []
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    finally:
        if process.returncode is None:
            process.kill()
            finish(process, client)
    assert "plugin 2 2" in out, (out, err)  # the paused line runs after the reload
