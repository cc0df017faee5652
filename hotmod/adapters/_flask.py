"""Flask: routes added by an edit register on the live app and on registered blueprints.

Flask refuses setup calls (``@app.route``, ``@bp.route``) once the app has handled its
first request or the blueprint has been registered: a guard against setup code running
late in production. A statement reload runs exactly the new route statements, once, so
the guards are lifted for the duration of the reload and put back. A blueprint records
a late route as a deferred setup function; each app that registered the blueprint is
given it, with the blueprint's own URL prefix and subdomain.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from . import BaseAdapter, ModuleChange

__all__ = ["FlaskAdapter"]

_APP_FLAG = "_got_first_request"
_BLUEPRINT_FLAG = "_got_registered_once"


class FlaskAdapter(BaseAdapter):
    frameworks = ("flask",)

    def prepare(self, change: ModuleChange) -> None:
        lifted: list[tuple[Any, str, int]] = []
        for value, flag in _guarded(change):
            if getattr(value, flag, False):
                setattr(value, flag, False)
                lifted.append((value, flag, len(getattr(value, "deferred_functions", ()))))
        change.notes["flask_lifted"] = lifted

    def committed(self, change: ModuleChange) -> Iterable[str]:
        warnings: list[str] = []
        for value, flag, before in change.notes.pop("flask_lifted", ()):
            setattr(value, flag, True)
            if flag == _BLUEPRINT_FLAG:
                warnings += _apply_late_setup(value, value.deferred_functions[before:])
        return warnings

    def aborted(self, change: ModuleChange) -> None:
        for value, flag, before in change.notes.pop("flask_lifted", ()):
            setattr(value, flag, True)
            if flag == _BLUEPRINT_FLAG:
                del value.deferred_functions[before:]


def _guarded(change: ModuleChange) -> list[tuple[Any, str]]:
    flask = sys.modules.get("flask")
    app_type, blueprint_type = getattr(flask, "Flask", None), getattr(flask, "Blueprint", None)
    found: list[tuple[Any, str]] = []
    for value in list(change.module.__dict__.values()):
        if isinstance(app_type, type) and issubclass(type(value), app_type):
            found.append((value, _APP_FLAG))
        elif isinstance(blueprint_type, type) and issubclass(type(value), blueprint_type):
            found.append((value, _BLUEPRINT_FLAG))
    return found


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
    flask = sys.modules.get("flask")
    app_type = getattr(flask, "Flask", None)
    if not isinstance(app_type, type):
        return []
    found: list[Any] = []
    seen: set[int] = set()
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or str(namespace.get("__name__", "")).startswith(("flask", "_")):
            continue
        for value in list(namespace.values()):
            if issubclass(type(value), app_type) and id(value) not in seen:
                seen.add(id(value))
                if any(bp is blueprint for bp in getattr(value, "blueprints", {}).values()):
                    found.append(value)
    return found
