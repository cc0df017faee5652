"""The Django adapter through Django's public API (issue 17's Django row).

Every test runs on the process's one Django site (``tests.support.django_site``): an app
with models, admin, views and a URLconf, served by ``django.test.Client``. A test edits
the app's files and polls a reloader on this thread; the ``django_site`` fixture puts the
files and the running modules back afterwards. What is checked is what a developer sees:
the URL that resolves, the text served, the class ``apps.get_model`` and queries return,
the admin registry, and the result hotmod reports (status, error, warnings).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import hotmod

from ..support import edit, reload_error, write
from ..support.django_site import DjangoSite

pytest.importorskip("django")

from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import Resolver404, resolve, reverse


def _ok(r: hotmod.Reloader, site: DjangoSite, leaf: str, text: str) -> hotmod.ReloadResult:
    result = edit(r, site.path(leaf), text)
    assert result.status == "ok", (result.summary(), result.warnings)
    return result


def _get(client: Client, path: str) -> tuple[int, str]:
    response = client.get(path)
    return response.status_code, response.content.decode()


def _line(text: str, statement: str) -> int:
    """The 1-based line of ``statement`` in ``text``."""
    return text.splitlines().index(statement) + 1


def _with_route(urls: str, route: str) -> str:
    return urls.replace("]\n", f"    {route},\n]\n")


BYE_VIEW = """

def bye(request):
    return HttpResponse("bye for now")
"""

TAG_MODEL = """

class Tag(models.Model):
    word = models.CharField(max_length=10)
