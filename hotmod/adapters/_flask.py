"""Flask: routes added by an edit register on the live app and on registered blueprints.

Flask refuses setup calls (``@app.route``, ``@bp.route``) once the app has handled its
first request or the blueprint has been registered: a guard against setup code running
late in production. A statement reload runs exactly the new route statements, once, so
the guards are lifted for the duration of the reload and put back. A blueprint records
a late route as a deferred setup function; each app that registered the blueprint is
given it, with the blueprint's own URL prefix and subdomain.

Around every reload the apps a module can register on (its own, and those it imported)
are remembered as they were:

- a run that fails or is refused takes back what it registered: URL rules, view
  functions, request hooks, error handlers, blueprints, config;
- a module that runs again as a whole registers its views again: each endpoint it
  registers again replaces the old one (its old URL rules go, as after a fresh start)
  and calls the kept function, which later edits patch;
- a module that makes the app and runs again as a whole makes a new app: the live app
  (the one the server holds) takes the new one's rules, views, hooks, handlers,
  blueprints and settings, keeps what other modules registered on it, and stays bound
  to the module's name.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from .._kinds import is_a
from . import BaseAdapter, ModuleChange
from ._names import bind_back

__all__ = ["FlaskAdapter"]

_APP_FLAG = "_got_first_request"
_BLUEPRINT_FLAG = "_got_registered_once"

# What an app's setup methods fill (Flask's Scaffold and App): endpoint -> view, scope ->
# hooks or handlers, or plain lists. The URL map and config are handled on their own.
_REGISTRIES = (
    "view_functions",
    "error_handler_spec",
    "before_request_funcs",
    "after_request_funcs",
    "teardown_request_funcs",
    "template_context_processors",
    "url_value_preprocessors",
    "url_default_functions",
    "url_build_error_handlers",
    "teardown_appcontext_funcs",
    "shell_context_processors",
    "blueprints",
)
# Only taken back after a failed run: what a run may put there is not the module's own
# to hand over to the live app (an extension's state is tied to the app it was given).
_RESTORED_ONLY = ("extensions",)
_JINJA = ("filters", "tests", "globals")
# The registries a blueprint's registration fills under its own name (its scope).
_SCOPED = (
    "error_handler_spec",
    "before_request_funcs",
    "after_request_funcs",
    "teardown_request_funcs",
    "template_context_processors",
    "url_value_preprocessors",
    "url_default_functions",
)
# Attributes Flask sets on a rule after making it (``Rule.empty()`` copies only werkzeug's).
_RULE_EXTRAS = ("provide_automatic_options",)


class FlaskAdapter(BaseAdapter):
    frameworks = ("flask",)

    def prepare(self, change: ModuleChange) -> None:
        lifted: list[tuple[Any, str, int]] = []
        for value, flag in _guarded(change):
            if getattr(value, flag, False):
                setattr(value, flag, False)
                lifted.append((value, flag, len(getattr(value, "deferred_functions", ()))))
        change.notes["flask_lifted"] = lifted
        states = [_State(app) for app in _apps_for(change)]
        if change.strategy != "statements":
            # The module's views are registered again by its second run: Flask would
            # refuse a second function for an endpoint, so the old one gives way.
            for state in states:
                state.allow_again(change.module.__name__)
        change.notes["flask_apps"] = states

    def committed(self, change: ModuleChange) -> Iterable[str]:
        warnings: list[str] = []
        states: list[_State] = change.notes.pop("flask_apps", [])
        for state in states:
            state.plain_views()
        for value, flag, before in change.notes.pop("flask_lifted", ()):
            setattr(value, flag, True)
            if flag == _BLUEPRINT_FLAG:
                warnings += _apply_late_setup(value, value.deferred_functions[before:], change)
        adopted: set[int] = set()
        app_type = _flask_type("Flask")
        for name, old, new in list(change.replaced()):
            # The module that makes the app ran again: the live app (the one the server
            # holds) takes what the new one was given, and stays.
            if app_type is not None and is_a(old, app_type) and type(new) is type(old):
                if id(old) not in adopted:  # once, when the module binds it to two names
                    warnings += _adopt(old, new, change)
                    adopted.add(id(old))
                change.module.__dict__[name] = old
                bind_back(new, old)
        if change.strategy != "statements":
            for state in states:
                if id(state.app) not in adopted:
                    warnings += state.fold(change)
        blueprint_type = _flask_type("Blueprint")
        for _, old, new in list(change.replaced()):
            # The module made its blueprint again: apps that registered the old one
            # (elsewhere: the app the module made took the new one above) take it.
            if blueprint_type is not None and is_a(old, blueprint_type) and type(new) is type(old):
                warnings += _register_again(old, new, change)
        return warnings

    def aborted(self, change: ModuleChange) -> None:
        for state in change.notes.pop("flask_apps", ()):
            state.plain_views()
            state.restore()
        for value, flag, before in change.notes.pop("flask_lifted", ()):
            setattr(value, flag, True)
            if flag == _BLUEPRINT_FLAG:
                del value.deferred_functions[before:]


def _flask_type(name: str) -> type | None:
    found = getattr(sys.modules.get("flask"), name, None)
    return found if isinstance(found, type) else None


def _guarded(change: ModuleChange) -> list[tuple[Any, str]]:
    app_type, blueprint_type = _flask_type("Flask"), _flask_type("Blueprint")
    found: list[tuple[Any, str]] = []
    for value in list(change.module.__dict__.values()):
        if app_type is not None and is_a(value, app_type):
            found.append((value, _APP_FLAG))
        elif blueprint_type is not None and is_a(value, blueprint_type):
            found.append((value, _BLUEPRINT_FLAG))
    return found


def _apps_for(change: ModuleChange) -> list[Any]:
    """The apps the module's code can register on: its own names, and the names of the
    modules it imported (``from .app import app``, ``from . import app as site``)."""
    app_type = _flask_type("Flask")
    if app_type is None:
        return []
    found: dict[int, Any] = {}
    for value in list(change.module.__dict__.values()):
        if is_a(value, app_type):
            found.setdefault(id(value), value)
        elif isinstance(value, types.ModuleType) and value is not change.module:
            name = getattr(value, "__name__", "")
            if not isinstance(name, str) or name.startswith(("flask", "werkzeug")):
                continue
            for held in list(getattr(value, "__dict__", {}).values()):
                if is_a(held, app_type):
                    found.setdefault(id(held), held)
    return list(found.values())


# -- an app's registrations, remembered and put back --------------------------------------------


class _GivingWay(dict[str, Any]):
    """An app's view functions (or blueprints) while code registers them again: Flask's
    checks against a second function for an endpoint (``view_functions.get``) and a
    second blueprint for a name (``name in app.blueprints``) do not see the old entries
    ``old``, which requests keep using until the new code registers its own."""

    def __init__(self, held: dict[str, Any], old: dict[str, Any]) -> None:
        super().__init__(held)
        self.old = old

    def _old(self, key: Any) -> bool:
        return key in self.old and super().get(key) is self.old[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return default if self._old(key) else super().get(key, default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) and not self._old(key)


class _State:
    """An app as it was before a module ran: its rules and what its setup methods fill."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.url_map = app.url_map
        self.rules = list(self.url_map.iter_rules())
        self.rule_ids = {id(rule) for rule in self.rules}
        self.views: dict[str, Any] = app.view_functions
        self.blueprints: dict[str, Any] = app.blueprints
        self.saved: dict[str, tuple[Any, Any]] = {}
        for name in (*_REGISTRIES, *_RESTORED_ONLY, "config"):
            value = getattr(app, name, None)
            if isinstance(value, (dict, list)):
                self.saved[name] = (value, _copied(value))
        env = vars(app).get("jinja_env")  # made at the first template: not made here
        self.jinja: list[tuple[Any, Any]] | None = None
        if env is not None:
            held = [getattr(env, name, None) for name in _JINJA]
            self.jinja = [(h, dict(h)) for h in held if isinstance(h, dict)]

    def allow_again(self, module: str) -> None:
        """The module runs again as a whole: its views, and blueprints it made, give way."""
        views = {e: f for e, f in self.views.items() if getattr(f, "__module__", None) == module}
        made = {k: bp for k, bp in self.blueprints.items() if getattr(bp, "import_name", None) == module}
        self.give_way(views, made)

    def give_way(self, views: dict[str, Any], blueprints: dict[str, Any]) -> None:
        self.app.view_functions = _GivingWay(self.views, views)
        self.app.blueprints = _GivingWay(self.blueprints, blueprints)

    def plain_views(self) -> None:
        """The app's own view-function and blueprint dicts again, with what was
        registered meanwhile."""
        for name, held in (("view_functions", self.views), ("blueprints", self.blueprints)):
            current = getattr(self.app, name)
            if isinstance(current, _GivingWay) and current is not held:
                _refill(held, dict(current))
                setattr(self.app, name, held)

    def restore(self) -> None:
        """Take back everything registered since: the failed run never happened."""
        app = self.app
        for name, (held, saved) in self.saved.items():
            _refill(held, saved)
            setattr(app, name, held)
        if self.jinja is None:
            vars(app).pop("jinja_env", None)  # made by the failed run: made again when needed
        else:
            for held, saved in self.jinja:
                _refill(held, saved)
        app.url_map = self.url_map
        added = [rule for rule in self.url_map.iter_rules() if id(rule) not in self.rule_ids]
        if added:
            _drop_rules(self.url_map, {id(rule) for rule in added})

    def added_endpoints(self) -> set[str]:
        """The endpoints of the rules added since."""
        return {rule.endpoint for rule in self.app.url_map.iter_rules() if id(rule) not in self.rule_ids}

    def fold(self, change: ModuleChange) -> list[str]:
        """After the module ran again as a whole: what it registered again replaces what
        it had registered, and calls the kept functions."""
        app, module = self.app, change.module.__name__
        views, added = app.view_functions, self.added_endpoints()
        before = self.saved["view_functions"][1]
        gone: set[str] = set()
        for endpoint, old in before.items():
            if getattr(old, "__module__", None) != module:
                continue
            if endpoint in added or views.get(endpoint) is not old:  # registered again: its old rules go
                gone.add(endpoint)
            elif _deleted(old, change):  # the view is no longer in the module
                gone.add(endpoint)
                del views[endpoint]
        fix = _fixer(change, None, None)
        for name in _REGISTRIES:
            value = getattr(app, name, None)
            if isinstance(value, (dict, list)) and name != "blueprints":
                _refill(value, _rebuilt(value, fix, lambda f: not _deleted(f, change)))
        drop = {id(rule) for rule in self.rules if rule.endpoint in gone}
        if drop and app.url_map is self.url_map and not _drop_rules(app.url_map, drop):
            return [
                f"Flask app {app.name}: the old URL rules of {', '.join(sorted(gone))} could not be "
                "taken out of its URL map (an unknown werkzeug version); restart to drop them"
            ]
        return []


