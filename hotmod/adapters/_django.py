"""Django: model field changes need a migration and a restart; URLconfs and registries follow.

- A reload that would change a model's fields (added, removed, another type) is refused
  with ``needs_restart`` naming the model and the field: the database table and every
  related model were built for the old fields. Methods, managers, properties and admin
  classes apply in place (statement reloads never run the class statement again).
- A run that was refused or aborted leaves Django's app registry and admin sites as they
  were before it: the kept model classes are registered again (``apps.get_model`` and
  queries keep returning the kept class), and the models and ``ModelAdmin`` entries the
  failed run registered are taken out, so the fixed file can register them again.
- A model class a reload removed from its module is taken out of the app registry too,
  as after a fresh start (its table stays until a migration drops it).
- A module whose code runs again as a whole (an ``admin.py`` the statement planner could
  not patch) first gives up its admin registrations, so that its run registers them
  again instead of raising ``AlreadyRegistered``: those an earlier reload saw it make
  (what the run no longer registers is gone, as after a fresh start), and those of its
  first import made with a ``ModelAdmin`` class it defines (these come back if the run
  does not register the model again: another module may have made them). A plain
  ``admin.site.register(Model)`` of its first import cannot be told apart from another
  module's: that one still raises ``AlreadyRegistered`` (the reload is aborted).
- A reloaded URLconf (a module with ``urlpatterns``) clears Django's URL caches, so new
  patterns resolve.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from typing import Any

from .._kinds import is_a
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

    def __init__(self) -> None:
        # module name -> (admin site, model) of the registrations its reloads made
        self._registered: dict[str, list[tuple[Any, Any]]] = {}
        # the change prepared last, until its reload ends: the next module of the same
        # batch tells it what the admin sites held when its own run was over
        self._prepared: ModuleChange | None = None

    def _models(self, change: ModuleChange) -> list[tuple[str, Any, Any]]:
        base = _model_class()
        if base is None:
            return []
        return [
            (name, old, new)
            for name, old, new in change.replaced()
            if is_a(old, type) and is_a(new, type) and issubclass(old, base) and issubclass(new, base)
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

    def prepare(self, change: ModuleChange) -> None:
        """What the run may change in Django's registries, to put back if it fails."""
        apps = _apps()
        if apps is not None:
            change.notes["django_models"] = {label: dict(models) for label, models in apps.all_models.items()}
        sites = _admin_sites()
        if sites:
            snapshot = [(site, dict(site._registry)) for site in sites]
            previous = self._prepared
            if previous is not None and "django_admin" in previous.notes:  # the same batch
                previous.notes.setdefault("django_admin_after", snapshot)
            change.notes["django_admin"] = snapshot
            self._prepared = change
            if change.strategy != "statements":
                change.notes["django_lifted"] = self._lift_registrations(change.module.__name__, sites)

    def _lift_registrations(self, name: str, sites: list[Any]) -> list[tuple[Any, Any, Any]]:
        """Take out the admin registrations ``name``'s code makes, so that running it
        again registers them anew instead of raising ``AlreadyRegistered``; return the
        (site, model, model admin) of those only guessed (made by the first import with a
        ``ModelAdmin`` class of the module, which another module may have registered)."""
        made = {(id(site), model) for site, model in self._registered.get(name, ())}
        guessed: list[tuple[Any, Any, Any]] = []
        for site in sites:
            registry = site._registry
            for model, model_admin in list(registry.items()):
                if (id(site), model) in made:
                    del registry[model]
                elif type(model_admin).__module__ == name:
                    del registry[model]
                    guessed.append((site, model, model_admin))
        return guessed

    def aborted(self, change: ModuleChange) -> None:
        apps = _apps()
        registered: dict[str, dict[str, Any]] | None = change.notes.pop("django_models", None)
        restored = False
        if apps is not None and registered is not None:
            for label, models in list(apps.all_models.items()):
                restored |= _put_back(models, registered.get(label, {}))
        elif apps is not None:  # prepare did not run: at least the kept classes go back
            for _, old, _new in self._models(change):
                meta = old._meta
                models = apps.all_models.get(meta.app_label)
                if models is not None and models.get(meta.model_name) is not old:
                    models[meta.model_name] = old
                    restored = True
        if restored:
            apps.clear_cache()
        for site, before in change.notes.pop("django_admin", ()):
            _put_back(site._registry, before)
        self._end(change)

    def _end(self, change: ModuleChange) -> None:
        change.notes.pop("django_admin_after", None)
        change.notes.pop("django_lifted", None)
        if self._prepared is change:
            self._prepared = None

    def committed(self, change: ModuleChange) -> Iterable[str]:
        change.notes.pop("django_models", None)
        name = change.module.__name__
        made = [] if change.strategy != "statements" else self._registered.pop(name, [])
        # What this module's run registered: the admin sites after it (when a later module
        # of the batch ran, before that one) against before it.
        after = dict(change.notes.get("django_admin_after", ()))
        for site, before in change.notes.pop("django_admin", ()):
            for model, model_admin in after.get(site, site._registry).items():
                if before.get(model) is not model_admin:
                    made.append((site, model))
                    _adopt(model_admin, change)
        # A guessed registration the run did not make again was perhaps another module's:
        # it stays, as a statement reload leaves a registration whose call was removed.
        for site, model, model_admin in change.notes.get("django_lifted", ()):
            site._registry.setdefault(model, model_admin)
        self._end(change)
        if made:
            self._registered[name] = made
        else:
            self._registered.pop(name, None)
        said = self._forget_removed_models(change)
        if "urlpatterns" in change.new:
            urls = sys.modules.get("django.urls")
            clear = getattr(urls, "clear_url_caches", None)
            if callable(clear):
                clear()
        return said

    def _forget_removed_models(self, change: ModuleChange) -> list[str]:
        """The module's models its new version no longer defines leave the app registry
        (with the many-to-many tables Django made for them), as after a fresh start."""
        apps, base = _apps(), _model_class()
        if apps is None or base is None:
            return []
        name = change.module.__name__
        gone: list[Any] = [
            old
            for key, old in change.old.items()
            if key not in change.new and is_a(old, type) and issubclass(old, base) and old.__module__ == name
        ]
        said: list[str] = []
        for old in gone:
            meta = old._meta
            models = apps.all_models.get(meta.app_label)
            if models is None or models.get(meta.model_name) is not old:
                continue
            del models[meta.model_name]
            for key, model in list(models.items()):  # its auto-created through models
                if model._meta.auto_created is old:
                    del models[key]
            said.append(
                f"Django model {meta.label} was removed from {name}: it is no longer registered "
                "(its table stays until a migration drops it)"
            )
        if said:
            apps.clear_cache()
        return said


