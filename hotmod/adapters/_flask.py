"""Flask: routes added by an edit register on the app even after it served a request.

Flask refuses ``@app.route`` once the app has handled its first request (a guard against
setup code running late in production). A statement reload runs exactly the new route
statements, once, so the guard is lifted for the duration of the reload and put back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from . import BaseAdapter, ModuleChange

_FLAG = "_got_first_request"


class FlaskAdapter(BaseAdapter):
    frameworks = ("flask",)

    def prepare(self, change: ModuleChange) -> None:
        lifted = []
        for app in _apps(change):
            if getattr(app, _FLAG, False):
                setattr(app, _FLAG, False)
                lifted.append(app)
        change.notes["flask_lifted"] = lifted

    def _put_back(self, change: ModuleChange) -> None:
        for app in change.notes.pop("flask_lifted", ()):
            setattr(app, _FLAG, True)

    def committed(self, change: ModuleChange) -> Iterable[str]:
        self._put_back(change)
        return ()

    def aborted(self, change: ModuleChange) -> None:
        self._put_back(change)


def _apps(change: ModuleChange) -> list[Any]:
    flask = sys.modules.get("flask")
    kinds = tuple(
        k for k in (getattr(flask, "Flask", None), getattr(flask, "Blueprint", None)) if isinstance(k, type)
    )
    if not kinds:
        return []
    found = []
    for value in list(change.module.__dict__.values()):
        if isinstance(value, kinds):
            app = value if hasattr(value, _FLAG) else None
            if app is not None:
                found.append(app)
    return found
