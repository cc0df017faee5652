"""What runs is known exactly, in the orders users produce (issue 16, S18, S21).

- a module imported while a reloader is open: its import's source is recorded, so a save
  made before the reloader's next look applies whatever its mtime and whatever it changed;
- a module imported before any reloader (a late start, a forked worker): it is compared
  with its file object by object, and any difference is reloaded and reported;
- forks, the commit order, and state that must not outlive its reloader.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hotmod

from ..support import Pkg, edit, write

# -- edits that the old heuristic lost, each with a check of the new behaviour ---------------

V1 = """\
__all__ = ["f", "Shape"]

def f():
    return 1

def helper():
    return "helper"

class Shape:
    SIDES = 3

    @property
    def area(self):
        return 1

    def name(self):
        return "shape"

    class Inner:
        def kind(self):
            return "inner-1"

def make_adder():
    def add(x):
        return x + 1
    return add

square = lambda x: x * x

def register(limit):
    return limit

LIMIT = register(limit=1)
"""

# Each edit, and a check of the edited module (typed ``Any``: its names are in SOURCE's text).
EDITS: dict[str, tuple[Callable[[str], str], Callable[[Any], bool]]] = {
    "function body": (
        lambda s: s.replace("    return 1\n\ndef helper", "    return 2\n\ndef helper"),
        lambda m: m.f() == 2,
    ),
    "method body only": (
        lambda s: s.replace('return "shape"', 'return "polygon"'),
        lambda m: m.Shape().name() == "polygon",
    ),
    "a property becoming a method": (
        lambda s: s.replace("    @property\n    def area(self):", "    def area(self):"),
        lambda m: callable(m.Shape().area) and m.Shape().area() == 1,
    ),
    "a nested class's method": (
        lambda s: s.replace('"inner-1"', '"inner-2"'),
        lambda m: m.Shape.Inner().kind() == "inner-2",
    ),
    "an inner function": (
        lambda s: s.replace("return x + 1", "return x + 2"),
        lambda m: m.make_adder()(1) == 3,
    ),
    "a lambda": (
        lambda s: s.replace("lambda x: x * x", "lambda x: x * x * x"),
        lambda m: m.square(2) == 8,
    ),
    "a class constant": (
        lambda s: s.replace("SIDES = 3", "SIDES = 4"),
        lambda m: m.Shape.SIDES == 4,
    ),
    "__all__": (
        lambda s: s.replace('__all__ = ["f", "Shape"]', '__all__ = ["f"]'),
        lambda m: m.__all__ == ["f"],
    ),
    "a removed function": (
        lambda s: s.replace('def helper():\n    return "helper"\n', ""),
        lambda m: not hasattr(m, "helper"),
    ),
}

# A call's argument leaves no trace in any object: only an exact record sees it.
RECORDED_ONLY = {
    "a call's argument": (
        lambda s: s.replace("register(limit=1)", "register(limit=2)"),
        lambda m: m.LIMIT == 2,
    ),
}

DAY = 86_400


def _mtime_policy(path: Path, policy: str, before: os.stat_result) -> None:
    """Give ``path`` an mtime that lies: in the past, equal to the previous one, in the future."""
    if policy == "past":  # cp -p, rsync -a, tar: the source machine's old mtime
        ns = before.st_mtime_ns - 30 * DAY * 10**9
    elif policy == "equal":
        ns = before.st_mtime_ns
    elif policy == "future":  # a mount whose clock runs ahead
        ns = time.time_ns() + DAY * 10**9
    else:
        return
    os.utime(path, ns=(ns, ns))


POLICIES = ["honest", "past", "equal", "future"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kind", [*EDITS, *RECORDED_ONLY])
def test_first_edit_after_a_late_import_applies_whatever_the_mtime(pkg: Pkg, kind: str, policy: str) -> None:
    change, check = {**EDITS, **RECORDED_ONLY}[kind]
    r = pkg.reloader()  # the reloader exists first (a notebook's %load_ext)
    mod = pkg.module("m", V1)  # then the import
    before = os.stat(pkg.path("m"))
    write(pkg.path("m"), change(V1))  # saved before the reloader's next look
    _mtime_policy(pkg.path("m"), policy, before)

    result = r.poll()  # no notify(): the import itself told the reloader

    assert result.status == "ok", result
    assert check(mod), kind
    if kind == "a removed function":
        assert result.names_pruned == 1
    assert any("changed since it was imported" in w for w in result.warnings)
    # And the second edit is planned from the first one's exact source.
    assert edit(r, pkg.path("m"), V1).status == "ok"
    assert mod.f() == 1


@pytest.mark.parametrize("backend", ["polling", "manual"])
def test_a_late_import_is_watched_at_once_without_a_sync(pkg: Pkg, backend: str) -> None:
    r = pkg.reloader(backend=backend)
    mod = pkg.module("m", "def f(): return 1\n")
    assert r.poll().status == "noop"  # tracked, nothing changed
    assert mod.__name__ in r.modules.values()
    write(pkg.path("m"), "def f(): return 2\n")
    os.utime(pkg.path("m"), ns=(1, 1))  # an mtime from 1970 still counts for polling
    if backend == "manual":
        r.notify(pkg.path("m"))
    assert r.poll().status == "ok"
    assert mod.f() == 2


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kind", list(EDITS))
def test_a_reloader_started_after_an_edit_reloads_what_changed(pkg: Pkg, kind: str, policy: str) -> None:
    change, check = EDITS[kind]
    mod = pkg.module("m", V1)  # imported before any reloader
    before = os.stat(pkg.path("m"))
    write(pkg.path("m"), change(V1))
    _mtime_policy(pkg.path("m"), policy, before)

    r = pkg.reloader()  # a late start: a worker, a REPL that enables hotmod now
    result = r.poll()

    assert result.status == "ok", result
    assert check(mod), kind
    assert any("m.py changed since it was imported" in w for w in result.warnings), result.warnings


UNCHANGED = {
    "decorators and wrappers": """\
        import functools

        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*a, **k):
                return fn(*a, **k)
            return wrapper

        class Box:
            def __init__(self, fn):
                self.fn = fn

        @deco
        def f():
            return 1

        @functools.lru_cache(maxsize=None)
        def cached(x):
            return x

        g = functools.partial(f)
        boxed = Box(lambda: 2)
        alias = f
        """,
    "classes of every kind": """\
        import dataclasses
        import enum

        @dataclasses.dataclass
        class Point:
            x: int = 0
            y: int = 0

            def norm(self):
                return abs(self.x) + abs(self.y)

        class Color(enum.Enum):
            RED = 1
            GREEN = 2

        class Thing:
            __slots__ = ("a",)
            LIMIT = (1, 2)

            @property
            def value(self):
                return 1

            @value.setter
            def value(self, v):
                pass

            @staticmethod
            def s():
                return 1

            @classmethod
            def c(cls):
                return cls

            def __private(self):
                return 1
        """,
    "conditional and deleted definitions": """\
        import sys

        if sys.version_info >= (9, 0):
            def future():
                return 1
        else:
            def future():
                return 2

        try:
            def maybe():
                return 1
        except Exception:
            pass

        def scratch():
            return 1

        del scratch

        class C:
            if sys.version_info >= (9, 0):
                def never(self):
                    return 1
        """,
    "state the program changed": """\
        COUNTER = 0
        CACHE = {}
        ITEMS = []
        READY = False

        def bump():
            global COUNTER
            COUNTER += 1

        def start():
            global READY
            READY = True
        """,
}


@pytest.mark.parametrize("kind", list(UNCHANGED))
def test_an_unchanged_module_imported_before_is_not_reloaded(pkg: Pkg, kind: str) -> None:
    runs = pkg.counter()
    source = "from . import log\nlog.runs.append(__name__)\n" + __import__("textwrap").dedent(UNCHANGED[kind])
    mod = pkg.module("m", source)
    for name in ("bump", "start"):
        if hasattr(mod, name):
            getattr(mod, name)()
    mod.__dict__.get("ITEMS", []).append(1)

    r = pkg.reloader()
    result = r.poll()

    assert result.status == "noop", result
    assert runs == [mod.__name__]  # never re-executed
    assert r.modules[pkg.path("m")] == mod.__name__


def test_verification_sees_a_function_added_after_the_import(pkg: Pkg) -> None:
    mod = pkg.module("m", "def f(): return 1\n")
    write(pkg.path("m"), "def f(): return 1\ndef g(): return 2\n")
    r = pkg.reloader()
    result = r.poll()
    assert result.status == "ok"
    assert mod.g() == 2
    assert "g is defined in the file but not in the running module" in " ".join(result.warnings)


def test_a_pydantic_module_imported_before_is_verified_without_a_false_change(pkg: Pkg) -> None:
    import pydantic  # noqa: F401  (from the test extra)

    runs = pkg.counter()
    mod = pkg.module(
        "models",
        """\
        from pydantic import BaseModel, field_validator
        from . import log
        log.runs.append(__name__)

        class User(BaseModel):
            name: str
            age: int = 0

            @field_validator("name")
            @classmethod
            def strip(cls, v):
                return v.strip()

            def greet(self):
                return "hi " + self.name
        """,
    )
    r = pkg.reloader()
    assert r.poll().status == "noop"
    assert runs == [mod.__name__]
    user = mod.User.model_validate({"name": " a "})
    assert isinstance(user, mod.User)
    assert pickle.loads(pickle.dumps(user)).greet() == "hi a"


# -- the commit order and state that must not outlive its reloader ---------------------------


def test_accept_hooks_see_the_importers_new_copies(pkg: Pkg) -> None:
    pkg.module("a", "LIMIT = 1\n")
    b = pkg.module(
        "b",
        """\
        import hotmod
        from .a import LIMIT
        seen = []
        hot = hotmod.hot(__name__)
        """,
    )
    pkg.write(
        "a",
        f"""\
        import sys
        import hotmod
        LIMIT = 2
        hot = hotmod.hot(__name__)

        @hot.on_accept
        def _(data):
            sys.modules["{b.__name__}"].seen.append(sys.modules["{b.__name__}"].LIMIT)
        """,
    )
    r = pkg.reloader()
    r.notify(pkg.path("a"))
    assert r.poll().status == "ok"
    assert b.LIMIT == 2
    assert b.seen == [2]  # the hook ran after b's copy was rebound


def test_a_closed_reloaders_history_never_decides_for_another(pkg: Pkg) -> None:
    first = pkg.reloader()
    mod = pkg.module("m", "def f(): return 1\n")
    assert edit(first, pkg.path("m"), "def f(): return 2\n").status == "ok"
    first.close()
    # The module is imported again, from a file that went back to version 1.
    del sys.modules[mod.__name__]
    write(pkg.path("m"), "def f(): return 1\n")
    second = pkg.reloader()
    again = pkg.import_("m")
    assert again.f() == 1
    # An edit to the content the closed reloader once applied is a real edit here.
    result = edit(second, pkg.path("m"), "def f(): return 2\n")
    assert result.status == "ok"
    assert again.f() == 2


# -- safe points: a module imported after start is watched from its import -------------------


def test_a_module_imported_after_start_is_tracked_while_the_safe_point_stays_idle(pkg: Pkg) -> None:
    from hotmod.web import WSGIMiddleware

    state: dict[str, object] = {}

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        lazy = pkg.import_("lazy")  # imported inside a handler, after the reloader started
        state["lazy"] = lazy
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(lazy.f()).encode()]

    pkg.write("lazy", "def f(): return 1\n")
    middleware = WSGIMiddleware(app, paths=[pkg.dir], backend="polling", poll_interval=0.01)
    applied = threading.Event()
    handler = _ResultHandler(applied, pkg.qualname("lazy"))
    hotmod_logger = logging.getLogger("hotmod")
    level = hotmod_logger.level
    hotmod_logger.setLevel(logging.INFO)
    hotmod_logger.addHandler(handler)
    try:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "wsgi.url_scheme": "http",
        }
        body = b"".join(middleware(dict(environ), lambda *a: None))  # type: ignore[arg-type]
        assert body == b"1"
        write(pkg.path("lazy"), "def f(): return 2\n")
        os.utime(pkg.path("lazy"), ns=(5, 5))  # an old mtime: content decides
        assert applied.wait(10), "the save of a module imported after start was never applied"
        body = b"".join(middleware(dict(environ), lambda *a: None))  # type: ignore[arg-type]
        assert body == b"2"
    finally:
        hotmod_logger.removeHandler(handler)
        hotmod_logger.setLevel(level)
        middleware.close()


class _ResultHandler(logging.Handler):
    def __init__(self, event: threading.Event, module: str) -> None:
        super().__init__(logging.DEBUG)
        self.event = event
        self.module = module

    def emit(self, record: logging.LogRecord) -> None:
        result = getattr(record, "hotmod_result", None)
        if result is not None and result.status == "ok" and self.module in result.modules:
            self.event.set()


# -- forks --------------------------------------------------------------------------------------


def _in_child(body: Callable[[], str], timeout: float = 20.0) -> str:
    """Run ``body`` in a forked child; its returned text, or the child is killed."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # 3.12+ warns that forking a process with threads may deadlock the child: that is
        # what the test checks does not happen.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            out = body()
        except BaseException as exc:
            out = f"error: {exc!r}"
        os.write(write_end, out.encode())
        os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            pytest.fail("the forked child hung")
        data = os.read(read_end, 65536).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return data


