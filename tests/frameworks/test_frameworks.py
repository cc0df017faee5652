"""Statement-level reloads on real frameworks (issue 17, S19, S20).

Each framework is exercised through its own public API, the way an app uses it: a
method-body edit, an unrelated edit in the same module, a new route or command, a
module-level registration. After each, old and new instances, ``isinstance``, pickling,
validation, queries and served routes behave as after a fresh start, and nothing was
registered twice.
"""

from __future__ import annotations

import pickle
import textwrap

import pytest

from ..support import Pkg, edit
from ..support.django_site import DjangoSite


def _load(pkg: Pkg, name: str, source: str):  # type: ignore[no-untyped-def]
    return pkg.module(name, textwrap.dedent(source))


def _save(r, pkg: Pkg, name: str, source: str):  # type: ignore[no-untyped-def]
    result = edit(r, pkg.path(name), textwrap.dedent(source))
    assert result.status == "ok", (result.summary(), result.warnings)
    return result


# -- module code that must not run again -------------------------------------------------------

COSTLY = """\
from . import log
log.runs.append("loaded")      # a data load, a connection, a registration
HANDLERS = []
HANDLERS.append("startup")

def answer():
    return {v}
"""


def test_an_edit_runs_none_of_the_module_code_again(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = _load(pkg, "costly", COSTLY.format(v=1))
    held = mod.answer
    r = pkg.reloader()
    result = _save(r, pkg, "costly", COSTLY.format(v=2))
    assert held() == 2
    assert runs == ["loaded"]  # the top level did not run again
    assert mod.HANDLERS == ["startup"]  # state filled at import is kept
    assert result.strategies == ((mod.__name__, "statements"),)
    assert result.functions_patched == 1


def test_comments_and_moved_lines_run_nothing_and_tracebacks_point_at_the_new_lines(pkg: Pkg) -> None:
    runs = pkg.counter()
    source = "from . import log\nlog.runs.append(1)\n\ndef boom():\n    raise ValueError('here')\n"
    mod = _load(pkg, "lines", source)
    held = mod.boom
    r = pkg.reloader()
    _save(r, pkg, "lines", source.replace("\ndef boom", "# a comment\n# another\n\ndef boom"))
    assert runs == [1]
    with pytest.raises(ValueError, match="here") as info:
        held()
    assert info.traceback[-1].lineno + 1 == 7  # 1-based line 7 in the new file


def test_a_new_function_and_a_new_import_run_in_the_live_namespace(pkg: Pkg) -> None:
    runs = pkg.counter()
    mod = _load(pkg, "grow", COSTLY.format(v=1))
    r = pkg.reloader()
    _save(
        r, pkg, "grow", COSTLY.format(v=1) + "import json\n\ndef dump():\n    return json.dumps(HANDLERS)\n"
    )
    assert mod.dump() == '["startup"]'
    assert runs == ["loaded"]


def test_a_changed_literal_nobody_reads_at_import_runs_alone(pkg: Pkg) -> None:
    runs = pkg.counter()
    source = "from . import log\nlog.runs.append(1)\nTIMEOUT = {t}\ndef wait():\n    return TIMEOUT\n"
    mod = _load(pkg, "conf", source.format(t=5))
    copy = pkg.module("user", "from .conf import TIMEOUT\n")
    r = pkg.reloader()
    result = _save(r, pkg, "conf", source.format(t=10))
    assert mod.wait() == 10
    assert copy.TIMEOUT == 10  # importers' copies are rebound as always
    assert runs == [1]
    assert result.strategies == ((mod.__name__, "statements"),)


def test_a_changed_statement_that_runs_at_import_runs_the_module_and_says_which(pkg: Pkg) -> None:
    source = "SIZE = {n}\nTABLE = [0] * SIZE\n"
    mod = _load(pkg, "table", source.format(n=2))
    r = pkg.reloader()
    result = _save(r, pkg, "table", source.format(n=3))
    assert mod.TABLE == [0, 0, 0]
    ((_, how),) = result.strategies
    assert how.startswith("module: ")
    assert "table.py:1" in how
    assert "SIZE changed" in how


def test_objects_the_module_made_run_the_new_body(pkg: Pkg) -> None:
    """Functions reachable only through objects built at import (a registry, a partial,
    a class-based decorator) follow the edit."""
    source = """\
    import functools

    class Registry:
        def __init__(self):
            self.handlers = {{}}
        def register(self, fn):
            self.handlers[fn.__name__] = fn
            return fn

    class Traced:
        def __init__(self, fn):
            self.fn = fn
        def __call__(self, *a):
            return self.fn(*a)

    registry = Registry()

    @registry.register
    def on_event():
        return {v}

    @Traced
    def traced(x):
        return x * {v}

    def scale(x, by):
        return x * by * {v}

    doubled = functools.partial(scale, by=2)
    """
    mod = _load(pkg, "made", source.format(v=1))
    handlers = dict(mod.registry.handlers)
    r = pkg.reloader()
    _save(r, pkg, "made", source.format(v=10))
    assert mod.registry.handlers["on_event"]() == 10
    assert handlers["on_event"]() == 10
    assert mod.traced(2) == 20
    assert mod.doubled(1) == 20


def test_a_removed_function_is_pruned_and_a_restored_one_runs_again(pkg: Pkg) -> None:
    source = "def keep():\n    return 1\n\ndef gone():\n    return 1\n"
    mod = _load(pkg, "prune", source)
    r = pkg.reloader()
    result = _save(r, pkg, "prune", "def keep():\n    return 1\n")
    assert not hasattr(mod, "gone")
    assert result.names_pruned == 1
    _save(r, pkg, "prune", source.replace("return 1\n\ndef gone", "return 2\n\ndef gone"))
    assert mod.gone() == 1
    assert mod.keep() == 2


def test_a_raising_new_statement_restores_every_patched_code_object(pkg: Pkg) -> None:
    source = "def f():\n    return 1\n"
    mod = _load(pkg, "atomic", source)
    held = mod.f
    r = pkg.reloader()
    result = edit(r, pkg.path("atomic"), "def f():\n    return 2\n\nraise RuntimeError('late')\n")
    assert result.status == "aborted"
    assert "atomic.py:4" in str(result.error)
    assert held() == 1
    assert mod.f is held
    # And the reloader keeps working.
    _save(r, pkg, "atomic", "def f():\n    return 3\n")
    assert held() == 3


def test_methods_added_edited_and_removed_on_a_kept_class(pkg: Pkg) -> None:
    source = """\
    class Base:
        def hi(self):
            return "base"

    class Shape(Base):
        def area(self):
            return 1
        def old(self):
            return "old"
    """
    mod = _load(pkg, "shapes", source)
    obj = mod.Shape()
    cls = mod.Shape
    r = pkg.reloader()
    _save(
        r,
        pkg,
        "shapes",
        """\
        class Base:
            def hi(self):
                return "base"

        class Shape(Base):
            def area(self):
                return 2
            def hi(self):
                return "shape+" + super().hi()
        """,
    )
    assert mod.Shape is cls
    assert obj.area() == 2
    assert obj.hi() == "shape+base"  # a new method with zero-argument super()
    assert not hasattr(obj, "old")
    assert pickle.loads(pickle.dumps(obj)).area() == 2


# -- pydantic ------------------------------------------------------------------------------------

PYDANTIC = """\
from pydantic import BaseModel, field_validator

class User(BaseModel):
    name: str
    age: int = 0

    @field_validator("name")
    @classmethod
    def strip(cls, v):
        return v.strip(){suffix}

    def greet(self):
        return "hi " + self.name{greet}

def unrelated():
    return {v}
"""


def test_pydantic_models_survive_unrelated_and_method_edits(pkg: Pkg) -> None:
    import pydantic  # noqa: F401  (from the test extra: missing means a broken install, not a skip)

    mod = _load(pkg, "models", PYDANTIC.format(suffix="", greet="", v=1))
    nest = _load(
        pkg,
        "nest",
        "from pydantic import BaseModel\nfrom .models import User\nclass Team(BaseModel):\n    lead: User\n",
    )
    User = mod.User
    old = User(name="a")
    r = pkg.reloader()
    # An unrelated edit: the class statement does not run again.
    _save(r, pkg, "models", PYDANTIC.format(suffix="", greet="", v=2))
    assert mod.unrelated() == 2
    assert mod.User is User
    made = User.model_validate({"name": " b "})
    assert isinstance(made, User)
    assert pickle.loads(pickle.dumps(made)) == made
    assert nest.Team.model_validate({"lead": {"name": "c"}}).lead.name == "c"
    # A method and a validator edited: kept class, new behaviour, old instances too.
    _save(r, pkg, "models", PYDANTIC.format(suffix=".upper()", greet=' + "!"', v=2))
    assert old.greet() == "hi a!"
    made = User.model_validate({"name": " b "})
    assert made.name == "B"
    assert isinstance(made, User)
    assert type(nest.Team(lead={"name": "d"}).lead) is User


# -- SQLAlchemy ----------------------------------------------------------------------------------

SQLA_BASE = """\
from sqlalchemy.orm import DeclarativeBase

class Base(DeclarativeBase):
    pass
"""

SQLA_MODELS = """\
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from .base import Base

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(30))

    def label(self):
        return "user " + self.name{suffix}

def helper():
    return {v}
"""


def test_sqlalchemy_models_keep_their_mapping_across_edits(pkg: Pkg) -> None:
    import sqlalchemy
    from sqlalchemy.orm import Session

    base = _load(pkg, "base", SQLA_BASE)
    mod = _load(pkg, "models", SQLA_MODELS.format(suffix="", v=1))
    engine = sqlalchemy.create_engine("sqlite://")
    base.Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(mod.User(name="ann"))
        session.commit()
    r = pkg.reloader()
    User = mod.User
    _save(r, pkg, "models", SQLA_MODELS.format(suffix="", v=2))  # unrelated
    _save(r, pkg, "models", SQLA_MODELS.format(suffix=' + "!"', v=2))  # a method
    assert mod.User is User
    with Session(engine) as session:
        user = session.scalars(sqlalchemy.select(mod.User)).one()
        assert isinstance(user, User)
        assert user.label() == "user ann!"
        session.add(mod.User(name="bob"))
        session.commit()
        assert session.query(mod.User).count() == 2
    assert len([m for m in base.Base.registry.mappers if m.class_.__name__ == "User"]) == 1
    engine.dispose()  # the pool's sqlite connections, closed (3.13 warns of unclosed ones)


# -- Flask ---------------------------------------------------------------------------------------

FLASK = """\
from flask import Flask

app = Flask(__name__)

@app.route("/")
def index():
    return "v{v}"
{extra}
"""


def test_flask_routes_edit_and_grow_without_registering_twice(pkg: Pkg) -> None:
    import flask  # noqa: F401  (from the test extra: missing means a broken install, not a skip)

    mod = _load(pkg, "webapp", FLASK.format(v=1, extra=""))
    r = pkg.reloader()
    # The same module, edited: the route decorator never runs twice (Flask refuses a
    # second registration of an endpoint), and a new one registers on the live app.
    extra = '\n@app.route("/new")\ndef new():\n    return "new"\n'
    _save(r, pkg, "webapp", FLASK.format(v=2, extra=extra))
    client = mod.app.test_client()
    assert client.get("/").text == "v2"
    assert client.get("/new").text == "new"
    _save(r, pkg, "webapp", FLASK.format(v=3, extra=extra))
    assert client.get("/").text == "v3"


# -- FastAPI -------------------------------------------------------------------------------------

FASTAPI = """\
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()

class Item(BaseModel):
    name: str

@app.get("/")
def index():
    return {{"v": {v}}}

@app.post("/items")
def create(item: Item):
    return {{"name": item.name{suffix}}}
{extra}
"""


@pytest.mark.filterwarnings(
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
)  # starlette's own test client at its lowest versions, with today's anyio: not ours
def test_fastapi_endpoints_edit_and_grow_on_the_served_app(pkg: Pkg) -> None:
    import fastapi  # noqa: F401  (from the test extra: missing means a broken install, not a skip)
    import httpx  # noqa: F401  (from the test extra: missing means a broken install, not a skip)
    from fastapi.testclient import TestClient

    mod = _load(pkg, "api", FASTAPI.format(v=1, suffix="", extra=""))
    client = TestClient(mod.app)
    assert client.get("/").json() == {"v": 1}
    assert client.post("/items", json={"name": "a"}).json() == {"name": "a"}
    r = pkg.reloader()
    extra = '\n@app.get("/new")\ndef new():\n    return {"new": True}\n'
    _save(r, pkg, "api", FASTAPI.format(v=2, suffix=".upper()", extra=extra))
    assert client.get("/").json() == {"v": 2}
    assert client.post("/items", json={"name": "a"}).json() == {"name": "A"}
    assert client.get("/new").json() == {"new": True}
    assert [route.path for route in mod.app.routes].count("/") == 1


# -- click and typer -----------------------------------------------------------------------------

CLICK = """\
import click

@click.group()
def cli():
    pass

@cli.command()
def hello():
    click.echo("hello {v}")
{extra}
"""


def test_click_commands_edit_and_grow_on_the_live_group(pkg: Pkg) -> None:
    import click  # noqa: F401  (from the test extra: missing means a broken install, not a skip)
    from click.testing import CliRunner

    mod = _load(pkg, "tool", CLICK.format(v=1, extra=""))
    group = mod.cli
    runner = CliRunner()
    assert runner.invoke(group, ["hello"]).output == "hello 1\n"
    r = pkg.reloader()
    extra = '\n@cli.command()\ndef bye():\n    click.echo("bye")\n'
    _save(r, pkg, "tool", CLICK.format(v=2, extra=extra))
    assert runner.invoke(group, ["hello"]).output == "hello 2\n"
    assert runner.invoke(group, ["bye"]).output == "bye\n"


TYPER = """\
import typer

app = typer.Typer()

@app.command()
def hello(name: str):
    print("hello " + name + "{suffix}")

@app.command()
def other():
    print("other")
{extra}
"""


def test_typer_commands_edit_and_grow_on_the_live_app(pkg: Pkg) -> None:
    import typer  # noqa: F401  (from the test extra: missing means a broken install, not a skip)
    from typer.testing import CliRunner

    mod = _load(pkg, "ty", TYPER.format(suffix="", extra=""))
    runner = CliRunner()
    assert runner.invoke(mod.app, ["hello", "a"]).output == "hello a\n"
    r = pkg.reloader()
    extra = '\n@app.command()\ndef bye():\n    print("bye")\n'
    _save(r, pkg, "ty", TYPER.format(suffix="!", extra=extra))
    assert runner.invoke(mod.app, ["hello", "a"]).output == "hello a!\n"
    assert runner.invoke(mod.app, ["bye"]).output == "bye\n"


# -- Celery --------------------------------------------------------------------------------------

CELERY = """\
from celery import Celery

app = Celery("tasks", broker="memory://", backend="cache+memory://")
app.conf.task_always_eager = True

@app.task
def add(x, y):
    return x + y{suffix}
"""


def test_celery_task_bodies_follow_edits_and_keep_their_registration(pkg: Pkg) -> None:
    import celery  # noqa: F401  (from the test extra: missing means a broken install, not a skip)

    mod = _load(pkg, "tasks", CELERY.format(suffix=""))
    task = mod.add
    name = task.name
    assert task.delay(1, 2).get() == 3
    registered = mod.app.tasks[name]
    r = pkg.reloader()
    _save(r, pkg, "tasks", CELERY.format(suffix=" + 100"))
    assert mod.add is task
    assert mod.app.tasks[name] is registered  # the same task, under the same name
    assert task.delay(1, 2).get() == 103
    assert registered(1, 2) == 103


# -- numpy ---------------------------------------------------------------------------------------


def test_numpy_vectorized_functions_follow_edits(pkg: Pkg) -> None:
    import numpy as np

    source = "import numpy as np\n\n@np.vectorize\ndef bump(x):\n    return x + {v}\n"
    mod = _load(pkg, "vec", source.format(v=1))
    held = mod.bump
    r = pkg.reloader()
    _save(r, pkg, "vec", source.format(v=10))
    assert list(held(np.array([1, 2]))) == [11, 12]


# -- Django --------------------------------------------------------------------------------------

# Edits of the shared Django site's files (tests.support.django_site): (old text, new text).
DJANGO_MODELS = ('return "item " + self.name', 'return "item " + self.name + "!"')

DJANGO_ADMIN = ("return obj.name", "return obj.name.upper()")


def test_django_models_and_admin_survive_edits(django_site: DjangoSite) -> None:
    from django.apps import apps
    from django.contrib import admin

    models = django_site.module("models")
    admin_module = django_site.module("admin")
    Item = models.Item
    Item.objects.create(name="pen")
    r = django_site.reloader()
    models_text = django_site.original("models").replace(*DJANGO_MODELS)
    for name, text in [
        ("models", models_text),
        ("admin", django_site.original("admin").replace(*DJANGO_ADMIN)),
    ]:
        result = edit(r, django_site.path(name), text)
        assert result.status == "ok", (result.summary(), result.warnings)
    first = Item.objects.first()
    assert type(first) is Item
    assert first.label() == "item pen!"
    assert apps.get_model(django_site.label, "Item") is Item
    assert admin.site._registry[Item].shown(first) == "PEN"
    assert type(admin.site._registry[Item]) is admin_module.ItemAdmin
    # A new field needs a migration: refused, named, and nothing changes.
    with_field = models_text.replace(
        "    def label", "    price = models.IntegerField(default=0)\n\n    def label"
    )
    result = edit(r, django_site.path("models"), with_field)
    assert result.status == "needs_restart", result.summary()
    assert "Item" in str(result.error)
    assert "field price added" in str(result.error)
    assert "migration" in str(result.error)
    assert models.Item is Item
    assert apps.get_model(django_site.label, "Item") is Item
    assert type(Item.objects.first()) is Item
    assert r.poll().status == "noop"  # reported once


@pytest.mark.parametrize("strategy", ["statements", "module"])
def test_definitions_removed_then_restored_reconnect_held_references(pkg: Pkg, strategy: str) -> None:
    """An editor that truncates, pauses and writes, with no debounce to hide it: the
    definitions vanish for one reload and come back as the same objects."""
    source = "class Shape:\n    def area(self):\n        return {v}\n\ndef make():\n    return Shape()\n"
    mod = _load(pkg, "shape", source.format(v=1))
    held_make, held_class, obj = mod.make, mod.Shape, mod.Shape()
    r = pkg.reloader(debounce=0, strategy=strategy)
    assert edit(r, pkg.path("shape"), "").status == "ok"  # truncated
    assert not hasattr(mod, "make")
    _save(r, pkg, "shape", source.format(v=2))  # written
    assert mod.make is held_make
    assert mod.Shape is held_class
    assert obj.area() == 2
    assert isinstance(held_make(), held_class)
    _save(r, pkg, "shape", source.format(v=3))
    assert held_make().area() == 3


def test_a_method_that_starts_calling_super_keeps_its_identity_and_runs_it(pkg: Pkg) -> None:
    """Its closure cannot take the new code (``__class__`` is a new free variable): the
    old function object forwards to the new one, so every reference runs the edit."""
    source = """\
    class Base:
        def hi(self):
            return "base"

    class Child(Base):
        def hi(self):
            return {body}
    """
    mod = _load(pkg, "sup", source.format(body='"child"'))
    method = mod.Child.__dict__["hi"]
    obj = mod.Child()
    bound = obj.hi
    r = pkg.reloader()
    result = _save(r, pkg, "sup", source.format(body='"child+" + super().hi()'))
    assert result.strategies == ((mod.__name__, "statements"),)
    assert mod.Child.__dict__["hi"] is method
    assert bound() == "child+base"
    assert obj.hi() == "child+base"
    assert method.__wrapped__(obj) == "child+base"
    # And the next edits apply through the same object.
    _save(r, pkg, "sup", source.format(body='"kid+" + super().hi()'))
    assert bound() == "kid+base"
    _save(r, pkg, "sup", source.format(body='"plain"'))
    assert bound() == "plain"


def test_closures_made_before_the_edit_run_the_new_code_of_their_def(pkg: Pkg) -> None:
    """A factory's products made at run time (kept in the module) follow an edit of the
    nested def, as fresh closures would run it."""
    source = (
        "HANDLERS = []\n\ndef make(n):\n    def handle(x):\n        return x * n{suffix}\n    return handle\n"
    )
    mod = _load(pkg, "factory", source.format(suffix=""))
    mod.HANDLERS.append(mod.make(2))
    held = mod.HANDLERS[0]
    r = pkg.reloader()
    result = _save(r, pkg, "factory", source.format(suffix=" + 100"))
    assert result.strategies == ((mod.__name__, "statements"),)
    assert held(1) == 102
    assert mod.make(3)(1) == 103
