"""Framework adapters (issue 18): structural changes applied to the framework, or refused.

Each through the framework's own public API, after the app served requests (FastAPI
computes a route's parameters when the route is made and the schema at its first
request; Flask refuses new routes after its first request).
"""

from __future__ import annotations

import sys
import textwrap
from types import ModuleType
from typing import Any

import pytest

import hotmod
import hotmod.adapters

from ..support import Pkg, edit


def _load(pkg: Pkg, name: str, source: str) -> Any:
    return pkg.module(name, textwrap.dedent(source))


def _save(r: hotmod.Reloader, pkg: Pkg, name: str, source: str) -> hotmod.ReloadResult:
    result = edit(r, pkg.path(name), textwrap.dedent(source))
    assert result.status == "ok", (result.summary(), result.warnings)
    return result


FASTAPI = """\
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()

class Item(BaseModel):
    name: str{field}

@app.get("/search")
def search({params}):
    return {{"found": {found}}}

@app.post("/items")
def create(item: Item):
    return item.model_dump()
"""


@pytest.mark.filterwarnings(
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
)  # starlette's own test client at its lowest versions, with today's anyio: not ours
def test_fastapi_new_parameters_body_fields_and_schema_after_requests(pkg: Pkg) -> None:
    from fastapi.testclient import TestClient

    mod = _load(pkg, "api", FASTAPI.format(field="", params="q: str = ''", found="q"))
    client = TestClient(mod.app)
    assert client.get("/search", params={"q": "a"}).json() == {"found": "a"}
    assert client.post("/items", json={"name": "x", "size": 2}).json() == {"name": "x"}
    assert "limit" not in client.get("/openapi.json").text
    r = pkg.reloader()
    # A new optional parameter, a new required one, a new body field: module code runs
    # for the model (a class-level change), statements for the endpoint.
    _save(
        r,
        pkg,
        "api",
        FASTAPI.format(field="\n    size: int = 0", params="q: str = '', limit: int = 1", found="[q, limit]"),
    )
    assert client.get("/search", params={"q": "a", "limit": 3}).json() == {"found": ["a", 3]}
    assert client.post("/items", json={"name": "x", "size": 2}).json() == {"name": "x", "size": 2}
    assert "limit" in client.get("/openapi.json").text
    _save(
        r,
        pkg,
        "api",
        FASTAPI.format(field="\n    size: int = 0", params="q: str, limit: int", found="[q, limit]"),
    )
    response = client.get("/search", params={"q": "a"})
    assert response.status_code == 422  # the new required parameter is validated, not a 500
    assert client.get("/search", params={"q": "a", "limit": 1}).json() == {"found": ["a", 1]}


ROUTES = """\
from fastapi import APIRouter

router = APIRouter(prefix="/items", tags=["items"])

@router.get("/{{item_id}}")
def read(item_id: int{params}):
    return {{"id": item_id{extra}}}
{more}"""

APP = """\
from fastapi import Depends, FastAPI, Header, HTTPException, APIRouter
from .routes import router

def token(x_token: str = Header("")):
    if x_token != "secret":
        raise HTTPException(status_code=401)

app = FastAPI()
app.include_router(router, prefix="/api", tags=["api"], dependencies=[Depends(token)])
v1 = APIRouter(prefix="/v1")
v1.include_router(router)
app.include_router(v1)
"""

MORE = """
@router.get("/{{item_id}}/{path}")
def more(item_id: int):
    return {{"more": item_id}}
"""


