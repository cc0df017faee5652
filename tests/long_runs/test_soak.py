"""Soak: many reloads while threads call in, and many start/stop cycles.

CI runs a fixed budget; ``--soak-reloads 10000 --soak-cycles 1000`` is the long run.
"""

from __future__ import annotations

import gc
import os
import threading
import weakref
from pathlib import Path

import pytest

import hotmod

from ..support import EVENT_TIMEOUT, Pkg, edit, hotmod_threads

CALLERS = 4
WARM_UP = 100
RSS_BUDGET_PER_1000 = 2 * 1024 * 1024

SOURCE = """\
class Token:
    pass


TOKEN = Token()
LIMIT = {i}


def value():
    return {i}


class Counter:
    def get(self):
        return value() + LIMIT
"""


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
@pytest.mark.parametrize("strategy", ["statements", "module"])
def test_reloads_while_four_threads_call_in(pkg: Pkg, request: pytest.FixtureRequest, strategy: str) -> None:
    reloads: int = request.config.getoption("--soak-reloads")
    module = pkg.module("target", SOURCE.format(i=0))
    r = pkg.reloader(strategy=strategy)
    first_token = module.TOKEN
    value, counter = module.value, module.Counter()  # references taken at the start
    errors: list[BaseException] = []
    calls = [0] * CALLERS
    stop = threading.Event()

    def call(slot: int) -> None:
        while not stop.is_set():
            try:
                assert 0 <= value() <= reloads
                assert isinstance(counter.get(), int)
                token, kind = module.TOKEN, module.Token  # never a missing name
                if strategy == "statements":
                    # Never run again: one object throughout. (A whole-module run rebinds
                    # the two names one after the other; only the names are promised.)
                    assert isinstance(token, kind)
                calls[slot] += 1
            except BaseException as exc:
                errors.append(exc)
                return
            # Callers that never let go of the GIL would make this a test of Python's
            # switch interval; real callers do other work between calls.
            stop.wait(0.0002)

    threads = [threading.Thread(target=call, args=(slot,)) for slot in range(CALLERS)]
    for thread in threads:
        thread.start()
    old_tokens: list[weakref.ref[object]] = []
    try:
        for i in range(1, reloads + 1):
            if i == WARM_UP:
                gc.collect()
                baseline = rss()
            if i % 50 == 0:
                old_tokens.append(weakref.ref(module.TOKEN))
            result = edit(r, pkg.path("target"), SOURCE.format(i=i))
            assert result.status == "ok", result.summary()
    finally:
        stop.set()
        for thread in threads:
            thread.join(EVENT_TIMEOUT)
    gc.collect()
    growth = rss() - baseline
    print(f"{reloads} reloads, {sum(calls)} calls from {CALLERS} threads, RSS growth {growth / 1024:.0f} KiB")
    assert errors == []
    assert all(calls)
    assert value() == reloads
    assert counter.get() == 2 * reloads
    if strategy == "module":
        # Every earlier version's objects were freed: nothing keeps old versions alive.
        assert [ref for ref in old_tokens if ref() is not None] == []
    else:
        # ``TOKEN = Token()`` was never edited, so it never ran again: one token throughout.
        assert module.TOKEN is first_token
    assert growth <= RSS_BUDGET_PER_1000 * max(1, (reloads - WARM_UP) / 1000)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _watchdog_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("watchdog").split(".")[:3] if p.isdigit())


# With watchdog 7.1.1, watchdog's own inotify reader sometimes keeps its descriptor and
# its wake-up pipe open after observer.stop() and join(), in the quick start/stop cycles
# of a plugin folder's watcher: the same leak shows with the previous round's code, so
# it is watchdog's, not hotmod's. Recorded as an expected failure there, not hidden.
_WATCHDOG_LEAK = pytest.mark.xfail(
    _watchdog_version() >= (7, 1, 1),
    reason="watchdog 7.1.1's inotify reader can leak its descriptors on stop (upstream)",
    strict=False,
)


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="counts file descriptors in /proc")
@pytest.mark.parametrize("kind", ["Reloader", pytest.param("PluginFolder", marks=_WATCHDOG_LEAK)])
def test_start_stop_cycles_leak_no_thread_and_no_descriptor(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    cycles: int = request.config.getoption("--soak-cycles")
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "plugin_a.py").write_text("X = 1\n")

    def cycle() -> None:
        if kind == "Reloader":
            r = hotmod.Reloader([folder], backend="watchdog")
            r.start()
            r.stop()
            r.close()
        else:
            plugins = hotmod.PluginFolder(folder, backend="watchdog")
            plugins.load()
            plugins.start()
            plugins.stop()
            plugins.close()

    cycle()  # warm-up: first imports, first caches
    gc.collect()
    threads, fds = hotmod_threads(), open_fds()
    for _ in range(cycles):
        cycle()
    gc.collect()
    assert hotmod_threads() == threads
    assert open_fds() == fds
