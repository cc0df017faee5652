"""Names bound to an object a module's new run made, bound back to the live one.

When a module that makes an app (or a router) runs again as a whole, the commit binds
its name, and importers' copies (``from .main import app``), to the new object. An
adapter that keeps the live object instead (it adopted what the new run built) binds
every module-level name that holds the new object back to the live one.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["bind_back"]


def bind_back(new: Any, old: Any) -> None:
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            if value is new:
                namespace[key] = old