@pytest.mark.parametrize("reloader_first", [False, True], ids=["imported first", "reloader first"])
@pytest.mark.parametrize("strategy", ["statements", "module"])
@pytest.mark.filterwarnings(
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
)  # starlette's own test client at its lowest versions, with today's anyio: not ours
def test_fastapi_included_routers_follow_new_edited_and_moved_routes(
    pkg: Pkg, strategy: str, reloader_first: bool
) -> None:
    """FastAPI up to 0.12x copies a router's routes at ``include_router``; later releases
    keep the router and cache its routes: both must serve what the router has now."""
    from fastapi.testclient import TestClient

    early = pkg.reloader(strategy=strategy) if reloader_first else None
    _load(pkg, "routes", ROUTES.format(params="", extra="", more=""))
    mod = _load(pkg, "app", APP)
    client = TestClient(mod.app)
    auth = {"x-token": "secret"}
    assert client.get("/api/items/1", headers=auth).json() == {"id": 1}
    assert client.get("/v1/items/1").json() == {"id": 1}
    r = early or pkg.reloader(strategy=strategy)
    # A new route on the included router, and a new required parameter on the old one.
    _save(r, pkg, "routes", ROUTES.format(params=", n: int", extra=', "n": n', more=MORE.format(path="more")))
    assert client.get("/api/items/2/more", headers=auth).json() == {"more": 2}
    assert client.get("/api/items/2/more").status_code == 401  # the include's dependency
    assert client.get("/v1/items/2/more").json() == {"more": 2}  # and through two includes
    assert client.get("/api/items/1", headers=auth).status_code == 422  # n is required now
    assert client.get("/api/items/1", params={"n": 5}, headers=auth).json() == {"id": 1, "n": 5}
    assert client.get("/v1/items/1", params={"n": 5}).json() == {"id": 1, "n": 5}
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/api/items/{item_id}/more"]["get"]["tags"] == ["api", "items"]
    # The new route's path changed: the old path is gone everywhere, the new one served.
    _save(
        r, pkg, "routes", ROUTES.format(params=", n: int", extra=', "n": n', more=MORE.format(path="extra"))
    )
    assert client.get("/api/items/3/extra", headers=auth).json() == {"more": 3}
    assert client.get("/v1/items/3/extra").json() == {"more": 3}
    assert client.get("/api/items/3/more", headers=auth).status_code == 404
    assert client.get("/v1/items/3/more").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/items/{item_id}/extra" in paths
    assert "/api/items/{item_id}/more" not in paths
    assert [getattr(route, "path", None) for route in mod.app.routes].count("/api/items/{item_id}/extra") <= 1


LAZY = """\
from fastapi import FastAPI
from flask import Flask
from pydantic import BaseModel

api = FastAPI()
site = Flask(__name__)

class Item(BaseModel):
    name: str{field}

@api.get("/search")
def search({params}):
    return {{"q": q}}
"""


class _NotConfigured:
    """Like ``django.conf.settings`` before ``configure()``: any attribute raises,
    ``__class__`` included (which ``isinstance`` may read)."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError("settings are not configured")


@pytest.mark.filterwarnings(
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
)  # starlette's own test client at its lowest versions, with today's anyio: not ours
def test_a_lazy_proxy_in_another_module_never_stops_the_adapters(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library that imported Django's ``settings`` unconfigured: the adapters look
    through every module for apps and models and must not touch it (they did, with
    ``isinstance``, and gave up with a warning)."""
    from fastapi.testclient import TestClient

    library = ModuleType("library_with_optional_django")
    library.settings = _NotConfigured()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, library.__name__, library)
    mod = _load(pkg, "lazy", LAZY.format(field="", params="q: str = ''"))
    client = TestClient(mod.api)
    assert client.get("/search", params={"q": "a"}).json() == {"q": "a"}
    r = pkg.reloader()
    result = _save(r, pkg, "lazy", LAZY.format(field="\n    size: int = 0", params="q: str"))
    assert result.warnings == ()
    assert client.get("/search").status_code == 422  # the route was made again
    assert mod.Item.model_validate({"name": "a", "size": 2}).size == 2


STARTED = """\
from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()

class Teapot(Exception):
    pass

@app.get("/")
def index():
    return {{"ok": True}}

@app.get("/tea")
def tea():
    raise Teapot()
{extra}"""

STAMP = """
@app.middleware("http")
async def stamp(request, call_next):
    response = await call_next(request)
    response.headers["x-stamp"] = "yes"
    return response

@app.exception_handler(Teapot)
async def teapot(request, exc):
    return JSONResponse({"teapot": True}, status_code=418)
"""

LATE = """
@app.middleware("http")
async def late(request, call_next):
    response = await call_next(request)
    response.headers["x-late"] = "yes"
    return response

raise RuntimeError("the end of the module fails")
"""


