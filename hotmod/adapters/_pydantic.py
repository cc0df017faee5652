"""pydantic v2: a model class updated in place is rebuilt for itself, and so is what nests it.

When a model's module runs again as a whole, pydantic builds a validator for the new
class, which hotmod then merges into the kept class: that validator would construct the
discarded copy. The kept class is rebuilt (``model_rebuild(force=True)``), then every
model of the user's modules whose fields mention it, so validation always returns the
kept class. Method and validator edits applied by statement need nothing: the
validator calls the same function objects, which now run the new code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, cast

from . import BaseAdapter, ModuleChange

__all__ = ["PydanticAdapter"]


def _base_model() -> type | None:
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    return base if isinstance(base, type) else None


class PydanticAdapter(BaseAdapter):
    frameworks = ("pydantic",)

    def committed(self, change: ModuleChange) -> Iterable[str]:
        base = _base_model()
        if base is None:
            return ()
        kept: list[type] = []
        for name, old, _ in _merged(change):
            if (
                isinstance(old, type)
                and issubclass(old, base)
                and old is not base
                and change.new.get(name) is old
            ):
                kept.append(cast(type, old))
        warnings: list[str] = []
        for model in kept:
            warnings += _rebuild(model)
        if kept:
            for model in _nesting(base, kept):
                warnings += _rebuild(model)
        return warnings


def _merged(change: ModuleChange) -> Iterable[tuple[str, Any, Any]]:
    """Classes the run made anew that were merged into the kept ones: after the commit
    the namespace holds the old object again, so compare with the new run's record."""
    for name, old in change.old.items():
        if isinstance(old, type) and change.strategy != "statements":
            yield name, old, change.new.get(name)


def _rebuild(model: Any) -> list[str]:
    try:
        model.model_rebuild(force=True)
    except Exception as exc:
        return [f"pydantic: {model.__qualname__} could not be rebuilt ({type(exc).__name__}: {exc})"]
    return []


def _nesting(base: type, kept: list[type]) -> list[Any]:
    """Models in loaded modules whose fields mention a kept model (bounded: model fields
    of module-level classes only)."""
    wanted = set(map(id, kept))
    found: list[Any] = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or namespace.get("__name__", "").startswith(("pydantic", "_")):
            continue
        for value in list(namespace.values()):
            if isinstance(value, type) and issubclass(value, base) and id(value) not in wanted:
                fields = getattr(value, "__pydantic_fields__", None) or {}
                for info in list(fields.values()):
                    if _mentions(getattr(info, "annotation", None), wanted):
                        found.append(value)
                        break
    return found


def _mentions(annotation: object, wanted: set[int], depth: int = 0) -> bool:
    if id(annotation) in wanted:
        return True
    if depth > 4:
        return False
    return any(_mentions(arg, wanted, depth + 1) for arg in getattr(annotation, "__args__", ()) or ())
