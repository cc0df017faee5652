"""A Reloader's options, checked once, with messages that say what is allowed."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from .errors import HotmodWarning

__all__ = ["check", "roots"]

_CHOICES = {
    "backend": ("auto", "watchdog", "polling", "manual"),
    "apply": ("background", "manual"),
    "dependents": ("rebind", "reexec"),
    "strategy": ("statements", "module"),
}


def check(*, poll_interval: float, debounce: float, **choices: str) -> None:
    for option, value in choices.items():
        allowed = _CHOICES[option]
        if value not in allowed:
            raise ValueError(f"{option} must be {', '.join(allowed[:-1])} or {allowed[-1]}, not {value!r}")
    if poll_interval <= 0:
        raise ValueError("poll_interval must be positive")
    if debounce < 0:
        raise ValueError("debounce must not be negative")


def roots(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None) -> tuple[Path, ...]:
    """The watched roots, resolved (the current folder when none is given)."""
    if paths is None:
        paths = [os.getcwd()]
    elif isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found = tuple(Path(os.path.realpath(os.fspath(p))) for p in paths)
    for root in found:
        if not root.exists():
            warnings.warn(f"hotmod: watched path {root} does not exist", HotmodWarning, stacklevel=3)
    return found
