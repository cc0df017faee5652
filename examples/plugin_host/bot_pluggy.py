"""The same bot, with plugins registered on a pluggy PluginManager.

    pip install pluggy && python examples/plugin_host/bot_pluggy.py

Each plugin may implement the ``handle(command, text)`` hook; the first non-None answer
wins. hotmod registers a plugin when it loads and unregisters it when it unloads; an
edited plugin is registered again with its new code.
"""

import sys
from pathlib import Path

import pluggy

import hotmod

hookspec = pluggy.HookspecMarker("bot")


class BotSpec:
    @hookspec(firstresult=True)
    def handle(self, command, text):
        """Answer ``command`` or return None."""


def main():
    pm = pluggy.PluginManager("bot")
    pm.add_hookspecs(BotSpec)
    folder = Path(__file__).resolve().parent / "plugins"
    with hotmod.PluginFolder(
        folder,
        on_load=lambda plugin: pm.register(plugin.module, name=plugin.name),
        on_unload=lambda plugin: pm.unregister(name=plugin.name),
    ):
        print("type a command, Ctrl-D to quit")
        for line in sys.stdin:
            command, _, text = line.strip().partition(" ")
            if command:
                answer = pm.hook.handle(command=command, text=text)
                print(answer if answer is not None else f"unknown command {command!r}", flush=True)


if __name__ == "__main__":
    main()