def _copied(value: Any) -> Any:
    """A copy of nested dicts and lists (the same type: a defaultdict keeps its factory)."""
    if isinstance(value, dict):
        made = copy.copy(value)
        for key, inner in value.items():
            made[key] = _copied(inner)
        return made
    if isinstance(value, list):
        return [_copied(inner) for inner in value]
    return value


def _refill(held: Any, saved: Any) -> None:
    """Give the container ``held`` the contents of ``saved``, in place (never empty meanwhile:
    a request may read it)."""
    if isinstance(held, dict):
        held.update(saved)
        for key in [k for k in held if k not in saved]:
            del held[key]
    elif isinstance(held, list):
        held[:] = saved


def _rebuilt(value: Any, fix: Callable[[Any], Any], keep: Callable[[Any], bool]) -> Any:
    """``value`` with every function fixed, those ``keep`` refuses left out, and each
    function once per list (a hook registered again by a module's second run)."""
    if isinstance(value, dict):
        made = copy.copy(value)
        made.clear()
        for key, inner in value.items():
            if _is_function(inner):
                if keep(inner):
                    made[key] = fix(inner)
            else:
                made[key] = _rebuilt(inner, fix, keep)
        return made
    if isinstance(value, list):
        items: list[Any] = []
        for inner in value:
            if _is_function(inner):
                if not keep(inner):
                    continue
                inner = fix(inner)  # noqa: PLW2901
                if any(inner is seen for seen in items):
                    continue
                items.append(inner)
            else:
                items.append(_rebuilt(inner, fix, keep))
        return items
    return value


