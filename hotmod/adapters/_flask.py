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

from . import BaseAdapter, ModuleChange

__all__ = ["FlaskAdapter"]

_APP_FLAG = "_got_first_request"
_BLUEPRINT_FLAG = "_got_registered_once"

# What an app's setup methods fill (Flask's Scaffold and App): endpoint -> view, scope ->
# hooks or handlers, or plain lists. The URL map is handled on its own.
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
        change.notes["flask_apps"] = [_State(app) for app in _apps_for(change)]

    def committed(self, change: ModuleChange) -> Iterable[str]:
        warnings: list[str] = []
        change.notes.pop("flask_apps", None)
        for value, flag, before in change.notes.pop("flask_lifted", ()):
            setattr(value, flag, True)
            if flag == _BLUEPRINT_FLAG:
                warnings += _apply_late_setup(value, value.deferred_functions[before:])
        adopted: set[int] = set()
        app_type = _flask_type("Flask")
        for name, old, new in list(change.replaced()):
            # The module that makes the app ran again: the live app (the one the server
            # holds) takes what the new one was given, and stays.
            if app_type is not None and _is(old, app_type) and type(new) is type(old):
                if id(old) not in adopted:  # once, when the module binds it to two names
                    warnings += _adopt(old, new, change)
                    adopted.add(id(old))
                change.module.__dict__[name] = old
                _repoint(new, old)
        return warnings

    def aborted(self, change: ModuleChange) -> None:
        for state in change.notes.pop("flask_apps", ()):
            state.restore()
        for value, flag, before in change.notes.pop("flask_lifted", ()):
            setattr(value, flag, True)
            if flag == _BLUEPRINT_FLAG:
                del value.deferred_functions[before:]


def _flask_type(name: str) -> type | None:
    found = getattr(sys.modules.get("flask"), name, None)
    return found if isinstance(found, type) else None


def _is(value: object, kind: type) -> bool:
    return issubclass(type(value), kind)  # type(), never __class__: a lazy proxy may raise


def _guarded(change: ModuleChange) -> list[tuple[Any, str]]:
    app_type, blueprint_type = _flask_type("Flask"), _flask_type("Blueprint")
    found: list[tuple[Any, str]] = []
    for value in list(change.module.__dict__.values()):
        if app_type is not None and _is(value, app_type):
            found.append((value, _APP_FLAG))
        elif blueprint_type is not None and _is(value, blueprint_type):
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
        if _is(value, app_type):
            found.setdefault(id(value), value)
        elif isinstance(value, types.ModuleType) and value is not change.module:
            name = getattr(value, "__name__", "")
            if not isinstance(name, str) or name.startswith(("flask", "werkzeug")):
                continue
            for held in list(getattr(value, "__dict__", {}).values()):
                if _is(held, app_type):
                    found.setdefault(id(held), held)
    return list(found.values())


# -- an app's registrations, remembered and put back --------------------------------------------


# -- an app's registrations, remembered and put back --------------------------------------------


class _State:
    """An app as it was before a module ran: its rules and what its setup methods fill."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.url_map = app.url_map
        self.rule_ids = {id(rule) for rule in self.url_map.iter_rules()}
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


def _repoint(new: Any, old: Any) -> None:
    """Module-level names bound to the new app (importers' ``from .app import app``
    copies, rebound by the commit) are bound to the live one."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            if value is new:
                namespace[key] = old


# -- blueprints ------------------------------------------------------------------------------------


def _apply_late_setup(blueprint: Any, deferred: list[Any]) -> list[str]:
    """Run the blueprint's new setup functions for every app that registered it."""
    if not deferred:
        return []
    warnings: list[str] = []
    for app in _apps_with(blueprint):
        served = getattr(app, _APP_FLAG, False)
        setattr(app, _APP_FLAG, False)  # the app's own guard, lifted the same way
        try:
            state = blueprint.make_setup_state(app, {})
            for setup in deferred:
                setup(state)
        except Exception as exc:
            warnings.append(
                f"Flask blueprint {blueprint.name}: a new route could not be added to {app.name} "
                f"({type(exc).__name__}: {exc}); restart to serve it"
            )
        finally:
            setattr(app, _APP_FLAG, served)
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
            if _is(value, app_type) and id(value) not in seen:
                seen.add(id(value))
                if any(bp is blueprint for bp in getattr(value, "blueprints", {}).values()):
                    found.append(value)
    return found