def test_a_forked_worker_started_after_an_edit_runs_the_new_code(pkg: Pkg) -> None:
    mod = pkg.module("m", "def f(): return 1\n")
    write(pkg.path("m"), "def f(): return 2\n")
    os.utime(pkg.path("m"), ns=(10, 10))  # an mtime older than the import: content decides

    def child() -> str:
        r = hotmod.Reloader([pkg.dir], backend="manual", apply="manual")
        result = r.poll()
        return f"{result.status} {mod.f()}"

    assert _in_child(child) == "ok 2"
    assert mod.f() == 1  # the parent was not touched


def test_a_fork_while_another_thread_reloads_leaves_the_child_a_free_lock(pkg: Pkg, pkg2: Pkg) -> None:
    entered, release = threading.Event(), threading.Event()
    gate = pkg.module("gate", "import threading\nentered = None\nrelease = None\n")
    gate.entered, gate.release = entered, release
    mod = pkg.module("slow", "def f(): return 1\n")
    r = pkg.reloader()
    write(
        pkg.path("slow"),
        f"import sys\ng = sys.modules['{gate.__name__}']\n"
        "g.entered.set()\ng.release.wait(20)\ndef f(): return 2\n",
    )
    r.notify(pkg.path("slow"))
    worker = threading.Thread(target=r.poll)
    worker.start()
    try:
        assert entered.wait(10)  # the reload holds the process-wide lock now

        def child() -> str:
            # The reloading thread does not exist in the child: with the parent's lock
            # copied as held, this poll would wait forever.
            other = hotmod.Reloader([pkg2.dir], backend="manual", apply="manual")
            return edit(other, pkg2.path("n"), "def f(): return 2\n").status + f" {n.f()}"

        n = pkg2.module("n", "def f(): return 1\n")
        out = _in_child(child)
    finally:
        release.set()
        worker.join(10)
    assert out == "ok 2"
    assert mod.f() == 2