def _merged(new: Any, old: Any, fix: Callable[[Any], Any], keep_old: Callable[[Any], bool]) -> Any:
    """The new app's entries (fixed), then the live app's that ``keep_old`` keeps and the
    new one lacks."""
    if isinstance(new, dict) and isinstance(old, dict):
        made = _rebuilt(new, fix, lambda f: True)
        for key, inner in old.items():
            if key not in made:
                if _is_function(inner):
                    if keep_old(inner):
                        made[key] = inner
                else:
                    made[key] = _rebuilt(inner, lambda f: f, keep_old)
            elif not _is_function(inner):
                made[key] = _merged(made[key], inner, lambda f: f, keep_old)
        return made
    if isinstance(new, list) and isinstance(old, list):
        items: list[Any] = _rebuilt(new, fix, lambda f: True)
        for inner in old:
            if _is_function(inner) and keep_old(inner) and not any(inner is seen for seen in items):
                items.append(inner)
        return items
    return _rebuilt(new, fix, lambda f: True)


def _is_function(value: object) -> bool:
    return callable(value) and not isinstance(value, (dict, list, type))


def _deleted(function: Any, change: ModuleChange) -> bool:
    """A module-level function of the module whose name the new version no longer defines."""
    name = getattr(function, "__name__", None)
    return (
        getattr(function, "__module__", None) == change.module.__name__
        and isinstance(name, str)
        and getattr(function, "__qualname__", None) == name
        and name not in change.new
    )