def _apps() -> Any:
    registry = sys.modules.get("django.apps.registry")
    return getattr(registry, "apps", None)


def _admin_sites() -> list[Any]:
    sites = sys.modules.get("django.contrib.admin.sites")
    return [s for s in getattr(sites, "all_sites", ()) if isinstance(getattr(s, "_registry", None), dict)]


def _adopt(model_admin: Any, change: ModuleChange) -> None:
    """A ``ModelAdmin`` the run registered, of a class the commit discarded for the kept
    one (a whole-module run makes every class again), becomes an instance of the kept
    class, as the module's own instances do."""
    made = type(model_admin)
    kept = change.new.get(made.__name__)
    if (
        isinstance(kept, type)
        and kept is not made
        and made.__module__ == change.module.__name__
        and kept.__module__ == made.__module__
        and kept.__qualname__ == made.__qualname__
    ):
        # Another layout (TypeError): it keeps the class it was made with.
        with contextlib.suppress(TypeError):
            model_admin.__class__ = kept


def _put_back(registry: dict[Any, Any], before: dict[Any, Any]) -> bool:
    """Make ``registry`` hold what ``before`` held again (the same dict: Django and apps
    keep references to it); True when anything changed."""
    changed = False
    for key in [k for k in registry if k not in before]:
        del registry[key]
        changed = True
    for key, value in before.items():
        if registry.get(key, before) is not value:
            registry[key] = value
            changed = True
    return changed