"""

LATE_ERROR = 'raise RuntimeError("late")'


# -- URLconfs and views ----------------------------------------------------------------------------


def test_a_new_url_pattern_resolves_after_a_request_was_served(django_site: DjangoSite) -> None:
    client = Client()
    views = django_site.module("views")
    assert _get(client, "/hello/") == (200, "hello")  # Django built and cached its resolver
    assert _get(client, "/bye/")[0] == 404
    r = django_site.reloader()
    _ok(r, django_site, "views", django_site.original("views") + BYE_VIEW)
    result = _ok(
        r,
        django_site,
        "urls",
        _with_route(django_site.original("urls"), 'path("bye/", views.bye, name="bye")'),
    )
    assert result.modules == (django_site.name("urls"),)
    assert resolve("/bye/").func is views.bye
    assert reverse("bye") == "/bye/"
    assert _get(client, "/bye/") == (200, "bye for now")
    assert _get(client, "/hello/") == (200, "hello")  # the old patterns still resolve


def test_an_edited_view_is_served_without_registering_its_url_again(django_site: DjangoSite) -> None:
    client = Client()
    assert _get(client, "/hello/") == (200, "hello")
    urls = django_site.module("urls")
    patterns, served = urls.urlpatterns, resolve("/hello/").func
    r = django_site.reloader()
    result = _ok(r, django_site, "views", django_site.original("views").replace('"hello"', '"hello, edited"'))
    assert result.modules == (django_site.name("views"),)  # the URLconf did not run again
    assert result.strategies == ((django_site.name("views"), "statements"),)
    assert urls.urlpatterns is patterns
    assert resolve("/hello/").func is served  # the registered view object took the new code
    assert _get(client, "/hello/") == (200, "hello, edited")


def test_a_view_body_edit_is_served_with_the_models_data(django_site: DjangoSite) -> None:
    item = django_site.module("models").Item
    item.objects.create(name="pen")
    item.objects.create(name="cup")
    client = Client()
    assert _get(client, "/items/") == (200, "item cup, item pen")
    r = django_site.reloader()
    _ok(
        r,
        django_site,
        "views",
        django_site.original("views")
        .replace('", ".join(', '" | ".join(')
        .replace("item.label()", "item.name"),
    )
    assert _get(client, "/items/") == (200, "cup | pen")


# -- models ----------------------------------------------------------------------------------------

FIELD_CHANGES = {
    "added": (
        "    added = models.DateTimeField(null=True)\n",
        "    added = models.DateTimeField(null=True)\n    price = models.IntegerField(default=0)\n",
        "field price added",
    ),
    "removed": ("    added = models.DateTimeField(null=True)\n", "", "field added removed"),
    "changed": (
        "    name = models.CharField(max_length=30)\n",
        "    name = models.TextField()\n",
        "field name changed",
    ),
}


@pytest.mark.parametrize("change", sorted(FIELD_CHANGES))
def test_a_model_field_change_needs_a_migration_and_a_restart(django_site: DjangoSite, change: str) -> None:
    models = django_site.module("models")
    item = models.Item
    item.objects.create(name="pen")
    before, after, said = FIELD_CHANGES[change]
    original = django_site.original("models")
    assert before in original
    r = django_site.reloader()
    result = edit(r, django_site.path("models"), original.replace(before, after))
    assert result.status == "needs_restart", result.summary()
    error = str(reload_error(result))
    assert "Item" in error
    assert said in error
    assert "needs a migration and a restart" in error
    # The kept class stays everywhere Django looks it up.
    assert models.Item is item
    assert apps.get_model(django_site.label, "Item") is item
    assert type(item.objects.get(name="pen")) is item
    assert admin.site.is_registered(item)
    assert r.poll().status == "noop"  # reported once, not on every poll
    # Fixing the file (the fields as they run, and a method edit) applies.
    fixed = original.replace('"item " + self.name', '"item: " + self.name')
    _ok(r, django_site, "models", fixed)
    assert item.objects.get(name="pen").label() == "item: pen"
    assert apps.get_model(django_site.label, "Item") is item


def test_an_unrelated_edit_in_models_applies_and_registers_nothing(django_site: DjangoSite) -> None:
    models = django_site.module("models")
    item = models.Item
    registered = list(apps.get_app_config(django_site.label).get_models())
    model_admin = admin.site.get_model_admin(item)
    r = django_site.reloader()
    text = (
        django_site.original("models")
        .replace("return text.upper()", 'return text.upper() + "!"')
        .replace('"item " + self.name', 'shout("item ") + self.name')
    )
    result = _ok(r, django_site, "models", text)
    assert result.strategies == ((django_site.name("models"), "statements"),)
    assert not [w for w in result.warnings if "Django" in w or "registered" in w], result.warnings
    assert models.shout("a") == "A!"
    assert item(name="pen").label() == "ITEM !pen"
    assert models.Item is item
    assert apps.get_model(django_site.label, "Item") is item
    assert list(apps.get_app_config(django_site.label).get_models()) == registered
    assert admin.site.get_model_admin(item) is model_admin


def test_a_model_class_removed_from_its_module_leaves_the_app_registry(django_site: DjangoSite) -> None:
    models = django_site.module("models")
    original = django_site.original("models")
    r = django_site.reloader()
    _ok(r, django_site, "models", original + TAG_MODEL)
    assert apps.get_model(django_site.label, "Tag") is models.Tag
    result = _ok(r, django_site, "models", original)
    assert any("Tag" in w and "no longer registered" in w for w in result.warnings), result.warnings
    with pytest.raises(LookupError):
        apps.get_model(django_site.label, "Tag")
    assert apps.get_model(django_site.label, "Item") is models.Item


@pytest.mark.parametrize("strategy", ["statements", "module"])
def test_an_admin_module_run_again_as_a_whole_registers_its_model_admins_again(
    django_site: DjangoSite, strategy: str
) -> None:
    """Removing a registration call makes the planner run admin.py again as a whole (as
    does the "module" strategy on any edit): its ``@admin.register`` runs a second time,
    which Django refuses unless the adapter took the module's registrations out first."""
    models = django_site.module("models")
    admin_module = django_site.module("admin")
    item = models.Item
    _ok(django_site.reloader(), django_site, "models", django_site.original("models") + TAG_MODEL)
    tag = models.Tag
    r = django_site.reloader(strategy=strategy)
    registered = django_site.original("admin") + "\nfrom .models import Tag\n\nadmin.site.register(Tag)\n"
    _ok(r, django_site, "admin", registered)
    assert admin.site.is_registered(tag)
    result = _ok(
        r, django_site, "admin", django_site.original("admin").replace("obj.name", "obj.name.upper()")
    )
    assert result.strategies[0][1] != "statements", result.strategies  # the module code ran again
    assert not admin.site.is_registered(tag)  # as after a fresh start of this admin.py
    assert type(admin.site.get_model_admin(item)) is admin_module.ItemAdmin
    assert admin.site.get_model_admin(item).shown(item(name="pen")) == "PEN"


