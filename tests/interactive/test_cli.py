"""The command line, run as a user would: a child process whose output shows on failure."""

from __future__ import annotations

import subprocess
import sys


def test_demo_shows_a_kept_state_a_refused_edit_and_the_fix() -> None:
    child = subprocess.run(
        [sys.executable, "-m", "hotmod", "demo"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    output = child.stdout + child.stderr
    assert child.returncode == 0, output
    assert "state    VISITS kept" in output, output
    assert "refused: aborted" in output, output
    assert "SyntaxError" in output, output
    assert "Good to see you again" in output, output
    assert ", 0 errors in the app" in output, output


def test_help_lists_the_demo() -> None:
    child = subprocess.run(
        [sys.executable, "-m", "hotmod", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert child.returncode == 0, child.stderr
    assert "demo" in child.stdout
