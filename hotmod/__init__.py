"""hotmod: reload edited modules inside a running process, keeping its state."""

from __future__ import annotations

from ._hot import HotContext, hot
from .errors import HotmodError, HotmodWarning, ReloadError
from .reloader import Reloader
from .result import ReloadResult, ReloadStats

__version__ = "0.1.0"

__all__ = [
    "HotContext",
    "HotmodError",
    "HotmodWarning",
    "ReloadError",
    "ReloadResult",
    "ReloadStats",
    "Reloader",
    "__version__",
    "hot",
]
