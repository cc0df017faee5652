"""Debuggers: from a save to the code reloaded while the program is paused under debugpy.

Every figure is taken by a Debug Adapter Protocol client (the one the tests use: a
socket and JSON messages) attached to a program started under ``python -m debugpy
--listen 127.0.0.1:PORT --wait-for-client``, paused at a breakpoint:

- ``hotmod/reload`` request: the program runs under ``python -m hotmod run --poll 60``
  (its watcher effectively off); each save is made like an editor (temp file, rename),
  the request sent at once; the figure ends when the response arrives (it says ``ok``
  and what was patched).
- hotmod's watcher: the same program with the default watcher; the figure ends when the
  ``hotmod/reloadResult`` event arrives.
- debugpy's own ``autoReload`` (``pollingInterval`` 0.1 s, the folder watched): a plain
  program; the figure ends when its output event says ``code reload: reload finished``.

The round trip of a ``threads`` request, which does nothing, is measured in the same
session: any request through debugpy's adapter costs it.

Then the reload of a 400-line module (one function's body edited each time), as hotmod
times it (``result.duration``): in a plain process, and through the request while paused
under debugpy.

``python -m benchmarks.peers.debugger [--quick]`` prints the figures on stderr and the
rows as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._util import fmt_seconds, row, save_like_an_editor
from ._child import emit, log

TAG = "debugger"
FIGURE = "save -> reloaded while paused under debugpy"
BIG_FIGURE = "reload of a 400-line module (hotmod's own timing)"
HOTMOD_RUN = ["-m", "hotmod", "run"]
# Any request's round trip through debugpy's adapter: the floor under the request's figure.
TRIP_FIGURE = "round trip of a DAP threads request"

APP = """\
import time
import helper

def loop():
    while True:
        value = helper.value()
        time.sleep(0.01)  # line 7: the breakpoint

