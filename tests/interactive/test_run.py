"""``python -m hotmod run``: a program run in a child process and edited while it runs.

The programs below pace themselves (they are the user's code); the tests only read
their output and save files when it says so. Each child's output is shown on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ..support import write, write_replace

CHILD_TIMEOUT = 60

# Prints the value the helper gives until it changes, then exits with argv[1].
LOOP = """
import sys, threading
import helper

print("argv", sys.argv, "path0", sys.path[0], flush=True)
for _ in range(1200):
    value = helper.value()
    print(value, flush=True)
    if value == "two":
        sys.exit(int(sys.argv[1]))
    threading.Event().wait(0.025)  # the program's own pace
sys.exit(99)
"""


class Program:
    """A child process whose merged output is read line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotmod", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env or child_env(),
        )

    def wait_for(self, text: str) -> str:
        """Read until a line contains ``text``; that line."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if text in line:
                return line
        self.process.kill()
        self.finish()
        pytest.fail(f"{text!r} never came; the program's output:\n{self.output}")

    def finish(self) -> int:
        out, _ = self.process.communicate(timeout=CHILD_TIMEOUT)
        self.lines.append(out)
        return self.process.returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotmod", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        env=child_env(),
        check=False,
    )


@pytest.mark.parametrize("options", [[], ["--poll", "0.05"], ["-q"]], ids=["events", "polling", "quiet"])
def test_an_edit_applies_while_the_program_runs(tmp_path: Path, options: list[str]) -> None:
    app = tmp_path / "app"
    app.mkdir()
    write(app / "helper.py", "def value():\n    return 'one'\n")
    write(app / "main.py", LOOP)
    program = Program(["run", *options, "main.py", "3", "-v", "--flag"], cwd=tmp_path / "app")
    first = program.wait_for("argv")
    assert "['main.py', '3', '-v', '--flag']" in first, program.output  # ours end at the script
    assert f"path0 {os.path.realpath(app)}" in first, program.output
    program.wait_for("one")
    write_replace(app / "helper.py", "def value():\n    return 'two'\n")
    program.wait_for("two")
    assert program.finish() == 3, program.output
    reported = "hotmod: reloaded helper in " in program.output
    assert reported == ("-q" not in options), program.output


def test_watch_names_the_folders_to_reload(tmp_path: Path) -> None:
    app, lib = tmp_path / "app", tmp_path / "lib"
    app.mkdir()
    lib.mkdir()
    write(lib / "helper.py", "def value():\n    return 'one'\n")
    write(app / "main.py", LOOP)
    env = dict(child_env(), PYTHONPATH=os.pathsep.join([str(lib), *sys.path]))
    program = Program(["run", "--watch", str(lib), "main.py", "0"], cwd=app, env=env)
    program.wait_for("one")
    write_replace(lib / "helper.py", "def value():\n    return 'two'\n")
    program.wait_for("two")
    assert program.finish() == 0, program.output


def test_an_edit_to_the_running_script_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path / "helper.py", "def value():\n    return 'one'\n")
    main = write(tmp_path / "main.py", LOOP)
    program = Program(["run", "main.py", "5"], cwd=tmp_path)
    program.wait_for("one")
    write_replace(main, LOOP.replace("0.025", "0.02"))
    notice = program.wait_for("needs a restart")
    assert "running __main__ script" in notice, program.output
    assert "Restart the program" in notice, program.output
    write_replace(main, LOOP.replace("0.025", "0.03"))
    write_replace(tmp_path / "helper.py", "def value():\n    return 'two'\n")
    program.wait_for("two")
    assert program.finish() == 5, program.output
    assert program.output.count("needs a restart") == 1, program.output


def test_a_module_runs_with_dash_m(tmp_path: Path) -> None:
    package = tmp_path / "tool"
    package.mkdir()
    write(package / "__init__.py", "")
    write(package / "helper.py", "def value():\n    return 'one'\n")
    write(package / "__main__.py", LOOP.replace("import helper", "from tool import helper"))
    program = Program(["run", "-m", "tool", "4"], cwd=tmp_path)
    first = program.wait_for("argv")
    assert f"{os.path.realpath(package / '__main__.py')}', '4']" in first, program.output
    program.wait_for("one")
    write_replace(package / "helper.py", "def value():\n    return 'two'\n")
    program.wait_for("two")
    assert program.finish() == 4, program.output


@pytest.mark.parametrize(
    ("source", "status", "shown"),
    [
        ("import sys\nsys.exit('bad config')\n", 1, "bad config"),
        ("import sys\nsys.exit()\n", 0, ""),
        ("print('done')\n", 0, "done"),
        ("def fail():\n    raise ValueError('broken')\nfail()\n", 1, "ValueError: broken"),
    ],
    ids=["exit-message", "exit-none", "normal", "uncaught"],
)
def test_the_exit_status_and_traceback_are_the_programs(
    tmp_path: Path, source: str, status: int, shown: str
) -> None:
    write(tmp_path / "prog.py", source)
    child = run(["run", "prog.py"], tmp_path)
    output = child.stdout + child.stderr
    assert child.returncode == status, output
    assert shown in output, output
    if status == 1 and "raise" in source:
        # The traceback starts in the program, as python's would.
        assert child.stderr.startswith('Traceback (most recent call last):\n  File "prog.py", line 3'), output
        assert "runpy" not in output, output
        assert "hotmod" not in output, output


def test_bad_invocations_say_what_is_wrong(tmp_path: Path) -> None:
    missing = run(["run", "nowhere.py"], tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert "can't open file 'nowhere.py'" in missing.stderr
    no_module = run(["run", "-m", "no_such_module_anywhere"], tmp_path)
    assert no_module.returncode == 2, no_module.stderr
    assert "no module named 'no_such_module_anywhere'" in no_module.stderr
    nothing = run(["run"], tmp_path)
    assert nothing.returncode == 2, nothing.stderr
    assert "a SCRIPT or -m MODULE is required" in nothing.stderr


def test_help_documents_every_option(tmp_path: Path) -> None:
    child = run(["run", "--help"], tmp_path)
    assert child.returncode == 0, child.stderr
    text = " ".join(child.stdout.split())
    for option in (
        "--watch PATH",
        "--poll [SECONDS]",
        "-v, --verbose",
        "-q, --quiet",
        "-m MODULE",
        "Exit status",
    ):
        assert option in text, child.stdout


def test_the_console_script_runs_programs(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("hotmod")
    if not script.exists():
        pytest.skip("hotmod is not installed as a script next to this interpreter")
    write(tmp_path / "prog.py", "import sys\nprint('args', sys.argv[1:])\nsys.exit(7)\n")
    child = subprocess.run(
        [str(script), "run", "prog.py", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 7, child.stdout + child.stderr
    assert "args ['x']" in child.stdout
    assert textwrap.dedent(child.stderr).strip() == ""


def test_hotmod_0_runs_the_program_without_reloading(tmp_path: Path) -> None:
    import subprocess
    import sys

    # No reloader: no import recorder on sys.meta_path, no hotmod thread.
    script = "import sys, threading\nprint('ran', [type(f).__module__ for f in sys.meta_path if 'hotmod' in "
    script += "type(f).__module__], [t.name for t in threading.enumerate() if t.name.startswith('hotmod')])\n"
    write(tmp_path / "main.py", script)
    env = {**os.environ, "HOTMOD": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "hotmod", "run", "main.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran [] []"  # no reloader was ever made
    assert "HOTMOD=0" in done.stderr
