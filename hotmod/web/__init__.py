"""Live reload for web apps: edited code runs at the next request, pages refresh.

``hotmod.web.enable(app)`` is the one line for Starlette, FastAPI and Flask; the
middlewares wrap any ASGI or WSGI app. Nothing here imports a web framework.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any, TypeVar

from .._switch import disabled
from .asgi import ASGIMiddleware
from .wsgi import RequestGate, WSGIMiddleware

__all__ = ["ASGIMiddleware", "RequestGate", "WSGIMiddleware", "enable"]

App = TypeVar("App")

logger = logging.getLogger("hotmod.web")


def enable(app: App, *, enabled: bool = True, **options: Any) -> App:
    """Turn live reload on for a Starlette/FastAPI or Flask app; returns the app.

    Options: ``paths`` (folders whose modules reload; default the working directory),
    ``assets`` (more folders of static files and templates; the app's own static and
    template folders are found by themselves), ``events_path``, ``inject``,
    ``no_cache``, ``backend``, ``poll_interval``, ``allowed_hosts`` (host names served
    besides loopback ones; only loopback clients by default), ``max_streams``.
    ``enabled=False``, or ``HOTMOD=0`` in the environment, leaves the app alone, so the
    line can stay in code that also runs in production.
    """
    if not enabled:
        return app
    if disabled():
        logger.info("hotmod.web: HOTMOD=0 in the environment; live reload is off")
        return app
    framework: Any = app
    if hasattr(framework, "add_middleware") and hasattr(framework, "routes"):  # Starlette, FastAPI
        options.setdefault("_find_assets", lambda: _starlette_folders(framework))
        framework.add_middleware(ASGIMiddleware, **options)
        return app
    if hasattr(framework, "wsgi_app") and hasattr(framework, "blueprints"):  # Flask
        # Flask caches compiled templates unless told to look at the files again; the
        # environment may exist already, made before the setting.
        framework.config["TEMPLATES_AUTO_RELOAD"] = True
        framework.jinja_env.auto_reload = True
        options.setdefault("_find_assets", lambda: _flask_folders(framework))
        framework.wsgi_app = WSGIMiddleware(framework.wsgi_app, **options)
        return app
    raise TypeError(
        f"hotmod.web.enable() knows Starlette, FastAPI and Flask apps, not {type(app).__name__}; "
        "wrap other apps in hotmod.web.ASGIMiddleware or hotmod.web.WSGIMiddleware"
    )


def _starlette_folders(app: Any) -> Iterable[str | os.PathLike[str]]:
    """The folders of every StaticFiles mount, nested routers included."""
    found: list[str | os.PathLike[str]] = []
    routes = list(getattr(app, "routes", ()))
    while routes:
        route = routes.pop()
        mounted = getattr(route, "app", None)
        found += getattr(mounted, "all_directories", None) or []
        routes += getattr(route, "routes", None) or []
    return found


def _flask_folders(app: Any) -> Iterable[str | os.PathLike[str]]:
    """The static and template folders of the app and of its blueprints."""
    found: list[str | os.PathLike[str]] = []
    for owner in (app, *app.blueprints.values()):
        for folder in (owner.static_folder, owner.template_folder):
            if folder:
                found.append(os.path.join(owner.root_path, folder))
    return found
