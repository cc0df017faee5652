"""Django: model field changes need a migration and a restart; URLconfs and registries follow.

- A reload that would change a model's fields (added, removed, another type) is refused
  with ``needs_restart`` naming the model and the field: the database table and every
  related model were built for the old fields. Methods, managers, properties and admin
  classes apply in place (statement reloads never run the class statement again).
- A run that made new model classes and was then refused or aborted puts the kept
  classes back into Django's app registry, so ``apps.get_model`` and queries keep
  returning the kept class.
- A reloaded URLconf (a module with ``urlpatterns``) clears Django's URL caches, so new
  patterns resolve.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from . import BaseAdapter, ModuleChange

__all__ = ["DjangoAdapter"]


def _model_class() -> type | None:
    models = sys.modules.get("django.db.models")
    model = getattr(models, "Model", None)
    return model if isinstance(model, type) else None


def _fields(model: Any) -> dict[str, str]:
    meta = getattr(model, "_meta", None)
    if meta is None:
        return {}
    found: dict[str, str] = {}
    for field in meta.local_fields + list(meta.local_many_to_many):
        try:
            kind = field.get_internal_type()
        except Exception:
            kind = type(field).__name__
        found[field.name] = (
            f"{kind}(null={getattr(field, 'null', None)}, unique={getattr(field, 'unique', None)})"
        )
    return found


class DjangoAdapter(BaseAdapter):
    frameworks = ("django",)

    def _models(self, change: ModuleChange) -> list[tuple[str, Any, Any]]:
        base = _model_class()
        if base is None:
            return []
        return [
            (name, old, new)
            for name, old, new in change.replaced()
            if isinstance(old, type)
            and isinstance(new, type)
            and issubclass(old, base)
            and issubclass(new, base)
        ]

    def refuse(self, change: ModuleChange) -> str | None:
        """A model class statement that ran again is refused: its fields need a
        migration, and even without one the new class's registry entry, managers and
        ``_meta`` would all point at a copy the process does not keep."""
        for name, old, new in self._models(change):
            before, after = _fields(old), _fields(new)
            if before != after:
                added = sorted(set(after) - set(before))
                removed = sorted(set(before) - set(after))
                altered = sorted(f for f in set(before) & set(after) if before[f] != after[f])
                parts = [f"field {f} added" for f in added] + [f"field {f} removed" for f in removed]
                parts += [f"field {f} changed" for f in altered]
                return (
                    f"Django model {old.__module__}.{name}: {', '.join(parts)}; this needs a migration "
                    "and a restart (the table and related models were built for the old fields)"
                )
            return (
                f"Django model {old.__module__}.{name}: its class statement would run again (a change "
                "outside its methods); restart to apply it (method edits apply live)"
            )
        return None

    def aborted(self, change: ModuleChange) -> None:
        apps = _apps()
        if apps is None:
            return
        restored = False
        for _, old, _new in self._models(change):
            meta = old._meta
            models = apps.all_models.get(meta.app_label)
            if models is not None and models.get(meta.model_name) is not old:
                models[meta.model_name] = old
                restored = True
        if restored:
            apps.clear_cache()

    def committed(self, change: ModuleChange) -> Iterable[str]:
        if "urlpatterns" in change.new:
            urls = sys.modules.get("django.urls")
            clear = getattr(urls, "clear_url_caches", None)
            if callable(clear):
                clear()
        return ()


def _apps() -> Any:
    registry = sys.modules.get("django.apps.registry")
    return getattr(registry, "apps", None)
