"""State across versions: hotmod.hot(), keep/data/generation, hooks, decline, data files (S17)."""

from __future__ import annotations

import json
import logging
import sys
import textwrap

import pytest

import hotmod

from ..support import Pkg, edit, write

STATEFUL = """
import hotmod
hot = hotmod.hot(__name__)
from .log import runs
conn = hot.keep("conn", lambda: object())
hot.data.setdefault("calls", 0)
VERSION = {v}
@hot.on_dispose
def _dispose(data):
    runs.append(("dispose", VERSION, hot.generation))
    data["handed_over"] = VERSION
@hot.on_accept
def _accept(data):
    runs.append(("accept", VERSION, hot.generation, data.get("handed_over")))
"""


def test_s17_keep_returns_the_same_object_across_100_reloads(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("svc", STATEFUL.format(v=0))
    conn = mod.conn
    r = pkg.reloader()
    for v in range(1, 101):
        assert edit(r, pkg.path("svc"), STATEFUL.format(v=v)).status == "ok"
        assert mod.conn is conn
    assert mod.VERSION == 100
    assert mod.hot.generation == 100
    assert mod.hot is hotmod.hot(mod.__name__)
    # Each version's handlers ran once, for that version only: nothing piled up.
    assert runs[:2] == [("dispose", 0, 0), ("accept", 1, 1, 0)]
    assert runs[-2:] == [("dispose", 99, 99), ("accept", 100, 100, 99)]
    assert len(runs) == 200


def test_aborted_reload_runs_no_dispose_and_keeps_the_hooks(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("svc", STATEFUL.format(v=0))
    conn = mod.conn
    r = pkg.reloader()
    broken = STATEFUL.format(v=1) + "\nraise RuntimeError('no')\n"
    result = edit(r, pkg.path("svc"), broken)
    assert result.status == "aborted"
    assert runs == []
    assert mod.hot.generation == 0
    assert mod.conn is conn
    assert mod.VERSION == 0
    # The running version's hooks are the ones that run on the next good reload.
    assert edit(r, pkg.path("svc"), STATEFUL.format(v=2)).ok
    assert runs == [("dispose", 0, 0), ("accept", 2, 1, 0)]
    assert mod.conn is conn


def test_keep_after_an_aborted_run_that_created_it(pkg: Pkg) -> None:
    log = pkg.counter()
    mod = pkg.module("svc", "X = 1\n")
    r = pkg.reloader(strategy="module")  # every edit runs the keep line again
    source = """
    import hotmod
    from .log import runs
    hot = hotmod.hot(__name__)
    res = hot.keep("res", lambda: runs.append("made") or object())
    {tail}
    """
    assert edit(r, pkg.path("svc"), source.format(tail="raise ValueError('late')")).status == "aborted"
    assert log == ["made"]
    assert edit(r, pkg.path("svc"), source.format(tail="")).ok
    assert log == ["made"]  # the object made by the aborted run is the one kept
    first = mod.res
    assert edit(r, pkg.path("svc"), source.format(tail="Y = 2")).ok
    assert mod.res is first
    mod.hot.forget("res")  # the next version makes a new one
    assert edit(r, pkg.path("svc"), source.format(tail="Y = 3")).ok
    assert mod.res is not first
    assert log == ["made", "made"]


def test_without_a_reloader_hot_is_inert(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("svc", STATEFUL.format(v=0))
    assert mod.hot.generation == 0
    assert mod._dispose.__name__ == "_dispose"  # decorators return the function unchanged
    assert runs == []
    ctx = hotmod.hot("no.such.module")
    assert ctx.keep("k", lambda: 5) == 5
    assert ctx.on_unload(print) is print
    ctx.decline("whatever")


def test_reloader_created_after_import_takes_the_module_over(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = pkg.module("svc", STATEFUL.format(v=0))
    conn = mod.conn
    r = pkg.reloader()  # after the import: the hooks the module registered still count
    assert edit(r, pkg.path("svc"), STATEFUL.format(v=1)).ok
    assert runs == [("dispose", 0, 0), ("accept", 1, 1, 0)]
    assert mod.conn is conn


def test_hook_order_across_a_batch(pkg: Pkg) -> None:
    runs = pkg.counter()
    template = """
    import hotmod
    from .log import runs
    {imports}
    V = {v}
    hot = hotmod.hot(__name__)
    hot.on_dispose(lambda data: runs.append(("dispose", "{name}")))
    hot.on_accept(lambda data: runs.append(("accept", "{name}")))
    """
    sources = {
        "low": template.format(imports="", name="low", v="{v}"),
        "mid": template.format(imports="from . import low", name="mid", v="{v}"),
        "top": template.format(imports="from . import mid", name="top", v="{v}"),
    }
    for name in ("low", "mid", "top"):
        pkg.module(name, sources[name].format(v=1))
    r = pkg.reloader()
    for name in ("top", "low", "mid"):
        write(pkg.path(name), sources[name].format(v=2))
        r.notify(pkg.path(name))
    result = r.poll()
    assert result.status == "ok"
    assert runs == [
        ("dispose", "top"),
        ("dispose", "mid"),
        ("dispose", "low"),
        ("accept", "low"),
        ("accept", "mid"),
        ("accept", "top"),
    ]


def test_a_hook_that_raises_is_reported_and_the_reload_commits(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    source = """
    import hotmod
    hot = hotmod.hot(__name__)
    V = {v}
    @hot.on_dispose
    def bad_dispose(data):
        raise RuntimeError("dispose failed")
    @hot.on_accept
    def bad_accept(data):
        raise KeyError("accept failed")
    def f():
        return V
    """
    mod = pkg.module("svc", source.format(v=1))
    f = mod.f
    r = pkg.reloader()
    with caplog.at_level(logging.ERROR, logger="hotmod"):
        result = edit(r, pkg.path("svc"), source.format(v=2))
    assert result.status == "ok"
    assert f() == 2
    messages = "\n".join(result.warnings)
    assert "dispose hook bad_dispose" in messages
    assert "RuntimeError: dispose failed" in messages
    assert "accept hook bad_accept" in messages
    assert "KeyError" in messages
    assert f"{pkg.path('svc')}:" in messages  # where the hook is
    assert any("dispose failed" in rec.getMessage() for rec in caplog.records)
    # The reloader keeps working.
    assert edit(r, pkg.path("svc"), source.format(v=3)).ok
    assert f() == 3


def test_decline_reports_needs_restart_and_does_not_execute(pkg: Pkg) -> None:
    runs = pkg.counter()
    source = """
    import hotmod
    from .log import runs
    runs.append({v})
    hotmod.hot(__name__).decline("holds a C handle")
    """
    mod = pkg.module("native", source.format(v=1))
    dunder = pkg.module("legacy", "from .log import runs\n__hotmod_decline__ = 'global state'\nX = 1\n")
    r = pkg.reloader()
    result = edit(r, pkg.path("native"), source.format(v=2))
    assert result.status == "needs_restart"
    assert "holds a C handle" in str(result.error)
    assert runs == [1]
    result = edit(r, pkg.path("legacy"), "__hotmod_decline__ = 'global state'\nX = 2\n")
    assert result.status == "needs_restart"
    assert "global state" in str(result.error)
    assert dunder.X == 1
    assert mod.__name__ in sys.modules
    # Reported once, and the reloader keeps working for the others.
    assert r.poll().status == "noop"
    other = pkg.module("other", "X = 1\n")
    r.poll()
    assert edit(r, pkg.path("other"), "X = 2\n").ok
    assert other.X == 2


def test_a_batch_with_a_declined_module_names_only_that_module_as_needing_a_restart(pkg: Pkg) -> None:
    declined = pkg.module("held", "__hotmod_decline__ = 'global state'\nX = 1\n")
    other = pkg.module("free", "X = 1\n")
    r = pkg.reloader()
    write(pkg.path("held"), "__hotmod_decline__ = 'global state'\nX = 2\n")
    write(pkg.path("free"), "X = 2\n")
    r.notify(pkg.path("held"), pkg.path("free"))
    result = r.poll()
    assert result.status == "needs_restart"
    assert result.summary().startswith(f"{pkg.qualname('held')} needs a restart: "), result.summary()
    # The other file of the batch applies on the next poll.
    assert r.poll().status == "ok"
    assert (declined.X, other.X) == (1, 2)


def test_dunder_api_without_importing_hotmod(pkg: Pkg) -> None:
    runs = pkg.counter()
    source = """
    from .log import runs
    __hotmod_keep__ = ("CACHE", "session")
    CACHE = {{}}
    session = object()
    V = {v}
    def __hotmod_dispose__(data):
        runs.append(("dispose", V))
        data["from"] = V
    def __hotmod_accept__(data):
        runs.append(("accept", V, data["from"]))
    def __hotmod_unload__(data):
        runs.append(("unload", V))
    """
    mod = pkg.module("plain", source.format(v=1))
    cache, session = mod.CACHE, mod.session
    cache["k"] = "v"
    r = pkg.reloader()
    assert edit(r, pkg.path("plain"), source.format(v=2)).ok
    assert mod.CACHE is cache
    assert mod.CACHE == {"k": "v"}
    assert mod.session is session
    assert mod.V == 2
    assert runs == [("dispose", 1), ("accept", 2, 1)]
    name = mod.__name__
    r.close(unload=True)
    assert runs[-1] == ("unload", 2)
    assert name not in sys.modules


def test_on_unload_runs_when_the_reloader_closes_with_unloading(pkg: Pkg) -> None:
    runs = pkg.counter()
    source = """
    import hotmod
    from .log import runs
    hot = hotmod.hot(__name__)
    hot.on_unload(lambda data: runs.append(("unload", "{name}")))
    {imports}
    """
    pkg.module("base", source.format(name="base", imports=""))
    pkg.module("app", source.format(name="app", imports="from . import base"))
    r = pkg.reloader()
    r.close(unload=True)
    assert runs == [("unload", "app"), ("unload", "base")]
    assert pkg.qualname("app") not in sys.modules


def test_unknown_hotmod_dunder_warns_at_the_users_line(pkg: Pkg) -> None:
    pkg.module("typo", "X = 1\n")
    r = pkg.reloader()
    text = "X = 2\n\ndef __hotmod_dipose__(data):\n    pass\n"
    with pytest.warns(hotmod.HotmodWarning, match="__hotmod_dipose__") as caught:
        result = edit(r, pkg.path("typo"), text)
    assert result.status == "ok"
    assert any("__hotmod_dipose__" in w and f"{pkg.path('typo')}:3" in w for w in result.warnings)
    assert caught[0].filename == str(pkg.path("typo"))
    assert caught[0].lineno == 3


def test_unknown_dunder_in_a_module_found_at_start_warns(pkg: Pkg) -> None:
    pkg.module("typo", "X = 1\n__hotmod_kep__ = ('X',)\n")
    with pytest.warns(hotmod.HotmodWarning, match=r"__hotmod_kep__") as caught:
        pkg.reloader()
    assert caught[0].lineno == 2


CONFIGURED = """
import json
import hotmod
hot = hotmod.hot(__name__)
from .log import runs
SETTINGS = json.loads(hot.depends_on("settings.json").read_text())
runs.append(SETTINGS["level"])
@hot.on_dispose
def _bye(data):
    runs.append("dispose")
def level():
    return SETTINGS["level"]
"""


def test_depends_on_reexecutes_the_module_when_its_data_file_changes(pkg: Pkg) -> None:
    runs = pkg.counter()
    settings = pkg.dir / "settings.json"
    settings.write_text(json.dumps({"level": 1}))
    mod = pkg.module("config", CONFIGURED)
    level = mod.level
    r = pkg.reloader()
    r.poll()
    settings.write_text(json.dumps({"level": 2}))
    r.notify(settings)
    result = r.poll()
    assert result.status == "ok", result.summary()
    assert result.modules == (mod.__name__,)
    assert level() == 2
    assert runs == [1, 2, "dispose"]  # dispose runs once the new version executed fine
    # Broken data: the module's code raises, the old version keeps running.
    settings.write_text("{not json")
    r.notify(settings)
    result = r.poll()
    assert result.status == "aborted"
    assert "JSONDecodeError" in str(result.error)
    assert level() == 2
    # Back to what the running version read: nothing to run.
    settings.write_text(json.dumps({"level": 2}))
    r.notify(settings)
    assert r.poll().status == "noop"
    settings.write_text(json.dumps({"level": 3}))
    r.notify(settings)
    assert r.poll().status == "ok"
    assert level() == 3


@pytest.mark.watchdog
def test_depends_on_is_seen_by_the_watchdog_backend(pkg: Pkg) -> None:
    from ..support import Results, write_replace

    runs = pkg.counter()
    settings = pkg.dir / "settings.json"
    settings.write_text(json.dumps({"level": 1}))
    mod = pkg.module("config", CONFIGURED)
    r = pkg.reloader(backend="watchdog", apply="background")
    results = Results(r, lambda res: res.status == "ok")
    r.start()
    write_replace(settings, json.dumps({"level": 5}))
    assert results.wait(), results.statuses
    assert mod.level() == 5
    assert runs == [1, 5, "dispose"]


def test_host_exclude_declines(pkg: Pkg) -> None:
    mod = pkg.module("frozen_db", "X = 1\n")
    r = pkg.reloader(exclude=("frozen_*",))
    result = edit(r, pkg.path("frozen_db"), "X = 2\n")
    assert result.status == "needs_restart"
    assert "frozen_*" in str(result.error)
    assert mod.X == 1


def test_readme_patterns_survive_edits(pkg: Pkg) -> None:
    """A thread stopped and restarted cleanly, and a registry without duplicates."""
    pkg.module("bus", "handlers = []\n")
    source = textwrap.dedent(
        """
        import threading
        import hotmod
        from . import bus
        hot = hotmod.hot(__name__)
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait, daemon=True)
        worker.start()
        hot.on_dispose(lambda data: (stop.set(), worker.join(5)))
        def handler(event):
            return "v{v}"
        bus.handlers.append(handler)
        hot.on_dispose(lambda data: bus.handlers.remove(handler))
        """
    )
    mod = pkg.module("svc", source.format(v=1))
    bus = pkg.import_("bus")
    r = pkg.reloader()
    workers = [mod.worker]
    for v in range(2, 6):
        assert edit(r, pkg.path("svc"), source.format(v=v)).ok
        workers.append(mod.worker)
    assert [h(None) for h in bus.handlers] == ["v5"]
    assert [w.is_alive() for w in workers] == [False] * 4 + [True]
    mod.stop.set()
    mod.worker.join(5)
