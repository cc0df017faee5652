"""hotmod: reload edited modules inside a running process, keeping its state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._hot import HotContext, hot
from ._now import reload_now
from .errors import HotmodError, HotmodWarning, ReloadError
from .reloader import Reloader
from .result import ReloadResult, ReloadStats

if TYPE_CHECKING:
    from .plugins import Plugin, PluginContext, PluginFolder

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
    """``%load_ext hotmod``: apply pending changes before each cell (see the README)."""
    from . import _ipython

    _ipython.load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from . import _ipython

    _ipython.unload(shell)


_PLUGIN_NAMES = frozenset({"Plugin", "PluginContext", "PluginFolder"})


def __getattr__(name: str) -> Any:
    # Plugin folders pull in the import machinery's ABCs and ``ast``: an app that never
    # uses one should not pay for that in its start-up time.
    if name in _PLUGIN_NAMES:
        from . import plugins

        return getattr(plugins, name)
    raise AttributeError(f"module 'hotmod' has no attribute {name!r}")
