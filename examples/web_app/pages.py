"""What the home page shows: edit these and the open page refreshes itself."""

from __future__ import annotations

import settings


def title() -> str:
    return "hotmod web example"


def context(state: dict[str, object]) -> dict[str, object]:
    messages = state["messages"]
    assert isinstance(messages, list)
    return {
        "title": title(),
        "greeting": settings.SETTINGS["greeting"],
        "visits": state["visits"],
        "messages": messages[-5:],
    }
