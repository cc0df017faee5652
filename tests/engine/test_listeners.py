"""Results delivered to listeners (``subscribe``), logged, and counted in ``stats``."""

from __future__ import annotations

import logging

import pytest

import hotmod

from ..support import Pkg, edit

# -- subscribe --------------------------------------------------------------------------------


def test_listeners_receive_results_until_unsubscribed(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    received: list[hotmod.ReloadResult] = []
    unsubscribe = r.subscribe(received.append)

    ok = edit(r, pkg.path("mod"), "def f(): return 2\n")
    assert received == [ok]
    aborted = edit(r, pkg.path("mod"), "def f(:\n")
    assert received == [ok, aborted]
    assert r.poll().status == "noop"
    assert received == [ok, aborted]  # nothing happened: nobody is called

    unsubscribe()
    unsubscribe()  # twice is harmless
    assert edit(r, pkg.path("mod"), "def f(): return 3\n").status == "ok"
    assert received == [ok, aborted]
    assert mod.f() == 3


def test_a_raising_listener_is_logged_and_others_still_run(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()

    def broken(result: hotmod.ReloadResult) -> None:
        raise RuntimeError("listener bug")

    received: list[hotmod.ReloadResult] = []
    r.subscribe(broken)
    r.subscribe(received.append)
    with caplog.at_level(logging.ERROR, logger="hotmod"):
        result = edit(r, pkg.path("mod"), "def f(): return 2\n")
    assert result.status == "ok"
    assert received == [result]
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)

    # The broken listener stays subscribed and the reloader keeps working.
    with caplog.at_level(logging.ERROR, logger="hotmod"):
        assert edit(r, pkg.path("mod"), "def f(): return 3\n").status == "ok"
    assert len(received) == 2
    assert len([rec for rec in caplog.records if rec.levelno == logging.ERROR]) == 2


def test_reload_results_reach_listeners(pkg: Pkg) -> None:
    mod = pkg.module("mod", "X = 1\n")
    r = pkg.reloader()
    received: list[hotmod.ReloadResult] = []
    r.subscribe(received.append)
    result = r.reload(mod)
    assert received == [result]


def test_results_are_logged_one_line_each(pkg: Pkg, caplog: pytest.LogCaptureFixture) -> None:
    pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader()
    with caplog.at_level(logging.INFO, logger="hotmod"):
        edit(r, pkg.path("mod"), "def f(): return 2\n")
        edit(r, pkg.path("mod"), "def f(:\n")
    messages = [(rec.levelno, rec.getMessage()) for rec in caplog.records if rec.name.startswith("hotmod")]
    assert messages[0][0] == logging.INFO
    assert messages[0][1].startswith(f"reloaded {pkg.qualname('mod')}")
    assert messages[1][0] == logging.WARNING
    assert "aborted" in messages[1][1]
    assert len(messages) == 2


# -- stats --------------------------------------------------------------------------------------


def test_stats_count_by_status(pkg: Pkg) -> None:
    mod = pkg.module("mod", "def f(): return 1\n")
    r = pkg.reloader(debounce=0)
    stats = r.stats
    assert stats.reloads == 0
    assert stats.last is None
    assert stats.tracked_modules == 2  # the package and mod
    assert (stats.watched_dirs, stats.polled_dirs) == (0, 0)  # manual backend

    ok = edit(r, pkg.path("mod"), "def f(): return 2\n")
    edit(r, pkg.path("mod"), "def f(:\n")
    edit(r, pkg.path("mod"), "def f(:\n")  # the same failure: a noop
    pkg.path("mod").unlink()
    r.notify(pkg.path("mod"))
    failed = r.poll()
    last = edit(r, pkg.path("mod"), "def f(): return 3\n")

    stats = r.stats
    assert stats.counts["ok"] == 2
    assert stats.counts["aborted"] == 1
    assert stats.counts["failed"] == 1
    assert stats.counts["needs_restart"] == 0
    assert stats.counts["noop"] >= 1
    assert stats.reloads == 4
    assert stats.last == last
    assert stats.max_duration >= max(ok.duration, failed.duration, last.duration)
    assert stats.total_duration >= ok.duration + failed.duration + last.duration
    assert ok.duration > 0
    assert mod.f() == 3


@pytest.mark.watchdog
def test_stats_of_event_and_polling_backends(pkg: Pkg) -> None:
    pkg.module("a", "X = 1\n")
    pkg.subpackage("sub")
    pkg.module("sub.b", "X = 1\n")
    polling = pkg.reloader(backend="polling")
    assert polling.stats.polled_dirs == 2
    assert polling.stats.watched_dirs == 0
    events = pkg.reloader(backend="watchdog")
    assert events.stats.watched_dirs == 2
    assert events.stats.polled_dirs == 0
