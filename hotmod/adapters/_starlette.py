"""Starlette and FastAPI: the served app sees edited endpoints, new routes and a fresh schema.

FastAPI reads an endpoint's parameters, dependencies and body model once, when the route
is made, and caches the OpenAPI schema at the first request for it. After a reload:

- every route of the apps and routers the reloaded modules hold whose endpoint got new
  code in place is made again from its own settings (``APIRoute`` keeps them), so a new
  query parameter, a new required parameter or a new body field takes effect;
- routes registered on a router after it was included in an app (``app.include_router``
  copies them at that moment) are copied to the apps that include it;
- the OpenAPI schema is dropped, so ``/openapi.json`` is built from the new routes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from . import BaseAdapter, ModuleChange

__all__ = ["StarletteAdapter"]


class StarletteAdapter(BaseAdapter):
    frameworks = ("starlette", "fastapi")

    def prepare(self, change: ModuleChange) -> None:
        # A module that runs again as a whole registers its routes again: remember the
        # routes as they were, to fold the new registrations into them after the commit.
        if change.strategy != "statements":
            change.notes["routes"] = [(app, list(getattr(app, "routes", ()))) for app in _apps_in()]

    def committed(self, change: ModuleChange) -> Iterable[str]:
        warnings: list[str] = []
        for name, old, new in list(change.replaced()):
            # The module that makes the app ran again: the live app (the one the server
            # holds) takes the new one's routes, middleware and handlers, and stays.
            if _is_app(old) and type(new) is type(old):
                warnings += _adopt(old, new, change)
                change.module.__dict__[name] = old
        for app, before in change.notes.pop("routes", ()):
            warnings += _fold_registered_again(app, before)
        patched = {id(fn) for fn in change.functions}
        for app in _apps_in():
            if patched:
                warnings += _remake_routes(app, patched)
            if hasattr(app, "openapi_schema"):
                app.openapi_schema = None
        return warnings

    def aborted(self, change: ModuleChange) -> None:
        for app, before in change.notes.pop("routes", ()):
            routes = getattr(app, "routes", None)
            if isinstance(routes, list):
                routes[:] = before  # what the failed run registered goes away


def _is_app(value: object) -> bool:
    applications = sys.modules.get("starlette.applications")
    starlette = getattr(applications, "Starlette", None)
    return isinstance(starlette, type) and isinstance(value, starlette)


def _adopt(old: Any, new: Any, change: ModuleChange) -> list[str]:
    """Give the live app ``old`` what the module's new run built into ``new``."""
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
                route = _copy_route(api_route, route, endpoint=kept)  # noqa: PLW2901
            except Exception as exc:
                warnings.append(f"route {route.path}: could not be made again ({type(exc).__name__}: {exc})")
        routes.append(route)
    old.router.routes[:] = routes
    for attribute in ("user_middleware", "exception_handlers"):
        if hasattr(new, attribute):
            setattr(old, attribute, getattr(new, attribute))
    if hasattr(old, "middleware_stack"):
        old.middleware_stack = None  # built again, with the new middleware, at the next call
    if hasattr(old, "openapi_schema"):
        old.openapi_schema = None
    return warnings


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
            if isinstance(value, kinds) and id(value) not in seen:
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
    for index, route in enumerate(list(routes)):
        if not isinstance(route, api_route) or id(getattr(route, "endpoint", None)) not in patched:
            continue
        try:
            routes[index] = _copy_route(api_route, route)
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
                new = _copy_route(api_route, new, endpoint=old.endpoint)  # noqa: PLW2901
        except Exception as exc:
            warnings.append(f"route {key[0]}: could not be made again ({type(exc).__name__}: {exc})")
            continue
        routes[routes.index(old)] = new
    return warnings


# The settings APIRoute.__init__ takes and keeps under the same names.
_ROUTE_SETTINGS = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "name",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "dependency_overrides_provider",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
)


def _copy_route(api_route: type, route: Any, endpoint: Any = None) -> Any:
    """The same route made again: FastAPI reads the endpoint's signature anew."""
    import inspect

    accepted = set(inspect.signature(api_route).parameters)  # the class: its __init__'s
    settings = {k: getattr(route, k) for k in _ROUTE_SETTINGS if k in accepted and hasattr(route, k)}
    if "methods" in settings and settings["methods"] is not None:
        settings["methods"] = sorted(settings["methods"])
    return api_route(route.path, endpoint if endpoint is not None else route.endpoint, **settings)
