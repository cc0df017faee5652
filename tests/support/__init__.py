"""What the tests share: files written and timed without sleeping, a unique package per
test, and a listener that records results.

Nothing here sleeps: tests drive ``poll()`` themselves, move mtimes with ``os.utime`` for
the polling backend, call ``notify()`` for the manual one, and the few tests on real
kernel events wait on a ``threading.Event`` for at most ``EVENT_TIMEOUT``.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hotmod

__all__ = [
    "EVENT_TIMEOUT",
    "Pkg",
    "Results",
    "bump_mtime",
    "edit",
    "fresh_answers",
    "hotmod_threads",
    "package_on_path",
    "reload_error",
    "set_mtime",
    "write",
    "write_replace",
]

# How long a test on real file events waits before it declares the event lost.
EVENT_TIMEOUT = 10.0

_mtimes = itertools.count(1)
_MTIME_BASE = 1_600_000_000  # whole seconds; far from "now" so it never collides with a write


def write(path: Path | str, text: str | bytes) -> Path:
    """Write ``text`` (dedented when it is a ``str``) to ``path`` in place."""
    path = Path(path)
    data = textwrap.dedent(text).encode() if isinstance(text, str) else text
    with open(path, "wb") as f:
        f.write(data)
    importlib.invalidate_caches()
    return path


def write_replace(path: Path | str, text: str | bytes) -> Path:
    """Save like most editors: write a temp file next to ``path``, then ``os.replace`` it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    write(tmp, text)
    os.replace(tmp, path)
    importlib.invalidate_caches()
    return path


def bump_mtime(path: Path | str) -> int:
    """Give ``path`` an mtime no other call gave (the polling backend sees it at once)."""
    ns = (_MTIME_BASE + next(_mtimes)) * 1_000_000_000
    os.utime(path, ns=(ns, ns))
    return ns


def set_mtime(path: Path | str, seconds: int) -> None:
    ns = seconds * 1_000_000_000
    os.utime(path, ns=(ns, ns))


def hotmod_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hotmod")]


class Pkg:
    """A unique package in a temporary folder, on ``sys.path`` for the test's duration."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.name = f"hm_{uuid.uuid4().hex[:12]}"
        self.dir = self.root / self.name
        self.dir.mkdir()
        write(self.dir / "__init__.py", "")
        self.reloaders: list[hotmod.Reloader] = []
        # The reload strategy of the reloaders made here; None: the default (statements).
        self.strategy: str | None = None

    def path(self, mod: str) -> Path:
        """The source file of ``mod`` (dots for subpackages), realpath as hotmod reports it."""
        *parents, leaf = mod.split(".")
        return self.dir.joinpath(*parents, f"{leaf}.py")

    def qualname(self, mod: str) -> str:
        return f"{self.name}.{mod}"

    def write(self, mod: str, text: str | bytes) -> Path:
        return write(self.path(mod), text)

    def subpackage(self, name: str) -> Path:
        directory = self.dir / name
        directory.mkdir()
        write(directory / "__init__.py", "")
        return directory

    # The modules a test writes are typed ``Any``: their attributes are whatever the test's
    # source text defines, which no type checker sees.
    def import_(self, mod: str) -> Any:
        return importlib.import_module(self.qualname(mod))

    def module(self, mod: str, text: str | bytes) -> Any:
        """Write ``mod`` and import it."""
        self.write(mod, text)
        return self.import_(mod)

    def counter(self) -> list[Any]:
        """A list on a helper module; modules append to it to count their executions."""
        runs: list[Any] = self.module("log", "runs = []\n").runs
        return runs

    def reloader(self, **options: Any) -> hotmod.Reloader:
        """A reloader on this package; manual backend and manual apply unless told."""
        options.setdefault("backend", "manual")
        options.setdefault("apply", "manual")
        if self.strategy is not None:
            options.setdefault("strategy", self.strategy)
        paths = options.pop("paths", self.dir)
        r = hotmod.Reloader(paths, **options)
        self.reloaders.append(r)
        return r

    def cleanup(self) -> None:
        for r in self.reloaders:
            r.close()
        for name in [n for n in sys.modules if n == self.name or n.startswith(self.name + ".")]:
            del sys.modules[name]
        while str(self.root) in sys.path:
            sys.path.remove(str(self.root))
        importlib.invalidate_caches()


def edit(r: hotmod.Reloader, path: Path, text: str | bytes) -> hotmod.ReloadResult:
    """Write ``path``, tell ``r`` and poll: one save applied on this thread."""
    write(path, text)
    r.notify(path)
    return r.poll()


# Seconds a fresh interpreter may take to import a framework and answer.
FRESH_TIMEOUT = 60.0


def fresh_answers(pkg: Pkg, folder: Path, probe: str) -> Any:
    """What ``python -m <pkg>.<probe>`` prints (JSON), in a fresh interpreter on the saved
    files: the process a restart would give, to compare the reloaded one with."""
    elsewhere = folder / "fresh"  # the package is found through PYTHONPATH, not the working directory
    elsewhere.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(pkg.root),
        # Fresh bytecode: a cached .pyc of an earlier version is never read.
        "PYTHONPYCACHEPREFIX": str(elsewhere / "pycache"),
    }
    done = subprocess.run(
        [sys.executable, "-m", pkg.qualname(probe)],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=FRESH_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def reload_error(result: hotmod.ReloadResult) -> hotmod.ReloadError:
    """The ``ReloadError`` a failed or aborted ``result`` carries (fails the test if none)."""
    assert isinstance(result.error, hotmod.ReloadError), result
    return result.error


class Results:
    """A listener that records results and sets ``event`` when ``predicate`` holds for one."""

    def __init__(
        self, r: hotmod.Reloader, predicate: Callable[[hotmod.ReloadResult], bool] = lambda _: True
    ) -> None:
        self.items: list[hotmod.ReloadResult] = []
        self.errors: list[BaseException] = []
        self.event = threading.Event()
        self._predicate = predicate
        self.unsubscribe = r.subscribe(self)

    def expect(self, predicate: Callable[[hotmod.ReloadResult], bool]) -> threading.Event:
        """Wait (from now on) for a result satisfying ``predicate``."""
        self.event.clear()
        self._predicate = predicate
        if any(predicate(x) for x in self.items):
            self.event.set()
        return self.event

    def __call__(self, result: hotmod.ReloadResult) -> None:
        self.items.append(result)
        try:
            if self._predicate(result):
                self.event.set()
        except Exception as exc:  # surfaced by the test, not swallowed by hotmod's logger
            self.errors.append(exc)

    def wait(self, timeout: float = EVENT_TIMEOUT) -> bool:
        return self.event.wait(timeout)

    @property
    def statuses(self) -> list[str]:
        return [x.status for x in self.items]


def package_on_path(root: Path) -> Iterator[Pkg]:
    """A ``Pkg`` in ``root`` on ``sys.path`` while the generator is suspended (a fixture's body)."""
    package = Pkg(root)
    sys.path.insert(0, str(package.root))
    importlib.invalidate_caches()
    try:
        yield package
    finally:
        package.cleanup()
