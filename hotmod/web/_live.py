"""What the ASGI and WSGI middlewares share: one reloader, one asset watcher, one
set of event streams, and the translation of what happened into browser events."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._session import describe
from ..reloader import Reloader
from ..result import ReloadResult
from ..watch import BackendName
from ._assets import AssetWatcher
from ._events import Broadcaster
from ._html import client_script

logger = logging.getLogger("hotmod.web")

SafePoint = Callable[[Callable[[], object]], bool]

_STYLESHEET_SUFFIXES = (".css",)


@dataclass
class Options:
    """The settings both middlewares take (see the README's web section)."""

    paths: Iterable[str | os.PathLike[str]] | None = None
    assets: Iterable[str | os.PathLike[str]] = ()
    events_path: str = "/__hotmod__/events"
    inject: bool = True
    no_cache: bool = True
    backend: BackendName = "auto"
    poll_interval: float = 0.5
    # Found when serving starts, not when the middleware is made: a framework app gets
    # its static folders and blueprints after the one-line ``enable(app)``.
    find_assets: Callable[[], Iterable[str | os.PathLike[str]]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.events_path.startswith("/"):
            raise ValueError(f"events_path must start with '/', not {self.events_path!r}")
        self.assets = tuple(self.assets)


class LiveReload:
    """The running part of a middleware, made when the server starts serving."""

    def __init__(self, options: Options, safe_point: SafePoint) -> None:
        self.options = options
        self.events = Broadcaster()
        self.script = client_script(options.events_path)
        self.reloader = Reloader(
            None if options.paths is None else list(options.paths),
            backend=options.backend,
            poll_interval=options.poll_interval,
            apply="background",
            _safe_point=safe_point,
        )
        self.reloader.subscribe(self._on_reload)
        folders = list(options.assets)
        if options.find_assets is not None:
            folders += [f for f in options.find_assets() if os.path.isdir(f)]
        unique = list(dict.fromkeys(Path(os.path.realpath(os.fspath(f))) for f in folders))
        self.assets = (
            AssetWatcher(
                unique, self._on_assets, backend=options.backend, poll_interval=options.poll_interval
            )
            if unique
            else None
        )

    def start(self) -> None:
        self.reloader.start()
        if self.assets is not None:
            self.assets.start()
        logger.info(
            "live reload on, %d modules tracked%s; events at %s",
            len(self.reloader.modules),
            f", {self.assets.files} asset files" if self.assets is not None else "",
            self.options.events_path,
        )

    def close(self) -> None:
        self.events.end_all()
        if self.assets is not None:
            self.assets.stop()
        self.reloader.close()

    def _on_reload(self, result: ReloadResult) -> None:
        path = getattr(result.error, "path", None)
        if result.status == "ok":
            self.events.publish("reload", {"modules": list(result.modules), "summary": result.summary()})
        elif result.status != "noop":
            self.events.publish(
                "failed",
                {
                    "status": result.status,
                    "summary": result.summary(),
                    "detail": "\n".join(describe(result)),
                    "file": None if path is None else str(path),
                    "line": getattr(result.error, "lineno", None),
                },
            )

    def _on_assets(self, paths: list[Path]) -> None:
        names = [p.name for p in paths]  # enough to find a stylesheet; no server paths
        logger.info("changed %s", ", ".join(p.name for p in paths))
        if all(p.suffix.lower() in _STYLESHEET_SUFFIXES for p in paths):
            self.events.publish("css", {"paths": names})
        else:
            self.events.publish("reload", {"assets": names})
