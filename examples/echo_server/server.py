"""A small TCP service whose code is edited while it runs.

Run it with ``python examples/echo_server/main.py`` and talk to it with
``nc 127.0.0.1 <port>``. Edit ``reply()`` or ``settings.json`` while it runs: the
next line you send gets the new behaviour, on the same listening socket, served by
the same thread, with the cache intact.
"""

import contextlib
import json
import socket
import threading
import time

import hotmod

hot = hotmod.hot(__name__)

# -- kept across versions: made on the first load only ------------------------------


def _listen():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", SETTINGS["port"]))
    sock.listen()
    return sock


# Re-read whenever settings.json changes: the module re-executes with its hooks.
SETTINGS = json.loads(hot.depends_on("settings.json").read_text())
LISTENER = hot.keep("listener", _listen)
CACHE = hot.keep("cache", dict)  # line -> times seen, survives every edit
COMMANDS = hot.keep("commands", dict)  # name -> function; re-registering replaces


def command(name):
    def register(fn):
        COMMANDS[name] = fn  # keyed by name: one entry per command, whatever the reloads
        return fn

    return register


# -- the behaviour: edit freely --------------------------------------------------------


@command("upper")
def upper(text):
    return text.upper()


@command("count")
def count(text):
    return str(CACHE.get(text, 0))


def reply(line):
    CACHE[line] = CACHE.get(line, 0) + 1
    name, _, rest = line.partition(" ")
    if name in COMMANDS:
        return COMMANDS[name](rest)
    return f"{SETTINGS['greeting']}, {line}"


# -- the serving thread is kept; it looks reply() up on every request -------------------


def serve():
    while True:
        try:
            conn, _ = LISTENER.accept()
        except OSError:  # the listener was closed: the app is shutting down
            return
        with conn:
            for raw in conn.makefile("r", encoding="utf-8"):
                conn.sendall((reply(raw.strip()) + "\n").encode())


SERVER = hot.keep("server", lambda: threading.Thread(target=serve, name="echo-server", daemon=True))
if not SERVER.is_alive():
    SERVER.start()

# -- a per-version worker: stopped on dispose, started again by the new version --------

_stop = threading.Event()
BEATS = hot.keep("beats", lambda: {"count": 0})


def _beat():
    while not _stop.wait(SETTINGS["heartbeat"]):
        BEATS["count"] += 1


HEARTBEAT = threading.Thread(target=_beat, name=f"echo-heartbeat-{hot.generation}", daemon=True)
HEARTBEAT.start()


@hot.on_dispose
def _stop_heartbeat(data):
    # Runs against this version's globals: it stops this version's thread.
    _stop.set()
    HEARTBEAT.join(timeout=5)
    data["stopped_at"] = time.time()


@hot.on_unload
def _close(data):
    _stop.set()
    with contextlib.suppress(OSError):
        LISTENER.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
    LISTENER.close()
