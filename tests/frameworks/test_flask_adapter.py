"""The Flask adapter on a served app (Flask's setup guard up): aborts, whole-module runs.

Through Flask's public API (the test client, ``url_map``, ``view_functions``, ``config``)
and hotmod's:

- a save that registers a route, a hook or a handler and then raises is aborted and the
  app serves what it served before (its own module's, or a module that imported it);
- a whole-module run of the module that makes the app leaves the served app serving the
  new version (routes, hooks, handlers, config), what other modules registered on it
  included, the views being the kept functions later edits patch.
"""

from __future__ import annotations

import gc
import textwrap
from typing import Any

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


def test_an_aborted_save_of_a_module_that_imported_the_app(pkg: Pkg) -> None:
    app = _load(pkg, "app", APP).app
    views = _load(pkg, "views", VIEWS.format(suffix="", extra=""))
    client = app.test_client()
    assert client.get("/hello/ann").text == "hello ann"
    rules, functions = _rules(app), dict(app.view_functions)
    r = pkg.reloader()
    late = '\n@app.route("/late")\ndef late():\n    return "late"\n'
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