loop()
"""


def _helper(n: int) -> str:
    return f"def value():\n    return {n}\n"


def _big(n: int) -> str:
    """A module of 400 lines: 50 functions and 5 classes; ``f0`` returns ``n``."""
    lines: list[str] = ["import math", ""]
    for i in range(50):
        lines += [f"def f{i}(x):", f"    y = x * {i if i else n}", "    return math.floor(y)", "", ""]
    for c in range(5):
        lines += [f"class C{c}:", f"    base = {c}", ""]
        for m in range(6):
            lines += [f"    def m{m}(self, x):", f"        return x + self.base + {m}", ""]
        lines += [""]
    lines = lines[:400] + [""] * (400 - len(lines))
    return "\n".join(lines) + "\n"


def _session(
    root: Path, args: list[str], breakpoint_at: tuple[Path, int], attach: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    from tests.support.dap import Client, debuggee_env, free_port, launch

    port = free_port()
    process = launch(port, args, root, debuggee_env(root))
    client = Client.connect(port, process)
    init = client.request(
        "initialize", {"clientID": "hotmod-bench", "adapterID": "debugpy", "pathFormat": "path"}
    )
    assert init["success"], init
    attach_seq = client.send("attach", {"justMyCode": True, **(attach or {})})
    client.wait_event("initialized")
    path, line = breakpoint_at
    client.request("setBreakpoints", {"source": {"path": str(path)}, "breakpoints": [{"line": line}]})
    client.request("configurationDone")
    client.response(attach_seq)
    client.wait_event("stopped")
    return process, client


def _stop(process: Any, client: Any) -> None:
    from tests.support.dap import finish

    client.send("disconnect", {"terminateDebuggee": True})
    process.kill()
    finish(process, client, timeout=10)


Wait = Callable[[Any, Path], None]


def _saves(root: Path, count: int, wait: Wait, client: Any) -> list[float]:
    gaps: list[float] = []
    for i in range(1, count + 1):
        started = time.perf_counter()
        save_like_an_editor(root / "helper.py", _helper(i))
        wait(client, root / "helper.py")
        gaps.append(time.perf_counter() - started)
    return gaps


def _by_request(client: Any, path: Path) -> None:
    response = client.request("hotmod/reload", {"source": {"path": str(path)}})
    body = response["body"]
    assert body["status"] == "ok", body
    assert body["counters"]["functionsPatched"] == 1, body
    _inside.append(body["durationMs"] / 1000)


# hotmod's own timing of each reload the requests made
_inside: list[float] = []


def _by_event(client: Any, path: Path) -> None:
    event = client.wait_event("hotmod/reloadResult")
    assert event["body"]["status"] == "ok", event


def _by_auto_reload(client: Any, path: Path) -> None:
    client.wait_event("output", lambda e: "code reload: reload finished" in e["body"].get("output", ""))


def _measure_saves(root: Path, count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    app = root / "app.py"
    runs: list[tuple[str, list[str], dict[str, Any] | None, Wait]] = [
        (
            "hotmod: hotmod/reload request",
            ["-m", "hotmod", "run", "--poll", "60", "app.py"],
            None,
            _by_request,
        ),
        (
            "hotmod: its watcher, hotmod/reloadResult event",
            ["-m", "hotmod", "run", "app.py"],
            None,
            _by_event,
        ),
        (
            "debugpy autoReload (pollingInterval 0.1 s)",
            ["app.py"],
            {"autoReload": {"enable": True, "pollingInterval": 0.1, "watchDirectories": [str(root)]}},
            _by_auto_reload,
        ),
    ]
    for tool, args, attach, wait in runs:
        save_like_an_editor(root / "helper.py", _helper(0))
        process, client = _session(root, args, (app, 7), attach)
        try:
            gaps = _saves(root, count, wait, client)
            if wait is _by_request:
                trips = []
                for _ in range(count):
                    started = time.perf_counter()
                    client.request("threads")
                    trips.append(time.perf_counter() - started)
                rows.append(row(TRIP_FIGURE, "debugpy, paused", trips))
                log(TAG, f"threads request round trip: median {fmt_seconds(sorted(trips)[len(trips) // 2])}")
        finally:
            _stop(process, client)
        rows.append(row(FIGURE, tool, gaps))
        if wait is _by_request:
            rows.append(row("the reload inside the request (hotmod's own timing)", tool, list(_inside)))
            log(TAG, f"inside the request: median {fmt_seconds(sorted(_inside)[len(_inside) // 2])}")
        log(TAG, f"{tool}: median {fmt_seconds(sorted(gaps)[len(gaps) // 2])}")
    return rows


PLAIN = """\
import json, sys, time
sys.path.insert(0, sys.argv[1])
import big, hotmod
from pathlib import Path
path = Path(sys.argv[1]) / "big.py"
# Open like ``hotmod run --poll 60``: the request under the debugger finds one open too.
reloader = hotmod.Reloader([sys.argv[1]], backend="polling", poll_interval=60, apply="manual")
durations = []
for i in range(1, int(sys.argv[2]) + 1):
    path.write_text(sys.argv[3] % i)
    result = hotmod.reload_now(path)
    assert result.status == "ok", result
    durations.append(result.duration)
print(json.dumps(durations))
"""


def _measure_big(root: Path, count: int) -> list[dict[str, Any]]:
    big = root / "big.py"
    template = _big(10**6).replace(str(10**6), "%d")
    big.write_text(template % 0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN, str(root), str(count), template],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    without = [float(d) for d in json.loads(plain.stdout.splitlines()[-1])]
    big.write_text(template % 0)
    (root / "app_big.py").write_text(
        APP.replace("import helper", "import big as helper").replace("value()", "f1(1)")
    )
    process, client = _session(
        root, ["-m", "hotmod", "run", "--poll", "60", "app_big.py"], (root / "app_big.py", 7)
    )
    under: list[float] = []
    try:
        for i in range(1, count + 1):
            save_like_an_editor(big, template % i)
            body = client.request("hotmod/reload", {"source": {"path": str(big)}})["body"]
            assert body["status"] == "ok", body
            under.append(body["durationMs"] / 1000)
    finally:
        _stop(process, client)
    log(
        TAG,
        f"400 lines: median {fmt_seconds(sorted(without)[count // 2])} plain, "
        f"{fmt_seconds(sorted(under)[count // 2])} paused under debugpy",
    )
    return [
        row(BIG_FIGURE, "hotmod, no debugger", without),
        row(BIG_FIGURE, "hotmod, paused under debugpy (hotmod/reload)", under),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 5 if quick else 30
    root = Path(os.path.realpath(tempfile.mkdtemp(prefix="hotmod-bench-debugger-")))
    try:
        (root / "app.py").write_text(APP)
        return _measure_saves(root, count) + _measure_big(root, count)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 saves of each kind")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run(quick=args.quick)
    log(TAG, f"done in {time.perf_counter() - started:.1f} s")
    emit(rows)


if __name__ == "__main__":
    main()
