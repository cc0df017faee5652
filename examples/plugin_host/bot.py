"""A command bot whose commands come from ./plugins, edited while it runs.

    python examples/plugin_host/bot.py

Type ``help``, ``hello you``, ``roll 3``. Add, edit or delete a file in plugins/ while
the bot runs: the next line you type sees the change. A broken plugin is reported and
the others keep working.
"""

import logging
import sys
from pathlib import Path

import hotmod


class Bot:
    def __init__(self):
        self.commands = {}

    def command(self, name, fn):
        self.commands[name] = fn

    def handle(self, line):
        name, _, rest = line.strip().partition(" ")
        if name == "help":
            return "commands: " + ", ".join(sorted(self.commands))
        fn = self.commands.get(name)
        return fn(rest) if fn else f"unknown command {name!r} (try help)"


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bot = Bot()
    folder = Path(__file__).resolve().parent / "plugins"
    with hotmod.PluginFolder(folder, host=bot) as plugins:
        for plugin in plugins.plugins.values():
            print(f"{plugin.name}: {plugin.state}" + (f" ({plugin.error})" if plugin.error else ""))
        print("type a command (help), Ctrl-D to quit")
        for line in sys.stdin:
            if line.strip():
                print(bot.handle(line), flush=True)


if __name__ == "__main__":
    main()
