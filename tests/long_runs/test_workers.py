"""Forked and spawned workers serve the code on disk (issue 16, S21), with real servers.

gunicorn forks its workers from a master that may have imported the app already
(``--preload``) and replaces them after ``--max-requests``; a worker forked after an
edit holds the old code in memory. The WSGI middleware starts its reloader at a
worker's first request, which compares what runs with the files and applies the
difference before serving: every response is the new code, none fails.
"""

from __future__ import annotations

import http.client
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TIMEOUT = 20.0

APP = """\
import os
from hotmod.web import WSGIMiddleware
from . import views

def _app(environ, start_response):
    body = f"{{views.answer()}} {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

app = WSGIMiddleware(_app, paths=[{root!r}], backend="polling", poll_interval=0.05)
"""


def _stop(process: subprocess.Popen[bytes]) -> str:
    """Stop a server as its supervisor would (SIGTERM), killing it if it lingers; its output."""
    process.send_signal(signal.SIGTERM)
    try:
        out = process.communicate(timeout=TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        out = process.communicate()[0]
    return (out or b"").decode(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/", headers={"Host": "127.0.0.1", "Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _wait_until_listening(server: subprocess.Popen[bytes]) -> None:
    """Until gunicorn says it listens (connections then wait in the backlog for a worker)."""
    import select

    assert server.stdout is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    while b"Listening at" not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([server.stdout], [], [], max(left, 0))
        if not ready:
            pytest.fail(f"gunicorn never listened: {seen.decode(errors='replace')}")
        chunk = os.read(server.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"gunicorn exited: {seen.decode(errors='replace')}")
        seen += chunk


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    name = f"site_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("def answer():\n    return 'v1'\n")
    (package / "app.py").write_text(APP.format(root=str(package)))
    return tmp_path, name


@pytest.mark.parametrize(
    "options",
    [["--preload"], [], ["--preload", "--max-requests", "2"]],
    ids=["preload", "no-preload", "preload-max-requests"],
)
def test_gunicorn_workers_serve_an_edit_made_after_they_forked(
    project: tuple[Path, str], options: list[str]
) -> None:
    root, name = project
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(root)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", *options, f"{name}.app:app"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_listening(server)
        # The edit lands after the workers forked and before any of them served: each
        # holds version 1 in memory (imported by the master with --preload).
        (root / name / "views.py").write_text("def answer():\n    return 'v2'\n")
        os.utime(root / name / "views.py", ns=(10**9, 10**9))  # an mtime from 2001: content decides
        answers = [_get(port) for _ in range(12)]
    finally:
        out = _stop(server)
    statuses = [status for status, _ in answers]
    versions = {body.split()[0] for _, body in answers}
    assert statuses == [200] * 12, out
    assert versions == {"v2"}, (answers, out)
    if "--max-requests" in options:
        # Workers were replaced (forked again from the master's version 1) and still
        # served version 2 from their first request on.
        assert len({body.split()[1] for _, body in answers}) > 2, answers


ASGI_APP = """\
import os
from hotmod.web import ASGIMiddleware
from . import views

async def _app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    body = f"{{views.answer()}} {{os.getpid()}}".encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})

app = ASGIMiddleware(_app, paths=[{root!r}], backend="polling", poll_interval=0.05)
"""


def _wait_for_output(server: subprocess.Popen[bytes], marker: bytes, times: int = 1) -> bytes:
    """Read the server's output until ``marker`` was said ``times`` times (one read may
    hold several workers' lines: counting across calls would miss them)."""
    import select

    assert server.stdout is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    while seen.count(marker) < times:
        ready, _, _ = select.select([server.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            pytest.fail(f"the server never said {marker!r}: {seen.decode(errors='replace')}")
        chunk = os.read(server.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"the server exited: {seen.decode(errors='replace')}")
        seen += chunk
    return seen


def test_uvicorn_workers_apply_an_edit_made_after_they_started(tmp_path: Path) -> None:
    """``uvicorn --workers 2`` spawns its workers; each one's middleware starts its
    reloader at the lifespan startup, and applies an edit made afterwards on its own."""
    name = f"site_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("def answer():\n    return 'v1'\n")
    (package / "app.py").write_text(ASGI_APP.format(root=str(package)))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--workers", "2", "--port", str(port), f"{name}.app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_output(server, b"Application startup complete", times=2)  # both workers
        assert _get(port)[1].split()[0] == "v1"
        (package / "views.py").write_text("def answer():\n    return 'v2'\n")
        os.utime(package / "views.py", ns=(10**9, 10**9))
        # Each worker applies the save on its own: ask until both answered v2 (every
        # request is a real round trip; the deadline bounds it).
        pids: set[str] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(pids) < 2 and time.monotonic() < deadline:
            status, body = _get(port)
            assert status == 200
            version, pid = body.split()
            if version == "v2":
                pids.add(pid)
        assert len(pids) == 2, "not every worker applied the edit"
    finally:
        _stop(server)


CELERY_TASKS = """\
import hotmod
from celery import Celery
from celery.signals import worker_process_init

app = Celery("{name}", broker="filesystem://", backend="file://{results}")
app.conf.broker_transport_options = {{
    "data_folder_in": {queue!r}, "data_folder_out": {queue!r}, "processed_folder": {done!r},
    "control_folder": {done!r},
}}

@worker_process_init.connect
def _start_hotmod(**_):
    # The documented recipe: one reloader per worker process, started in it.
    global reloader
    reloader = hotmod.Reloader([{root!r}], backend="polling", poll_interval=0.05).start()

@app.task
def answer():
    from . import views
    return views.answer()
"""


def test_celery_prefork_workers_apply_an_edit_with_the_worker_process_init_recipe(tmp_path: Path) -> None:
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    queue, done, results = tmp_path / "queue", tmp_path / "done", tmp_path / "results"
    for folder in (queue, done, results):
        folder.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("def answer():\n    return 'v1'\n")
    (package / "tasks.py").write_text(
        CELERY_TASKS.format(name=name, results=results, queue=str(queue), done=str(done), root=str(package))
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            f"{name}.tasks",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        _wait_for_output(worker, b"ready.")
        tasks = importlib.import_module(f"{name}.tasks")
        assert tasks.answer.delay().get(timeout=TIMEOUT) == "v1"
        (package / "views.py").write_text("def answer():\n    return 'v2'\n")
        os.utime(package / "views.py", ns=(10**9, 10**9))
        deadline = time.monotonic() + TIMEOUT
        seen = "v1"
        while seen != "v2" and time.monotonic() < deadline:
            seen = tasks.answer.delay().get(timeout=TIMEOUT)
        assert seen == "v2", "the worker process never applied the edit"
    finally:
        sys.path.remove(str(tmp_path))
        for key in [k for k in sys.modules if k.startswith(name)]:
            del sys.modules[key]
        _stop(worker)


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_gunicorn_uvicorn_workers_serve_an_edit_made_after_they_forked(tmp_path: Path, preload: bool) -> None:
    """gunicorn with uvicorn's ASGI workers (the uvicorn-worker package), forked from a
    --preload master or not: each worker's ASGI middleware, started with the worker's
    lifespan, applies a save made after the fork, and no worker goes back to the old code."""
    name = f"site_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("def answer():\n    return 'v1'\n")
    (package / "app.py").write_text(ASGI_APP.format(root=str(package)))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    options = ["--preload"] if preload else []
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "2",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "--max-requests",
            "3",
            "-b",
            f"127.0.0.1:{port}",
            *options,
            f"{name}.app:app",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_output(server, b"Application startup complete")
        (package / "views.py").write_text("def answer():\n    return 'v2'\n")
        os.utime(package / "views.py", ns=(10**9, 10**9))
        # Workers already up apply the save from their watcher; recycled ones (every
        # third request) start on it. Until both did, an answer may still be v1; after
        # a v2 from a worker, that worker never answers v1 again.
        answers: list[tuple[int, str]] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and [b.split()[0] for _, b in answers[-6:]] != ["v2"] * 6:
            answers.append(_get(port))
        assert all(status == 200 for status, _ in answers), answers
        seen_new: set[str] = set()
        for _, body in answers:
            version, pid = body.split()
            if version == "v2":
                seen_new.add(pid)
            else:
                assert pid not in seen_new, f"worker {pid} went back to v1: {answers}"
        assert [body.split()[0] for _, body in answers[-6:]] == ["v2"] * 6, answers
    finally:
        _stop(server)
