"""The Flask adapter on a served app (Flask's setup guard up): aborts, whole-module runs,
route rules that change.

Through Flask's public API (the test client, ``url_map``, ``view_functions``, ``config``)
and hotmod's:

- a save that registers a route, a hook or a handler and then raises is aborted and the
  app serves what it served before (its own module's, or a module that imported it);
- a whole-module run of the module that makes the app leaves the served app serving the
  new version (routes, hooks, handlers, config), what other modules registered on it
  included, the views being the kept functions later edits patch;
- a view whose route rule changed (which makes its module run as a whole) is served at
  its new rule only, wherever it is registered: on the app from the app's module, on the
  app from a module that imported it, on a blueprint registered with its own options.
"""

from __future__ import annotations

import gc
import textwrap
from typing import Any

import pytest

import hotmod

from ..support import Pkg, edit


def _load(pkg: Pkg, name: str, source: str) -> Any:
    return pkg.module(name, textwrap.dedent(source))


def _save(r: hotmod.Reloader, pkg: Pkg, name: str, source: str) -> hotmod.ReloadResult:
    result = edit(r, pkg.path(name), textwrap.dedent(source))
    assert result.status == "ok", (result.summary(), result.warnings)
    return result


def _aborted(r: hotmod.Reloader, pkg: Pkg, name: str, source: str) -> None:
    result = edit(r, pkg.path(name), textwrap.dedent(source) + 'raise RuntimeError("x")\n')
    assert result.status == "aborted", result.summary()
    assert isinstance(result.error, hotmod.ReloadError)
    assert isinstance(result.error.__cause__, RuntimeError)


def _rules(app: Any) -> list[tuple[str, str]]:
    return sorted((rule.rule, rule.endpoint) for rule in app.url_map.iter_rules())


def _guard_is_up(app: Any) -> bool:
    try:
        app.add_url_rule("/guard", "guard", lambda: "x")
    except AssertionError:
        return True
    return False


# -- an aborted save -----------------------------------------------------------------------------

SITE = """\
from flask import Flask

app = Flask(__name__)

@app.route("/")
def index():
    return "home"
{extra}
"""

LATE = """
app.config["GREETING"] = "hi"

@app.route("/late")
def late():
    return "late"

@app.after_request
def tag(response):
    response.headers["X-Tag"] = "late"
    return response

@app.errorhandler(404)
def missing(error):
    return "nothing here", 404
"""


def test_an_aborted_save_takes_back_the_routes_hooks_and_handlers_it_registered(
    pkg: Pkg, both_strategies: str
) -> None:
    mod = _load(pkg, "site", SITE.format(extra=""))
    app = mod.app
    client = app.test_client()
    assert client.get("/").text == "home"  # served: Flask's setup guard is up
    rules, views = _rules(app), dict(app.view_functions)
    r = pkg.reloader()
    _aborted(r, pkg, "site", SITE.format(extra=LATE))
    assert mod.app is app
    assert client.get("/late").status_code == 404
    missing = client.get("/missing")
    assert missing.status_code == 404
    assert missing.text != "nothing here"
    home = client.get("/")
    assert home.text == "home"
    assert "X-Tag" not in home.headers
    assert "GREETING" not in app.config
    assert _rules(app) == rules
    assert app.view_functions == views
    assert _guard_is_up(app)
    # The same save without the raise applies.
    _save(r, pkg, "site", SITE.format(extra=LATE))
    assert mod.app is app
    assert client.get("/late").text == "late"
    assert client.get("/missing").text == "nothing here"
    assert client.get("/").headers.getlist("X-Tag") == ["late"]
    assert app.config["GREETING"] == "hi"
    assert _rules(app) == sorted([*rules, ("/late", "late")])
    assert _guard_is_up(app)


APP = """\
from flask import Flask

app = Flask(__name__)

@app.route("/")
def index():
    return "home"
"""

VIEWS = """\
from .app import app

@app.route("/hello/<name>")
def hello(name):
    return "hello " + name{suffix}
{extra}
"""


