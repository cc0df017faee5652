"""hotmod under debugpy, driven over the Debug Adapter Protocol by a real client.

The client (``tests.support.dap``) is a socket and JSON messages; it talks to a program
started under ``python -m debugpy --listen HOST:PORT --wait-for-client`` exactly as an
editor would. Every read waits on the socket with a deadline; nothing sleeps.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from ..support import write, write_replace
from ..support.dap import Client, debuggee, debuggee_env, finish

pytest.importorskip("debugpy")

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


def _session(
    app: Path, *hotmod_args: str, **env: str
) -> AbstractContextManager[tuple[subprocess.Popen[bytes], Client]]:
    return debuggee(["-m", "hotmod", "run", *hotmod_args, "app.py"], app, debuggee_env(app, **env))


def test_reload_request_while_paused(app: Path) -> None:
    """Paused in a function of the edited file: the request reloads it, says what it
    patched and which frame still runs the old code, and the next call runs the new."""
    # Polling once a minute: only the request applies the save.
    with _session(app, "--poll", "60") as (process, client):
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
    # The frame paused in value() finished in its old code; the next call ran the new.
    assert "values old new" in out, (out, err)
    assert "after new" in out, (out, err)


def test_the_request_works_in_a_program_that_never_imports_hotmod(app: Path) -> None:
    """pydevd loads hotmod's extension (``pydevd_plugins/extensions``) by itself: the
    request is there from the first pause, with no Reloader and no ``import hotmod``, in
    a program started as the editor starts it (``python -m debugpy ... app.py``)."""
    with debuggee(["app.py"], app, debuggee_env(app)) as (process, client):
        stopped = client.start({app / "helper.py": [2]})
        assert stopped["body"]["reason"] == "breakpoint", stopped
        write_replace(app / "helper.py", HELPER_NEW)
        response = client.request("hotmod/reload", {"source": {"path": str(app / "helper.py")}})
        assert response["success"], response
        assert response["body"]["status"] == "ok", response
        assert response["body"]["modules"] == ["helper"]
        loaded = client.wait_event("loadedSource", timeout=5)
        assert loaded["body"]["source"]["path"] == str(app / "helper.py")
        source = {"name": "helper.py", "path": str(app / "helper.py")}
        assert client.request("setBreakpoints", {"source": source, "breakpoints": []})["success"]
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    assert "values old new" in out, (out, err)
    assert "after new" in out, (out, err)


def test_reload_now_in_the_debug_console_does_not_hang(app: Path) -> None:
    """hotmod traced by the debugger (justMyCode off): its threads are still never
    suspended, so ``reload_now()`` evaluated on the paused frame answers at once."""
    with _session(app, "--poll", "60") as (process, client):
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
    assert "values old new" in out, (out, err)


def test_a_save_applied_by_the_watcher_is_reported_as_an_event(app: Path) -> None:
    """With the watcher on, a save while paused is applied by hotmod's own thread (never
    suspended) and reaches the client as a ``hotmod/reloadResult`` event."""
    with _session(app) as (process, client):
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
    assert "values old new" in out, (out, err)


def test_a_breakpoint_in_module_code_does_not_stop_the_reload(app: Path) -> None:
    """hotmod as a library (excluded from the debugged code, as an installed package is):
    a breakpoint on a module-level line the reload runs again does not stop hotmod's
    thread in the middle of the reload, holding the reload lock."""
    write(app / "helper.py", 'LABEL = "old"\n\n' + HELPER)
    hotmod_dir = Path(__file__).resolve().parents[2] / "hotmod"
    with _session(app) as (process, client):
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
    assert "values old new" in out, (out, err)


@pytest.mark.parametrize("how", ["request", "environment"])
def test_reload_on_continue(app: Path, how: str) -> None:
    env = {"HOTMOD_RELOAD_ON_CONTINUE": "1"} if how == "environment" else {}
    with _session(app, "--poll", "60", **env) as (process, client):
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
    # Applied before the paused thread ran again.
    assert "values old new" in out, (out, err)


def test_a_non_python_file_is_a_failed_result(app: Path) -> None:
    write(app / "notes.txt", "hello\n")
    with _session(app, "--poll", "60") as (process, client):
        stopped = client.start({app / "app.py": [5]})
        response = client.request("hotmod/reload", {"source": {"path": str(app / "notes.txt")}})
        assert response["success"], response
        assert response["body"]["status"] == "failed", response
        assert "not Python source" in response["body"]["error"]
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
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
    plugin = 'print("plugin module ran", flush=True)\nX = {}\n'
    write(app / "plugins" / "p.py", plugin.format(1))
    write(app / "plugin_app.py", PLUGIN_APP)
    with debuggee(["plugin_app.py"], app, debuggee_env(app)) as (process, client):
        stopped = client.start({app / "plugin_app.py": [9]})
        write_replace(app / "plugins" / "p.py", plugin.format(2))
        event = client.wait_event("hotmod/reloadResult", timeout=20)
        assert event["body"]["status"] == "ok", event
        assert event["body"]["paths"] == [str(app / "plugins" / "p.py")]
        # Anything told of the same reload was sent before this answer.
        assert client.request("threads")["success"]
        assert list(client.events_named("hotmod/reloadResult")) == []
        assert client.request("continue", {"threadId": stopped["body"]["threadId"]})["success"]
        out, err = finish(process, client)
    assert "plugin 2 2" in out, (out, err)  # the paused line runs after the reload
    # Applied once: the module ran at load and once for the save, under the folder's own
    # reloader and the debugger's listener alike.
    assert out.count("plugin module ran") == 2, (out, err)
