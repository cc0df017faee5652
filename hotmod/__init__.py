"""hotmod: reload edited modules inside a running process, keeping its state."""

from __future__ import annotations

from ._hot import HotContext, hot
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
]
