"""PluginFolder: load, reload and unload plugins from a directory, each isolated.

The folder becomes a synthetic package (``<package>.<plugin>``) whose modules are found
by a finder of our own: ``sys.path`` is never changed (a plugin named ``json.py`` cannot
shadow the standard library), relative imports between plugins and helpers work, and
nothing is read from or written to a ``__pycache__`` in the folder (a planted ``.pyc``
never runs): every module is compiled from bytes read through the trust checks.

Edits go through a Reloader of the folder, so a plugin keeps its identity and state like
any module. Between the execution of the new code and its commit, the old version is torn
down and the new one set up; if anything fails there, the old version is set up again
and the transaction aborts: the old version keeps serving as if nothing happened.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType, TracebackType
from typing import Any, Literal, Self

from . import _appliers, _hot, _transaction
from ._apply_thread import ApplyThread, Listener, Listeners
from ._source import Source, digest, error_line
from ._trust import DEFAULT_MAX_SIZE, Trust, Untrusted, check_folder, check_name, read_checked
from ._watch import BackendName
from .errors import HotmodError, HotmodWarning, ReloadError
from .reloader import _RELOAD_LOCK, ApplyMode, Reloader
from .result import ReloadResult, combine

__all__ = ["Plugin", "PluginContext", "PluginFolder", "PluginListener", "PluginState"]

logger = logging.getLogger(__name__)

PluginState = Literal["loaded", "failed", "refused", "unloaded"]
PluginListener = Callable[["Plugin"], object]
_FOLDER_SENTINEL = ".hotmod-folder"  # a name no file has: only its folder matters


@dataclass(eq=False)
class Plugin:
    """One plugin of a folder: its module, where it came from, and how it is doing."""

    name: str
    path: Path
    module: ModuleType | None = None
    state: PluginState = "unloaded"
    error: ReloadError | None = None
    #: persists across reloads of this plugin (also reachable as ``ctx.data``)
    data: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    context: PluginContext | None = None
    # (mtime, size) of the file that failed to load: it is retried once that changes
    failed_stat: tuple[int, int] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"<Plugin {self.name} {self.state}>"


class PluginContext:
    """What ``setup(ctx)`` and ``teardown(ctx)`` receive."""

    def __init__(self, plugin: Plugin, host: Any, package: str) -> None:
        self.host = host
        self.name = plugin.name
        self.data = plugin.data
        self.log = logging.getLogger(f"{package}.{plugin.name}")
        self._cleanups: list[Callable[[], object]] = []

    def on_cleanup(self, fn: Callable[[], object]) -> Callable[[], object]:
        """Run ``fn()`` at teardown (and after a failed setup), last registered first."""
        self._cleanups.append(fn)
        return fn

    def _run_cleanups(self) -> list[BaseException]:
        errors: list[BaseException] = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as exc:
                logger.exception("plugin %s: cleanup %r raised", self.name, fn)
                errors.append(exc)
        return errors


# -- finding and loading plugin modules ---------------------------------------------------


class _Loader(importlib.abc.Loader):
    """Compiles a plugin module from bytes read through the trust checks."""

    # The Reloader may compile these files itself (through the same reader).
    hotmod_compiles_source = True

    def __init__(self, folder: PluginFolder, path: Path) -> None:
        self._folder = folder
        self.path = path

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        source = self._folder._read(self.path)
        code = compile(source.data, str(self.path), "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_filename(self, fullname: str) -> str:
        return str(self.path)

    def get_source(self, fullname: str) -> str:
        return self._folder._read(self.path).data.decode("utf-8", "replace")


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``<package>.<name>`` in the folder; nothing else, and nothing compiled."""

    def __init__(self, folder: PluginFolder) -> None:
        self._folder = folder

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        prefix = self._folder.package + "."
        if not fullname.startswith(prefix):
            return None
        parts = fullname[len(prefix) :].split(".")
        for part in parts:
            # Only names that map to one file in the folder: no empty, absolute or
            # look-alike parts that a path join would take elsewhere.
            problem = check_name(part)
            if problem is not None:
                raise ModuleNotFoundError(
                    f"No module named {fullname!r} in {self._folder.folder}: {problem}", name=fullname
                )
        base = self._folder.folder.joinpath(*parts)
        init = base / "__init__.py"
        module_file = base.with_name(parts[-1] + ".py")
        # lexists, not is_file: a FIFO or a dangling link gets the reader's precise refusal.
        if init.is_dir() or os.path.lexists(init):
            file, package = init, True
        elif not module_file.is_dir() and os.path.lexists(module_file):
            file, package = module_file, False
        else:
            # Not ours to find elsewhere either: an empty __path__ keeps the default
            # finders (and any .pyc or extension module planted here) out.
            raise ModuleNotFoundError(f"No module named {fullname!r} in {self._folder.folder}", name=fullname)
        spec = importlib.machinery.ModuleSpec(
            fullname, _Loader(self._folder, file), origin=str(file), is_package=package
        )
        spec.has_location = True
        if package:
            spec.submodule_search_locations = []
        return spec


