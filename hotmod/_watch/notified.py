"""backend="manual": nothing is detected; changes arrive through ``Reloader.notify``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["NotifiedWatcher"]


class NotifiedWatcher:
    name = "manual"

    @property
    def needs_scan(self) -> bool:
        return False

    def add(self, path: Path) -> None:
        pass

    def discard(self, path: Path) -> None:
        pass

    def scan(self) -> None:
        pass

    def ensure_running(self) -> bool:
        return False

    def start(self) -> None:
        pass

    def after_fork(self) -> None:
        pass

    def flush(self) -> None:
        pass  # nothing is on its way: a scan (or notify) is the only input

    def stop(self) -> None:
        pass

    @property
    def watched_dirs(self) -> int:
        return 0

    @property
    def polled_dirs(self) -> int:
        return 0
