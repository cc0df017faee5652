"""hotmod over the Debug Adapter Protocol, inside a debugpy (pydevd) session.

Installed when a Reloader or PluginFolder opens in a process that debugpy's debug server
(pydevd) already runs in, with a DAP client: nothing is imported from debugpy or pydevd
that is not already loaded, and nothing happens at ``import hotmod``. It adds:

- a ``hotmod/reload`` request (``arguments.source.path`` optional: that one file, else
  every pending change) answered with the result: status, counters, warnings, the
  frames still running replaced code, timing and the text report;
- a ``loadedSource`` event (reason ``changed``) per reloaded file, so that clients send
  that file's breakpoints again;
- a ``hotmod/reloadResult`` event for each reload that was not asked for by the request
  (the watcher's thread applied a save by itself, ``reload_now()`` typed in the Debug
  Console);
- a ``capabilities`` event saying ``supportsHotmodReload`` (the initialize response was
  sent before hotmod was loaded);
- reload on continue, off by default: ``hotmod/reload`` with
  ``arguments.reloadOnContinue: true`` (or ``HOTMOD_RELOAD_ON_CONTINUE=1``) applies
  pending saves when the client resumes, before any thread runs again.

How it plugs in: through pydevd's extension mechanism, the one debugpy documents for
extending the debugger without modifying it: a ``pydevd_plugins.extensions`` namespace
module that pydevd finds on ``sys.path`` and loads at start, whose
``DebuggerEventHandler.on_debugger_modules_loaded`` pydevd calls once its modules are
loaded ("useful for importing and/or patching debugger modules", its API says). hotmod's
(``pydevd_plugins/extensions/pydevd_plugin_hotmod.py``, installed with hotmod) calls
``register_request``: pydevd names each DAP request's handler ``on_<command>_request`` on
its JSON command processor, after finding the command in its schema registry
(``pydevd_base_schema.register_request``, the registry its own extra requests such as
``pydevdSystemInfo`` use). hotmod registers its command there and adds its handler under
that name; no pydevd function is replaced. debugpy has no public API for custom requests;
this is the narrowest use of pydevd's that serves one, and the tests run it against the
lowest and the newest debugpy. Resuming is seen through pydevd's public
``add_dap_messages_listener``. The request runs on pydevd's reader thread, which pydevd
never suspends, while the program's threads stay paused.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from .result import ReloadResult

__all__ = [
    "CAPABILITY",
    "COMMAND",
    "RESULT_EVENT",
    "ReloadRequest",
    "attach",
    "body",
    "detach",
    "install",
    "register_request",
]

COMMAND = "hotmod/reload"
RESULT_EVENT = "hotmod/reloadResult"
CAPABILITY = "supportsHotmodReload"

_lock = threading.Lock()
_installed = False  # the continue listener is added, the capability told
_registered = False  # pydevd knows the request
_local = threading.local()  # .requesting: a hotmod/reload request is being answered here
_reload_on_continue = os.environ.get("HOTMOD_RELOAD_ON_CONTINUE", "") not in ("", "0")


class _Subscribable(Protocol):
    def subscribe(self, listener: Callable[[ReloadResult], object]) -> Callable[[], None]: ...


# applier -> how to stop hearing from it (a plugin folder's own reloader is detached when
# the folder takes over, or each of its reloads would be told twice)
_attached: weakref.WeakKeyDictionary[object, Callable[[], None]] = weakref.WeakKeyDictionary()


def attach(applier: _Subscribable) -> None:
    """Install (once) when a DAP client is there, and report ``applier``'s own reloads."""
    if install() and applier not in _attached:
        _attached[applier] = applier.subscribe(_on_result)


def detach(applier: object) -> None:
    unsubscribe = _attached.pop(applier, None)
    if unsubscribe is not None:
        unsubscribe()


def register_request() -> bool:
    """Teach pydevd the ``hotmod/reload`` request; False if pydevd is not loaded.

    Called by hotmod's pydevd extension (``pydevd_plugins/extensions/pydevd_plugin_hotmod.py``,
    which pydevd loads by itself at start) and again by ``install``; the request then
    works before any Reloader opens, and even in a program that never imports hotmod.
    """
    global _registered
    with _lock:
        if _registered:
            return True
        if "pydevd" not in sys.modules and "_pydevd_bundle" not in sys.modules:
            return False
        try:
            pydevd_base_schema = _pydevd("_pydevd_bundle._debug_adapter.pydevd_base_schema")
            processor = _pydevd("_pydevd_bundle.pydevd_process_net_command_json").PyDevJsonCommandProcessor
        except (ImportError, AttributeError):
            return False
        pydevd_base_schema.register_request(COMMAND)(ReloadRequest)
        setattr(processor, f"on_{COMMAND}_request", _handle_reload)
        _registered = True
    return True


def install() -> bool:
    """Register the request and the listener with the running pydevd; False if none runs."""
    global _installed
    with _lock:
        if _installed:
            return True
        if "pydevd" not in sys.modules or "debugpy" not in sys.modules:
            return False
        try:
            pydevd_constants = _pydevd("_pydevd_bundle.pydevd_constants")
            add_dap_messages_listener = _pydevd("pydevd").add_dap_messages_listener
        except (ImportError, AttributeError):
            return False
        py_db = pydevd_constants.get_global_debugger()
        if py_db is None or pydevd_constants.get_protocol() not in (
            pydevd_constants.JSON_PROTOCOL,
            pydevd_constants.HTTP_JSON_PROTOCOL,
        ):
            return False  # not a DAP client (PyCharm speaks pydevd's XML protocol)
    if not register_request():
        return False
    with _lock:
        if _installed:
            return True
        add_dap_messages_listener(_ContinueListener())
        _installed = True
    _send({"type": "event", "event": "capabilities", "body": {"capabilities": {CAPABILITY: True}}})
    return True