# -- the folder ------------------------------------------------------------------------------


def _ignored(name: str) -> bool:
    """Helpers, hidden files, editor scratch files: never plugins."""
    return (
        name.startswith(("_", ".", "#"))
        or name.endswith(("~", ".swp", ".swx", ".tmp", "___jb_tmp___", "___jb_old___"))
        or name == "4913"
    )


def _package_name(folder: Path) -> str:
    stem = "".join(c if c.isalnum() else "_" for c in folder.name) or "folder"
    base = f"hotmod_plugins_{stem}"
    name, n = base, 1
    while name in sys.modules:
        n += 1
        name = f"{base}_{n}"
    return name


def _requires(data: bytes) -> tuple[str, ...]:
    """``__requires__ = ("a", "b")`` read from the source, before anything runs."""
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()  # the import reports it, on this plugin alone
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__requires__" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return ()
            if isinstance(value, str):
                return (value,)
            if isinstance(value, (tuple, list)):
                return tuple(v for v in value if isinstance(v, str))
    return ()


class PluginFolder:
    """Plugins from one folder: a new file loads, an edit reloads, a deletion unloads."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        host: Any = None,
        on_load: PluginListener | None = None,
        on_unload: PluginListener | None = None,
        package: str | None = None,
        trust: Trust = "strict",
        backend: BackendName = "auto",
        apply: ApplyMode = "background",
        poll_interval: float = 0.5,
        debounce: float = 0.05,
        max_file_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        if trust not in ("strict", "warn", "off"):
            raise ValueError(f"trust must be 'strict', 'warn' or 'off', not {trust!r}")
        self.folder = Path(os.path.realpath(os.fspath(folder)))
        if not self.folder.is_dir():
            raise HotmodError(f"plugin folder {self.folder} is not a folder")
        self.package = package or _package_name(self.folder)
        if self.package in sys.modules:
            raise HotmodError(f"module name {self.package!r} is taken; pass another package=")
        self.host = host
        self.trust: Trust = trust
        self.max_file_size = max_file_size
        self.apply = apply
        self.debounce = debounce
        self._on_load = on_load
        self._on_unload = on_unload
        self._plugins: dict[str, Plugin] = {}
        self._missing_since: dict[str, float] = {}
        self._listeners = Listeners()
        self._warned: set[str] = set()
        self._folder_refusal: str | None = None
        self._closed = False
        self._parent = ModuleType(self.package, f"plugins from {self.folder}")
        self._parent.__path__ = []  # our finder resolves names; nothing else looks here
        self._parent.__file__ = None
        spec = importlib.machinery.ModuleSpec(self.package, None, is_package=True)
        spec.submodule_search_locations = []
        self._parent.__spec__ = spec
        self._finder = _Finder(self)
        with _RELOAD_LOCK:
            sys.modules[self.package] = self._parent
            sys.meta_path.insert(0, self._finder)
            self._reloader = Reloader(
                [self.folder],
                backend=backend,
                apply="manual",
                poll_interval=poll_interval,
                debounce=debounce,
                dependents="reexec",  # a helper's edit re-runs the plugins that import it
                # A plugin's version is one run of its module: teardown of the old one and
                # setup of the new one frame it, so its whole code runs on every edit.
                strategy="module",
                _reader=self._read,
                _before_commit=self._swap_versions,
            )
            # reload_now() goes through the folder, which also loads and unloads plugins.
            _appliers.unregister(self._reloader)
        self._apply_thread = ApplyThread("hotmod-plugins", self._run, self._reloader._seams.wake)
        _appliers.register(self)

    # -- public ------------------------------------------------------------------------------

    @property
    def plugins(self) -> Mapping[str, Plugin]:
        return MappingProxyType(dict(self._plugins))

    def load(self) -> Mapping[str, Plugin]:
        """Load every plugin not loaded yet, in order; refusals and failures are recorded."""
        self._check_open()
        with _RELOAD_LOCK:
            result = self._discover(load_all=True)
        self._emit(result)
        return self.plugins

    def poll(self) -> ReloadResult:
        """Load new plugins, unload deleted ones and apply edits, now, on this thread."""
        self._check_open()
        with _RELOAD_LOCK:
            found = self._discover(load_all=False)
            edits = self._reloader.poll()
            self._note_edit(edits)
            result = combine([found, edits])
        self._emit(result)
        return result

    def _apply_now(self) -> ReloadResult:
        self._reloader._seams.compare_all()
        return self.poll()

    def notify(self, *paths: str | os.PathLike[str]) -> None:
        """Tell the folder these files changed (the manual backend's only input)."""
        self._reloader.notify(*paths)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(result)`` after every poll that did something."""
        return self._listeners.subscribe(listener)

    def start(self) -> Self:
        """Watch the folder; with ``apply="background"`` apply changes on a thread."""
        self._check_open()
        # The folder itself is watched even while it holds no plugin, so that a new
        # file wakes the applying thread at once.
        self._reloader._seams.watch_file(self.folder / _FOLDER_SENTINEL)
        self._reloader.start()
        if self.apply == "background":
            self._apply_thread.start()
        return self

    def stop(self) -> None:
        self._apply_thread.stop()
        self._reloader.stop()

    def close(self) -> None:
        """Unload every plugin (reverse load order) and remove what the folder installed."""
        if self._closed:
            return
        _appliers.unregister(self)
        self.stop()
        with _RELOAD_LOCK:
            for plugin in reversed(list(self._plugins.values())):
                if plugin.state == "loaded":
                    self._unload(plugin)
            self._closed = True
            self._reloader.close()
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            for name in [n for n in sys.modules if n == self.package or n.startswith(self.package + ".")]:
                del sys.modules[name]
            self._listeners.clear()

    def __enter__(self) -> Self:
        self.load()
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        loaded = sum(p.state == "loaded" for p in self._plugins.values())
        return (
            f"<hotmod.PluginFolder {self.folder} package={self.package} loaded={loaded}/{len(self._plugins)}>"
        )

    # -- reading -----------------------------------------------------------------------------

    def _read(self, path: Path) -> Source:
        if self._folder_refusal is not None and self.trust == "strict":
            raise Untrusted(self._folder_refusal)
        data, st, problem = read_checked(path, self.folder, self.trust, self.max_file_size)
        if problem is not None and problem not in self._warned:
            self._warned.add(problem)
            message = f"hotmod plugins: {problem}; loading it anyway (trust='warn')"
            logger.warning("%s", message)
            warnings.warn(message, HotmodWarning, stacklevel=2)
        return Source(path, data, digest(data), st.st_mtime_ns)

    # -- discovery -----------------------------------------------------------------------------

    def _candidates(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return found
        for entry in entries:
            name = entry.name
            if _ignored(name):
                continue
            path = Path(entry.path)
            if name.endswith(".py") and not entry.is_dir():
                found[name[:-3]] = path
            elif entry.is_dir() and (path / "__init__.py").is_file():
                found[name] = path / "__init__.py"
        return found

    def _discover(self, *, load_all: bool) -> ReloadResult:
        if self._closed:
            return ReloadResult("noop")
        self._folder_refusal = check_folder(self.folder) if self.trust != "off" else None
        if (
            self._folder_refusal is not None
            and self.trust == "warn"
            and self._folder_refusal not in self._warned
        ):
            self._warned.add(self._folder_refusal)
            message = f"hotmod plugins: {self._folder_refusal}; loading anyway (trust='warn')"
            logger.warning("%s", message)
            warnings.warn(message, HotmodWarning, stacklevel=3)
        results: list[ReloadResult] = []
        candidates = self._candidates()
        now = time.monotonic()
        # Deleted: unloaded once the file has stayed away for the debounce period
        # (editors that delete and recreate on save must not unload the plugin).
        for name, plugin in list(self._plugins.items()):
            if name in candidates or plugin.state == "unloaded":
                self._missing_since.pop(name, None)
                continue
            since = self._missing_since.setdefault(name, now)
            if now - since >= self.debounce:
                self._missing_since.pop(name, None)
                results.append(self._remove(plugin))
        new = {
            n: p
            for n, p in candidates.items()
            if n not in self._plugins or self._plugins[n].state != "loaded"
        }
        if not load_all:
            # A failed or refused plugin is tried again only when its file changes.
            new = {n: p for n, p in new.items() if self._changed_since_failure(n, p)}
        for name in self._load_order(new):
            results.append(self._load(self._plugins[name]))
        return combine(results)

    def _changed_since_failure(self, name: str, path: Path) -> bool:
        plugin = self._plugins.get(name)
        if plugin is None or plugin.state == "unloaded":
            return True
        try:
            current = path.stat().st_mtime_ns, path.stat().st_size
        except OSError:
            return False
        return plugin.failed_stat != current

    def _load_order(self, candidates: Mapping[str, Path]) -> list[str]:
        """Sorted by name; ``__requires__`` moves a plugin after what it requires."""
        for name, path in sorted(candidates.items()):
            plugin = self._plugins.get(name)
            if plugin is None or plugin.path != path:
                plugin = self._plugins[name] = Plugin(name, path, data=plugin.data if plugin else {})
            plugin.error = None
            try:
                plugin.requires = _requires(self._read(path).data)
            except OSError:
                plugin.requires = ()
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, chain: list[str]) -> bool:
            if state.get(name) == 2:
                return True
            if state.get(name) == 1:
                cycle = " -> ".join([*chain[chain.index(name) :], name])
                for member in chain[chain.index(name) :]:
                    self._fail(self._plugins[member], f"__requires__ cycle: {cycle}")
                return False
            state[name] = 1
            ok = True
            for dep in self._plugins[name].requires:
                if dep not in self._plugins or (
                    dep not in candidates and self._plugins[dep].state != "loaded"
                ):
                    self._fail(self._plugins[name], f"requires {dep!r}, which is not a plugin of this folder")
                    ok = False
                elif dep in candidates and not visit(dep, [*chain, name]):
                    ok = False
            state[name] = 2
            if ok and self._plugins[name].error is None:
                order.append(name)
            return ok

        for name in sorted(candidates):
            visit(name, [])
        for name in order:  # ``plugins`` lists them in load order; close() reverses it
            self._plugins[name] = self._plugins.pop(name)
        return order

    def _fail(self, plugin: Plugin, message: str, exc: BaseException | None = None) -> ReloadResult:
        line = error_line(exc, plugin.path) if exc is not None else None
        where = f"{plugin.path}:{line}" if line is not None else str(plugin.path)
        state: PluginState = "refused" if isinstance(exc, Untrusted) else "failed"
        error = ReloadError(
            f"{where}: plugin {plugin.name}: {message}",
            module=self._full(plugin),
            path=plugin.path,
            lineno=line,
        )
        if exc is not None:
            error.__cause__ = exc
        plugin.state = state
        plugin.error = error
        try:
            st = plugin.path.stat()
            plugin.failed_stat = (st.st_mtime_ns, st.st_size)
        except OSError:
            pass
        logger.warning("%s", error)
        return ReloadResult("failed", (self._full(plugin),), (plugin.path,), error)

    def _full(self, plugin: Plugin) -> str:
        return f"{self.package}.{plugin.name}"

    # -- lifecycle ----------------------------------------------------------------------------

    def _load(self, plugin: Plugin) -> ReloadResult:
        started = time.perf_counter()
        bad_name = check_name(plugin.name)
        if bad_name is not None:
            return self._fail(plugin, bad_name)
        if self._folder_refusal is not None and self.trust == "strict":
            return self._fail(plugin, f"refused: {self._folder_refusal}", Untrusted(self._folder_refusal))
        full = self._full(plugin)
        try:
            module = importlib.import_module(full)
        except Untrusted as exc:
            self._drop_modules(full)
            return self._fail(plugin, f"refused: {exc}", exc)
        except (Exception, SystemExit) as exc:
            self._drop_modules(full)
            if isinstance(exc, SystemExit):
                raise
            return self._fail(plugin, f"{type(exc).__name__} while importing: {exc}", exc)
        plugin.module = module
        plugin.failed_stat = None
        error = self._start_version(plugin)
        if error is not None:
            self._drop_modules(full)
            plugin.module = None
            return self._fail(plugin, error[0], error[1])
        plugin.state = "loaded"
        plugin.error = None
        self._reloader._seams.refresh()
        logger.info("plugin %s loaded", plugin.name)
        return ReloadResult("ok", (full,), (plugin.path,), duration=time.perf_counter() - started)

    def _start_version(self, plugin: Plugin) -> tuple[str, BaseException] | None:
        """setup(ctx), then the host's on_load; on failure the cleanups run."""
        assert plugin.module is not None
        ctx = plugin.context = PluginContext(plugin, self.host, self.package)
        setup = plugin.module.__dict__.get("setup")
        step = "setup"
        try:
            if callable(setup):
                setup(ctx)
            step = "on_load"
            if self._on_load is not None:
                self._on_load(plugin)
        except Exception as exc:
            if step == "on_load":
                self._call_teardown(plugin)
            ctx._run_cleanups()
            return f"{type(exc).__name__} in {step}: {exc}", exc
        return None

    def _stop_version(self, plugin: Plugin) -> list[str]:
        """The host's on_unload, teardown(ctx), then the cleanup stack; errors are reported."""
        problems: list[str] = []
        if self._on_unload is not None:
            try:
                self._on_unload(plugin)
            except Exception as exc:
                logger.exception("plugin %s: on_unload raised", plugin.name)
                problems.append(f"plugin {plugin.name}: on_unload raised {type(exc).__name__}: {exc}")
        problems.extend(self._call_teardown(plugin))
        if plugin.context is not None:
            problems.extend(
                f"plugin {plugin.name}: a cleanup raised {type(err).__name__}: {err}"
                for err in plugin.context._run_cleanups()
            )
        return problems

    def _call_teardown(self, plugin: Plugin) -> list[str]:
        teardown = plugin.module.__dict__.get("teardown") if plugin.module is not None else None
        if not callable(teardown) or plugin.context is None:
            return []
        try:
            teardown(plugin.context)
        except Exception as exc:
            logger.exception("plugin %s: teardown raised", plugin.name)
            return [f"plugin {plugin.name}: teardown raised {type(exc).__name__}: {exc}"]
        return []

    def _unload(self, plugin: Plugin) -> list[str]:
        problems = self._stop_version(plugin)
        if plugin.module is not None:
            problems.extend(_hot.unload(plugin.module))
        self._drop_modules(self._full(plugin))
        plugin.module = None
        plugin.context = None
        plugin.state = "unloaded"
        self._reloader._seams.refresh()
        logger.info("plugin %s unloaded", plugin.name)
        return problems

    def _remove(self, plugin: Plugin) -> ReloadResult:
        full = self._full(plugin)
        problems = self._unload(plugin) if plugin.state == "loaded" else []
        del self._plugins[plugin.name]
        return ReloadResult(
            "ok",
            (full,),
            (plugin.path,),
            warnings=(f"plugin {plugin.name} unloaded: its file was deleted", *problems),
        )

    def _drop_modules(self, full: str) -> None:
        for name in [n for n in sys.modules if n == full or n.startswith(full + ".")]:
            del sys.modules[name]

    # -- edits: between the new code's execution and its commit --------------------------------

    def _plugin_of(self, unit: _transaction.Unit) -> Plugin | None:
        prefix = self.package + "."
        if not unit.name.startswith(prefix):
            return None
        plugin = self._plugins.get(unit.name[len(prefix) :])
        return (
            plugin
            if plugin is not None and plugin.state == "loaded" and plugin.module is unit.module
            else None
        )

    def _swap_versions(self, units: list[_transaction.Unit]) -> ReloadError | None:
        """Tear the old versions down and set the new ones up; undo it all on a failure."""
        swapped: list[tuple[_transaction.Unit, Plugin]] = []
        for unit in units:
            plugin = self._plugin_of(unit)
            if plugin is None:
                continue
            with _transaction.old_version_visible(unit):
                self._stop_version(plugin)
            failure = self._start_version(plugin)
            if failure is None:
                swapped.append((unit, plugin))
                continue
            # Roll back: this plugin's old version comes back, then the others'.
            for back_unit, back_plugin in [*reversed(swapped), (unit, plugin)]:
                if back_plugin is not plugin:
                    self._stop_version(back_plugin)
                with _transaction.old_version_visible(back_unit):
                    if self._start_version(back_plugin) is not None:
                        back_plugin.state = "failed"
            message, exc = failure
            line = error_line(exc, plugin.path)
            where = f"{plugin.path}:{line}" if line is not None else str(plugin.path)
            error = ReloadError(
                f"{where}: plugin {plugin.name}: {message}; the previous version keeps running",
                module=unit.name,
                path=plugin.path,
                lineno=line,
            )
            error.__cause__ = exc
            return error
        return None

    def _note_edit(self, result: ReloadResult) -> None:
        """Record a refused edit on its plugin; a good one clears the last error."""
        prefix = self.package + "."
        for name in result.modules:
            plugin = self._plugins.get(name[len(prefix) :].split(".")[0]) if name.startswith(prefix) else None
            if plugin is None:
                continue
            if result.status == "ok":
                plugin.error = None
            elif isinstance(result.error, ReloadError) and result.status in ("aborted", "failed"):
                plugin.error = result.error

    # -- plumbing -----------------------------------------------------------------------------

    def _emit(self, result: ReloadResult) -> None:
        self._listeners.emit(result)

    def _check_open(self) -> None:
        if self._closed:
            raise HotmodError("this PluginFolder is closed")

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self._reloader._seams.wait_for_changes(self._reloader.poll_interval)
            if stopping.is_set():
                break
            try:
                self.poll()
            except HotmodError:
                break
            except Exception:
                logger.exception("hotmod plugins: unexpected error while applying changes; still watching")
