"""Starlette and FastAPI: the served app sees edited endpoints, new routes and a fresh schema.

FastAPI reads an endpoint's parameters, dependencies and body model once, when the route
is made, and caches the OpenAPI schema at the first request for it. After a reload:

- every route of the apps and routers the reloaded modules hold whose endpoint got new
  code in place is made again from its own settings (``APIRoute`` keeps them), so a new
  query parameter, a new required parameter or a new body field takes effect;
- routes registered on a router after it was included in an app (``app.include_router``
  copied them at that moment, in FastAPI releases before it kept the router itself) are
  included into the apps and routers that include it (see ``_routers``);
- the OpenAPI schema is dropped, so ``/openapi.json`` is built from the new routes;
- middleware and exception handlers added to an app that already served (Starlette
  refuses ``add_middleware`` then) register: the guard is lifted for the reload, and the
  middleware stack is built again at the next request, around the hotmod.web middleware
  already serving; a failed run takes them back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import FunctionType
from typing import Any

from .._kinds import is_a
from . import BaseAdapter, ModuleChange
from ._names import bind_back
from ._routers import adopt_router, copy_route, include_new_routes, remake, snapshot

__all__ = ["StarletteAdapter"]


class StarletteAdapter(BaseAdapter):
    frameworks = ("starlette", "fastapi")

    def prepare(self, change: ModuleChange) -> None:
        apps = _apps_in()
        # Remember the routes as they were: a module that runs again as a whole registers
        # its routes again (folded into the old ones after the commit), and a run that
        # fails takes back what it registered.
        change.notes["routes"] = [(app, list(getattr(app, "routes", ()))) for app in apps]
        # Every router's registrations: a new one after the commit may need including.
        change.notes["registered"] = snapshot(apps)
        # Starlette refuses add_middleware once an app has served (its middleware stack is
        # built): lifted for the reload, so a new @app.middleware registers; put back after.
        started: list[tuple[Any, Any, list[Any], dict[Any, Any]]] = []
        for app in apps:
            stack = getattr(app, "middleware_stack", None) if _is_app(app) else None
            if stack is not None:
                started.append((app, stack, list(app.user_middleware), dict(app.exception_handlers)))
                app.middleware_stack = None
        change.notes["started"] = started

    def committed(self, change: ModuleChange) -> Iterable[str]:
        warnings: list[str] = []
        for app, stack, middleware, handlers in change.notes.pop("started", ()):
            app.middleware_stack = stack
            if app.user_middleware != middleware or app.exception_handlers != handlers:
                # New middleware or exception handlers: the stack is built again at the
                # next request, around the hotmod.web middleware already serving.
                app.user_middleware = _keep_live_reload(app, app.user_middleware)
                app.middleware_stack = None
        adopted: set[int] = set()  # their routes were just made again from the new run's
        for _name, old, new in list(change.replaced()):
            # The module that makes the app ran again: the live app (the one the server
            # holds) takes the new one's routes, middleware and handlers, and stays.
            if _is_app(old) and type(new) is type(old):
                warnings += _adopt(old, new, change)
            elif _is_router(old) and type(new) is type(old):
                # The same for a router the module makes: apps included the live one.
                warnings += adopt_router(old, new, lambda endpoint: _kept_function(endpoint, change))
            else:
                continue
            bind_back(new, old)  # the module's name and importers' copies
            adopted.add(id(old))
        for app, before in change.notes.pop("routes", ()):
            if change.strategy != "statements":
                warnings += _fold_registered_again(app, before)
        patched = {id(fn) for fn in change.functions}
        if change.strategy != "statements":
            # The module ran as a whole: its functions kept their identity and took the
            # new code, and any of them may be an endpoint whose parameters changed.
            patched |= {
                id(value)
                for value in change.module.__dict__.values()
                if type(value) is FunctionType and value.__module__ == change.module.__name__
            }
        apps = _apps_in()
        for app in apps:
            if patched and id(app) not in adopted:
                warnings += _remake_routes(app, patched)
        warnings += include_new_routes(apps, change.notes.pop("registered", {}))
        for app in apps:
            if hasattr(app, "openapi_schema"):
                app.openapi_schema = None
        return warnings

    def aborted(self, change: ModuleChange) -> None:
        for app, stack, middleware, handlers in change.notes.pop("started", ()):
            app.user_middleware[:] = middleware
            app.exception_handlers.clear()
            app.exception_handlers.update(handlers)
            app.middleware_stack = stack
        for app, before in change.notes.pop("routes", ()):
            routes = getattr(app, "routes", None)
            if isinstance(routes, list):
                routes[:] = before  # what the failed run registered goes away


def _is_app(value: object) -> bool:
    applications = sys.modules.get("starlette.applications")
    starlette = getattr(applications, "Starlette", None)
    return isinstance(starlette, type) and is_a(value, starlette)


def _is_router(value: object) -> bool:
    routing = sys.modules.get("fastapi.routing")
    router = getattr(routing, "APIRouter", None)
    return isinstance(router, type) and is_a(value, router)


def _adopt(old: Any, new: Any, change: ModuleChange) -> list[str]:
    """Give the live app ``old`` what the module's new run built into ``new``.

    The live app keeps its identity, router, state and the hotmod.web middleware serving
    it; it takes the new run's routes, settings (title, ``openapi_url``, ...), middleware
    and exception handlers, each calling the kept functions (which later edits patch).
    FastAPI's own routes (``/openapi.json``, ``/docs``) close over the app that made them:
    they are pointed at the live app, so its schema is the one served and dropped.
    """
    routing = sys.modules.get("fastapi.routing")
    api_route = getattr(routing, "APIRoute", None)
    warnings: list[str] = []
    routes: list[Any] = []
    for route in list(new.router.routes):
        endpoint = getattr(route, "endpoint", None)
        kept = change.new.get(getattr(endpoint, "__name__", ""))
        if (
            isinstance(api_route, type)
            and isinstance(route, api_route)
            and kept is not None
            and kept is not endpoint
            and getattr(kept, "__qualname__", None) == getattr(endpoint, "__qualname__", None)
        ):
            try:
                route = copy_route(api_route, route, endpoint=kept)  # noqa: PLW2901
            except Exception as exc:
                warnings.append(f"route {route.path}: could not be made again ({type(exc).__name__}: {exc})")
        _point_at(getattr(route, "endpoint", None), new, old)
        routes.append(route)
    old.router.routes[:] = routes
    _take_settings(old, new)
    if isinstance(getattr(new, "user_middleware", None), list):
        middleware = _keep_live_reload(old, new.user_middleware)
        old.user_middleware = [_kept_arguments(entry, change) for entry in middleware]
    if isinstance(getattr(new, "exception_handlers", None), dict):
        old.exception_handlers = {k: _kept_function(h, change) for k, h in new.exception_handlers.items()}
    if hasattr(old, "middleware_stack"):
        old.middleware_stack = None  # built again, with the new middleware, at the next call
    if hasattr(old, "openapi_schema"):
        old.openapi_schema = None
    return warnings


# What the live app keeps of its own when it adopts a new run's app: what serves (its
# router and state), and what is adopted on its own terms.
_APP_KEEPS = frozenset(
    {"routes", "router", "state", "middleware", "exception_handlers", "lifespan", "on_startup", "on_shutdown"}
)


def _take_settings(old: Any, new: Any) -> None:
    """The settings the new app was made with (the arguments of its class that it keeps
    under their own names: FastAPI's title, version, openapi_url, docs_url, ...)."""
    import inspect

    try:
        accepted = inspect.signature(type(new)).parameters
    except (TypeError, ValueError):
        return
    made = vars(new)
    for name in accepted:
        if name not in _APP_KEEPS and name in made:
            setattr(old, name, made[name])


def _point_at(function: Any, new: Any, old: Any) -> None:
    """A closure over the new app (FastAPI's openapi and docs endpoints) now sees the live one."""
    for cell in getattr(function, "__closure__", None) or ():
        try:
            if cell.cell_contents is new:
                cell.cell_contents = old
        except ValueError:  # an empty cell
            continue


def _kept_function(value: Any, change: ModuleChange) -> Any:
    """The kept function standing for ``value`` when the module's new run made it, else ``value``."""
    name = getattr(value, "__name__", None)
    kept = change.new.get(name) if isinstance(name, str) else None
    if (
        kept is not None
        and kept is not value
        and getattr(value, "__module__", None) == change.module.__name__
        and getattr(kept, "__qualname__", None) == getattr(value, "__qualname__", None)
    ):
        return kept
    return value


def _kept_arguments(middleware: Any, change: ModuleChange) -> Any:
    """A middleware entry of the new run whose arguments are the kept functions
    (``@app.middleware("http")`` passes its function as ``dispatch``)."""
    args, kwargs = getattr(middleware, "args", None), getattr(middleware, "kwargs", None)
    if isinstance(args, tuple) and isinstance(kwargs, dict):
        middleware.args = tuple(_kept_function(a, change) for a in args)
        middleware.kwargs = {k: _kept_function(v, change) for k, v in kwargs.items()}
    return middleware


def _keep_live_reload(old: Any, middleware: list[Any]) -> list[Any]:
    """The new run's middleware, with the hotmod.web middleware already serving ``old``
    in place of the one the new run's ``hotmod.web.enable(app)`` asked for: a new one
    would start a second live reloader, and the pages open now would hear neither."""
    kind = getattr(sys.modules.get("hotmod.web.asgi"), "ASGIMiddleware", None)
    if not isinstance(kind, type):
        return middleware
    running: list[Any] = []
    layer = getattr(old, "middleware_stack", None)
    for _ in range(64):  # the built stack: each layer wraps the next as .app
        if layer is None:
            break
        if isinstance(layer, kind):
            running.append(layer)
        layer = getattr(layer, "app", None)
    kept: list[Any] = []
    for entry in middleware:
        if running and getattr(entry, "cls", None) is kind:
            entry = type(entry)(_serving(running.pop(0)))  # noqa: PLW2901
        kept.append(entry)
    return kept


def _serving(instance: Any) -> Any:
    """A middleware factory that hands back ``instance``, wrapped around the new inner app."""

    def made(app: Any, *args: Any, **kwargs: Any) -> Any:
        instance.app = app
        return instance

    return made


def _apps_in() -> list[Any]:
    """FastAPI/Starlette apps and routers the user's modules hold (module-level names)."""
    kinds = tuple(
        k
        for k in (
            getattr(sys.modules.get("starlette.applications"), "Starlette", None),
            getattr(sys.modules.get("starlette.routing"), "Router", None),
            getattr(sys.modules.get("fastapi.routing"), "APIRouter", None),
        )
        if isinstance(k, type)
    )
    if not kinds:
        return []
    found: list[Any] = []
    seen: set[int] = set()
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        name = namespace.get("__name__", "") if isinstance(namespace, dict) else ""
        if not isinstance(namespace, dict) or name.startswith(("starlette", "fastapi", "_")):
            continue
        for value in list(namespace.values()):
            if issubclass(type(value), kinds) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


def _remake_routes(app: Any, patched: set[int]) -> list[str]:
    routing = sys.modules.get("fastapi.routing")
    api_route = getattr(routing, "APIRoute", None)
    routes = getattr(app, "routes", None)
    if not isinstance(api_route, type) or not isinstance(routes, list):
        return []
    warnings: list[str] = []
    for route in list(routes):
        if not isinstance(route, api_route) or id(getattr(route, "endpoint", None)) not in patched:
            continue
        try:
            remake(app, route)
        except Exception as exc:
            warnings.append(
                f"FastAPI route {getattr(route, 'path', '?')}: its parameters could not be read again "
                f"({type(exc).__name__}: {exc}); restart to apply a change to them"
            )
    return warnings


def _fold_registered_again(app: Any, before: list[Any]) -> list[str]:
    """Routes the module's second run registered for a path and methods it already
    served replace the old ones in place (first match wins in Starlette), made from the
    new registration's settings around the kept endpoint."""
    routes = getattr(app, "routes", None)
    if not isinstance(routes, list):
        return []
    known = {id(r) for r in before}
    warnings: list[str] = []
    for new in [r for r in routes if id(r) not in known]:
        key = (getattr(new, "path", None), tuple(sorted(getattr(new, "methods", None) or ())))
        old = next(
            (
                r
                for r in routes
                if id(r) in known
                and (getattr(r, "path", None), tuple(sorted(getattr(r, "methods", None) or ()))) == key
            ),
            None,
        )
        if old is None:
            continue  # a new route: it stays where it was registered
        routes.remove(new)
        try:
            routing = sys.modules.get("fastapi.routing")
            api_route = getattr(routing, "APIRoute", None)
            if isinstance(api_route, type) and isinstance(new, api_route):
                new = copy_route(api_route, new, endpoint=old.endpoint)  # noqa: PLW2901
        except Exception as exc:
            warnings.append(f"route {key[0]}: could not be made again ({type(exc).__name__}: {exc})")
            continue
        routes[routes.index(old)] = new
    return warnings
