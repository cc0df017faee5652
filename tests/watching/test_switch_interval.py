"""The switch interval hotmod shortens while it waits for and applies saves, and gives back.

A background applying thread holds ``sys.setswitchinterval`` at 0.5 ms while it waits
(the first hand-off of a save, from the thread the kernel's event wakes, waits one whole
interval for a thread that never blocks), and at 0.1 ms from the save's arrival to the
end of its apply. Whatever the user had set comes back after ``stop()`` and ``close()``,
with several reloaders at once; a value the user sets meanwhile is kept. How fast a save
gets there is a benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmod
from hotmod import _changes

from ..support import Pkg, Results, write

USER_INTERVAL = 0.0042  # not the default: "restored" must mean what the user had
# The interpreter keeps whole microseconds: 1e-4 reads back as 9.999...e-05.
SHORT = pytest.approx(_changes.APPLY_SWITCH_INTERVAL)
WAITING = pytest.approx(_changes.WAIT_SWITCH_INTERVAL)


@pytest.fixture
def user_interval() -> Iterator[float]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(USER_INTERVAL)
    try:
        yield sys.getswitchinterval()
    finally:
        sys.setswitchinterval(previous)


def _background(
    pkg: Pkg, text: str = "def f():\n    return 0\n"
) -> tuple[Any, hotmod.Reloader, Results, list[float]]:
    mod = pkg.module("mod", text)
    # A long poll interval: the applying thread wakes for the save, not for a timeout.
    r = pkg.reloader(apply="background", poll_interval=60.0)
    seen: list[float] = []
    results = Results(r, lambda res: res.status == "ok")
    r.subscribe(lambda res: seen.append(sys.getswitchinterval()))
    return mod, r, results, seen


def _save(r: hotmod.Reloader, path: Path, value: int) -> None:
    write(path, f"def f():\n    return {value}\n")
    r.notify(path)


def test_a_background_reload_runs_short_and_stop_restores_the_users_interval(
    pkg: Pkg, user_interval: float
) -> None:
    mod, r, results, seen = _background(pkg)
    r.start()
    _save(r, pkg.path("mod"), 1)
    assert results.wait(), results.statuses
    r.stop()

    assert mod.f() == 1
    assert seen == [SHORT]  # the listener ran inside the apply
    assert sys.getswitchinterval() == user_interval


def test_close_restores_the_users_interval(pkg: Pkg, user_interval: float) -> None:
    mod, r, results, seen = _background(pkg)
    r.start()
    for value in (1, 2):

        def applied(res: hotmod.ReloadResult, v: int = value) -> bool:
            return res.status == "ok" and bool(mod.f() == v)

        results.expect(applied)
        _save(r, pkg.path("mod"), value)
        assert results.wait(), results.statuses
    r.close()

    assert seen == [SHORT] * 2
    assert sys.getswitchinterval() == user_interval


def test_two_reloaders_at_once_restore_the_users_interval(pkg: Pkg, pkg2: Pkg, user_interval: float) -> None:
    mod1, r1, results1, seen1 = _background(pkg)
    mod2, r2, results2, seen2 = _background(pkg2)
    r1.start()
    r2.start()
    _save(r1, pkg.path("mod"), 1)
    _save(r2, pkg2.path("mod"), 2)
    assert results1.wait(), results1.statuses
    assert results2.wait(), results2.statuses
    r1.close()
    r2.stop()

    assert (mod1.f(), mod2.f()) == (1, 2)
    assert seen1 == seen2 == [SHORT]
    assert sys.getswitchinterval() == user_interval


def test_a_shorter_interval_the_user_set_is_never_lengthened(pkg: Pkg) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        mod, r, results, seen = _background(pkg)
        r.start()
        _save(r, pkg.path("mod"), 1)
        assert results.wait(), results.statuses
        r.close()
        assert mod.f() == 1
        assert seen == [pytest.approx(1e-5)]
        assert sys.getswitchinterval() == pytest.approx(1e-5)
    finally:
        sys.setswitchinterval(previous)


def test_manual_apply_never_touches_the_interval(pkg: Pkg, user_interval: float) -> None:
    mod = pkg.module("mod", "def f():\n    return 0\n")
    r = pkg.reloader()  # manual backend, manual apply: nobody waits on the queue
    seen: list[float] = []
    r.subscribe(lambda res: seen.append(sys.getswitchinterval()))
    _save(r, pkg.path("mod"), 1)
    assert sys.getswitchinterval() == user_interval  # queued, not applied yet: untouched
    assert r.poll().status == "ok"

    assert mod.f() == 1
    assert seen == [user_interval]


# -- the queue's side of it, step by step (no threads) -------------------------------------


def test_the_applier_coming_back_with_nothing_ready_goes_back_to_waiting(
    user_interval: float, tmp_path: Path
) -> None:
    queue = _changes.ChangeQueue(0.05)
    queue.push([tmp_path / "a.py"], settled=True)
    queue.wait(0)  # the applier finds a save ready: the apply starts
    assert sys.getswitchinterval() == SHORT
    assert queue.take_ready()[0] == [tmp_path / "a.py"]
    queue.wait(0)  # back with nothing ready: the apply is over, the applier waits
    assert sys.getswitchinterval() == WAITING
    queue.clear()  # the reloader closes
    assert sys.getswitchinterval() == user_interval


def test_nested_holders_restore_once_the_last_one_is_done(user_interval: float, tmp_path: Path) -> None:
    first, second = _changes.ChangeQueue(0.05), _changes.ChangeQueue(0.05)
    for queue in (first, second):
        queue.push([tmp_path / "a.py"], settled=True)
        queue.wait(0)
    first.clear()
    assert sys.getswitchinterval() == SHORT  # second still applies
    second.take_ready()
    second.wait(0)
    assert sys.getswitchinterval() == WAITING  # second waits for the next save
    second.clear()
    assert sys.getswitchinterval() == user_interval


def test_a_value_the_user_sets_while_hotmod_holds_it_is_kept(user_interval: float, tmp_path: Path) -> None:
    queue = _changes.ChangeQueue(0.05)
    queue.push([tmp_path / "a.py"], settled=True)
    queue.wait(0)
    sys.setswitchinterval(0.003)
    queue.take_ready()
    queue.wait(0)  # hotmod leaves the user's value alone from now on
    assert sys.getswitchinterval() == pytest.approx(0.003)
    queue.clear()
    assert sys.getswitchinterval() == pytest.approx(0.003)


def test_an_apply_held_up_past_the_limit_stops_holding_it(
    user_interval: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = _changes.ChangeQueue(0.05)
    queue.push([tmp_path / "a.py"], settled=True)
    queue.wait(0)
    assert sys.getswitchinterval() == SHORT
    monkeypatch.setattr(_changes, "BOOST_LIMIT", -1.0)  # as if a host refused its safe point that long
    queue.wait(0)  # still ready, not applied
    assert sys.getswitchinterval() == WAITING
    queue.wait(0)
    assert sys.getswitchinterval() == WAITING  # not again for the same save
    queue.clear()
    assert sys.getswitchinterval() == user_interval
