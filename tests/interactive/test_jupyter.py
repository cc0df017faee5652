"""``%load_ext hotmod`` in a real Jupyter kernel (ipykernel), driven by jupyter_client.

The kernel runs in its own process with the default backend (kernel file events). A
module is saved on disk the way editors save; the test then runs cells until one
shows the new code, within a time limit.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support import EVENT_TIMEOUT, write, write_replace

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns without it
jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

KERNEL_START_TIMEOUT = 60


class Kernel:
    def __init__(self, manager: Any, client: Any) -> None:
        self.manager = manager
        self.client = client
        self.transcript: list[str] = []

    def run(self, code: str) -> tuple[str, str]:
        """Execute a cell; (stdout, stderr) it printed. A cell that raises fails the test."""
        out: list[str] = []
        err: list[str] = []

        def hook(message: dict[str, Any]) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif message["msg_type"] == "error":
                err.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=30, output_hook=hook)
        stdout, stderr = "".join(out), "".join(err)
        self.transcript.append(f"In: {code}\nout: {stdout}\nerr: {stderr}")
        assert reply["content"]["status"] == "ok", self.log()
        return stdout, stderr

    def run_until(self, code: str, expected: str) -> tuple[str, str]:
        """Run ``code`` until it prints ``expected`` (the save's event arrived); all it printed."""
        deadline = time.monotonic() + EVENT_TIMEOUT
        collected_out, collected_err = "", ""
        while True:
            out, err = self.run(code)
            collected_out += out
            collected_err += err
            if expected in out + err or time.monotonic() > deadline:
                return collected_out, collected_err
            threading.Event().wait(0.05)

    def log(self) -> str:
        return "\n".join(self.transcript)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    manager, client = jupyter_client.manager.start_new_kernel(
        kernel_name="python3", cwd=str(tmp_path), env=env, startup_timeout=KERNEL_START_TIMEOUT
    )
    session = Kernel(manager, client)
    try:
        yield session
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_notebook_cell_runs_the_code_saved_on_disk(kernel: Kernel, tmp_path: Path) -> None:
    module = write(tmp_path / "nbmod.py", "LIMIT = 10\ndef score(x):\n    return x * 2\n")
    kernel.run("%load_ext hotmod")
    kernel.run("import nbmod\nfrom nbmod import LIMIT\ndata = list(range(5))")
    out, _ = kernel.run("print([nbmod.score(x) for x in data], LIMIT)")
    assert "[0, 2, 4, 6, 8] 10" in out, kernel.log()

    write_replace(module, "LIMIT = 20\ndef score(x):\n    return x * 3\n")
    out, _ = kernel.run_until("print([nbmod.score(x) for x in data], LIMIT)", "[0, 3, 6, 9, 12] 20")
    assert "[0, 3, 6, 9, 12] 20" in out, kernel.log()  # new code, data kept, LIMIT rebound
    assert "hotmod: reloaded nbmod in " in out, kernel.log()

    write_replace(module, "LIMIT = 30\ndef score(x)\n    return x\n")
    out, err = kernel.run_until("print('still', nbmod.score(2), LIMIT)", "SyntaxError")
    assert "aborted, previous version kept" in err, kernel.log()
    assert f'File "{os.path.realpath(module)}", line 2' in err, kernel.log()
    assert "still 6 20" in out, kernel.log()  # the cell ran against the intact old version

    out, _ = kernel.run("%hotmod")
    assert "nbmod" in out, kernel.log()
    assert "1 reloaded, 1 aborted" in out, kernel.log()
