"""PluginFolder: discovery, lifecycle, isolation and rollback (S14), trust."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmod

from ..support import bump_mtime, write


class Host:
    def __init__(self) -> None:
        self.commands: dict[str, Any] = {}
        self.events: list[tuple[str, str]] = []


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "plugins"
    path.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    return path


@pytest.fixture
def make(folder: Path) -> Iterator[Any]:
    made: list[hotmod.PluginFolder] = []

    def factory(**options: Any) -> hotmod.PluginFolder:
        options.setdefault("backend", "manual")
        options.setdefault("apply", "manual")
        options.setdefault("debounce", 0)
        pf = hotmod.PluginFolder(folder, **options)
        made.append(pf)
        return pf

    yield factory
    for pf in made:
        pf.close()


GREETER = """
def setup(ctx):
    ctx.data.setdefault("setups", 0)
    ctx.data["setups"] += 1
    ctx.host.commands["{name}"] = reply
    ctx.on_cleanup(lambda: ctx.host.events.append(("cleanup", "{name}")))
def teardown(ctx):
    ctx.host.commands.pop("{name}", None)
    ctx.host.events.append(("teardown", "{name}"))
def reply():
    return "{text}"
"""


def plugin(folder: Path, name: str, text: str = "hi", *, body: str | None = None) -> Path:
    path = folder / f"{name}.py"
    write(path, body if body is not None else GREETER.format(name=name, text=text))
    bump_mtime(path)
    return path


def notify(pf: hotmod.PluginFolder, path: Path) -> hotmod.ReloadResult:
    pf.notify(path)
    return pf.poll()


def test_load_in_order_with_lifecycle_and_host_callbacks(folder: Path, make: Any) -> None:
    host = Host()
    for name in ("b", "a", "c"):
        plugin(folder, name, text=name.upper())
    seen: list[str] = []
    pf = make(
        host=host,
        on_load=lambda p: seen.append(f"load {p.name}"),
        on_unload=lambda p: seen.append(f"unload {p.name}"),
    )
    plugins = pf.load()
    assert list(plugins) == ["a", "b", "c"]
    assert all(p.state == "loaded" for p in plugins.values())
    assert seen == ["load a", "load b", "load c"]
    assert host.commands["a"]() == "A"
    module = plugins["a"].module
    assert module is not None
    assert module.__name__ == f"{pf.package}.a"
    assert str(folder) not in sys.path
    pf.close()
    assert seen[-3:] == ["unload c", "unload b", "unload a"]  # reverse load order
    assert host.commands == {}
    assert ("cleanup", "a") in host.events
    assert module.__name__ not in sys.modules


def test_edit_reloads_in_place_keeping_data_and_other_plugins(folder: Path, make: Any) -> None:
    host = Host()
    path_a = plugin(folder, "a", "one")
    plugin(folder, "b", "bee")
    pf = make(host=host)
    pf.load()
    module = pf.plugins["a"].module
    held = module.reply
    write(path_a, GREETER.format(name="a", text="two"))
    result = notify(pf, path_a)
    assert result.status == "ok", result.summary()
    assert host.commands["a"]() == "two"
    assert held() == "two"  # identity kept, as for any module
    assert pf.plugins["a"].module is module
    assert pf.plugins["a"].data["setups"] == 2
    assert host.events == [("teardown", "a"), ("cleanup", "a")]
    assert host.commands["b"]() == "bee"
    assert pf.plugins["b"].data["setups"] == 1


def test_new_file_loads_and_deleted_file_unloads(folder: Path, make: Any) -> None:
    host = Host()
    pf = make(host=host)
    assert pf.load() == {}
    path = plugin(folder, "late", "new")
    result = pf.poll()
    assert result.status == "ok"
    assert host.commands["late"]() == "new"
    full = f"{pf.package}.late"
    assert full in sys.modules
    os.remove(path)
    result = pf.poll()
    assert result.status == "ok"
    assert "late" not in pf.plugins
    assert full not in sys.modules
    assert host.commands == {}
    assert host.events == [("teardown", "late"), ("cleanup", "late")]


def test_s14_broken_plugin_among_working_ones(folder: Path, make: Any) -> None:
    host = Host()
    plugin(folder, "good", "ok")
    plugin(folder, "bad", body="x = 1\nraise ValueError('broken at import')\n")
    bad_setup = """
    def setup(ctx):
        ctx.on_cleanup(lambda: ctx.host.events.append(("cleanup", "bs")))
        raise RuntimeError("no")
    """
    plugin(folder, "badsetup", body=bad_setup)
    pf = make(host=host)
    plugins = pf.load()
    assert plugins["good"].state == "loaded"
    assert plugins["bad"].state == "failed"
    error = plugins["bad"].error
    assert error is not None
    assert f"{folder / 'bad.py'}:2" in str(error)
    assert plugins["badsetup"].state == "failed"
    assert "RuntimeError in setup" in str(plugins["badsetup"].error)
    assert host.events == [("cleanup", "bs")]  # the cleanup stack ran after the failed setup
    assert f"{pf.package}.bad" not in sys.modules
    assert host.commands["good"]() == "ok"
    # Fixing the broken one loads it; the good one is untouched.
    plugin(folder, "bad", "fixed")
    assert pf.poll().status == "ok"
    assert pf.plugins["bad"].state == "loaded"
    assert host.commands["bad"]() == "fixed"


def test_s14_failing_reload_keeps_the_old_version(folder: Path, make: Any) -> None:
    host = Host()
    path = plugin(folder, "a", "v1")
    pf = make(host=host)
    pf.load()
    module = pf.plugins["a"].module
    for broken in (
        "def setup(ctx)\n    pass\n",  # syntax error
        GREETER.format(name="a", text="v2") + "\nraise KeyError('at import')\n",
        GREETER.format(name="a", text="v2").replace("ctx.host.commands", "ctx.host.nope"),  # setup fails
    ):
        write(path, broken)
        result = notify(pf, path)
        assert result.status == "aborted", result.summary()
        assert pf.plugins["a"].state == "loaded"
        assert pf.plugins["a"].error is not None
        assert pf.plugins["a"].module is module
        assert host.commands["a"]() == "v1"
    write(path, GREETER.format(name="a", text="v3"))
    assert notify(pf, path).status == "ok"
    assert host.commands["a"]() == "v3"
    assert pf.plugins["a"].error is None


def test_json_plugin_never_shadows_the_standard_library(folder: Path, make: Any) -> None:
    plugin(folder, "json", body="VALUE = 'plugin'\n")
    pf = make()
    plugins = pf.load()
    assert plugins["json"].module.VALUE == "plugin"
    assert json.dumps([1]) == "[1]"
    assert sys.modules["json"].__name__ == "json"
    assert not hasattr(sys.modules["json"], "VALUE")


def test_ignored_names_helpers_and_relative_imports(folder: Path, make: Any) -> None:
    write(folder / "_helpers.py", "def shout(s):\n    return s.upper()\n")
    write(folder / ".hidden.py", "raise SystemExit('never')\n")
    write(folder / "x.py~", "")
    write(folder / "#x.py#", "")
    write(folder / "bad-name.py", "X = 1\n")
    (folder / "pkgplugin").mkdir()
    write(folder / "pkgplugin" / "__init__.py", "from .inner import VALUE\n")
    write(folder / "pkgplugin" / "inner.py", "VALUE = 7\n")
    path = plugin(folder, "user", body="from . import _helpers\ndef run():\n    return _helpers.shout('a')\n")
    pf = make()
    plugins = pf.load()
    assert sorted(plugins) == ["bad-name", "pkgplugin", "user"]
    assert plugins["bad-name"].state == "failed"
    assert "not a valid module name" in str(plugins["bad-name"].error)
    assert plugins["pkgplugin"].module.VALUE == 7
    assert plugins["user"].module.run() == "A"
    # Editing a helper re-runs the plugins that import it.
    write(folder / "_helpers.py", "def shout(s):\n    return s.upper() + '!'\n")
    result = notify(pf, folder / "_helpers.py")
    assert result.status == "ok", result.summary()
    assert plugins["user"].module.run() == "A!"
    assert path.exists()


def test_requires_orders_loading_and_reports_cycles(folder: Path, make: Any) -> None:
    order: list[str] = []
    body = "__requires__ = {req!r}\ndef setup(ctx):\n    ctx.host.append('{name}')\n"
    plugin(folder, "a", body=body.format(req=("c",), name="a"))
    plugin(folder, "b", body=body.format(req=(), name="b"))
    plugin(folder, "c", body=body.format(req=("b",), name="c"))
    plugin(folder, "x", body=body.format(req=("y",), name="x"))
    plugin(folder, "y", body=body.format(req=("x",), name="y"))
    plugin(folder, "z", body=body.format(req=("missing",), name="z"))
    pf = make(host=order)
    plugins = pf.load()
    assert order == ["b", "c", "a"]
    assert plugins["x"].state == "failed"
    assert "cycle" in str(plugins["x"].error)
    assert plugins["y"].state == "failed"
    assert "'missing'" in str(plugins["z"].error)


def test_no_pycache_is_read_or_written(folder: Path, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    plugin(folder, "a", body="VALUE = 'source'\n")
    # A planted, sourceless module: would run if the default finders looked here.
    (folder / "__pycache__").mkdir()
    import py_compile

    planted = folder / "planted.py"
    write(planted, "VALUE = 'planted'\n")
    py_compile.compile(str(planted), cfile=str(folder / "planted.pyc"))
    os.remove(planted)
    pf = make()
    plugins = pf.load()
    assert plugins["a"].module.VALUE == "source"
    assert "planted" not in plugins
    with pytest.raises(ImportError):
        __import__(f"{pf.package}.planted")
    assert list((folder / "__pycache__").iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_trust_rules_refuse_in_strict_and_warn_in_warn_mode(folder: Path, make: Any, tmp_path: Path) -> None:
    plugin(folder, "a", "one")
    outside = tmp_path / "outside.py"
    write(outside, "VALUE = 'outside'\n")
    os.symlink(outside, folder / "escape.py")
    pf = make(host=Host())
    plugins = pf.load()
    assert plugins["a"].state == "loaded"
    assert plugins["escape"].state == "refused"
    assert "leads outside the plugin folder" in str(plugins["escape"].error)
    pf.close()

    os.chmod(folder, 0o777)
    pf = make(host=Host())
    plugins = pf.load()
    assert {p.state for p in plugins.values()} == {"refused"}
    assert "writable by group or others" in str(plugins["a"].error)
    pf.close()

    os.chmod(folder, 0o755)
    os.chmod(tmp_path, 0o775)  # a group-writable ancestor
    pf = make(host=Host())
    assert pf.load()["a"].state == "refused"
    assert "ancestor" in str(pf.plugins["a"].error)
    pf.close()

    pf = make(host=Host(), trust="warn")
    with pytest.warns(hotmod.HotmodWarning) as caught:
        plugins = pf.load()
    messages = " ".join(str(w.message) for w in caught)
    assert "writable by group or others" in messages
    assert "leads outside the plugin folder" in messages
    assert plugins["a"].state == "loaded"
    assert plugins["escape"].state == "loaded"
    os.chmod(tmp_path, 0o755)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to give a file away")
def test_a_file_owned_by_someone_else_is_refused(folder: Path, make: Any) -> None:
    path = plugin(folder, "theirs", "x")
    os.chown(path, 12345, 12345)
    plugin(folder, "mine", "y")
    pf = make(host=Host())
    plugins = pf.load()
    assert plugins["theirs"].state == "refused"
    assert "owned by uid 12345" in str(plugins["theirs"].error)
    assert plugins["mine"].state == "loaded"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_plugin_file_writable_by_others_is_refused(folder: Path, make: Any) -> None:
    path = plugin(folder, "open_to_all", "x")
    os.chmod(path, 0o666)
    plugin(folder, "mine", "y")
    plugins = make(host=Host()).load()
    assert plugins["open_to_all"].state == "refused"
    assert "writable by group or others" in str(plugins["open_to_all"].error)
    assert plugins["mine"].state == "loaded"


def test_keyboard_interrupt_is_not_swallowed(folder: Path, make: Any) -> None:
    plugin(folder, "a", body="raise KeyboardInterrupt\n")
    pf = make()
    with pytest.raises(KeyboardInterrupt):
        pf.load()


@pytest.mark.watchdog
def test_background_folder_loads_a_new_file_and_applies_an_edit(folder: Path) -> None:
    import threading

    from ..support import EVENT_TIMEOUT, write_replace

    host = Host()
    events: list[hotmod.ReloadResult] = []
    loaded = threading.Event()
    with hotmod.PluginFolder(folder, host=host, backend="watchdog") as pf:

        def heard(result: hotmod.ReloadResult) -> None:
            events.append(result)
            loaded.set()

        pf.subscribe(heard)
        write_replace(folder / "fresh.py", GREETER.format(name="fresh", text="one"))
        assert loaded.wait(EVENT_TIMEOUT), events
        assert host.commands["fresh"]() == "one"
        loaded.clear()
        write_replace(folder / "fresh.py", GREETER.format(name="fresh", text="two"))
        assert loaded.wait(EVENT_TIMEOUT), events
        assert host.commands["fresh"]() == "two"
    assert host.commands == {}


def test_pluggy_plugin_manager_interoperates(folder: Path, make: Any) -> None:
    pluggy = pytest.importorskip("pluggy")
    # importorskip gives an untyped module: the marker is typed here, as pluggy types it.
    hookspec: Callable[[Callable[..., str]], Callable[..., str]] = pluggy.HookspecMarker("bot")

    class Spec:
        @hookspec
        def handle(self, text: str) -> str:
            raise NotImplementedError("a specification: pluggy calls the implementations")

    pm = pluggy.PluginManager("bot")
    pm.add_hookspecs(Spec)
    body = (
        "import pluggy\n"
        "hookimpl = pluggy.HookimplMarker('bot')\n"
        "@hookimpl\n"
        "def handle(text):\n"
        "    return '{v}' + text\n"
    )
    path = plugin(folder, "echo", body=body.format(v="v1:"))
    plugin(folder, "other", body=body.format(v="o:"))
    pf = make(
        on_load=lambda p: pm.register(p.module, name=p.name),
        on_unload=lambda p: pm.unregister(name=p.name),
    )
    pf.load()
    assert sorted(pm.hook.handle(text="x")) == ["o:x", "v1:x"]
    write(path, body.format(v="v2:"))
    assert notify(pf, path).status == "ok"
    assert sorted(pm.hook.handle(text="x")) == ["o:x", "v2:x"]
    os.remove(path)
    pf.poll()
    assert pm.hook.handle(text="x") == ["o:x"]