def test_an_aborted_save_of_a_module_that_imported_the_app(pkg: Pkg, both_strategies: str) -> None:
    app = _load(pkg, "app", APP).app
    views = _load(pkg, "views", VIEWS.format(suffix="", extra=""))
    client = app.test_client()
    assert client.get("/hello/ann").text == "hello ann"
    rules, functions = _rules(app), dict(app.view_functions)
    r = pkg.reloader()
    late = '\n@app.route("/late")\ndef late():\n    return "late"\n'
    # A whole-module run registers hello again (a new function) before the raise.
    _aborted(r, pkg, "views", VIEWS.format(suffix=' + "!"', extra=late))
    assert client.get("/late").status_code == 404
    assert client.get("/hello/ann").text == "hello ann"
    assert _rules(app) == rules
    assert app.view_functions == functions
    assert app.view_functions["hello"] is views.hello
    assert _guard_is_up(app)
    _save(r, pkg, "views", VIEWS.format(suffix=' + "!"', extra=late))
    assert client.get("/late").text == "late"
    assert client.get("/hello/ann").text == "hello ann!"
    assert _rules(app) == sorted([*rules, ("/late", "late")])
    assert app.view_functions["hello"] is views.hello
    assert _guard_is_up(app)


# -- a whole-module run of the module that makes the app -----------------------------------------

# Flask's documented layout for a larger app: the app's module imports its views last,
# and the views module registers on the app it imports.
MADE = """\
from flask import Flask

app = Flask(__name__)
app.config["GREETING"] = "{greeting}"

@app.route("/")
def index():
    return app.config["GREETING"]{suffix}

@app.after_request
def version(response):
    response.headers.add("X-Version", "{version}")
    return response

@app.errorhandler(404)
def missing(error):
    return "nothing here {version}", 404
{extra}
from . import pages  # noqa: E402
"""

PAGES = """\
from .site import app

@app.route("/about")
def about():
    return "about"
"""


def test_a_whole_module_run_of_the_app_module_leaves_the_served_app_serving_it(pkg: Pkg) -> None:
    pkg.write("pages", textwrap.dedent(PAGES))
    (pkg.dir / "static").mkdir()
    (pkg.dir / "static" / "hello.txt").write_text("static hello")
    mod = _load(pkg, "site", MADE.format(greeting="hi", suffix="", version=1, extra=""))
    app, pages = mod.app, pkg.import_("pages")
    index = mod.index
    client = app.test_client()
    assert client.get("/").text == "hi"
    assert client.get("/about").text == "about"
    app.config["TESTING"] = True  # set by the running process, not by the module
    r = pkg.reloader(strategy="module")
    new = '\n@app.route("/new")\ndef new():\n    return "new"\n'
    result = _save(r, pkg, "site", MADE.format(greeting="hello", suffix="", version=2, extra=new))
    assert result.strategies == ((mod.__name__, "module"),)
    assert mod.app is app
    assert pages.app is app  # the importer's copy too
    gc.collect()  # the new run's app is gone: nothing served may need it
    home = client.get("/")
    assert home.text == "hello"
    assert home.headers.getlist("X-Version") == ["2"]
    assert client.get("/new").text == "new"
    assert client.get("/about").text == "about"  # registered by another module: kept
    assert client.get("/missing").text == "nothing here 2"
    with client.get("/static/hello.txt") as static:  # Flask's static view held its app weakly
        assert static.text == "static hello"
    assert app.config["GREETING"] == "hello"
    assert app.config["TESTING"] is True
    assert _rules(app) == [
        ("/", "index"),
        ("/about", "about"),
        ("/new", "new"),
        ("/static/<path:filename>", "static"),
    ]
    # The views are the kept functions: a later statement edit of one is served.
    assert mod.index is index
    assert app.view_functions["index"] is index
    assert _guard_is_up(app)
    r.close()
    r = pkg.reloader(strategy="statements")
    result = _save(r, pkg, "site", MADE.format(greeting="hello", suffix=' + "!"', version=2, extra=new))
    assert result.strategies == ((mod.__name__, "statements"),)
    assert client.get("/").text == "hello!"
    assert client.get("/").headers.getlist("X-Version") == ["2"]


# -- a view whose route rule changed -----------------------------------------------------------------

HELLO = """
@{owner}.route("/hello/<name>{rule}")
def hello(name{param}):
    return "hello " + name{echo}{suffix}
"""


def _hello(owner: str, changed: bool, suffix: str = "") -> str:
    if not changed:
        return HELLO.format(owner=owner, rule="", param="", echo="", suffix=suffix)
    return HELLO.format(owner=owner, rule="/<int:times>", param=", times", echo=" * times", suffix=suffix)


ALONE = "from flask import Flask\n\napp = Flask(__name__)\n{hello}"
IMPORTED = """\
from .app import app

@app.after_request
def tag(response):
    response.headers.add("X-Views", "1")
    return response
{hello}"""
BLUEPRINT = """\
from flask import Blueprint

bp = Blueprint("shop", __name__, url_prefix="/shop")
{hello}"""
REGISTERS = """\
from flask import Flask

from .views import bp

app = Flask(__name__)
app.register_blueprint(bp, url_prefix="/api")
"""