def test_a_module_run_again_gives_up_only_the_registrations_it_made(django_site: DjangoSite) -> None:
    """admin.py and views.py saved together, each registering a model with the admin site
    (as two apps' admin modules would): when admin.py later runs again as a whole, only
    its own registration is given up and made again; views.py's stays."""
    models = django_site.module("models")
    label_model = "\n\nclass Label(models.Model):\n    text = models.CharField(max_length=10)\n"
    _ok(
        django_site.reloader(),
        django_site,
        "models",
        django_site.original("models") + TAG_MODEL + label_model,
    )
    tag, label = models.Tag, models.Label
    r = django_site.reloader()
    write(
        django_site.path("admin"),
        django_site.original("admin") + "\nfrom .models import Tag\n\nadmin.site.register(Tag)\n",
    )
    write(
        django_site.path("views"),
        django_site.original("views")
        + "\nfrom django.contrib import admin\n\nfrom .models import Label\n\nadmin.site.register(Label)\n",
    )
    r.notify(django_site.path("admin"), django_site.path("views"))
    result = r.poll()
    assert result.status == "ok", result.summary()
    assert set(result.modules) == {django_site.name("admin"), django_site.name("views")}
    assert admin.site.is_registered(tag)
    assert admin.site.is_registered(label)
    whole = django_site.reloader(strategy="module")
    text = django_site.read("admin").replace("return obj.name", "return obj.name.upper()")
    _ok(whole, django_site, "admin", text)
    assert admin.site.is_registered(tag)  # given up and registered again by admin.py's run
    assert admin.site.is_registered(label)  # views.py's: untouched


def test_a_model_admin_class_another_module_registered_stays_registered(django_site: DjangoSite) -> None:
    """A second admin site (in views.py) registers admin.py's ItemAdmin. When admin.py
    runs again as a whole, that registration looks like one of its own; it is given back
    since admin.py's run does not make it."""
    item = django_site.module("models").Item
    second_site = (
        "\nfrom django.contrib.admin import AdminSite\n\nfrom .admin import ItemAdmin\n\n"
        'second_site = AdminSite(name="second")\nsecond_site.register(Item, ItemAdmin)\n'
    )
    _ok(django_site.reloader(), django_site, "views", django_site.original("views") + second_site)
    views = django_site.module("views")
    held = views.second_site.get_model_admin(item)
    whole = django_site.reloader(strategy="module")
    text = django_site.original("admin").replace("return obj.name", "return obj.name.upper()")
    _ok(whole, django_site, "admin", text)
    assert views.second_site.get_model_admin(item) is held
    assert admin.site.get_model_admin(item).shown(item(name="pen")) == "PEN"
    assert held.shown(item(name="cup")) == "CUP"  # the kept class took the new code


# -- aborted runs ------------------------------------------------------------------------------------


def test_an_aborted_models_edit_takes_back_the_model_it_registered(django_site: DjangoSite) -> None:
    models = django_site.module("models")
    item = models.Item
    item.objects.create(name="pen")
    fixed = django_site.original("models") + TAG_MODEL
    broken = fixed + "\n" + LATE_ERROR + "\n"
    r = django_site.reloader()
    result = edit(r, django_site.path("models"), broken)
    assert result.status == "aborted", result.summary()
    error = reload_error(result)
    assert error.path == django_site.path("models")
    assert error.lineno == _line(broken, LATE_ERROR)
    assert f"models.py:{error.lineno}" in str(error)
    with pytest.raises(LookupError):
        apps.get_model(django_site.label, "Tag")
    assert not hasattr(models, "Tag")
    assert apps.get_model(django_site.label, "Item") is item
    assert type(item.objects.get(name="pen")) is item
    # The fixed file registers the model once, as a first import would: Django has no
    # earlier Tag to warn about.
    result = _ok(r, django_site, "models", fixed)
    assert not [w for w in result.warnings if "already registered" in w], result.warnings
    assert apps.get_model(django_site.label, "Tag") is models.Tag


