"""Seeded random edit sequences: held references behave like a fresh import of the sources.

Each seed generates a group of modules (see ``editgen``), imports it, takes references
the way a running program would (functions, classes, instances, bound methods, an
importer's ``from m0 import`` copies), then applies random edits one save at a time.
After every reload, what those references do must equal what a fresh import of the
current sources does; after a refused edit, what the last good sources do. Every
fourth seed uses ``dependents="reexec"``.

``pytest --edit-seeds N`` runs more seeds (CI runs 200 x 10 edits).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from . import editgen
from .conftest import Pkg, write


def _compare(actual: dict[str, Any], wanted: dict[str, Any], context: str) -> None:
    plain_actual = {k for k in actual if not k.startswith("held ")}
    plain_wanted = {k for k in wanted if not k.startswith("held ")}
    assert plain_actual == plain_wanted, context
    diverged = {k: (actual[k], wanted[k]) for k in actual if actual[k] != wanted[k]}
    assert not diverged, f"{context}\ndiverged (hotmod, fresh import): {diverged}"


def run_sequence(pkg: Pkg, seed: int, edits: int) -> None:
    rng = random.Random(seed)
    group = editgen.generate(rng)
    sub = f"s{seed}"
    pkg.subpackage(sub)
    for name, text in editgen.sources(group).items():
        pkg.write(f"{sub}.{name}", text)
    modules = {m.name: pkg.import_(f"{sub}.{m.name}") for m in group.modules}
    held = editgen.held_references(group, modules)
    # Every fourth seed re-executes importers instead of rebinding their copies.
    dependents = "reexec" if seed % 4 == 3 else "rebind"
    r = pkg.reloader(dependents=dependents)
    good = group
    history = [f"seed {seed} ({dependents})"]
    for step in range(edits):
        candidate, touched, what = editgen.mutate(good, rng)
        history.append(what)
        text = editgen.sources(candidate)
        for name in touched:
            source = text[name] + (editgen.SYNTAX_ERROR if what.endswith("syntax error") else "")
            path = pkg.path(f"{sub}.{name}")
            write(path, source)
            r.notify(path)
        result = r.poll()
        context = "\n  ".join(history) + f"\n  -> {result.summary()}"
        refused = candidate.broken is not None or what.endswith("syntax error")
        if refused:
            assert result.status == "aborted", context
            # Put the good sources back so the next edit starts from them.
            for name in touched:
                path = pkg.path(f"{sub}.{name}")
                write(path, editgen.sources(good)[name])
                r.notify(path)
            assert r.poll().status in ("noop", "ok"), context
        else:
            assert result.status in ("ok", "noop"), context
            assert result.warnings == (), context
            good = candidate
        _compare(editgen.observe(good, modules, held), editgen.expected(good), f"{context} (step {step})")
    pkg.reloaders.remove(r)
    r.close()


@pytest.mark.timeout(900)  # thousands of reloads; --edit-seeds scales it further
def test_random_edit_sequences(pkg: Pkg, request: pytest.FixtureRequest) -> None:
    seeds = int(request.config.getoption("--edit-seeds"))
    edits = int(request.config.getoption("--edits-per-seed"))
    for seed in range(seeds):
        run_sequence(pkg, seed, edits)