def _fixer(change: ModuleChange, new: Any, old: Any) -> Callable[[Any], Any]:
    """Maps a function the module's new run made to the kept one standing for it (which
    later edits patch), and one tied to the new app ``new`` to the live app ``old``."""

    def fix(value: Any) -> Any:
        name = getattr(value, "__name__", None)
        if isinstance(name, str) and getattr(value, "__module__", None) == change.module.__name__:
            kept = change.new.get(name)
            if (
                kept is not None
                and kept is not value
                and getattr(kept, "__qualname__", None) == getattr(value, "__qualname__", None)
            ):
                return kept
        if new is not None:
            return _pointed_at(value, new, old)
        return value

    return fix


def _pointed_at(function: Any, new: Any, old: Any) -> Any:
    """``function``, seeing the live app ``old`` where it saw the new app ``new`` (Flask's
    static view holds a weak reference to its app; a method may be bound to it)."""
    if getattr(function, "__self__", None) is new:
        return types.MethodType(function.__func__, old)
    for cell in getattr(function, "__closure__", None) or ():
        try:
            held = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if held is new:
            cell.cell_contents = old
        elif isinstance(held, weakref.ref) and held() is new:
            cell.cell_contents = weakref.ref(old)
    return function


# -- werkzeug's URL map: taking rules out ---------------------------------------------------------


def _drop_rules(url_map: Any, drop: set[int]) -> bool:
    """Take the rules ``drop`` (ids) out of a werkzeug ``Map`` (which has no public way):
    out of its per-endpoint lists and out of its state-machine matcher, whose tree is
    copied without them and swapped in at once (a request matching meanwhile sees the
    old tree or the new one). False: this werkzeug keeps its rules some other way."""
    by_endpoint = getattr(url_map, "_rules_by_endpoint", None)
    matcher: Any = getattr(url_map, "_matcher", None)
    root = getattr(matcher, "_root", None)
    if not isinstance(by_endpoint, dict) or not dataclasses.is_dataclass(root) or isinstance(root, type):
        return False
    kept_root = _state_without(root, drop) or dataclasses.replace(root, dynamic=[], rules=[], static={})
    url_map._rules_by_endpoint = {
        endpoint: kept
        for endpoint, rules in by_endpoint.items()
        if (kept := [rule for rule in rules if id(rule) not in drop])
    }
    matcher._root = kept_root
    url_map._remap = True  # sorted again before the next match
    return True


def _state_without(state: Any, drop: set[int]) -> Any:
    """A copy of a matcher state without the rules ``drop``; None when nothing is left."""
    rules = [rule for rule in state.rules if id(rule) not in drop]
    static = {key: kept for key, inner in state.static.items() if (kept := _state_without(inner, drop))}
    dynamic = [(part, kept) for part, inner in state.dynamic if (kept := _state_without(inner, drop))]
    if not (rules or static or dynamic):
        return None
    return dataclasses.replace(state, dynamic=dynamic, rules=rules, static=static)