def test_an_aborted_urlconf_edit_keeps_the_old_urlconf_working(django_site: DjangoSite) -> None:
    client = Client()
    assert _get(client, "/hello/") == (200, "hello")
    urls = django_site.module("urls")
    patterns = urls.urlpatterns
    fixed = _with_route(django_site.original("urls"), 'path("again/", views.hello, name="again")')
    broken = fixed + LATE_ERROR + "\n"
    r = django_site.reloader()
    result = edit(r, django_site.path("urls"), broken)
    assert result.status == "aborted", result.summary()
    error = reload_error(result)
    assert (error.path, error.lineno) == (django_site.path("urls"), _line(broken, LATE_ERROR))
    assert urls.urlpatterns is patterns
    assert _get(client, "/hello/") == (200, "hello")
    assert _get(client, "/again/")[0] == 404
    with pytest.raises(Resolver404):
        resolve("/again/")
    _ok(r, django_site, "urls", fixed)
    assert _get(client, "/again/") == (200, "hello")


def test_an_aborted_admin_edit_takes_back_its_registration(django_site: DjangoSite) -> None:
    models = django_site.module("models")
    r = django_site.reloader()
    _ok(r, django_site, "models", django_site.original("models") + TAG_MODEL)
    tag, item_admin = models.Tag, admin.site.get_model_admin(models.Item)
    fixed = django_site.original("admin") + "\nfrom .models import Tag\n\nadmin.site.register(Tag)\n"
    broken = fixed + LATE_ERROR + "\n"
    result = edit(r, django_site.path("admin"), broken)
    assert result.status == "aborted", result.summary()
    assert reload_error(result).lineno == _line(broken, LATE_ERROR)
    assert not admin.site.is_registered(tag)
    assert admin.site.get_model_admin(models.Item) is item_admin
    # Without the failed run's registration taken back, this save would raise
    # AlreadyRegistered on every retry.
    _ok(r, django_site, "admin", fixed)
    assert admin.site.is_registered(tag)
    assert admin.site.get_model_admin(models.Item) is item_admin


def test_a_failed_batch_takes_back_what_its_first_module_registered(django_site: DjangoSite) -> None:
    """Two files saved together (a checkout): admin.py registers a model, then urls.py
    raises. The whole batch is taken back, admin.py's registration with it."""
    models = django_site.module("models")
    r = django_site.reloader()
    _ok(r, django_site, "models", django_site.original("models") + TAG_MODEL)
    tag = models.Tag
    admin_text = django_site.original("admin") + "\nfrom .models import Tag\n\nadmin.site.register(Tag)\n"
    urls_fixed = _with_route(django_site.original("urls"), 'path("again/", views.hello, name="again")')
    write(django_site.path("admin"), admin_text)
    write(django_site.path("urls"), urls_fixed + LATE_ERROR + "\n")
    r.notify(django_site.path("admin"), django_site.path("urls"))
    result = r.poll()
    assert result.status == "aborted", result.summary()
    assert set(result.modules) == {django_site.name("admin"), django_site.name("urls")}
    assert not admin.site.is_registered(tag)
    result = _ok(r, django_site, "urls", urls_fixed)  # the admin save, still pending, comes along
    assert set(result.modules) == {django_site.name("admin"), django_site.name("urls")}, result.summary()
    assert admin.site.is_registered(tag)
    assert _get(Client(), "/again/") == (200, "hello")


# -- warnings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["statements", "module"])
def test_djangos_warning_when_a_model_class_runs_again_reaches_the_result(
    django_site: DjangoSite, strategy: str
) -> None:
    """A model class statement that runs again makes Django warn, "Reloading models is not
    advised", before the adapter refuses the run: the warning is in the result, not on
    stderr (pytest turns an escaped warning into an error)."""
    original = django_site.original("models")
    if strategy == "statements":  # only a field change runs the class statement again
        text = original.replace(
            "    def label", "    price = models.IntegerField(default=0)\n\n    def label"
        )
    else:  # a whole-module run makes every model class again
        text = original.replace('"item " + self.name', '"item: " + self.name')
    r = django_site.reloader(strategy=strategy)
    result = edit(r, django_site.path("models"), text)
    assert result.status == "needs_restart", result.summary()
    assert any("RuntimeWarning" in w and "Reloading models is not advised" in w for w in result.warnings), (
        result.warnings
    )


