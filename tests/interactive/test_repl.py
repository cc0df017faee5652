"""The plain REPL with ``hotmod.repl.enable()``, driven through a pseudo-terminal.

Every flavour of prompt this interpreter has: ``python -i``, ``code.interact``,
``python -m hotmod``, and on 3.13 both the new REPL and the classic one. The module is
saved the way editors save; the polling backend looks at it when the prompt is drawn,
so an empty line is all it takes to see the save. One test uses kernel file events
and waits for them with a time limit. The child's whole transcript is printed when a
test fails.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hotmod
import hotmod.repl

from ..support import EVENT_TIMEOUT, Pkg, write, write_replace

pexpect = pytest.importorskip("pexpect")

ENABLE = "import hotmod.repl; hotmod.repl.enable(backend='polling', poll_interval=600)"
PROMPT = ">>> "
NEW_REPL = sys.version_info >= (3, 13)

FLAVOURS = {
    "python -i": ["-i", "-c", ENABLE],
    "code.interact": ["-c", f"{ENABLE}; import code; code.interact(local=globals())"],
    "python -m hotmod": ["-m", "hotmod", "--poll", "600"],
}


class Child:
    """A REPL in a pseudo-terminal, with its transcript kept for failure messages."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.transcript = io.StringIO()
        self.process = pexpect.spawn(
            sys.executable, args, cwd=str(cwd), env=env, encoding="utf-8", timeout=20, dimensions=(40, 250)
        )
        self.process.logfile_read = self.transcript
        self.count = 0

    def expect(self, pattern: str) -> str:
        """Wait for ``pattern`` (a plain string); what came before it."""
        try:
            self.process.expect_exact(pattern)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"{pattern!r} never came; the child's terminal:\n{self.log()}")
        return str(self.process.before)

    def line(self, text: str) -> str:
        """Type a line, then a marker statement; everything printed up to the marker.

        The marker's prompt is drawn between the two, so its report lines are included.
        (3.13's REPL redraws the prompt at every keystroke: a prompt marks nothing.)
        """
        self.count += 1
        self.process.send(text + "\r")
        self.process.send(f"print('=' * 3 + 'done{self.count}')\r")
        return self.expect(f"===done{self.count}")

    def log(self) -> str:
        return self.transcript.getvalue()

    def close(self) -> None:
        self.process.sendeof()
        self.process.expect(pexpect.EOF, timeout=10)
        self.process.close()


def child_env(basic_repl: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON_BASIC_REPL", "NO_COLOR"))}
    env.update(TERM="xterm", PYTHONPATH=os.pathsep.join(sys.path), PYTHONSTARTUP="")
    if basic_repl:
        env["PYTHON_BASIC_REPL"] = "1"
    return env


@pytest.fixture(params=["new", "basic"] if NEW_REPL else ["basic"])
def repl_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(FLAVOURS))
def repl(request: pytest.FixtureRequest, repl_kind: str, tmp_path: Path) -> Iterator[Child]:
    child = Child(FLAVOURS[request.param], tmp_path, child_env(repl_kind == "basic"))
    child.expect(PROMPT)
    try:
        yield child
    finally:
        child.close()


def test_each_prompt_applies_the_saves_before_it(repl: Child, tmp_path: Path) -> None:
    module = write(tmp_path / "replmod.py", "X = 1\ndef f():\n    return 'one'\n")
    repl.line("import replmod; from replmod import X, f")
    assert "one 1" in repl.line("print(f(), X)")

    write_replace(module, "X = 2\ndef f():\n    return 'two'\n")
    shown = repl.line("")
    assert "hotmod: reloaded replmod in " in shown, repl.log()
    assert "two 2 two" in repl.line("print(f(), X, replmod.f())"), repl.log()

    write_replace(module, "X = 3\ndef f(:\n    return 'three'\n")
    shown = repl.line("")
    assert "hotmod: reload of replmod aborted, previous version kept" in shown, repl.log()
    assert f'File "{os.path.realpath(module)}", line 2' in shown, repl.log()
    assert "SyntaxError" in shown, repl.log()
    assert "two 2" in repl.line("print(f(), X)"), repl.log()  # the old version, intact
    assert "hotmod:" not in repl.line(""), repl.log()  # reported once

    write_replace(module, "X = 4\ndef f():\n    return 'four'\n")
    assert "hotmod: reloaded replmod" in repl.line(""), repl.log()
    assert "four 4" in repl.line("print(f(), X)"), repl.log()


def test_a_save_while_the_prompt_waits_is_live_for_the_next_statement(tmp_path: Path) -> None:
    """Kernel file events: the reloader's thread applies the save while the prompt waits."""
    env = child_env(basic_repl=False)
    child = Child(["-i", "-c", "import hotmod.repl; hotmod.repl.enable()"], tmp_path, env)
    try:
        child.expect(PROMPT)
        module = write(tmp_path / "waitmod.py", "def f():\n    return 'before'\n")
        child.line("import waitmod")
        assert "before" in child.line("print(waitmod.f())")
        write_replace(module, "def f():\n    return 'after'\n")
        deadline = time.monotonic() + EVENT_TIMEOUT
        seen = ""
        while "after" not in seen and time.monotonic() < deadline:
            threading.Event().wait(0.05)
            seen = child.line("print(waitmod.f())")
        assert "after" in seen, child.log()
        # The report comes with the first prompt after the reload.
        assert "hotmod: reloaded waitmod" in child.log()
    finally:
        child.close()


def test_disable_restores_the_prompt_and_stops_reloading(
    pkg: Pkg, capsys: pytest.CaptureFixture[str]
) -> None:
    had_ps1, before = hasattr(sys, "ps1"), getattr(sys, "ps1", None)
    module = pkg.module("m", "def f():\n    return 1\n")
    namespace: dict[str, object] = {"f": module.f}
    reloader = hotmod.repl.enable(pkg.dir, backend="manual", namespace=namespace)
    assert reloader is not None
    try:
        assert hotmod.repl.enabled()
        assert str(sys.ps1) == (str(before) if had_ps1 else ">>> ")
        write(pkg.path("m"), "def f():\n    return 2\ndef g():\n    return 3\n")
        reloader.notify(pkg.path("m"))
        str(sys.ps1)  # what the REPL does before each prompt
        assert module.f() == 2
        assert f"hotmod: reloaded {pkg.qualname('m')}" in capsys.readouterr().err
    finally:
        hotmod.repl.disable()
    assert not hotmod.repl.enabled()
    assert hasattr(sys, "ps1") == had_ps1
    assert getattr(sys, "ps1", None) is before
    with pytest.raises(hotmod.HotmodError):
        reloader.poll()  # the session's reloader is closed


def test_hotmod_0_leaves_the_prompt_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    import hotmod.repl

    monkeypatch.setenv("HOTMOD", "0")
    prompt = getattr(sys, "ps1", None)
    assert hotmod.repl.enable() is None
    assert not hotmod.repl.enabled()
    assert getattr(sys, "ps1", None) is prompt
    assert "HOTMOD=0" in capsys.readouterr().err
