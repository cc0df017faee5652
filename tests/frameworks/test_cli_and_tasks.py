"""click, typer and Celery (issue 18): a failed save takes back what it registered, and
the reloaded process answers as a fresh start on the same files does.

A statement reload runs a new ``@cli.command()``, ``@app.command()`` or ``@app.task``
against the live group, app or Celery app: the registration happens at once, before a
later statement of the same save can fail.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from ..support import Pkg, edit, fresh_answers, reload_error

TOOL = """\
import click
import typer
from celery import Celery

@click.group()
def cli():
    pass

@cli.command()
@click.option("--name", default="world")
def hello(name):
    click.echo("hello " + name{suffix})

app = typer.Typer()

@app.command()
def one():
    print("one")

@app.command()
def two():
    print("two")

tasks = Celery("tool", broker="memory://", backend="cache+memory://")
tasks.conf.task_always_eager = True

@tasks.task
def add(x, y):
    return x + y{suffix_task}
{extra}"""

EXTRA = """
@cli.command()
def bye():
    click.echo("bye")

@app.command()
def three():
    print("three")

@tasks.task
def mul(x, y):
    return x * y
"""

FAILING = EXTRA + '\nraise RuntimeError("the end of the module fails")\n'

PROBE = """\
import json

from click.testing import CliRunner
from typer.testing import CliRunner as TyperRunner


def answers(tool):
    click_runner, typer_runner = CliRunner(), TyperRunner()
    return {
        "click": sorted(tool.cli.commands),
        "hello": click_runner.invoke(tool.cli, ["hello", "--name", "ann"]).output,
        "bye": click_runner.invoke(tool.cli, ["bye"]).output,
        "typer": [typer_runner.invoke(tool.app, [c]).output for c in ("one", "three")],
        # Tasks are shared with every app by default: another test's app adds its own.
        "tasks": sorted(name for name in tool.tasks.tasks if name.startswith(tool.__name__)),
        "add": tool.add.delay(2, 3).get(),
    }


if __name__ == "__main__":
    from . import tool

    print(json.dumps(answers(tool)))
"""


def _source(suffix: str = "", suffix_task: str = "", extra: str = "") -> str:
    return TOOL.format(suffix=suffix, suffix_task=suffix_task, extra=extra)


def _registered(tool: Any) -> tuple[list[str], int, list[str]]:
    tasks = sorted(name for name in tool.tasks.tasks if not name.startswith("celery."))
    return sorted(tool.cli.commands), len(tool.app.registered_commands), tasks


def test_a_failed_save_takes_back_its_commands_and_tasks(pkg: Pkg) -> None:
    tool = pkg.module("tool", _source())
    group, app, tasks, task = tool.cli, tool.app, tool.tasks, tool.add
    assert task.delay(1, 2).get() == 3  # the app is finalized, as in a worker that ran
    before = _registered(tool)
    r = pkg.reloader()
    failed = edit(r, pkg.path("tool"), _source(extra=FAILING))
    assert failed.status == "aborted", failed.summary()
    assert (
        reload_error(failed).lineno
        == _source(extra=FAILING).splitlines().index('raise RuntimeError("the end of the module fails")') + 1
    )
    assert _registered(tool) == before
    assert "bye" not in group.commands
    # The corrected save registers them, once, on the same objects.
    fixed = edit(r, pkg.path("tool"), _source(extra=EXTRA))
    assert fixed.status == "ok", fixed.summary()
    assert (tool.cli, tool.app, tool.tasks, tool.add) == (group, app, tasks, task)
    commands, typer_commands, names = _registered(tool)
    assert commands == ["bye", "hello"]
    assert typer_commands == 3
    assert names == sorted([*before[2], pkg.qualname("tool") + ".mul"])
    assert tool.mul.delay(2, 3).get() == 6
    # Tasks are shared: an app finalized later gets each one, from the corrected run only
    # (the failed run's would make two callables under one name, the first one winning).
    from celery import Celery

    later = Celery("later")
    later.finalize()
    assert later.tasks[pkg.qualname("tool") + ".mul"].run(2, 3) == 6


def test_after_edits_the_process_answers_as_a_fresh_start(pkg: Pkg, tmp_path: Path) -> None:
    probe = pkg.module("probe", PROBE)
    tool = pkg.module("tool", _source())
    assert tool.add.delay(1, 1).get() == 2
    r = pkg.reloader()
    for version in (
        _source(extra=EXTRA),  # new commands and a new task
        _source(suffix=' + "!"', suffix_task=" + 100", extra=EXTRA),  # edited bodies
        _source(suffix=' + "!"', suffix_task=" + 100", extra=FAILING),  # refused: nothing changes
    ):
        result = edit(r, pkg.path("tool"), textwrap.dedent(version))
        assert result.status in ("ok", "aborted"), result.summary()
    reloaded = json.loads(json.dumps(probe.answers(tool)))
    # The fresh process runs the last good version: the one the reloaded process kept.
    pkg.path("tool").write_text(textwrap.dedent(_source(suffix=' + "!"', suffix_task=" + 100", extra=EXTRA)))
    fresh = fresh_answers(pkg, tmp_path, "probe")
    assert reloaded == fresh
    assert fresh["hello"] == "hello ann!\n"
    assert fresh["add"] == 105
    assert fresh["typer"] == ["one\n", "three\n"]