def test_djangos_naive_datetime_warning_in_module_code_reaches_the_result(django_site: DjangoSite) -> None:
    """A queryset built at import with a naive datetime while USE_TZ is on: Django warns
    as the filter is made, while the new module code runs."""
    views = django_site.module("views")
    text = django_site.original("views").replace(
        "from .models import Item\n",
        "from datetime import datetime\n\nfrom .models import Item\n\n"
        "RECENT = Item.objects.filter(added__gte=datetime(2024, 1, 1))\n",
    )
    r = django_site.reloader()
    result = _ok(r, django_site, "views", text)
    assert any(
        "RuntimeWarning" in w and "received a naive datetime" in w and "Item.added" in w
        for w in result.warnings
    ), result.warnings
    assert views.RECENT.model is views.Item


def test_a_warning_from_a_django_modules_code_reaches_the_result(django_site: DjangoSite) -> None:
    text = django_site.original("views").replace(
        "from django.http import HttpResponse\n",
        "import warnings\n\nfrom django.http import HttpResponse\n\n"
        'warnings.warn("the items view is deprecated", UserWarning)\n',
    )
    r = django_site.reloader()
    result = _ok(r, django_site, "views", text)
    assert [w for w in result.warnings if "UserWarning: the items view is deprecated" in w], result.warnings
    assert str(django_site.path("views")) in next(w for w in result.warnings if "deprecated" in w)


# -- a fresh start ----------------------------------------------------------------------------------

# Run here and in a fresh process: what the site answers, as JSON.
PROBE = """\
import json

from django.apps import apps
from django.test import Client
from django.urls import Resolver404, resolve, reverse

Item = apps.get_model("shop", "Item")
Item.objects.all().delete()
Item.objects.create(name="pen")
Item.objects.create(name="cup")
client = Client()
answers = {"models": sorted(m.__name__ for m in apps.get_app_config("shop").get_models())}
for path in ["/hello/", "/bye/", "/items/", "/missing/"]:
    response = client.get(path)
    try:
        view = resolve(path).view_name
    except Resolver404:
        view = None
    body = response.content.decode() if response.status_code == 200 else ""
    answers[path] = [response.status_code, body, view]
answers["reverse"] = [reverse("bye"), reverse("items")]
ANSWERS = json.dumps(answers, sort_keys=True)
"""

FRESH = """\
import django

django.setup()
from django.apps import apps
from django.db import connection

with connection.schema_editor() as editor:
    for model in apps.get_app_config("shop").get_models():
        editor.create_model(model)
"""


def _probe_here() -> Any:
    namespace: dict[str, Any] = {}
    exec(PROBE, namespace)
    return json.loads(namespace["ANSWERS"])


def test_a_fresh_process_answers_as_the_reloaded_one(django_site: DjangoSite) -> None:
    client = Client()
    assert _get(client, "/items/") == (200, "")  # served once before the edits
    r = django_site.reloader()
    _ok(r, django_site, "views", django_site.original("views").replace('"hello"', '"hi"') + BYE_VIEW)
    _ok(
        r,
        django_site,
        "urls",
        _with_route(django_site.original("urls"), 'path("bye/", views.bye, name="bye")'),
    )
    models = django_site.original("models").replace('"item " + self.name', '"#" + self.name')
    _ok(r, django_site, "models", models)
    _ok(r, django_site, "models", models + TAG_MODEL)
    here = _probe_here()
    assert here["/bye/"] == [200, "bye for now", "bye"]
    assert here["/items/"] == [200, "#cup, #pen", "items"]
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH + PROBE + "print(ANSWERS)\n"],
        env=django_site.fresh_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout.strip().splitlines()[-1]) == here
