"""Exceptions and warnings raised or reported by hotmod."""

from __future__ import annotations

from pathlib import Path

__all__ = ["HotmodError", "HotmodWarning", "ReloadError"]


class HotmodError(Exception):
    """Base class of every error hotmod raises or reports."""


class ReloadError(HotmodError):
    """A module could not be reloaded; the previous version keeps running.

    The original exception, if any, is the ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        module: str | None = None,
        path: Path | None = None,
        lineno: int | None = None,
    ) -> None:
        super().__init__(message)
        self.module = module
        self.path = path
        self.lineno = lineno

    @property
    def location(self) -> str:
        """``file:line`` (or just the file) of the error, or ``""`` when unknown."""
        if self.path is None:
            return ""
        if self.lineno is None:
            return str(self.path)
        return f"{self.path}:{self.lineno}"


class HotmodWarning(UserWarning):
    """Base class of the warnings hotmod emits."""


# Report these under the package name, whichever private module defines them.
for _cls in (HotmodError, ReloadError, HotmodWarning):
    _cls.__module__ = "hotmod"
del _cls
