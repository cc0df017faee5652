"""Greets. Edit the reply while the bot runs."""

from . import _words

try:
    import pluggy

    hookimpl = pluggy.HookimplMarker("bot")
except ImportError:  # the plain bot does not need pluggy

    def hookimpl(fn):
        return fn


def hello(text):
    return f"hello, {text or 'you'}"


def loud(text):
    return _words.shout(text or "hey")


def setup(ctx):
    if ctx.host is None:  # the pluggy bot calls the hook below instead
        return
    ctx.host.command("hello", hello)
    ctx.host.command("loud", loud)
    ctx.on_cleanup(lambda: [ctx.host.commands.pop(n, None) for n in ("hello", "loud")])


@hookimpl
def handle(command, text):
    return {"hello": hello, "loud": loud}.get(command, lambda _: None)(text)