# -- a new app's registrations, adopted by the live one -------------------------------------------


def _adopt(old: Any, new: Any, change: ModuleChange) -> list[str]:
    """Give the live app ``old`` what the module's new run registered on ``new``.

    The live app keeps its identity, its WSGI callable (the middleware wrapping it), its
    extensions and its served state. It takes the new app's URL map (rules and
    converters as a fresh start makes them), views, hooks, error handlers, blueprints,
    template filters and the config keys the new run set, each calling the kept functions.
    What other modules registered on the live app (views of a module that imported it)
    is kept: rules for endpoints the new app lacks are carried over into its map.
    """
    module = change.module.__name__
    warnings: list[str] = []
    fix = _fixer(change, new, old)

    def keep_old(function: Any) -> bool:
        # The new run made anew what this module and Flask itself had registered.
        owner = getattr(getattr(function, "func", function), "__module__", None)  # a partial's function
        return not (owner == module or (isinstance(owner, str) and owner.split(".")[0] == "flask"))

    views = _merged(new.view_functions, old.view_functions, fix, keep_old)
    url_map = new.url_map
    have = {rule.endpoint for rule in url_map.iter_rules()}
    dropped = {e for e, f in old.view_functions.items() if e not in views and not keep_old(f)}
    for rule in list(old.url_map.iter_rules()):
        if rule.endpoint in have or rule.endpoint in dropped:
            continue
        try:
            moved = rule.empty()
            for extra in _RULE_EXTRAS:
                if hasattr(rule, extra):
                    setattr(moved, extra, getattr(rule, extra))
            url_map.add(moved)
        except Exception as exc:
            warnings.append(
                f"Flask app {old.name}: the URL rule {rule.rule} could not be kept ({type(exc).__name__}: "
                f"{exc}); restart to serve it"
            )
    for name in _REGISTRIES:
        if name in ("view_functions", "blueprints"):
            continue
        new_value, old_value = getattr(new, name, None), getattr(old, name, None)
        if isinstance(new_value, (dict, list)) and isinstance(old_value, (dict, list)):
            _refill(old_value, _merged(new_value, old_value, fix, keep_old))
    blueprints = dict(new.blueprints)
    for key, blueprint in old.blueprints.items():
        blueprints.setdefault(key, blueprint)  # registered by another module
    _refill(old.blueprints, blueprints)
    _take_config(old, new)
    new_env = vars(new).get("jinja_env")
    if new_env is not None:
        old_env = old.jinja_env
        for name in _JINJA:
            source, target = getattr(new_env, name, None), getattr(old_env, name, None)
            if isinstance(source, dict) and isinstance(target, dict):
                for key, value in source.items():
                    if target.get(key) is not value and not _refers_to(value, new):
                        target[key] = fix(value)
    # A request meanwhile finds a view for every rule of either map: the new views come
    # in, then the new map, then the views only the old map had go.
    old.view_functions.update(views)
    old.url_map = url_map
    _refill(old.view_functions, views)
    return warnings


def _refers_to(value: Any, app: Any) -> bool:
    """A template global made for ``app`` itself (its config, its bound ``url_for``)."""
    return value is getattr(app, "config", None) or getattr(value, "__self__", None) is app


def _take_config(old: Any, new: Any) -> None:
    """The config keys the new run set (those not as Flask makes them by default); a key
    only the running process changed (``TESTING`` in a test) keeps its value."""
    try:
        defaults = new.make_config()
    except Exception:
        defaults = {}
    for key, value in list(new.config.items()):
        try:
            default = key in defaults and defaults[key] == value
            same = key in old.config and old.config[key] == value
        except Exception:  # a value whose == raises
            default = same = False
        if not default and not same:
            old.config[key] = value


# -- blueprints ------------------------------------------------------------------------------------


