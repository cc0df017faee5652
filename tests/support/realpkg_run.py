"""Child process of test_real_packages: import a package, maybe reload it, run its own tests.

Run as ``python -P realpkg_run.py '<json spec>'`` with these keys:

- ``source_root``: the folder that goes first on ``sys.path`` (the package imports from it);
- ``packages``: ``[import name, folder]`` of each package the distribution installs
  (attrs installs ``attr`` and ``attrs``);
- ``skip_dirs``: folders under a package whose modules are neither imported nor edited
  here (the package's own tests: pytest imports them itself);
- ``reload``: whether to edit every module file and apply the edit through hotmod first;
- ``edit``: ``"shift"`` (a comment line on top moves every line down one, and a new global
  at the end) or ``"comments"`` (comment lines only, at the end: no line moves);
- ``strategy``: the reloader's ``strategy`` (``"module"`` re-executes every module whole);
- ``rootdir``, ``pytest_args``: how to run the package's suite;
- ``hotmod_file``: the ``hotmod/__init__.py`` the parent tests, so both run the same code.

The last line of stdout is one JSON object: what the reload did and the suite's counts.
Everything happens in one process on purpose: the suite must exercise the very module
objects hotmod patched, not a fresh import of the edited files.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import types
import warnings
from pathlib import Path
from typing import Any, Literal

import pytest

EDIT_HEAD = "# reloaded in place by hotmod's real-package test; this line moves every other one\n"
EDIT_TAIL = "\n_hotmod_edit = 1\n"
EDIT_COMMENTS = "# reloaded in place by hotmod's real-package test\n# (comments only: no line moves)\n"


def module_files(package: str, package_dir: Path, skip_dirs: list[str]) -> dict[str, Path]:
    """Dotted name -> source file of every module of the package, packages first."""
    found: dict[str, Path] = {}
    for path in package_dir.rglob("*.py"):
        relative = path.relative_to(package_dir)
        if any(part in skip_dirs or part == "__pycache__" for part in relative.parts[:-1]):
            continue
        parts = [package, *relative.parts[:-1]]
        if relative.name != "__init__.py":
            parts.append(relative.stem)
        found[".".join(parts)] = path
    return dict(sorted(found.items(), key=lambda item: item[0].split(".")))


def edited(text: str, kind: str) -> str:
    """The same code one line lower, plus a harmless new global; or the same code with
    comments added at the end, so only the file's bytes change.

    The new line goes after a shebang or an encoding declaration, which only count on
    the first two lines.
    """
    if kind == "comments":
        return text + ("" if text.endswith("\n") or not text else "\n") + EDIT_COMMENTS
    lines = text.splitlines(keepends=True)
    head = 0
    while head < min(2, len(lines)) and (lines[head].startswith("#!") or "coding" in lines[head]):
        head += 1
    return "".join([*lines[:head], EDIT_HEAD, *lines[head:]]) + EDIT_TAIL


def definitions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    """``name`` or ``Class.attr`` -> function, for the functions written in ``module``'s file.

    One class level is enough to see whether methods, properties, classmethods and
    staticmethods received the new code.
    """
    found: dict[str, types.FunctionType] = {}

    def consider(key: str, obj: object) -> None:
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        elif isinstance(obj, property):
            obj = obj.fget
        if isinstance(obj, types.FunctionType) and obj.__code__.co_filename == module.__file__:
            found[key] = obj

    for name, value in list(vars(module).items()):
        if isinstance(value, type) and value.__module__ == module.__name__:
            for attr, member in list(vars(value).items()):
                consider(f"{name}.{attr}", member)
        else:
            consider(name, value)
    return found


def reload_everything(
    files: dict[str, Path], package_dirs: list[Path], kind: str, strategy: Literal["statements", "module"]
) -> tuple[dict[str, Any], Any]:
    """Edit every file, apply the edits in one poll, and say what happened to what."""
    import hotmod

    modules = {name: sys.modules[name] for name in files}
    before = {
        (name, key): (func, func.__code__)
        for name, module in modules.items()
        for key, func in definitions(module).items()
    }
    reloader = hotmod.Reloader(package_dirs, backend="manual", apply="manual", debounce=0, strategy=strategy)
    tracked = set(reloader.modules.values())
    for path in files.values():
        path.write_text(edited(path.read_text(encoding="utf-8"), kind), encoding="utf-8")
    importlib.invalidate_caches()
    reloader.notify(*files.values())
    # Module code may warn when it runs again; record it rather than let a filter decide.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = reloader.poll()

    after = {name: definitions(module) for name, module in modules.items()}
    moved: list[str] = []
    stale: list[str] = []
    # Shifted: every function holds new code one line lower. Comments only: every function
    # is still the same object at the same line (whether its code object was swapped
    # depends on whether the module ran again, which a comment need not cause).
    shift = 1 if kind == "shift" else 0
    for (name, key), (func, code) in before.items():
        same = after[name].get(key) is func
        new_code = func.__code__ is not code or not shift
        if same and new_code and func.__code__.co_firstlineno == code.co_firstlineno + shift:
            moved.append(f"{name}:{key}")
        else:
            stale.append(f"{name}:{key}" + ("" if same else " (another object now)"))
    report = {
        "status": result.status,
        "report": result.report(),
        "error": "".join(traceback.format_exception(result.error)) if result.error is not None else None,
        "modules": sorted(result.modules),
        "untracked": sorted(set(files) - tracked),
        "same_module_objects": all(sys.modules.get(name) is module for name, module in modules.items()),
        "functions": len(before),
        "functions_moved": len(moved),
        "functions_stale": stale,
        "hotmod_warnings": list(result.warnings),
        "python_warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
        "seconds": result.duration,
    }
    return report, reloader


class Counter:
    """Counts outcomes as pytest's summary line does, and names what failed."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("passed", "failed", "skipped", "xfailed", "xpassed", "errors"), 0)
        self.failures: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                key = "xpassed" if xfail else "passed"
            elif report.skipped:
                key = "xfailed" if xfail else "skipped"
            else:
                key = "failed"
        elif report.failed:
            key = "errors"
        elif report.skipped:
            key = "skipped"
        else:
            return
        # pytest reports unittest's subTest blocks apart from the tests that hold them.
        if type(report).__name__ == "SubtestReport":
            key = f"subtests_{key}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if key.endswith(("failed", "errors")):
            self.failures.append(f"{report.nodeid} ({report.when})")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.counts["errors"] += 1
            self.failures.append(f"{report.nodeid} (collection)")