@pytest.mark.filterwarnings(
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
)  # starlette's own test client at its lowest versions, with today's anyio: not ours
def test_middleware_and_exception_handlers_added_to_an_app_that_served(pkg: Pkg) -> None:
    """Starlette refuses ``add_middleware`` once the app served a request, and builds its
    exception handlers into the middleware stack: a statement save adding both works,
    and a failed one takes its middleware back."""
    from fastapi.testclient import TestClient

    mod = _load(pkg, "started", STARTED.format(extra=""))
    client = TestClient(mod.app, raise_server_exceptions=False)
    assert "x-stamp" not in client.get("/").headers
    assert client.get("/tea").status_code == 500
    r = pkg.reloader()
    result = _save(r, pkg, "started", STARTED.format(extra=STAMP))
    assert result.strategies == ((pkg.qualname("started"), "statements"),)
    assert client.get("/").headers["x-stamp"] == "yes"
    assert client.get("/tea").json() == {"teapot": True}
    failed = edit(r, pkg.path("started"), textwrap.dedent(STARTED.format(extra=STAMP + LATE)))
    assert failed.status == "aborted", failed.summary()
    response = client.get("/")
    assert "x-late" not in response.headers
    assert response.headers["x-stamp"] == "yes"
    assert len(mod.app.user_middleware) == 1


@pytest.mark.filterwarnings(
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
)  # starlette's own test client at its lowest versions, with today's anyio: not ours
def test_an_app_module_run_again_leaves_every_name_on_the_live_app(pkg: Pkg) -> None:
    """The commit binds importers' ``from .main import app`` to the new run's app; the
    adapter, which keeps the live one, binds them back too."""
    from fastapi.testclient import TestClient

    source = (
        'from fastapi import FastAPI\napp = FastAPI(title="{title}")\n\n'
        '@app.get("/")\ndef index():\n    return app.title\n'
    )
    main = _load(pkg, "main", source.format(title="one"))
    server = _load(pkg, "server", "from .main import app\n")
    live = main.app
    client = TestClient(live)
    assert client.get("/").json() == "one"
    r = pkg.reloader()
    result = _save(r, pkg, "main", source.format(title="two"))  # a changed call: the module runs again
    assert result.strategies[0][1].startswith("module")
    assert main.app is live
    assert server.app is live
    assert client.get("/").json() == "two"


PYDANTIC = """\
from pydantic import BaseModel

class User(BaseModel):
    name: str{field}
"""


def test_pydantic_structural_change_keeps_the_class_and_what_nests_it(pkg: Pkg) -> None:
    mod = _load(pkg, "models", PYDANTIC.format(field=""))
    team = _load(
        pkg,
        "team",
        "from pydantic import BaseModel\nfrom .models import User\nclass Team(BaseModel):\n    lead: User\n",
    )
    User = mod.User
    r = pkg.reloader()
    _save(r, pkg, "models", PYDANTIC.format(field="\n    age: int = 7"))
    assert mod.User is User
    made = User.model_validate({"name": "a", "age": 3})
    assert type(made) is User
    assert made.age == 3
    lead = team.Team.model_validate({"lead": {"name": "b"}}).lead
    assert type(lead) is User
    assert lead.age == 7
    # The field removed again: gone from the kept class and from what nests it.
    _save(r, pkg, "models", PYDANTIC.format(field=""))
    assert "age" not in User.model_fields
    assert "age" not in User.model_validate({"name": "a", "age": 3}).model_dump()
    assert "age" not in team.Team.model_validate({"lead": {"name": "b"}}).lead.model_dump()


GENERIC = """\
from typing import Generic, TypeVar
from pydantic import BaseModel, field_validator

T = TypeVar("T")

class User(BaseModel):
    name: str{user_field}

class Page(BaseModel, Generic[T]):
    items: list[T]{page_field}

class Box(BaseModel, Generic[T]):
    item: T
"""

NEW_TOTAL = """
    total: int = 0

    @field_validator("total")
    @classmethod
    def positive(cls, value: int) -> int:
        return abs(value)"""


