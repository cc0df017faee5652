"""Run the echo server with live reloading: ``python examples/echo_server/main.py``."""

import logging
import time
from pathlib import Path

import hotmod

HERE = Path(__file__).resolve().parent  # on sys.path already: it holds the script

logging.basicConfig(level=logging.INFO, format="%(message)s")

with hotmod.Reloader([HERE]) as reloader:
    import server

    host, port = server.LISTENER.getsockname()
    print(f"echo server on {host}:{port}; try: nc {host} {port}")
    print(f"edit {HERE / 'server.py'} or settings.json while it runs; Ctrl-C to stop")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        reloader.close(unload=True)  # runs the unload hook: the listener is closed
