"""FastAPI routers: routes made again through the router's own API, and routes added to an
included router reaching the apps that include it.

Two things FastAPI does, depending on its release, that a reload must follow:

- Up to about 0.12x, ``include_router`` copies the router's routes into the app at that
  moment and keeps no record of the include. A route the reload registers on the router
  (a new ``@router.get``) stays off the app. The include is recognised by its result:
  every route the router had before the reload has a copy in the app (same endpoint
  object, same methods) whose path is the same prefix plus the router's path. The new
  routes are then included again with that prefix, and with the tags, dependencies,
  callbacks and responses the include added (the copies show them, as the difference
  between the copy's settings and the route's and the app's).
- Later releases keep the included router itself and cache each route's prepared form
  per "routes version", bumped by ``add_api_route`` and friends. A route replaced by
  assigning into ``router.routes`` is never seen. So a route made again (an edited
  endpoint whose parameters FastAPI must read anew) goes through ``add_api_route``,
  then takes the old route's place in the list.

Only public attributes and methods of the routers are used.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "RouteKey",
    "adopt_router",
    "copy_route",
    "include_new_routes",
    "registrations",
    "remake",
    "snapshot",
]

# (path, methods, id(endpoint)): what identifies a registration across a reload (a route
# made again for an edited endpoint is the same registration).
RouteKey = tuple[str, frozenset[str], int]


def _router_of(holder: Any) -> Any:
    """The router that holds the routes: an app's ``router``, or the router itself."""
    router = getattr(holder, "router", None)
    return router if router is not None and hasattr(router, "routes") else holder


def _key(route: Any) -> RouteKey | None:
    endpoint = getattr(route, "endpoint", None)
    path = getattr(route, "path", None)
    if endpoint is None or not isinstance(path, str):
        return None  # mounts, included routers (later FastAPI): nothing copied to follow
    return path, frozenset(getattr(route, "methods", None) or ()), id(endpoint)


def registrations(holder: Any) -> dict[RouteKey, Any]:
    found: dict[RouteKey, Any] = {}
    for route in list(getattr(_router_of(holder), "routes", ())):
        key = _key(route)
        if key is not None:
            found[key] = route
    return found


def snapshot(holders: Iterable[Any]) -> dict[int, dict[RouteKey, Any]]:
    """Each router's registrations before the reload (taken by the adapter's prepare)."""
    return {id(holder): registrations(holder) for holder in holders if _is_api_router(_router_of(holder))}


def _is_api_router(router: Any) -> bool:
    return callable(getattr(router, "add_api_route", None)) and isinstance(
        getattr(router, "prefix", None), str
    )


def include_new_routes(holders: list[Any], before: dict[int, dict[RouteKey, Any]]) -> list[str]:
    """Routes the reload registered on a router are included into every app or router
    that copied the router's routes before, and copies of registrations it dropped go
    (see the module docstring)."""
    warnings: list[str] = []
    changes: dict[int, tuple[list[Any], set[RouteKey]]] = {}
    for holder in holders:
        known = before.get(id(holder))
        if known is not None:
            now = registrations(holder)
            added = [route for key, route in now.items() if key not in known]
            removed = set(known) - set(now)
            if added or removed:
                changes[id(holder)] = (added, removed)
    pending = [holder for holder in holders if id(holder) in changes]
    while pending:
        source = pending.pop(0)
        added, removed = changes.pop(id(source), ([], set()))
        known = before.get(id(source)) or {}
        for target in holders:
            router = _router_of(target)
            if target is source or router is _router_of(source):
                continue
            for prefix, copy, route in list(_includes(known, router)):
                lost = _drop(router, removed, prefix)
                made = _include(router, added, prefix, copy, route) if added else []
                if isinstance(made, str):
                    warnings.append(made)
                    made = []
                if (made or lost) and id(target) in before:
                    # The target is itself a router that may be included further up.
                    gained, gone = changes.setdefault(id(target), ([], set()))
                    gained.extend(made)
                    gone.update(lost)
                    if target not in pending:
                        pending.append(target)
    return warnings


def _includes(known: dict[RouteKey, Any], target: Any) -> Iterable[tuple[str, Any, Any]]:
    """(prefix, a copy, its route) for every prefix at which ``target`` held a copy of
    each of the router's registrations: the router was included there."""
    if not known:
        return
    paths: dict[tuple[int, frozenset[str]], list[Any]] = {}
    for route in list(getattr(target, "routes", ())):
        key = _key(route)
        if key is not None:
            paths.setdefault((key[2], key[1]), []).append(route)
    (path, methods, endpoint), route = next(iter(known.items()))
    for copy in paths.get((endpoint, methods), []):
        if copy is route or not copy.path.endswith(path):
            continue
        prefix = copy.path[: len(copy.path) - len(path)]
        if all(any(c.path == prefix + p for c in paths.get((e, m), ())) for p, m, e in known):
            yield prefix, copy, route


def _drop(target: Any, removed: set[RouteKey], prefix: str) -> set[RouteKey]:
    """Take out of ``target`` the copies of registrations the router no longer has."""
    if not removed:
        return set()
    wanted = {(prefix + path, methods, endpoint) for path, methods, endpoint in removed}
    lost: set[RouteKey] = set()
    for route in list(target.routes):
        key = _key(route)
        if key in wanted:
            target.routes.remove(route)
            lost.add(key)
    return lost


def _without(outer: list[Any], inner: list[Any], head: list[Any]) -> list[Any]:
    """What an include added to a list setting: ``outer`` is head + added + inner."""
    start = len(head) if outer[: len(head)] == head else 0
    end = len(outer) - len(inner) if inner and outer[len(outer) - len(inner) :] == inner else len(outer)
    return list(outer[start:end])


