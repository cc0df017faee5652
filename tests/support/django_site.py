"""One Django site per test process, shared by every Django test.

Django can be configured once per process (``settings.configure`` refuses a second call,
and ``django.setup`` populates the app registry once), so the Django tests do not each
configure their own: the first one to ask calls :func:`site`, which writes a small app
package into a folder on ``sys.path``, configures Django with an in-memory SQLite
database, creates the app's table and returns a :class:`DjangoSite`. Later calls return
the same object. A test edits the app's files through a reloader and calls
:meth:`DjangoSite.reset` when it is done, which writes every file back to its original
text and applies it, so the next test starts from the site as first imported.

The settings are a module in the same folder (``<app>_settings``), so a fresh process
configures Django exactly the same way with ``DJANGO_SETTINGS_MODULE``
(:meth:`DjangoSite.fresh_env`).
"""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hotmod

from . import write

__all__ = ["FILES", "DjangoSite", "site"]

#: the app label (``apps.get_model(LABEL, "Item")``)
LABEL = "shop"

APPS = """\
from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = {app!r}
    label = {label!r}
"""

MODELS = """\
from django.db import models


def shout(text):
    return text.upper()


class Item(models.Model):
    name = models.CharField(max_length=30)
    added = models.DateTimeField(null=True)

    def label(self):
        return "item " + self.name

    def __str__(self):
        return self.name
"""

ADMIN = """\
from django.contrib import admin

from .models import Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["name"]

    def shown(self, obj):
        return obj.name
"""

VIEWS = """\
from django.http import HttpResponse

from .models import Item


def hello(request):
    return HttpResponse("hello")


def items(request):
    return HttpResponse(", ".join(item.label() for item in Item.objects.order_by("name")))
"""

URLS = """\
from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hello/", views.hello, name="hello"),
    path("items/", views.items, name="items"),
]
"""

SETTINGS = """\
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    {app!r},
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
ROOT_URLCONF = {app!r} + ".urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ALLOWED_HOSTS = ["testserver"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
SECRET_KEY = "hotmod-tests"
"""

#: the app's modules (leaf names) and their original text
FILES: Mapping[str, str] = {
    "apps": APPS,
    "models": MODELS,
    "admin": ADMIN,
    "views": VIEWS,
    "urls": URLS,
}


@dataclass(frozen=True, slots=True)
class DjangoSite:
    """The configured site: where its files are and what they first said."""

    root: Path  # on sys.path; the reloaders watch it
    app: str  # the app package's module name
    settings_module: str  # module name of the settings, in ``root``
    originals: Mapping[str, str]  # leaf module name -> original text
    label: str = LABEL
    _reloaders: list[hotmod.Reloader] = field(default_factory=list, repr=False, compare=False)

    @property
    def app_dir(self) -> Path:
        return self.root / self.app

    def path(self, leaf: str) -> Path:
        """The file of the app's module ``leaf`` ("models", "urls", ...)."""
        return self.app_dir / f"{leaf}.py"

    def name(self, leaf: str) -> str:
        """The module name of the app's module ``leaf``."""
        return f"{self.app}.{leaf}"

    # The app's modules are typed ``Any``: their attributes are whatever the site's (or a
    # test's) source text defines.
    def module(self, leaf: str) -> Any:
        return importlib.import_module(self.name(leaf))

    def original(self, leaf: str) -> str:
        return self.originals[leaf]

    def read(self, leaf: str) -> str:
        """The text of ``leaf``'s file now."""
        return self.path(leaf).read_text()

    def reloader(self, **options: Any) -> hotmod.Reloader:
        """A reloader on the site's folder; manual backend and manual apply unless told
        (as ``Pkg.reloader``). :meth:`reset` closes it."""
        options.setdefault("backend", "manual")
        options.setdefault("apply", "manual")
        r = hotmod.Reloader([self.root], **options)
        self._reloaders.append(r)
        return r

    def reset(self) -> None:
        """Every file back to its original text, applied: the next test starts from the
        site as first imported (whatever the last one left on disk or running)."""
        for r in self._reloaders:
            r.close()
        self._reloaders.clear()
        for leaf, text in self.originals.items():
            path = self.path(leaf)
            if path.read_text() != text:
                write(path, text)
        # A new reloader compares what each module runs with its file and queues the
        # ones that differ; one poll applies them.
        with hotmod.Reloader([self.root], backend="manual", apply="manual") as r:
            result = r.poll()
            if result.status not in ("ok", "noop"):
                raise AssertionError(f"the Django site could not be reset: {result.summary()}")
            again = r.poll()
            if again.status != "noop":
                raise AssertionError(f"the Django site did not settle after a reset: {again.summary()}")
        from django.apps import apps
        from django.contrib import admin

        models = sorted(m.__name__ for m in apps.get_app_config(self.label).get_models())
        in_admin = sorted(m.__name__ for m in admin.site._registry if m._meta.app_label == self.label)
        if models != ["Item"] or in_admin != ["Item"]:
            raise AssertionError(
                f"the Django site kept models after a reset: {models}, in the admin: {in_admin}"
            )

    def fresh_env(self) -> dict[str, str]:
        """The environment of a fresh process that configures Django the same way."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["DJANGO_SETTINGS_MODULE"] = self.settings_module
        return env


_site: DjangoSite | None = None


def site(folder: Path) -> DjangoSite:
    """The process's Django site, made in ``folder`` on the first call (later calls return
    the first site whatever folder they name)."""
    global _site
    if _site is not None:
        return _site
    import django
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("Django was configured outside tests.support.django_site; use site() everywhere")
    root = Path(os.path.realpath(folder))
    app = f"hm_site_{uuid.uuid4().hex[:10]}"
    (root / app).mkdir(parents=True)
    write(root / app / "__init__.py", "")
    originals = {
        leaf: text.format(app=app, label=LABEL) if leaf == "apps" else text for leaf, text in FILES.items()
    }
    for leaf, text in originals.items():
        write(root / app / f"{leaf}.py", text)
    settings_module = f"{app}_settings"
    write(root / f"{settings_module}.py", SETTINGS.format(app=app))
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    values = importlib.import_module(settings_module)
    settings.configure(**{k: getattr(values, k) for k in dir(values) if k.isupper()})
    django.setup()
    from django.db import connection

    with connection.schema_editor() as editor:
        editor.create_model(importlib.import_module(f"{app}.models").Item)
    importlib.import_module(f"{app}.urls")  # every module of the app imported, and so tracked
    _site = DjangoSite(root, app, settings_module, originals)
    return _site
