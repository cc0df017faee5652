"""pydantic v2: a model class updated in place is rebuilt for itself, and so is what nests it.

When a model's module runs again as a whole, pydantic builds a validator for the new
class, which hotmod then merges into the kept class: that validator would construct the
discarded copy. After the commit:

- the kept class is rebuilt (``model_rebuild(force=True)``);
- so is every parametrization of it made before the edit (``Page[str]``, held anywhere,
  and the one pydantic's own cache hands out for the next ``Page[str]``): it takes the
  fields of the same parametrization of the new run's class, so ``Page[str]`` has the new
  fields and still validates to itself;
- then every model whose fields mention a kept class: module-level models of the user's
  modules and parametrized generics (``Box[User]``), so validation always returns the
  kept class with its new fields.

Method and validator edits applied by statement need nothing: the validator calls the
same function objects, which now run the new code. A validator or serializer added or
removed by a statement reload is collected again (pydantic collects them when the class
statement runs), for the model and the subclasses made from it, which are then rebuilt.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, cast

from .._kinds import is_a
from . import BaseAdapter, ModuleChange

__all__ = ["PydanticAdapter"]


def _base_model() -> type | None:
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    return base if isinstance(base, type) else None


class PydanticAdapter(BaseAdapter):
    frameworks = ("pydantic",)

    def refuse(self, change: ModuleChange) -> str | None:
        # The run is over and not yet committed: the only moment the new classes are in
        # the namespace. Parametrizations of the kept ones are made from them later.
        base = _base_model()
        if base is not None and change.strategy != "statements":
            change.notes["pydantic.new"] = {
                name: new
                for name, old, new in change.replaced()
                if is_a(old, type) and is_a(new, type) and issubclass(new, base)
            }
        return None

    def committed(self, change: ModuleChange) -> Iterable[str]:
        base = _base_model()
        if base is None:
            return ()
        kept: list[type] = []
        for name, old, _ in _merged(change):
            if is_a(old, type) and issubclass(old, base) and old is not base and change.new.get(name) is old:
                kept.append(cast(type, old))
        made: dict[str, type] = change.notes.pop("pydantic.new", {})
        warnings: list[str] = []
        if change.strategy == "statements":
            # Methods added to or removed from a kept model: a validator or serializer
            # among them changes what pydantic validates with.
            for model in _models_of(change, base):
                changed = _refresh_decorators(model)
                if isinstance(changed, str):
                    warnings.append(changed)
                elif changed:
                    kept.append(model)
                    subclasses = _subclasses(model)  # made before: they copied the decorators
                    kept.extend(sub for sub in subclasses if _refresh_decorators(sub, force=True) is True)
        for model in kept:
            warnings += _rebuild(model)
        for model in kept:
            new = made.get(model.__name__)
            for parametrized in _parametrizations(model):
                warnings += _follow(parametrized, new)
        if kept:
            for model in _nesting(base, kept):
                warnings += _rebuild(model)
        return warnings


# DecoratorInfos' categories: name in the class -> the decorator pydantic calls.
_CATEGORIES = (
    "validators",
    "field_validators",
    "root_validators",
    "field_serializers",
    "model_serializers",
    "model_validators",
    "computed_fields",
)


def _models_of(change: ModuleChange, base: type) -> list[type]:
    """The model classes the module defines (module-level names)."""
    name = change.module.__name__
    return [
        value
        for value in list(change.new.values())
        if is_a(value, type) and issubclass(value, base) and value.__module__ == name
    ]


def _subclasses(model: type) -> list[type]:
    found: list[type] = []
    stack: list[type] = list(model.__subclasses__())
    while stack:
        sub = stack.pop(0)
        if sub not in found:
            found.append(sub)
            stack.extend(sub.__subclasses__())
    return found


def _refresh_decorators(model: Any, force: bool = False) -> bool | str:
    """pydantic collects a model's validators and serializers once, when the class is made
    (a decorated method is a proxy in the class body until then). A statement reload adds
    a decorated method to the kept class as a proxy, or removes one: collect them again.

    pydantic has no public API for it: this uses ``DecoratorInfos.build`` (the function
    the model class statement calls, present from pydantic 2.0 to today's release) and
    keeps the model's decorators that are already collected and still there. Returns
    whether anything changed, or a warning when pydantic's internals moved.
    """
    current = model.__dict__.get("__pydantic_decorators__")
    decorators = sys.modules.get("pydantic._internal._decorators")
    proxy = getattr(decorators, "PydanticDescriptorProxy", None)
    infos = getattr(decorators, "DecoratorInfos", None)
    if current is None or not isinstance(proxy, type) or infos is None:
        return False
    added = any(is_a(value, proxy) for value in list(model.__dict__.values()))
    removed = any(
        not hasattr(model, name) for category in _CATEGORIES for name in getattr(current, category, {}) or {}
    )
    if not (added or removed or force):
        return False
    try:
        fresh = infos.build(model)
        for category in _CATEGORIES:
            collected = getattr(current, category, None) or {}
            found = getattr(fresh, category)
            still = {k: v for k, v in collected.items() if hasattr(model, k) and k not in found}
            setattr(fresh, category, {**still, **found})
        model.__pydantic_decorators__ = fresh
    except Exception as exc:
        return (
            f"pydantic: {model.__qualname__}: its validators and serializers could not be collected "
            f"again ({type(exc).__name__}: {exc}); restart to apply a new or removed one"
        )
    return True


def _merged(change: ModuleChange) -> Iterable[tuple[str, Any, Any]]:
    """Classes the run made anew that were merged into the kept ones: after the commit
    the namespace holds the old object again, so compare with the new run's record."""
    for name, old in change.old.items():
        if is_a(old, type) and change.strategy != "statements":
            yield name, old, change.new.get(name)


def _rebuild(model: Any) -> list[str]:
    try:
        model.model_rebuild(force=True)
    except Exception as exc:
        return [f"pydantic: {model.__qualname__} could not be rebuilt ({type(exc).__name__}: {exc})"]
    return []


def _origin(model: type) -> Any:
    metadata = model.__dict__.get("__pydantic_generic_metadata__") or {}
    return metadata.get("origin") if isinstance(metadata, dict) else None


def _parametrizations(model: type) -> list[type]:
    """The parametrized classes pydantic made of ``model`` (``Page[str]``, ``Page[Page[int]]``
    is one of ``Page``'s too: its origin is ``Page``)."""
    subclasses: list[type] = model.__subclasses__()
    return [sub for sub in subclasses if _origin(sub) is model]


# What a parametrized class holds of its fields; the rest (origin, arguments, methods
# through its base) stays its own.
_FIELD_STATE = ("__class_vars__", "__private_attributes__", "__signature__", "model_config")


def _follow(parametrized: Any, new: type | None) -> list[str]:
    """Give an existing parametrization the fields of the same parametrization of the new
    run's class, then rebuild its validator (which then constructs the parametrization
    itself, not the new run's copy)."""
    metadata = parametrized.__pydantic_generic_metadata__
    args = tuple(metadata.get("args", ()))
    try:
        if new is not None and args:
            fresh = new[args if len(args) > 1 else args[0]]  # type: ignore[index]
            for key, value in fresh.__dict__.items():
                if key in _FIELD_STATE or (
                    key.startswith("__pydantic_")
                    and key not in ("__pydantic_generic_metadata__", "__pydantic_parent_namespace__")
                ):
                    setattr(parametrized, key, value)
        parametrized.model_rebuild(force=True)
    except Exception as exc:
        return [
            f"pydantic: {parametrized.__qualname__} (made before the edit) keeps its old fields "
            f"({type(exc).__name__}: {exc}); make it again or restart"
        ]
    return []


def _nesting(base: type, kept: list[type]) -> list[Any]:
    """Models whose fields mention a kept model: module-level classes of loaded modules,
    and parametrized generics anywhere (``Box[User]`` lives in pydantic's cache only)."""
    wanted = set(map(id, kept))
    found: list[Any] = []
    seen: set[int] = set(wanted)
    for model in _parametrized_models(base):
        if id(model) not in seen and _fields_mention(model, wanted):
            seen.add(id(model))
            found.append(model)
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or namespace.get("__name__", "").startswith(("pydantic", "_")):
            continue
        for value in list(namespace.values()):
            if (
                is_a(value, type)
                and issubclass(value, base)
                and id(value) not in seen
                and _fields_mention(value, wanted)
            ):
                seen.add(id(value))
                found.append(value)
    return found


def _parametrized_models(base: type) -> Iterable[type]:
    """Every parametrized generic model in the process (walked from ``BaseModel`` down)."""
    stack: list[type] = list(base.__subclasses__())
    visited: set[int] = set()
    while stack:
        model = stack.pop()
        if id(model) in visited:
            continue
        visited.add(id(model))
        if _origin(model) is not None:
            yield model
        stack.extend(model.__subclasses__())


def _fields_mention(model: type, wanted: set[int]) -> bool:
    fields = getattr(model, "__pydantic_fields__", None) or {}
    return any(_mentions(getattr(info, "annotation", None), wanted) for info in list(fields.values()))


def _mentions(annotation: object, wanted: set[int], depth: int = 0) -> bool:
    if id(annotation) in wanted:
        return True
    if depth > 4:
        return False
    return any(_mentions(arg, wanted, depth + 1) for arg in getattr(annotation, "__args__", ()) or ())
