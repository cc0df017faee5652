"""Celery: a failed run takes back the tasks it registered.

A statement reload runs a new ``@app.task`` against the live app. Celery keeps that
registration in up to three places at once: the app's registry (``app.tasks``, once the
app is finalized), the app's pending list (before it is), and, for every ``@app.task``
and ``@shared_task`` (shared by default), a process-wide list of callbacks that register
the task with every app finalized later. When a later statement of the same save fails,
the reload is aborted and the module keeps its old version: all three are put back.
Otherwise the failed run's function would stay registered, and the next finalized app
would meet two callables under one task name (``DuplicateTaskNameWarning``, and calls
reaching the first one: the failed version).

Celery has no public API to take a registration back but ``app.tasks.unregister``; the
pending list and the shared callbacks are ``app._pending`` and
``celery._state._on_app_finalizers`` (both since Celery 4), used only when present.
Task bodies edited in place keep their registered task, its name and identity.
"""

from __future__ import annotations

import sys
from typing import Any

from .._kinds import is_a
from . import BaseAdapter, ModuleChange

__all__ = ["CeleryAdapter"]


class CeleryAdapter(BaseAdapter):
    frameworks = ("celery",)

    def prepare(self, change: ModuleChange) -> None:
        celery = getattr(sys.modules.get("celery.app.base"), "Celery", None)
        if not isinstance(celery, type):
            return
        apps: list[tuple[Any, set[str] | None, int | None]] = []
        for value in list(change.module.__dict__.values()):
            if not is_a(value, celery) or any(app is value for app, _, _ in apps):
                continue  # never isinstance: a lazy proxy may raise on __class__
            # Reading .tasks of an app that is not finalized would finalize it.
            registered = set(value.tasks) if getattr(value, "finalized", False) else None
            pending = getattr(value, "_pending", None)
            apps.append((value, registered, len(pending) if pending is not None else None))
        finalizers = _finalizers()
        change.notes["celery"] = (apps, set(finalizers) if finalizers is not None else None)

    def committed(self, change: ModuleChange) -> tuple[str, ...]:
        change.notes.pop("celery", None)
        return ()

    def aborted(self, change: ModuleChange) -> None:
        apps, shared = change.notes.pop("celery", ((), None))
        for app, registered, pending in apps:
            if registered is not None:
                for name in set(app.tasks) - registered:
                    app.tasks.unregister(name)
            waiting = getattr(app, "_pending", None)
            if pending is not None and waiting is not None:
                while len(waiting) > pending:
                    waiting.pop()
        finalizers = _finalizers()
        if shared is not None and finalizers is not None:
            for callback in set(finalizers) - shared:
                finalizers.discard(callback)


def _finalizers() -> Any:
    """Celery's process-wide callbacks run for every app finalized (shared tasks)."""
    finalizers = getattr(sys.modules.get("celery._state"), "_on_app_finalizers", None)
    return finalizers if isinstance(finalizers, set) else None