def main() -> int:
    spec = json.loads(sys.argv[1])
    sys.path.insert(0, spec["source_root"])
    # The parent may run from an installed hotmod or from its checkout; the checkout goes
    # last so that its own `tests` package never shadows the package's `tests`.
    sys.path.append(str(Path(spec["hotmod_file"]).parent.parent))
    import hotmod

    if Path(hotmod.__file__).resolve() != Path(spec["hotmod_file"]).resolve():
        print(
            f"the child imported {hotmod.__file__}, the parent tests {spec['hotmod_file']}", file=sys.stderr
        )
        return 3

    files: dict[str, Path] = {}
    package_dirs = [Path(folder) for _, folder in spec["packages"]]
    for package, folder in spec["packages"]:
        files.update(module_files(package, Path(folder), spec["skip_dirs"]))
    for name in files:
        importlib.import_module(name)
    outcome: dict[str, Any] = {"modules": sorted(files)}
    reloader = None
    if spec["reload"]:
        outcome["reload"], reloader = reload_everything(files, package_dirs, spec["edit"], spec["strategy"])
        print(outcome["reload"]["report"])
        if outcome["reload"]["error"]:
            print(outcome["reload"]["error"])
        if outcome["reload"]["status"] != "ok":
            print(json.dumps(outcome))
            return 0

    counter = Counter()
    os.chdir(spec["rootdir"])
    started = time.perf_counter()
    exit_code = pytest.main(spec["pytest_args"], plugins=[counter])
    outcome["suite_seconds"] = round(time.perf_counter() - started, 3)
    outcome["exit_code"] = int(exit_code)
    outcome["counts"] = counter.counts
    outcome["failures"] = counter.failures
    if reloader is not None:
        reloader.close()
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