class ReloadRequest:
    """The ``hotmod/reload`` request as pydevd's schema registry builds it."""

    def __init__(
        self,
        seq: int = -1,
        arguments: dict[str, Any] | None = None,
        update_ids_from_dap: bool = False,
        **kwargs: Any,
    ) -> None:
        self.type = "request"
        self.command = COMMAND
        self.seq = seq
        self.arguments = arguments if isinstance(arguments, dict) else {}
        self.kwargs = kwargs

    def to_dict(self, update_ids_to_dap: bool = False) -> dict[str, Any]:
        return {"type": self.type, "command": self.command, "seq": self.seq, "arguments": self.arguments}


def body(result: ReloadResult) -> dict[str, Any]:
    """A result as the JSON a DAP client receives."""
    return {
        "status": result.status,
        "ok": result.ok,
        "summary": result.summary(),
        "report": result.report(),
        "modules": list(result.modules),
        "paths": [str(p) for p in result.paths],
        "error": None if result.error is None else str(result.error),
        "warnings": list(result.warnings),
        "staleFrames": list(result.stale_frames),
        "staleClosures": list(result.stale_closures),
        "durationMs": round(result.duration * 1000, 3),
        "counters": {
            "modulesReloaded": len(result.modules) if result.status == "ok" else 0,
            "functionsPatched": result.functions_patched,
            "classesPatched": result.classes_patched,
            "classesReplaced": result.classes_replaced,
            "referencesRebound": result.references_rebound,
            "namesPruned": result.names_pruned,
            "warnings": len(result.warnings),
            "staleFrames": len(result.stale_frames),
            "staleClosures": len(result.stale_closures),
        },
        "strategies": [[module, how] for module, how in result.strategies],
    }


def _handle_reload(processor: object, py_db: object, request: ReloadRequest) -> object:
    global _reload_on_continue
    arguments = request.arguments
    if "reloadOnContinue" in arguments:
        _reload_on_continue = bool(arguments["reloadOnContinue"])
    source = arguments.get("source")
    path = source.get("path") if isinstance(source, dict) else None
    response: dict[str, Any] = {"type": "response", "request_seq": request.seq, "command": COMMAND}
    try:
        result = _reload(path if isinstance(path, str) and path else None)
    except Exception as exc:  # answered, never left pending
        response.update(success=False, message=f"hotmod: {type(exc).__name__}: {exc}")
    else:
        _loaded_sources(result)
        response.update(success=True, body=dict(body(result), reloadOnContinue=_reload_on_continue))
    return _command(response)


def _reload(path: str | None) -> ReloadResult:
    from ._now import reload_now

    with _requesting():
        return reload_now(path)


@contextmanager
def _requesting() -> Iterator[None]:
    _local.requesting = True
    try:
        yield
    finally:
        _local.requesting = False


def _on_result(result: ReloadResult) -> None:
    """A reloader's listener: reloads nobody asked for over the protocol are told too."""
    if getattr(_local, "requesting", False):
        return  # the request's response carries it
    _loaded_sources(result)
    _send({"type": "event", "event": RESULT_EVENT, "body": body(result)})


def _loaded_sources(result: ReloadResult) -> None:
    if result.status != "ok":
        return
    for path in result.paths:
        source = {"name": Path(path).name, "path": str(path)}
        _send({"type": "event", "event": "loadedSource", "body": {"reason": "changed", "source": source}})


class _ContinueListener:
    """pydevd's DAP messages listener: a ``continue`` received applies pending saves first
    (on the reader thread, before pydevd resumes any thread), when asked to."""

    def before_send(self, message_as_dict: dict[str, Any]) -> None:
        pass

    def after_receive(self, message_as_dict: dict[str, Any]) -> None:
        if not _reload_on_continue or message_as_dict.get("type") != "request":
            return
        if message_as_dict.get("command") != "continue":
            return
        try:
            result = _reload(None)
        except Exception:  # never in the way of resuming
            return
        if result.status != "noop":
            _loaded_sources(result)
            _send({"type": "event", "event": RESULT_EVENT, "body": dict(body(result), trigger="continue")})


def _pydevd(name: str) -> Any:
    """One of pydevd's modules, already loaded by debugpy (never imported first here)."""
    return importlib.import_module(name)


def _command(message: dict[str, Any]) -> Any:
    """A JSON message as pydevd's writer thread sends it."""
    net = _pydevd("_pydevd_bundle.pydevd_net_command")
    constants = _pydevd("_pydevd_bundle.pydevd_comm_constants")
    return net.NetCommand(constants.CMD_RETURN, 0, message, is_json=True)


def _send(message: dict[str, Any]) -> None:
    """Queue one JSON message to the client; dropped when no client is connected."""
    try:
        py_db = _pydevd("_pydevd_bundle.pydevd_constants").get_global_debugger()
        writer = getattr(py_db, "writer", None)
        if writer is not None:
            writer.add_command(_command(message))
    except (ImportError, AttributeError):
        return