def _apply_late_setup(blueprint: Any, deferred: list[Any], change: ModuleChange) -> list[str]:
    """Run the blueprint's new setup functions for every app that registered it, as it
    registered it (its URL prefix and subdomain read back from the rules it made there).

    After a whole-module run that registered the blueprint's routes again, the new
    registrations replace the old ones: on the apps, and among the blueprint's own
    setup functions (an app registering it later gets each route once).
    """
    if not deferred:
        return []
    warnings: list[str] = []
    again = change.strategy != "statements"
    for app, key in _registrations(blueprint):
        served = getattr(app, _APP_FLAG, False)
        setattr(app, _APP_FLAG, False)  # the app's own guard, lifted the same way
        state = _State(app)
        if again:
            state.allow_again(change.module.__name__)
        try:
            setup_state = blueprint.make_setup_state(app, _registration_options(app, key, blueprint), False)
            for setup in deferred:
                setup(setup_state)
        except Exception as exc:
            warnings.append(
                f"Flask blueprint {blueprint.name}: a new route could not be added to {app.name} "
                f"({type(exc).__name__}: {exc}); restart to serve it"
            )
        finally:
            state.plain_views()
            setattr(app, _APP_FLAG, served)
        if again:
            warnings += state.fold(change)
    if again:
        _drop_superseded(blueprint, deferred, change.module.__name__)
    fix = _fixer(change, None, None)
    for setup in deferred:  # an app registering the blueprint later gets the kept functions
        _fix_cells(setup, fix)
    return warnings


def _drop_superseded(blueprint: Any, deferred: list[Any], module: str) -> None:
    """The blueprint's route setup functions for the module's endpoints that ``deferred``
    (its second run's) registers again go: the new ones stand for them."""
    new = {id(setup) for setup in deferred}
    again = {endpoint for setup in deferred for endpoint, _, _ in _routes_of(setup)}
    kept: list[Any] = []
    for setup in blueprint.deferred_functions:
        routes = [] if id(setup) in new else _routes_of(setup)
        if routes and all(e in again and getattr(f, "__module__", None) == module for e, _, f in routes):
            continue
        kept.append(setup)
    blueprint.deferred_functions[:] = kept


class _Recorder:
    """A stand-in setup state: what a blueprint's route setup function would register."""

    first_registration = False

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Any, dict[str, Any]]] = []

    def add_url_rule(self, rule: str, endpoint: Any = None, view_func: Any = None, **options: Any) -> None:
        named = endpoint or getattr(view_func, "__name__", "")  # as BlueprintSetupState names it
        self.routes.append((rule, str(named), view_func, options))


def _routes_of(setup: Any) -> list[tuple[str, str, Any]]:
    """(endpoint, rule, view function) a setup function registers, when it is the one
    ``Blueprint.add_url_rule`` records (other setup functions are never called here)."""
    if getattr(setup, "__qualname__", None) != "Blueprint.add_url_rule.<locals>.<lambda>":
        return []
    recorder = _Recorder()
    try:
        setup(recorder)
    except Exception:
        return []
    return [(endpoint, rule, view) for rule, endpoint, view, _ in recorder.routes]


def _registrations(blueprint: Any) -> list[tuple[Any, str]]:
    """(app, name it is registered under) for every app that registered the blueprint."""
    return [
        (app, key) for app in _apps_with(blueprint) for key, bp in app.blueprints.items() if bp is blueprint
    ]


def _registration_options(app: Any, key: str, blueprint: Any) -> dict[str, Any]:
    """The ``register_blueprint`` options the blueprint was registered on ``app`` with,
    as far as the app shows them: its name (with a parent's prefix), and a URL prefix or
    subdomain other than the blueprint's own, read back from a rule it made there."""
    name_prefix, _, name = key.rpartition(".")
    options: dict[str, Any] = {"name": name, "name_prefix": name_prefix}
    for setup in blueprint.deferred_functions:
        for endpoint, relative, _ in _routes_of(setup):
            for rule in _rules_for(app, f"{key}.{endpoint}"):
                prefix = _prefix(rule.rule, relative)
                if prefix is None:
                    continue
                if prefix != (blueprint.url_prefix or "").rstrip("/"):
                    options["url_prefix"] = prefix
                if rule.subdomain and rule.subdomain != (blueprint.subdomain or ""):
                    options["subdomain"] = rule.subdomain
                return options
    return options


