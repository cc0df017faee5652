"""``python -m hotmod demo``: a live reload, shown in a few seconds.

A small module is written to a temporary folder and called in a loop while it is
edited the way editors save (a temp file renamed over the original). Everything runs
in this one process; nothing is restarted.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ._watch import BackendName
from .reloader import Reloader
from .result import ReloadResult

__all__ = ["MODULE", "PAUSE", "VERSIONS", "run_demo"]

MODULE = "hotmod_demo_greeter"
PAUSE = 0.8  # seconds between the steps, so a person can follow them

_STATEFUL = '''
"""The demo's module. Its state survives every reload."""

import hotmod

hot = hotmod.hot(__name__)
# Made on the first load only; every later version gets the same objects.
SESSION = hot.keep("session", lambda: {{"opened_at": __import__("time").time()}})
VISITS = hot.keep("visits", lambda: {{"count": 0}})


class Greeter:
    """The app makes one of these at start-up and keeps it."""

    def greet(self, name):
        VISITS["count"] += 1
        return {greeting}
'''

VERSIONS = {
    "v1": _STATEFUL.format(greeting='f"hello, {name}"'),
    "v2": _STATEFUL.format(greeting="f\"HELLO, {name.upper()}! (visit {VISITS['count']})\""),
    "broken": '''
"""The demo's module, mid-edit."""

class Greeter:
    def greet(self, name)
        return "this line never runs"
''',
    "v3": _STATEFUL.format(greeting="f\"Good to see you again, {name} (visit {VISITS['count']})\""),
}


def _save_like_an_editor(path: Path, text: str) -> None:
    """Write a temp file and rename it over the original, as most editors do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(textwrap.dedent(text).lstrip())
    os.replace(tmp, path)


class _Caller(threading.Thread):
    """The 'application': calls into the module every few milliseconds."""

    def __init__(self, module: ModuleType) -> None:
        super().__init__(name="demo-app", daemon=True)
        self.module = module
        self.greeter = module.Greeter()  # made once, by the old code; never replaced
        self.last: Any = None
        self.calls = 0
        self.errors = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.last = self.greeter.greet("world")
            except Exception:
                self.errors += 1
            self.calls += 1
            self.stopping.wait(0.002)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> float | None:
        """Seconds until ``predicate(last)`` holds, or None on timeout."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            value = self.last
            if value is not None and predicate(value):
                return time.perf_counter() - start
            time.sleep(0.0005)
        return None


def run_demo(*, backend: BackendName = "auto", out: Any = None) -> int:
    stream = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    results: list[ReloadResult] = []
    reloaded = threading.Condition()

    def on_reload(result: ReloadResult) -> None:
        with reloaded:
            results.append(result)
            reloaded.notify_all()

    def next_result(count: int, timeout: float = 5.0) -> ReloadResult | None:
        with reloaded:
            reloaded.wait_for(lambda: len(results) >= count, timeout)
            return results[count - 1] if len(results) >= count else None

    with tempfile.TemporaryDirectory(prefix="hotmod-demo-") as folder:
        path = Path(folder) / f"{MODULE}.py"
        _save_like_an_editor(path, VERSIONS["v1"])
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(MODULE)
            say(f"hotmod demo: one process (pid {os.getpid()}), nothing is restarted")
            say(f"  module   {path}")
            with Reloader([folder], backend=backend) as reloader:
                reloader.subscribe(on_reload)  # listeners are how apps hear about reloads
                reloaded_ok = _tour(say, module, path, reloader, next_result)
        finally:
            sys.path.remove(folder)
            sys.modules.pop(MODULE, None)
    return 0 if reloaded_ok else 1


def _tour(say: Any, module: ModuleType, path: Path, reloader: Reloader, next_result: Any) -> bool:
    caller = _Caller(module)
    caller.start()
    caller.wait_for(lambda v: v.startswith("hello"))
    say(f"  backend  {reloader.backend}, tracking {len(reloader.modules)} module(s)")
    say(f"  running  greeter.greet('world') -> {caller.last!r}")
    greeter = caller.greeter
    try:
        time.sleep(PAUSE)
        say("\n1. Edit Greeter.greet() and save it the way editors do (temp file + rename)")
        visits_before = module.VISITS["count"]
        session = module.SESSION
        _save_like_an_editor(path, VERSIONS["v2"])
        seen = caller.wait_for(lambda v: v.startswith("HELLO"))
        result = next_result(1)
        if seen is None or result is None:
            say("   the new code did not run within 5 s (a network file system? try --backend polling)")
            return False
        say(f"   {result.summary()}; the app ran the new code {seen * 1000:.1f} ms after the save")
        say(f"   running  greeter.greet('world') -> {caller.last!r}")
        current = isinstance(greeter, module.Greeter)  # module.Greeter: the class the new code defines
        say(
            f"   instance the greeter made before the edit is the same object, running the new greet() "
            f"(an instance of the reloaded Greeter class: {current})"
        )
        state = "kept" if module.VISITS["count"] >= visits_before else "LOST"
        now = module.VISITS["count"]
        say(f"   state    VISITS {state}: {visits_before} visits before the edit, {now} now")
        same = "the same object" if module.SESSION is session else "a NEW object"
        say(f"   kept     SESSION (hot.keep) is {same} after the reload (generation {module.hot.generation})")

        time.sleep(PAUSE)
        say("\n2. Save a broken edit (a syntax error)")
        _save_like_an_editor(path, VERSIONS["broken"])
        result = next_result(2)
        if result is not None:
            error = result.error
            say(f"   refused: {result.status}, {error}")
        calls = caller.calls
        caller.wait_for(lambda v: caller.calls > calls + 5)
        say(f"   the app keeps running the last good version: {caller.last!r}")

        time.sleep(PAUSE)
        say("\n3. Fix it")
        _save_like_an_editor(path, VERSIONS["v3"])
        seen = caller.wait_for(lambda v: v.startswith("Good"))
        result = next_result(3)
        if seen is None or result is None:
            say("   the fix did not apply within 5 s")
            return False
        say(f"   {result.summary()}; running greeter.greet('world') -> {caller.last!r}")
        say(
            f"\n{caller.calls} calls, {caller.errors} errors in the app while it was edited "
            f"{reloader.stats.reloads} times; one process throughout."
        )
        return caller.errors == 0
    finally:
        caller.stopping.set()
        caller.join()
