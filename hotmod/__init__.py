"""hotmod: reload edited modules inside a running process, keeping its state."""

from __future__ import annotations

from .errors import HotmodError, HotmodWarning, ReloadError
from .reloader import Reloader
from .result import ReloadResult, ReloadStats

__version__ = "0.1.0"

__all__ = [
    "HotmodError",
    "HotmodWarning",
    "ReloadError",
    "ReloadResult",
    "ReloadStats",
    "Reloader",
    "__version__",
]