@pytest.mark.parametrize("reloader_first", [False, True], ids=["imported first", "reloader first"])
def test_pydantic_generics_parametrized_before_a_structural_edit_take_the_new_fields(
    pkg: Pkg, reloader_first: bool
) -> None:
    early = pkg.reloader() if reloader_first else None
    mod = _load(pkg, "pages", GENERIC.format(user_field="", page_field=""))
    # Parametrizations made outside the module, before the edit: pydantic caches them,
    # and the next Page[str] anywhere returns the same class.
    strings, nested, boxed = mod.Page[str], mod.Page[mod.Page[int]], mod.Box[mod.User]
    assert "total" not in strings.model_fields
    r = early or pkg.reloader()
    _save(r, pkg, "pages", GENERIC.format(user_field="\n    age: int = 7", page_field=NEW_TOTAL))
    page = strings.model_validate({"items": ["a"], "total": -2})
    assert type(page) is strings
    assert page.total == 2  # the new field, through the new validator
    assert mod.Page[str] is strings
    assert "total" in strings.model_json_schema()["properties"]
    outer = nested.model_validate({"items": [{"items": [1], "total": 3}], "total": 1})
    assert type(outer) is nested
    assert type(outer.items[0]) is mod.Page[int]
    assert outer.items[0].total == 3
    held = boxed.model_validate({"item": {"name": "n"}}).item
    assert type(held) is mod.User
    assert held.age == 7
    # A parametrization first made after the edit has the new fields too.
    assert mod.Page[float].model_validate({"items": [1.5], "total": -1}).total == 1


VALIDATED = """\
from pydantic import BaseModel, field_serializer, field_validator

class User(BaseModel):
    name: str
{validator}
class Admin(User):
    level: int = 1
"""

STRIP = """
    @field_validator("name")
    @classmethod
    def strip(cls, value: str) -> str:
        return value.strip(){suffix}
"""


def test_pydantic_validators_added_edited_and_removed_by_statements(pkg: Pkg) -> None:
    """A new ``@field_validator`` is a new method of a kept class (a statement reload);
    pydantic collects validators when the class is made, so it must collect them again."""
    mod = _load(pkg, "users", VALIDATED.format(validator=""))
    User, Admin = mod.User, mod.Admin
    assert User(name=" a ").name == " a "
    r = pkg.reloader()
    result = _save(r, pkg, "users", VALIDATED.format(validator=STRIP.format(suffix="")))
    assert result.strategies == ((pkg.qualname("users"), "statements"),)
    assert User(name=" a ").name == "a"
    assert Admin(name=" b ").name == "b"  # a subclass made before the edit too
    assert type(Admin.model_validate({"name": "c"})) is Admin
    _save(r, pkg, "users", VALIDATED.format(validator=STRIP.format(suffix=".upper()")))
    assert User(name=" a ").name == "A"
    # A serializer is collected the same way.
    shout = (
        '\n    @field_serializer("name")\n'
        '    def shout(self, value: str) -> str:\n        return value + "!"\n'
    )
    _save(r, pkg, "users", VALIDATED.format(validator=STRIP.format(suffix=".upper()") + shout))
    assert User(name=" a ").model_dump() == {"name": "A!"}
    _save(r, pkg, "users", VALIDATED.format(validator=""))
    assert User(name=" a ").name == " a "
    assert User(name="a").model_dump() == {"name": "a"}
    assert Admin(name=" b ").name == " b "
    assert (mod.User, mod.Admin) == (User, Admin)


FLASK = """\
from flask import Flask

app = Flask(__name__)

@app.route("/")
def index():
    return "home"
{extra}
"""


def test_flask_route_added_after_the_app_served_a_request(pkg: Pkg) -> None:
    mod = _load(pkg, "site", FLASK.format(extra=""))
    client = mod.app.test_client()
    assert client.get("/").text == "home"
    r = pkg.reloader()
    _save(r, pkg, "site", FLASK.format(extra='\n@app.route("/late")\ndef late():\n    return "late"\n'))
    assert client.get("/late").text == "late"
    # Flask's guard against setup after the first request is back in place.
    with pytest.raises(AssertionError):
        mod.app.add_url_rule("/other", "other", lambda: "x")


class _Recording(hotmod.adapters.BaseAdapter):
    frameworks = ("hm_fake_framework",)

    def __init__(self) -> None:
        self.calls: list[str] = []

    def prepare(self, change: hotmod.adapters.ModuleChange) -> str | None:
        self.calls.append(f"prepare {change.module.__name__.rpartition('.')[2]}")
        return "known to fail before it runs" if "BEFORE" in change.module.__dict__ else None

    def refuse(self, change: hotmod.adapters.ModuleChange) -> str | None:
        self.calls.append("refuse")
        return "the fake framework cannot take it" if "REFUSE" in change.new else None

    def committed(self, change: hotmod.adapters.ModuleChange) -> list[str]:
        self.calls.append("committed")
        raise RuntimeError("a broken adapter")

    def aborted(self, change: hotmod.adapters.ModuleChange) -> None:
        self.calls.append("aborted")