def _rules_for(app: Any, endpoint: str) -> list[Any]:
    try:
        return list(app.url_map.iter_rules(endpoint))
    except KeyError:
        return []


def _prefix(full: str, relative: str) -> str | None:
    """The URL prefix (without its trailing slash) that made ``full`` of a blueprint's
    ``relative`` rule (``BlueprintSetupState.add_url_rule``), or None if none did."""
    if not relative:
        return full.rstrip("/")
    tail = relative.lstrip("/")
    if full.endswith("/" + tail):
        return full[: len(full) - len(tail) - 1]
    return None


def _fix_cells(function: Any, fix: Callable[[Any], Any]) -> None:
    """A setup function that closes over a function the module's new run made closes
    over the kept one instead."""
    for cell in getattr(function, "__closure__", None) or ():
        try:
            held = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if _is_function(held) and (kept := fix(held)) is not held:
            cell.cell_contents = kept


def _register_again(old: Any, new: Any, change: ModuleChange) -> list[str]:
    """The module made its blueprint again: every app that registered the old one
    registers the new one in its place, with the same options, as a fresh start would;
    what the old registration had put on the app goes (its endpoints, the hooks and
    handlers it brought), and the new one's call the kept functions."""
    warnings: list[str] = []
    fix = _fixer(change, None, None)
    for setup in new.deferred_functions:
        _fix_cells(setup, fix)
    for app, key in _registrations(old):
        options = _registration_options(app, key, old)
        state = _State(app)
        before = state.saved["view_functions"][1]
        mine = {e for e in before if e.startswith(f"{key}.")}
        mine |= {rule.endpoint for rule in state.rules if str(rule.endpoint).startswith(f"{key}.")}
        nested = {k: bp for k, bp in state.blueprints.items() if k == key or k.startswith(f"{key}.")}
        state.give_way({e: before[e] for e in mine if e in before}, nested)
        served = getattr(app, _APP_FLAG, False)
        setattr(app, _APP_FLAG, False)
        try:
            app.register_blueprint(new, **options)
        except Exception as exc:
            state.plain_views()
            state.restore()
            warnings.append(
                f"Flask blueprint {new.name}: it could not be registered again on {app.name} "
                f"({type(exc).__name__}: {exc}); restart to serve its changes"
            )
            continue
        finally:
            setattr(app, _APP_FLAG, served)
        state.plain_views()
        views, added = app.view_functions, state.added_endpoints()
        for endpoint in mine:
            if endpoint in before and endpoint not in added and views.get(endpoint) is before[endpoint]:
                views.pop(endpoint, None)  # no longer registered by the blueprint
        for name in _SCOPED:
            value, saved = getattr(app, name, None), state.saved.get(name, (None, None))[1]
            if not isinstance(value, dict) or not isinstance(saved, dict):
                continue
            for scope in [s for s in value if isinstance(s, str) and (s == key or s.startswith(f"{key}."))]:
                before, now = saved.get(scope), value[scope]
                if isinstance(before, list) and isinstance(now, list) and now[: len(before)] == before:
                    value[scope] = now[len(before) :]  # what the new registration added
        for name in _REGISTRIES:
            value = getattr(app, name, None)
            if isinstance(value, (dict, list)) and name != "blueprints":
                _refill(value, _rebuilt(value, fix, lambda f: True))
        drop = {id(rule) for rule in state.rules if rule.endpoint in mine}
        if drop and app.url_map is state.url_map and not _drop_rules(app.url_map, drop):
            warnings.append(
                f"Flask blueprint {new.name}: its old URL rules could not be taken out of {app.name}'s "
                "URL map (an unknown werkzeug version); restart to drop them"
            )
    return warnings


def _apps_with(blueprint: Any) -> list[Any]:
    app_type = _flask_type("Flask")
    if app_type is None:
        return []
    found: list[Any] = []
    seen: set[int] = set()
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or str(namespace.get("__name__", "")).startswith(("flask", "_")):
            continue
        for value in list(namespace.values()):
            if is_a(value, app_type) and id(value) not in seen:
                seen.add(id(value))
                if any(bp is blueprint for bp in getattr(value, "blueprints", {}).values()):
                    found.append(value)
    return found