@pytest.mark.parametrize("layout", ["app module", "imported app", "blueprint"])
def test_a_view_whose_rule_changed_is_served_at_its_new_rule_only(pkg: Pkg, layout: str) -> None:
    def source(changed: bool, suffix: str = "") -> str:
        owner = "bp" if layout == "blueprint" else "app"
        template = {"app module": ALONE, "imported app": IMPORTED, "blueprint": BLUEPRINT}[layout]
        return template.format(hello=_hello(owner, changed, suffix))

    if layout == "app module":
        app = _load(pkg, "views", source(False)).app
    elif layout == "imported app":
        app = _load(pkg, "app", APP).app
        _load(pkg, "views", source(False))
    else:
        _load(pkg, "views", source(False))
        app = _load(pkg, "app", REGISTERS).app
    views = pkg.import_("views")
    prefix, endpoint = ("/api", "shop.hello") if layout == "blueprint" else ("", "hello")
    client = app.test_client()
    assert client.get(f"{prefix}/hello/ann").text == "hello ann"
    others = [rule for rule in _rules(app) if rule[1] != endpoint]
    r = pkg.reloader()
    result = _save(r, pkg, "views", source(True))
    # The decorator changed: the module ran as a whole.
    assert [s.partition(":")[0] for _, s in result.strategies] == ["module"]
    assert client.get(f"{prefix}/hello/ann/2").text == "hello annann"
    assert client.get(f"{prefix}/hello/ann").status_code == 404
    assert _rules(app) == sorted([*others, (f"{prefix}/hello/<name>/<int:times>", endpoint)])
    if layout == "imported app":
        # The views module's hook, registered again by its second run, runs once.
        assert client.get(f"{prefix}/hello/ann/2").headers.getlist("X-Views") == ["1"]
    # The view is the kept function: a later statement edit of it is served.
    assert app.view_functions[endpoint] is views.hello
    result = _save(r, pkg, "views", source(True, suffix=' + "!"'))
    assert result.strategies == ((views.__name__, "statements"),)
    assert client.get(f"{prefix}/hello/ann/2").text == "hello annann!"
    assert _guard_is_up(app)


def test_a_late_route_on_a_blueprint_registered_with_its_own_prefix(pkg: Pkg) -> None:
    _load(pkg, "views", BLUEPRINT.format(hello=_hello("bp", False)))
    app = _load(pkg, "app", REGISTERS).app
    client = app.test_client()
    assert client.get("/api/hello/ann").text == "hello ann"
    r = pkg.reloader()
    late = '\n@bp.route("/late")\ndef late():\n    return "late"\n'
    _save(r, pkg, "views", BLUEPRINT.format(hello=_hello("bp", False) + late))
    assert client.get("/api/late").text == "late"  # where register_blueprint put the others
    assert client.get("/shop/late").status_code == 404
    assert ("/api/late", "shop.late") in _rules(app)


def test_a_whole_module_run_on_an_imported_blueprint_registers_each_route_once(pkg: Pkg) -> None:
    from flask import Flask

    _load(pkg, "bps", 'from flask import Blueprint\n\nbp = Blueprint("shop", __name__, url_prefix="/shop")\n')
    views = _load(pkg, "views", "from .bps import bp\n" + _hello("bp", False))
    app = _load(
        pkg,
        "app",
        "from flask import Flask\nfrom .bps import bp\nfrom . import views\n"
        "app = Flask(__name__)\napp.register_blueprint(bp)\n",
    ).app
    client = app.test_client()
    assert client.get("/shop/hello/ann").text == "hello ann"
    r = pkg.reloader()
    _save(r, pkg, "views", "from .bps import bp\n" + _hello("bp", True))
    assert client.get("/shop/hello/ann/2").text == "hello annann"
    assert client.get("/shop/hello/ann").status_code == 404
    assert ("/shop/hello/<name>", "shop.hello") not in _rules(app)
    assert app.view_functions["shop.hello"] is views.hello
    # An app registering the blueprint now gets the new route, once, calling the kept view.
    fresh = Flask("fresh")
    fresh.register_blueprint(views.bp)
    assert [rule for rule in _rules(fresh) if rule[1] == "shop.hello"] == [
        ("/shop/hello/<name>/<int:times>", "shop.hello")
    ]
    assert fresh.view_functions["shop.hello"] is views.hello
