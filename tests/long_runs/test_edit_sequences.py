"""Seeded random edit sequences: held references behave like a fresh import of the sources.

Each seed generates a group of 2-4 modules (see ``editgen``), imports it, gives its kept
state values of its own, takes references the way a running program would (functions,
classes, instances, bound methods, enum members, kept objects, an importer's ``from m0
import`` copies), then applies random edits one save at a time. After every reload, what
those references do must equal what a fresh import of the current sources does (with the
kept state the process holds); after a refused edit, what the last good sources do.
Every fourth seed uses ``dependents="reexec"``.

Each seed also draws the order a user produces (the reloader made before the import, so
the first save lands before its first look; the import first; or the first save made
before a late reloader exists, as in a forked worker) and what the saved files' mtimes
say (honest, moved into the past, equal to the previous one, or in the future). The first
save is never announced with ``notify()`` when the reloader came first or late: it must
find it by itself.

CI runs ``--edit-seeds`` (200) sequences of ``--edits-per-seed`` (10) saves. ``--fuzz-long``
runs 10,000 sequences (or ``--edit-seeds`` if more), carries on past a divergence and
prints each as a minimal reproducer: the sequence is shrunk to the fewest saves and
definitions that still diverge, then printed as the sources and the diffs of each save.
``--first-seed N --edit-seeds 1`` replays one seed.
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import linecache
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import hotmod

from ..support import Pkg, editgen, write

LONG_RUN = 10_000
REPRODUCERS = 5  # a long run shrinks and prints at most this many divergences
_RUNS = itertools.count(1)


@dataclass
class Failure:
    step: int  # index of the save that diverged; -1 for the first import
    message: str
    results: list[str] = field(default_factory=list)  # each save's summary


@dataclass
class Tally:
    sequences: int = 0
    saves: int = 0
    applied: int = 0
    refused: int = 0
    divergences: int = 0
    # first saves of a late start that left no trace in the running objects (a dict's
    # value, a call's argument): verification cannot see them; the next save applies them
    unseen: int = 0
    # modules reloaded by running only what changed, and by running their whole code
    by_statements: int = 0
    whole_module: int = 0


def _diverged(actual: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    plain_actual = {k for k in actual if not k.startswith("held ")}
    plain_wanted = {k for k in wanted if not k.startswith("held ")}
    if plain_actual != plain_wanted:
        only_hotmod, only_fresh = plain_actual - plain_wanted, plain_wanted - plain_actual
        return f"different definitions: hotmod only {only_hotmod}, fresh import only {only_fresh}"
    diverged = {k: (actual[k], wanted.get(k, "<missing>")) for k in actual if actual[k] != wanted.get(k)}
    if diverged:
        lines = "\n".join(
            f"    {k}: hotmod {a!r}, fresh import {w!r}" for k, (a, w) in sorted(diverged.items())
        )
        return f"diverged:\n{lines}"
    return None


ORDERS = ("reloader first", "import first", "late start after an edit")
MTIMES = ("honest", "past", "equal", "future")
_DAY_NS = 86_400 * 10**9


def conditions(seed: int) -> tuple[str, str, str]:
    """(dependents, order, mtimes) of a seed's sequence."""
    dependents = "reexec" if seed % 4 == 3 else "rebind"
    return dependents, ORDERS[seed % 3], MTIMES[(seed // 3) % 4]


class Replayer:
    """Plays sequences of saves, each into a new subpackage of ``pkg``, checking every step."""

    def __init__(self, pkg: Pkg, dependents: str, order: str = ORDERS[1], mtimes: str = MTIMES[0]) -> None:
        self.pkg = pkg
        self.dependents = dependents
        self.order = order
        self.mtimes = mtimes

    def replay(
        self, start: editgen.Group, steps: list[editgen.Step], tally: Tally | None = None
    ) -> Failure | None:
        # A name never used before: hot contexts and kept objects belong to a module name.
        play = _Play(self.pkg, f"r{next(_RUNS)}", start, self.dependents, self.order, self.mtimes)
        try:
            return play.run(start, steps, tally or Tally())
        finally:
            play.close()


class _Play:
    """One sequence played into subpackage ``sub``: its files, modules and reloader."""

    def __init__(  # noqa: PLR0917
        self, pkg: Pkg, sub: str, start: editgen.Group, dependents: str, order: str, mtimes: str
    ) -> None:
        self.pkg, self.sub = pkg, sub
        self.dependents, self.order, self.mtimes = dependents, order, mtimes
        self.directory = pkg.subpackage(sub)
        self.disk = editgen.sources(start)
        for name, text in self.disk.items():
            pkg.write(f"{sub}.{name}", text)
        self.reloader: hotmod.Reloader | None = None
        if order == "reloader first":
            self.reloader = self._make_reloader()
        self.modules = {m.name: pkg.import_(editgen.dotted(sub, m.name)) for m in start.modules}
        if order == "import first":
            self.reloader = self._make_reloader()

    def _make_reloader(self) -> hotmod.Reloader:
        return hotmod.Reloader(
            self.directory,
            backend="manual",
            apply="manual",
            dependents=self.dependents,  # type: ignore[arg-type]
        )

    def save(self, texts: dict[str, str], *, announce: bool = True) -> hotmod.ReloadResult:
        """Write every module whose source differs from the disk, as one batch."""
        for name, text in texts.items():
            if text != self.disk[name]:
                path = self.pkg.path(f"{self.sub}.{name}")
                previous = path.stat().st_mtime_ns
                write(path, text)
                self._stamp(path, previous)
                self.disk[name] = text
                if announce and self.reloader is not None:
                    self.reloader.notify(path)
        if self.reloader is None:  # a late start: the reloader is made after the save
            self.reloader = self._make_reloader()
        return self.reloader.poll()

    def _stamp(self, path: Any, previous: int) -> None:
        """Make the saved file's mtime say what this sequence's mtimes say."""
        import os

        if self.mtimes == "past":  # cp -p, rsync -a, tar: an old mtime from elsewhere
            ns = previous - 30 * _DAY_NS
        elif self.mtimes == "equal":
            ns = previous
        elif self.mtimes == "future":  # a mount whose clock runs ahead
            ns = time.time_ns() + _DAY_NS
        else:
            return
        os.utime(path, ns=(ns, ns))

    def run(self, start: editgen.Group, steps: list[editgen.Step], tally: Tally) -> Failure | None:
        editgen.keep_state(start, self.modules)
        held = editgen.held_references(start, self.modules)
        results: list[str] = []
        problem = _diverged(editgen.observe(start, self.modules, held), editgen.expected(start))
        if problem:
            return Failure(-1, problem, results)
        good = start
        for i, step in enumerate(steps):
            group = editgen.carry_state(start, step.group)
            # The first save is found by the reloader itself: recorded at the import, or
            # compared with what runs when a late reloader starts.
            result = self.save(editgen.sources(group), announce=i > 0 or self.order == "import first")
            results.append(result.summary())
            for _, how in result.strategies:
                if how == "statements":
                    tally.by_statements += 1
                else:
                    tally.whole_module += 1
            tally.saves += 1
            late_first = i == 0 and self.order == "late start after an edit"
            if group.refused:
                if late_first and result.status != "aborted":
                    tally.unseen += 1  # raising module code leaves no trace in objects either
                elif result.status != "aborted":
                    return Failure(i, f"a refused edit gave {result.status}, not aborted", results)
                else:
                    tally.refused += 1
                # Put the good sources back so the next edit starts from them.
                restored = self.save(editgen.sources(good))
                if restored.status not in ("noop", "ok"):
                    return Failure(i, f"restoring the good sources gave {restored.summary()}", results)
            elif late_first and result.status in ("ok", "noop") and self._unseen(start, group, result):
                # The documented limit of a module imported before any reloader: an edit
                # with no trace in its objects (a dict's value) is not seen. The user's
                # remedy, an explicit reload of those modules, must leave all consistent.
                tally.unseen += 1
                assert self.reloader is not None
                for name in self._unseen(start, group, result):
                    forced = self.reloader.reload(self.modules[name])
                    if forced.status != "ok":
                        return Failure(i, f"reloading {name} by hand gave {forced.summary()}", results)
                tally.applied += 1
                good = group
            else:
                # Saying why a file is reloaded at once is not a warning about the edit.
                warned = [w for w in result.warnings if "changed since it was imported" not in w]
                if result.status not in ("ok", "noop") or warned:
                    problem = f"an edit in the promise gave {result.summary()} {result.warnings}"
                    return Failure(i, problem, results)
                tally.applied += 1
                good = group
            problem = _diverged(editgen.observe(good, self.modules, held), editgen.expected(good))
            if problem:
                return Failure(i, problem, results)
        return None

    def _unseen(self, before: editgen.Group, after: editgen.Group, result: hotmod.ReloadResult) -> list[str]:
        """Modules whose text changed that the result did not reload."""
        old, new = editgen.sources(before), editgen.sources(after)
        reloaded = set(result.modules)
        return [
            name
            for name, text in new.items()
            if text != old[name] and self.modules[name].__name__ not in reloaded
        ]

    def close(self) -> None:
        if self.reloader is not None:
            self.reloader.close()
        prefix = self.pkg.qualname(self.sub)
        for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
            del sys.modules[name]
        # The parent package holds its imported subpackage too: ten thousand sequences
        # must not keep ten thousand groups of modules alive.
        vars(sys.modules[self.pkg.name]).pop(self.sub, None)
        # Each finder cached for a removed folder would make every later
        # ``importlib.invalidate_caches()`` (one per save) a little slower.
        sys.path_importer_cache.pop(str(self.directory), None)
        shutil.rmtree(self.directory)
        linecache.checkcache()  # the source lines kept for tracebacks of the removed files
        importlib.invalidate_caches()


def shrink(
    replayer: Replayer, start: editgen.Group, steps: list[editgen.Step], failure: Failure
) -> tuple[editgen.Group, list[editgen.Step], Failure]:
    """The fewest saves and definitions that still diverge, found greedily."""

    def attempt(s: editgen.Group, st: list[editgen.Step]) -> bool:
        nonlocal start, steps, failure
        found = replayer.replay(s, st)
        if found is None:
            return False
        start, steps, failure = s, st, found
        steps = steps[: found.step + 1]
        return True

    steps = steps[: failure.step + 1]
    i = len(steps) - 1
    while i >= 0:
        if i < len(steps):
            attempt(start, steps[:i] + steps[i + 1 :])
        i -= 1
    every_name = dict.fromkeys(n for g in [start, *(s.group for s in steps)] for n in editgen.names(g))
    for name in every_name:
        maybe = [editgen.without(g, name) for g in [start, *(s.group for s in steps)]]
        groups = [g for g in maybe if g is not None]
        if len(groups) < len(maybe):
            continue
        smaller = [editgen.Step(g, s.touched, s.what) for g, s in zip(groups[1:], steps, strict=True)]
        attempt(groups[0], smaller)
    for module in [m.name for m in start.modules]:
        maybe = [editgen.without_module(g, module) for g in [start, *(s.group for s in steps)]]
        without = [g for g in maybe if g is not None]
        if len(without) < len(maybe):
            continue
        smaller = [editgen.Step(g, s.touched, s.what) for g, s in zip(without[1:], steps, strict=True)]
        attempt(without[0], smaller)

    return start, steps, failure


def reproducer(
    seed: int, dependents: str, start: editgen.Group, steps: list[editgen.Step], failure: Failure
) -> str:
    _, order, mtimes = conditions(seed)
    lines = [
        f"seed {seed} (dependents={dependents!r}, {order}, mtimes {mtimes}), shrunk to {len(steps)} save(s)",
        "",
    ]
    disk = editgen.sources(start)
    for name, text in disk.items():
        lines += [f"--- {name}.py, imported at the start", text]
    good = start
    for i, step in enumerate(steps):
        texts = editgen.sources(step.group)
        lines.append(f"=== save {i + 1}: {step.what}")
        for name, text in texts.items():
            if text != disk[name]:
                lines += difflib.unified_diff(
                    disk[name].splitlines(), text.splitlines(), f"{name}.py", f"{name}.py", lineterm="", n=1
                )
        disk = editgen.sources(good) if step.group.refused else texts
        good = good if step.group.refused else step.group
        if i < len(failure.results):
            lines.append(f"  -> {failure.results[i]}")
    where = "the first import" if failure.step < 0 else f"save {failure.step + 1}"
    lines += ["", f"at {where}: {failure.message}"]
    return "\n".join(lines)


def fuzz(
    pkg: Pkg,
    seeds: Iterator[int],
    *,
    edits: int,
    tally: Tally,
    report: Callable[[str], None],
    keep_going: bool,
) -> list[str]:
    found: list[str] = []
    for seed in seeds:
        start, steps = editgen.sequence(random.Random(seed), edits)
        # Every fourth seed re-executes importers instead of rebinding their copies.
        dependents, order, mtimes = conditions(seed)
        replayer = Replayer(pkg, dependents, order, mtimes)
        failure = replayer.replay(start, steps, tally)
        tally.sequences += 1
        if failure is None:
            continue
        tally.divergences += 1
        if len(found) < REPRODUCERS:
            small = shrink(replayer, start, steps, failure)
            found.append(reproducer(seed, dependents, *small))
            report(found[-1])
        if not keep_going:
            break
    return found


def _summary(tally: Tally, elapsed: float) -> str:
    return (
        f"edit-sequence fuzzer: {tally.sequences:,} sequences, {tally.saves:,} saves "
        f"({tally.applied:,} applied, {tally.refused:,} refused and rolled back, "
        f"{tally.unseen:,} first saves of a late start with no trace in the running objects; "
        f"modules reloaded {tally.by_statements:,} times by their changed statements, "
        f"{tally.whole_module:,} times whole), "
        f"{tally.divergences} divergence(s), {elapsed:.0f} s"
    )


@pytest.mark.timeout(900)  # thousands of reloads; --fuzz-long lifts the limit (see conftest)
def test_random_edit_sequences(
    pkg: Pkg, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    long_run = bool(request.config.getoption("--fuzz-long"))
    count = int(request.config.getoption("--edit-seeds"))
    if long_run:
        count = max(count, LONG_RUN)
    first = int(request.config.getoption("--first-seed"))
    edits = int(request.config.getoption("--edits-per-seed"))

    def report(text: str) -> None:
        with capsys.disabled():
            print(f"\n{text}", flush=True)

    tally = Tally()
    began = time.perf_counter()

    def seeds() -> Iterator[int]:
        for seed in range(first, first + count):
            if long_run and seed > first and (seed - first) % 1000 == 0:
                report(_summary(tally, time.perf_counter() - began))
            yield seed

    found = fuzz(pkg, seeds(), edits=edits, tally=tally, report=report, keep_going=long_run)
    report(_summary(tally, time.perf_counter() - began))
    assert tally.sequences == count or found
    assert tally.applied > 0
    assert tally.refused > 0
    assert not found, f"{tally.divergences} divergence(s); the first:\n{found[0]}"
