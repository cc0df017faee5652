"""The public surface is explicit: what ``__all__`` says, the lazy loader loads, and the
API reference documents are the same names, and everything else is underscored.

A name added to one of them and forgotten in another fails here, not in a user's hands.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import hotmod

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"

# Modules a user imports by name; every other module's name starts with an underscore.
PUBLIC_MODULES = {
    "hotmod",
    "hotmod.adapters",
    "hotmod.dask",
    "hotmod.repl",
    "hotmod.web",
    "hotmod.web.asgi",
    "hotmod.web.wsgi",
    # Where the top-level classes live (their ``__module__``, which pickles name).
    "hotmod.errors",
    "hotmod.plugins",
    "hotmod.reloader",
    "hotmod.result",
}
# The reference page of each namespace a user imports names from.
PAGES = {
    "hotmod": "hotmod.md",
    "hotmod.adapters": "adapters.md",
    "hotmod.dask": "dask.md",
    "hotmod.repl": "repl.md",
    "hotmod.web": "web.md",
}


def _all_modules() -> list[str]:
    names = ["hotmod"]
    for info in pkgutil.walk_packages(hotmod.__path__, "hotmod."):
        if info.name != "hotmod.__main__":  # running it is its import
            names.append(info.name)
    return sorted(names)


def _documented(page: str, namespace: str) -> set[str]:
    """Names a reference page renders: ``::: namespace.name`` lines, or the ``members:``
    list under ``::: namespace``."""
    text = (REFERENCE / page).read_text(encoding="utf-8")
    names = set(re.findall(rf"^::: {re.escape(namespace)}\.(\w+)\s*$", text, re.MULTILINE))
    block = re.search(rf"^::: {re.escape(namespace)}\s*$(.*?)(?=^:::|\Z)", text, re.MULTILINE | re.DOTALL)
    if block is not None:
        names |= set(re.findall(r"^\s+- (\w+)\s*$", block.group(1), re.MULTILINE))
    return names


def test_the_top_level_all_is_what_the_lazy_loader_serves() -> None:
    eager = {"__version__", "load_ipython_extension", "unload_ipython_extension"}

    assert set(hotmod.__all__) == set(hotmod._LAZY) | eager
    assert len(hotmod.__all__) == len(set(hotmod.__all__))
    for name in hotmod.__all__:
        assert getattr(hotmod, name) is not None, name
    with pytest.raises(AttributeError):
        _ = hotmod.not_a_public_name


@pytest.mark.parametrize(("namespace", "page"), sorted(PAGES.items()))
def test_the_reference_documents_exactly_what_all_exports(namespace: str, page: str) -> None:
    module = importlib.import_module(namespace)
    exported = {name for name in module.__all__ if not name.startswith("__")}

    assert _documented(page, namespace) == exported


@pytest.mark.parametrize("name", _all_modules())
def test_every_module_declares_all_and_private_ones_say_so(name: str) -> None:
    module = importlib.import_module(name)
    declared = getattr(module, "__all__", None)

    assert isinstance(declared, list), f"{name} declares no __all__"
    assert [n for n in declared if not hasattr(module, n)] == []
    private = any(part.startswith("_") for part in name.split("."))
    assert private or name in PUBLIC_MODULES, f"{name} looks public; underscore it or list it here"


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert "version" not in project
    assert "version" in project["dynamic"]
    assert importlib.metadata.version("hotmod") == hotmod.__version__
