"""Fixtures and command-line options; what tests share otherwise is in ``tests.support``.

Every test gets its own package (a fresh, unique name) in ``tmp_path``, so ``sys.modules``
never collides between tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Pkg, package_on_path


@pytest.fixture
def pkg(tmp_path: Path) -> Iterator[Pkg]:
    yield from package_on_path(tmp_path)


@pytest.fixture
def pkg2(tmp_path: Path) -> Iterator[Pkg]:
    """A second, independent package (for tests with two reloaders)."""
    other = tmp_path / "second"
    other.mkdir()
    yield from package_on_path(other)


@pytest.fixture(params=["statements", "module"])
def both_strategies(request: pytest.FixtureRequest, pkg: Pkg) -> str:
    """Run a test once per reload strategy: what it checks must hold for both."""
    pkg.strategy = request.param
    return str(request.param)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hotmod")
    group.addoption("--edit-seeds", type=int, default=200, help="random edit sequences to run (default 200)")
    group.addoption("--edits-per-seed", type=int, default=10, help="edits in each sequence (default 10)")
    group.addoption("--first-seed", type=int, default=0, help="seed of the first edit sequence (default 0)")
    group.addoption(
        "--fuzz-long",
        action="store_true",
        help="run at least 10,000 edit sequences, print every divergence as a minimal reproducer",
    )
    group.addoption("--soak-reloads", type=int, default=1000, help="reloads in the soak test (default 1000)")
    group.addoption("--soak-cycles", type=int, default=100, help="start/stop cycles per leak test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--fuzz-long"):
        # A long fuzzing run takes its time; the per-test limit is for hangs in CI.
        for item in items:
            if item.name == "test_random_edit_sequences":
                item.add_marker(pytest.mark.timeout(0), append=False)
