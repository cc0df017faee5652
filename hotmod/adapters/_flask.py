"""Flask: routes added by an edit register on the live app and on registered blueprints.

Flask refuses setup calls (``@app.route``, ``@bp.route``) once the app has handled its
first request or the blueprint has been registered: a guard against setup code running
late in production. A statement reload runs exactly the new route statements, once, so
the guards are lifted for the duration of the reload and put back. A blueprint records
a late route as a deferred setup function; each app that registered the blueprint is
given it, with the blueprint's own URL prefix and subdomain.

Around every reload the apps a module can register on (its own, and those it imported)
are remembered as they were: a run that fails or is refused takes back what it
registered (URL rules, view functions, request hooks, error handlers, blueprints, config).
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import types
from collections.abc import Iterable
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
# Also taken back after a failed run: what an extension's init_app() keeps on the app.
_RESTORED_ONLY = ("extensions",)
_JINJA = ("filters", "tests", "globals")


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
