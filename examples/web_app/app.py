"""A Starlette app served by uvicorn and reloaded in place by hotmod.

    cd examples/web_app
    python -m uvicorn app:app

Open http://127.0.0.1:8000, then edit pages.py, chat.py, settings.json,
templates/index.html or static/style.css: the page follows each save, the visit count
and the chat history stay, and an open chat connection stays open.

Live reload answers this machine only (loopback clients, loopback host names); to try
it from a phone on the network, serve on 0.0.0.0 and list the name it uses in
``enable(app, allowed_hosts=[...])``. ``HOTMOD=0`` in the environment turns it off.
"""

from __future__ import annotations

import logging
from pathlib import Path

import chat
import pages
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket, WebSocketDisconnect

import hotmod
import hotmod.web

HERE = Path(__file__).resolve().parent
hot = hotmod.hot(__name__)
# hotmod logs one line per reload; uvicorn shows only its own loggers.
logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")

# In memory, and kept across reloads of this module: a restart would lose it.
state = hot.keep("state", lambda: {"visits": 0, "messages": []})
templates = Jinja2Templates(directory=HERE / "templates")


async def home(request: Request) -> Response:
    state["visits"] += 1
    return templates.TemplateResponse(request, "index.html", pages.context(state))


async def status(request: Request) -> Response:
    counts = {"visits": state["visits"], "messages": len(state["messages"])}
    return JSONResponse({"title": pages.title(), **counts})


async def chat_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            answer = chat.reply(text)  # edited while the socket is open: the next message runs the new code
            state["messages"].append(answer)
            await websocket.send_text(answer)
    except WebSocketDisconnect:
        pass


app = Starlette(
    routes=[
        Route("/", home),
        Route("/status", status),
        WebSocketRoute("/ws", chat_socket),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
)
# The one line. The static folder is found from the mount; templates are named here.
hotmod.web.enable(app, assets=[HERE / "templates"])
