"""Rolls dice and counts rolls across reloads (ctx.data persists)."""

import random

try:
    import pluggy

    hookimpl = pluggy.HookimplMarker("bot")
except ImportError:

    def hookimpl(fn):
        return fn


ROLLS = {"count": 0}


def roll(text):
    sides = int(text) if text.strip().isdigit() else 6
    ROLLS["count"] += 1
    return f"rolled {random.randint(1, sides)} (d{sides}, roll #{ROLLS['count']})"


def setup(ctx):
    global ROLLS
    ROLLS = ctx.data.setdefault("rolls", {"count": 0})  # survives edits of this file
    if ctx.host is not None:  # the pluggy bot calls the hook below instead
        ctx.host.command("roll", roll)


def teardown(ctx):
    if ctx.host is not None:
        ctx.host.commands.pop("roll", None)


@hookimpl
def handle(command, text):
    return roll(text) if command == "roll" else None
