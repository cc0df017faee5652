"""What the ASGI and WSGI middlewares share: one reloader, one asset watcher, one
set of event streams, and the translation of what happened into browser events."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._session import describe
from .._watch import BackendName
from ..reloader import Reloader
from ..result import ReloadResult
from ._access import Access, is_loopback_address, public_listeners
from ._assets import AssetWatcher
from ._events import MAX_STREAMS, Broadcaster
from ._html import Skips, client_script

__all__ = ["LiveReload", "Options", "SafePoint"]

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
    #: host names served besides loopback ones ("*" for any, ".example.test" for a domain)
    allowed_hosts: Iterable[str] = ()
    max_streams: int = MAX_STREAMS
    # Found when serving starts, not when the middleware is made: a framework app gets
    # its static folders and blueprints after the one-line ``enable(app)``.
    find_assets: Callable[[], Iterable[str | os.PathLike[str]]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.events_path.startswith("/"):
            raise ValueError(f"events_path must start with '/', not {self.events_path!r}")
        self.assets = tuple(self.assets)
        self.allowed_hosts = tuple(Access(self.allowed_hosts).allowed_hosts)  # checked now
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, not {self.max_streams}")


class LiveReload:
    """The running part of a middleware, made when the server starts serving."""

    def __init__(self, options: Options, safe_point: SafePoint) -> None:
        self.options = options
        self.access = Access(options.allowed_hosts)
        self.events = Broadcaster(options.max_streams)
        self.skipped = Skips()
        self.script = client_script(options.events_path)
        self._scans = 0
        self._warned = False
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

    def script_for(self, nonce: str | None) -> bytes:
        return self.script if nonce is None else client_script(self.options.events_path, nonce)

    def check_listeners(self, server_address: str | None = None) -> None:
        """Warn once when the server can be reached beyond loopback.

        Called at start and at the first request (a server may bind after its startup
        hook, as uvicorn does); ``server_address`` is where a connection arrived.
        """
        if self._warned:
            return
        public: list[str] = []
        if self._scans < 2:  # at start and at the first request; then connections only
            self._scans += 1
            public = public_listeners()
        if not public and server_address and not is_loopback_address(server_address):
            public = [server_address]
        if public:
            self._warned = True
            logger.warning(
                "hotmod.web: the server listens on %s, which other machines can reach. Live reload "
                "answers loopback clients only%s; in production, set HOTMOD=0 to turn it off.",
                ", ".join(public),
                f" and hosts {list(self.access.allowed_hosts)}" if self.access.allowed_hosts else "",
            )

    def start(self) -> None:
        self.check_listeners()
        self.reloader.start()
        # A worker forked from a parent that imported the app before an edit (gunicorn
        # --preload, a recycled worker), or started late: the reloader compared what
        # runs with the files when it was made; apply that now, before the first
        # request is served, so no request runs the old code.
        self.reloader.poll()
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
            # Paths, source lines and messages (a connection string in an exception, say)
            # go to loopback clients only; others learn that the reload did not apply.
            self.events.publish(
                "failed",
                {
                    "status": result.status,
                    "summary": result.summary(),
                    "detail": "\n".join(describe(result)),
                    "file": None if path is None else str(path),
                    "line": getattr(result.error, "lineno", None),
                },
                public={
                    "status": result.status,
                    "summary": "the last edit did not apply (details in the server's log)",
                    "detail": None,
                    "file": None,
                    "line": None,
                },
            )

    def _on_assets(self, paths: list[Path]) -> None:
        names = [p.name for p in paths]  # enough to find a stylesheet; no server paths
        logger.info("changed %s", ", ".join(p.name for p in paths))
        if all(p.suffix.lower() in _STYLESHEET_SUFFIXES for p in paths):
            self.events.publish("css", {"paths": names})
        else:
            self.events.publish("reload", {"assets": names})
