"""hotmod's extension for pydevd, the debugger inside debugpy.

pydevd loads every ``pydevd_plugins/extensions/pydevd_plugin*.py`` it finds on
``sys.path`` when it starts (its extension mechanism; this folder has no ``__init__.py``
files, so it never shadows or overwrites pydevd's own ``pydevd_plugins`` package and is
found through it). Once pydevd's modules are loaded, the handler teaches pydevd hotmod's
``hotmod/reload`` debug-protocol request, so the request works from the first pause, with
or without a Reloader, in any program debugged in an environment where hotmod is
installed. It does nothing else: no reloader, no thread, no watcher.
"""

from __future__ import annotations

from typing import Any

from _pydevd_bundle.pydevd_extension_api import (  # type: ignore[import-not-found]
    DebuggerEventHandler,
)

__all__ = ["HotmodRequests"]


class HotmodRequests(DebuggerEventHandler):  # type: ignore[misc]
    def on_debugger_modules_loaded(self, **kwargs: Any) -> None:
        try:
            from hotmod import _debugpy
        except ImportError:  # hotmod uninstalled, its extension left behind
            return
        _debugpy.register_request()
