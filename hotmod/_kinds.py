"""``isinstance`` for values of the user's namespaces, without reading ``__class__``.

``isinstance(obj, cls)`` falls back to ``obj.__class__`` when ``type(obj)`` is not a
subclass of ``cls``; a lazy proxy resolves itself on that read, and may raise (Django's
``settings`` before ``configure()``: ``ImproperlyConfigured``). hotmod walks every value
of a reloaded module's namespace, so it asks the type alone.
"""

from __future__ import annotations

from typing import TypeGuard, TypeVar

__all__ = ["is_a"]

T = TypeVar("T")


def is_a(obj: object, kind: type[T]) -> TypeGuard[T]:
    return issubclass(type(obj), kind)