def _pool_task(name: str) -> int:
    import importlib

    return int(importlib.import_module(name).f())  # a spawned worker imports it afresh


def _pool_init(root: str) -> None:
    # The documented recipe: one reloader per worker, started in the pool's initializer.
    global _WORKER_RELOADER
    _WORKER_RELOADER = hotmod.Reloader([root], backend="manual", apply="manual")
    _WORKER_RELOADER.poll()


_WORKER_RELOADER: hotmod.Reloader | None = None


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("maxtasks", [None, 1])
def test_a_pool_made_after_an_edit_serves_the_new_code(pkg: Pkg, maxtasks: int | None, method: str) -> None:
    import multiprocessing

    mod = pkg.module("m", "def f(): return 1\n")
    write(pkg.path("m"), "def f(): return 2\n")
    os.utime(pkg.path("m"), ns=(10, 10))
    context = multiprocessing.get_context(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with context.Pool(
            2, initializer=_pool_init, initargs=(str(pkg.dir),), maxtasksperchild=maxtasks
        ) as pool:
            values = pool.map(_pool_task, [mod.__name__] * 4)
    assert values == [2, 2, 2, 2]
    assert mod.f() == 1  # the parent is left alone


def test_a_process_pool_executor_forked_after_an_edit_serves_the_new_code(pkg: Pkg) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    mod = pkg.module("m", "def f(): return 1\n")
    write(pkg.path("m"), "def f(): return 2\n")
    os.utime(pkg.path("m"), ns=(10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with ProcessPoolExecutor(
            2,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_pool_init,
            initargs=(str(pkg.dir),),
        ) as executor:
            values = list(executor.map(_pool_task, [mod.__name__] * 4))
    assert values == [2, 2, 2, 2]


def test_a_reloader_running_in_the_parent_keeps_running_in_a_forked_child(pkg: Pkg) -> None:
    mod = pkg.module("m", "def f(): return 1\n")
    r = pkg.reloader(backend="polling", apply="background", poll_interval=0.01)
    r.start()

    def child() -> str:
        # The parent's applying thread does not exist here: the child's own must apply.
        applied = threading.Event()
        r.subscribe(lambda result: applied.set() if result.status == "ok" else None)
        write(pkg.path("m"), "def f(): return 2\n")
        os.utime(pkg.path("m"), ns=(20, 20))
        return f"{applied.wait(10)} {mod.f()} {r.running}"

    assert _in_child(child) == "True 2 True"
