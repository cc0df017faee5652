"""hotmod: reload edited modules inside a running process, keeping its state."""

from __future__ import annotations

import importlib

# Not ``typing.TYPE_CHECKING``: importing typing alone would double what this costs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._hot import HotContext, hot
    from ._now import reload_now
    from .errors import HotmodError, HotmodWarning, ReloadError
    from .plugins import Plugin, PluginContext, PluginFolder
    from .reloader import Reloader
    from .result import ReloadResult, ReloadStats

__version__ = "0.1.0"

__all__ = [
    "HotContext",
    "HotmodError",
    "HotmodWarning",
    "Plugin",
    "PluginContext",
    "PluginFolder",
    "ReloadError",
    "ReloadResult",
    "ReloadStats",
    "Reloader",
    "__version__",
    "hot",
    "load_ipython_extension",
    "reload_now",
    "unload_ipython_extension",
]


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext hotmod``: apply pending changes before each cell (see docs/getting-started/notebook.md)."""
    from . import _ipython

    _ipython.load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from . import _ipython

    _ipython.unload(shell)


# Every public name is loaded on first use (PEP 562): ``import hotmod`` in a module
# that only calls ``hotmod.hot(__name__)``, or in an app that never builds a reloader,
# does not pay for the reloading machinery and the standard-library modules it needs.
_LAZY = {
    "HotContext": "._hot",
    "hot": "._hot",
    "reload_now": "._now",
    "HotmodError": ".errors",
    "HotmodWarning": ".errors",
    "ReloadError": ".errors",
    "Plugin": ".plugins",
    "PluginContext": ".plugins",
    "PluginFolder": ".plugins",
    "Reloader": ".reloader",
    "ReloadResult": ".result",
    "ReloadStats": ".result",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'hotmod' has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