class _EntryPoint:
    def __init__(self, adapter: object) -> None:
        self.adapter = adapter

    def load(self) -> object:
        return self.adapter


def test_third_party_adapters_load_only_with_their_framework_and_never_break_a_reload(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = _Recording()
    monkeypatch.setattr(hotmod.adapters, "_entry_points", [("fake:Adapter", _EntryPoint(adapter))])
    monkeypatch.delitem(hotmod.adapters._loaded, "fake:Adapter", raising=False)
    mod = _load(pkg, "m", "X = 1\n")
    r = pkg.reloader()
    assert edit(r, pkg.path("m"), "X = 2\n").status == "ok"
    assert adapter.calls == []  # its framework is not imported: never loaded
    monkeypatch.setitem(sys.modules, "hm_fake_framework", ModuleType("hm_fake_framework"))
    result = edit(r, pkg.path("m"), "X = 3\n")
    assert result.status == "ok"
    assert mod.X == 3
    assert any("a broken adapter" in w for w in result.warnings)
    assert adapter.calls == ["prepare m", "refuse", "committed"]
    refused = edit(r, pkg.path("m"), "X = 4\nREFUSE = True\n")
    assert refused.status == "needs_restart"
    assert "the fake framework cannot take it" in str(refused.error)
    assert mod.X == 3
    assert "REFUSE" not in vars(mod)
    assert adapter.calls[-1] == "aborted"
    # A reason from prepare refuses before any of the new code runs.
    mod.BEFORE = True
    ran = pkg.counter()
    early = edit(r, pkg.path("m"), f"X = 5\nfrom {pkg.name} import log\nlog.runs.append(1)\n")
    assert early.status == "needs_restart"
    assert "known to fail before it runs" in str(early.error)
    assert ran == []
    assert mod.X == 3
    assert adapter.calls[-2:] == ["prepare m", "aborted"]


def test_importing_hotmod_adapters_imports_no_framework() -> None:
    import subprocess

    code = (
        "import sys, hotmod, hotmod.adapters; hotmod.adapters.active();"
        "print(sorted(m for m in ('pydantic','django','fastapi','flask','starlette','sqlalchemy',"
        "'click','typer','celery') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


SQLA = """\
from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(30)){column}

    def label(self):
        return "user " + self.name
"""


def test_sqlalchemy_column_change_is_refused_and_leaves_one_class_registered(pkg: Pkg) -> None:
    import sqlalchemy
    from sqlalchemy.orm import Session

    mod = _load(pkg, "db", SQLA.format(column=""))
    User = mod.User
    engine = sqlalchemy.create_engine("sqlite://")
    mod.Base.metadata.create_all(engine)
    r = pkg.reloader()
    result = edit(
        r,
        pkg.path("db"),
        textwrap.dedent(SQLA.format(column="\n    age: Mapped[int] = mapped_column(Integer)")),
    )
    assert result.status == "needs_restart", result.summary()
    assert "User" in str(result.error)
    assert "age" in str(result.error)
    assert mod.User is User
    assert [m.class_ for m in mod.Base.registry.mappers] == [User]
    with Session(engine) as session:
        session.add(User(name="ann"))
        session.commit()
        assert session.scalars(sqlalchemy.select(User)).one().label() == "user ann"
    engine.dispose()  # the pool's sqlite connections, closed (3.13 warns of unclosed ones)


def test_flask_route_added_to_a_registered_blueprint_is_served(pkg: Pkg) -> None:
    views = _load(
        pkg,
        "views",
        """\
        from flask import Blueprint

        bp = Blueprint("shop", __name__, url_prefix="/shop")

        @bp.route("/")
        def index():
            return "shop"
        """,
    )
    app_module = _load(
        pkg,
        "app",
        f"from flask import Flask\nfrom {views.__name__} import bp\n"
        "app = Flask(__name__)\napp.register_blueprint(bp)\n",
    )
    client = app_module.app.test_client()
    assert client.get("/shop/").text == "shop"
    r = pkg.reloader()
    _save(
        r,
        pkg,
        "views",
        """\
        from flask import Blueprint

        bp = Blueprint("shop", __name__, url_prefix="/shop")

        @bp.route("/")
        def index():
            return "shop"

        @bp.route("/late")
        def late():
            return "late"
        """,
    )
    assert client.get("/shop/late").text == "late"
    assert client.get("/shop/").text == "shop"