def _include(target: Any, added: list[Any], prefix: str, copy: Any, route: Any) -> list[Any] | str:
    """Include ``added`` into ``target`` as the original include did (inferred from one
    copy and its route); returns the routes ``target`` gained."""
    routing = sys.modules.get("fastapi.routing")
    api_router = getattr(routing, "APIRouter", None)
    if not isinstance(api_router, type) or not _is_api_router(target):
        return []
    carrier = api_router()
    carrier.routes.extend(added)
    options: dict[str, Any] = {"prefix": prefix}
    for setting in ("tags", "dependencies", "callbacks"):
        outer = list(getattr(copy, setting, None) or ())
        inner = list(getattr(route, setting, None) or ())
        head = list(getattr(target, setting, None) or ())
        extra = _without(outer, inner, head)
        if extra:
            options[setting] = extra
    responses = {
        k: v for k, v in (getattr(copy, "responses", None) or {}).items() if k not in (route.responses or {})
    }
    if responses:
        options["responses"] = responses
    if getattr(copy, "deprecated", None) and not getattr(route, "deprecated", None):
        options["deprecated"] = True
    if getattr(route, "include_in_schema", True) and not getattr(copy, "include_in_schema", True):
        options["include_in_schema"] = False
    before = {id(r) for r in target.routes}
    try:
        target.include_router(carrier, **options)
    except Exception as exc:
        paths = ", ".join(getattr(r, "path", "?") for r in added)
        return (
            f"FastAPI: the routes {paths} added to an included router could not be included again "
            f"at {prefix or '/'} ({type(exc).__name__}: {exc}); restart to serve them"
        )
    return [r for r in target.routes if id(r) not in before]


# APIRoute attributes add_api_route takes back under the same name (filtered by its
# signature, which differs across releases).
_NOT_SETTINGS = frozenset({"self", "path", "endpoint", "route_class_override"})


def _register(router: Any, route: Any, endpoint: Any, head: Any) -> Any:
    """Register ``route`` again on ``router`` through ``add_api_route`` (appended), its
    settings taken from the route less what ``head`` (the router that made it) added."""
    accepted = set(inspect.signature(router.add_api_route).parameters) - _NOT_SETTINGS
    settings = {name: getattr(route, name) for name in accepted if hasattr(route, name)}
    for setting in ("tags", "dependencies", "callbacks"):
        if setting in settings:
            settings[setting] = _without(
                list(settings[setting] or ()), [], list(getattr(head, setting, None) or ())
            )
    if settings.get("methods") is not None:
        settings["methods"] = sorted(settings["methods"])
    prefix = getattr(head, "prefix", "") or ""
    path = route.path[len(prefix) :] if route.path.startswith(prefix) else route.path
    count = len(router.routes)
    router.add_api_route(path, endpoint, route_class_override=type(route), **settings)
    return router.routes[count]


def _api_route(route: Any) -> bool:
    routing = sys.modules.get("fastapi.routing")
    api_route = getattr(routing, "APIRoute", None)
    return isinstance(api_route, type) and isinstance(route, api_route)


def remake(holder: Any, route: Any, endpoint: Any = None) -> Any:
    """Make ``route`` again where it is, so FastAPI reads its endpoint's signature anew;
    through the router's ``add_api_route`` when the router has one (later FastAPI caches
    prepared routes until that is called). Returns the new route."""
    router = _router_of(holder)
    routes = router.routes
    index = next(i for i, r in enumerate(routes) if r is route)
    target = endpoint if endpoint is not None else route.endpoint
    if _is_api_router(router) and route.path.startswith(router.prefix):
        made = _register(router, route, target, router)
        routes.pop()
    else:
        made = copy_route(type(route), route, target)
    routes[index] = made
    return made


# A router's own settings, which its routes were made with (those the new run of the
# module that makes it may have changed).
_ROUTER_SETTINGS = (
    "prefix",
    "tags",
    "dependencies",
    "responses",
    "callbacks",
    "deprecated",
    "include_in_schema",
    "default_response_class",
    "generate_unique_id_function",
    "redirect_slashes",
)


def adopt_router(old: Any, new: Any, kept: Any) -> list[str]:
    """The module that makes a router ran again: the live router (the one apps included)
    takes the new one's settings and routes, registered again around the kept endpoints
    (``kept(endpoint)``), so that every app that included it sees them."""
    warnings: list[str] = []
    for setting in _ROUTER_SETTINGS:
        if hasattr(new, setting):
            setattr(old, setting, getattr(new, setting))
    fresh = list(new.routes)
    old.routes.clear()
    for route in fresh:
        if _api_route(route) and _is_api_router(old):
            try:
                _register(old, route, kept(route.endpoint), new)
                continue
            except Exception as exc:
                warnings.append(
                    f"FastAPI route {route.path}: could not be made again ({type(exc).__name__}: {exc})"
                )
        old.routes.append(route)
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


def copy_route(api_route: type, route: Any, endpoint: Any = None) -> Any:
    """The same route made again by its class: FastAPI reads the endpoint's signature anew."""
    accepted = set(inspect.signature(api_route).parameters)  # the class: its __init__'s
    settings = {k: getattr(route, k) for k in _ROUTE_SETTINGS if k in accepted and hasattr(route, k)}
    if "methods" in settings and settings["methods"] is not None:
        settings["methods"] = sorted(settings["methods"])
    return api_route(route.path, endpoint if endpoint is not None else route.endpoint, **settings)
