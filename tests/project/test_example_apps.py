"""The example app keeps its socket, its thread and its cache across 100 edits."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import hotmod

from ..support import write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo_server"
GREETING_LINE = "    return f\"{SETTINGS['greeting']}, {line}\""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[ModuleType, Path]]:
    folder = tmp_path / "echo_server"
    shutil.copytree(EXAMPLE, folder)
    name = f"echo_server_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, folder / "server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    try:
        yield module, folder
    finally:
        sys.modules.pop(name, None)
        if module.SERVER.is_alive():
            module.LISTENER.close()


def test_example_app_keeps_socket_thread_and_cache_across_100_edits(app: tuple[ModuleType, Path]) -> None:
    server, folder = app
    source_path = folder / "server.py"
    original = source_path.read_text()
    assert GREETING_LINE in original
    listener, thread, cache = server.LISTENER, server.SERVER, server.CACHE
    r = hotmod.Reloader([folder], backend="manual", apply="manual")
    client = socket.create_connection(listener.getsockname(), timeout=10)
    lines = client.makefile("r", encoding="utf-8")

    def ask(text: str) -> str:
        client.sendall((text + "\n").encode())
        return lines.readline().strip()

    try:
        assert ask("there") == "hello, there"
        for i in range(1, 101):
            if i % 10 == 0:  # a settings change: the module re-executes through depends_on
                settings = json.loads((folder / "settings.json").read_text())
                settings["greeting"] = f"hi{i}"
                write(folder / "settings.json", json.dumps(settings))
                r.notify(folder / "settings.json")
            text = original.replace(GREETING_LINE, GREETING_LINE[:-1] + f' (v{i})"')
            write(source_path, text)
            r.notify(source_path)
            result = r.poll()
            assert result.status == "ok", result.summary()
            greeting = f"hi{i // 10 * 10}" if i >= 10 else "hello"
            assert ask("there") == f"{greeting}, there (v{i})"  # the same open connection
            assert server.LISTENER is listener
            assert server.SERVER is thread
            assert thread.is_alive()
            assert server.CACHE is cache
            assert cache["there"] == i + 1
            beating = [t for t in threading.enumerate() if t.name.startswith("echo-heartbeat-")]
            assert [t.name for t in beating] == [f"echo-heartbeat-{server.hot.generation}"]
        assert server.hot.generation == 100
        assert ask("upper shout") == "SHOUT"
        assert list(server.COMMANDS) == ["upper", "count"]
    finally:
        client.close()
        lines.close()
    r.close(unload=True)  # the unload hook closes the listener; the server thread ends
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert listener.fileno() == -1


def test_plugin_host_example_edit_while_serving(tmp_path: Path) -> None:
    folder = tmp_path / "plugin_host"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "plugin_host", folder)
    spec = importlib.util.spec_from_file_location(f"bot_{uuid.uuid4().hex[:8]}", folder / "bot.py")
    assert spec is not None
    assert spec.loader is not None
    bot_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bot_module)
    bot = bot_module.Bot()
    pf = hotmod.PluginFolder(folder / "plugins", host=bot, backend="manual", apply="manual")
    try:
        plugins = pf.load()
        assert {n: p.state for n, p in plugins.items()} == {"dice": "loaded", "greet": "loaded"}
        assert bot.handle("hello bob") == "hello, bob"
        bot.handle("roll 6")
        assert "roll #2" in bot.handle("roll 6")
        greet = folder / "plugins" / "greet.py"
        write(greet, greet.read_text().replace('f"hello, {text', 'f"hi there, {text'))
        pf.notify(greet)
        assert pf.poll().status == "ok"
        assert bot.handle("hello bob") == "hi there, bob"
        assert "roll #3" in bot.handle("roll 6")  # the other plugin and its state untouched
        assert not (folder / "plugins" / "__pycache__").exists()
    finally:
        pf.close()
    assert bot.commands == {}
