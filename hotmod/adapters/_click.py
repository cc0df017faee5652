"""click and typer: a failed run takes back the commands it registered.

A statement reload runs a new ``@cli.command()`` on the live group (typer: ``@app.command()``
on the live app), so a new command appears with no restart. When a later statement of the
same save fails, the reload is aborted and the module keeps its old version, but the group
already holds the new command. The groups and apps the module's namespace names are
recorded before the run and put back after a failed one.
"""

from __future__ import annotations

import sys
from typing import Any

from . import BaseAdapter, ModuleChange

__all__ = ["ClickAdapter"]


def _kinds() -> tuple[type | None, type | None]:
    group = getattr(sys.modules.get("click.core"), "Group", None)
    typer = getattr(sys.modules.get("typer.main"), "Typer", None)
    return (group if isinstance(group, type) else None, typer if isinstance(typer, type) else None)


class ClickAdapter(BaseAdapter):
    frameworks = ("click", "typer")

    def prepare(self, change: ModuleChange) -> None:
        group, typer = _kinds()
        groups: list[tuple[Any, dict[str, Any]]] = []
        apps: list[tuple[Any, list[Any], list[Any], Any]] = []
        seen: set[int] = set()
        for value in list(change.module.__dict__.values()):
            kind = type(value)  # never isinstance: a lazy proxy may raise on __class__
            if id(value) in seen:
                continue
            seen.add(id(value))
            if group is not None and issubclass(kind, group):
                groups.append((value, dict(value.commands)))
            elif typer is not None and issubclass(kind, typer):
                apps.append(
                    (
                        value,
                        list(value.registered_commands),
                        list(value.registered_groups),
                        value.registered_callback,
                    )
                )
        change.notes["click"] = (groups, apps)

    def committed(self, change: ModuleChange) -> tuple[str, ...]:
        change.notes.pop("click", None)
        return ()

    def aborted(self, change: ModuleChange) -> None:
        groups, apps = change.notes.pop("click", ((), ()))
        for value, commands in groups:
            value.commands.clear()
            value.commands.update(commands)
        for value, commands, subgroups, callback in apps:
            value.registered_commands[:] = commands
            value.registered_groups[:] = subgroups
            value.registered_callback = callback
