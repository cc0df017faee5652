"""The chat socket's answers."""

from __future__ import annotations


def reply(text: str) -> str:
    return f"echo: {text}"
