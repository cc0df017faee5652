"""What a Reloader and a PluginFolder share: listeners, and the thread that applies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from . import _threads
from ._changes import SWITCH
from ._detection import Detection
from .errors import HotmodError
from .result import ReloadResult

__all__ = ["STOP_TIMEOUT", "ApplyThread", "Listener", "Listeners"]

logger = logging.getLogger(__name__)

Listener = Callable[[ReloadResult], object]

# How long stop() waits for the thread to finish what it is doing (a reload, a listener).
STOP_TIMEOUT = 10.0


class Listeners:
    """Callbacks told of every result that did something; one that raises stays subscribed."""

    def __init__(self) -> None:
        self._items: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._items.append(listener)

        def unsubscribe() -> None:
            if listener in self._items:
                self._items.remove(listener)

        return unsubscribe

    def emit(self, result: ReloadResult) -> None:
        if result.status == "noop":
            return
        for listener in list(self._items):
            try:
                listener(result)
            except (Exception, SystemExit):
                # SystemExit too: on the applying thread it would end that thread silently,
                # and the listeners after this one would not hear of the result.
                logger.exception("hotmod listener %r raised; it stays subscribed", listener)

    def clear(self) -> None:
        self._items.clear()


class ApplyThread:
    """A daemon thread running ``loop(stopping)`` until ``stop()``; both are idempotent."""

    def __init__(self, name: str, loop: Callable[[threading.Event], None], wake: Callable[[], None]) -> None:
        self._name = name
        self._loop = loop
        self._wake = wake
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            # A new event for each thread: one that outlived stop() (held by a listener or
            # by module code that does not return) keeps its own stop request.
            self.stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._main, args=(self.stopping,), name=self._name, daemon=True
            )
            # Never suspended by a debugger in the middle of a reload (see _threads).
            _threads.mark(self._thread)
            self._thread.start()

    def _main(self, stopping: threading.Event) -> None:
        try:
            self._loop(stopping)
        finally:
            # The loop may end between a save's arrival and its apply (stop() then): the
            # switch interval it held short for that save goes back now.
            SWITCH.release_thread(threading.get_ident())

    def forget_thread(self) -> None:
        """In a forked child: the thread is not there; ``start()`` makes a new one."""
        self._thread = None

    def stop(self) -> None:
        thread = self._thread
        self.stopping.set()
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=STOP_TIMEOUT)
            if thread.is_alive():
                logger.warning(
                    "hotmod: thread %s did not stop within %g s (a listener or module code that "
                    "does not return?); it ends once that returns",
                    self._name,
                    STOP_TIMEOUT,
                )
        self._thread = None


# How often a closed safe point (a REPL running a statement) is looked at again.
SAFE_POINT_RETRY = 0.05

SafePoint = Callable[[Callable[[], object]], bool]


def apply_loop(
    stopping: threading.Event,
    detection: Detection,
    *,
    poll_interval: float,
    poll: Callable[[], object],
    catch_up: Callable[[], None],
    safe_point: SafePoint | None,
) -> None:
    """A background reloader's thread: wait for changes, apply them (at the host's safe
    point, when it has one), and keep going whatever an apply raises."""
    while not stopping.is_set():
        detection.wait(poll_interval)
        if stopping.is_set():
            break
        try:
            detection.check()
            if safe_point is None:
                poll()
            elif not detection.has_work():
                # Nothing to apply: leave the host alone, but track what it imported
                # meanwhile (a lazy import, a handler's), so that its saves are seen.
                catch_up()
            elif not safe_point(poll):
                stopping.wait(SAFE_POINT_RETRY)
        except HotmodError:
            break  # closed under us
        except Exception:
            logger.exception("hotmod: unexpected error while applying changes; still watching")
