"""A module holding a lazy proxy that raises on any attribute, ``__class__`` included.

Django's ``settings`` before ``configure()`` is one (``ImproperlyConfigured``), and a module
may import it long before anything configures it. ``isinstance`` reads ``__class__`` when
the type alone does not answer, so hotmod's walks over a module's values ask the type
alone: the reloader starts, and both kinds of reload apply, without touching it.
"""

from __future__ import annotations

import pytest

from ..support import Pkg, edit

SOURCE = """\
class NotConfigured:
    def __getattribute__(self, name):
        raise RuntimeError("settings are not configured")

settings = NotConfigured()

class Greeter:
    def greet(self):
        return "hello {v}"

def greet():
    return Greeter().greet()
"""


@pytest.mark.parametrize("order", ["imported first", "reloader first"])
@pytest.mark.parametrize("strategy", ["statements", "module"])
def test_a_module_holding_a_raising_proxy_reloads(pkg: Pkg, strategy: str, order: str) -> None:
    if order == "imported first":  # a late start: the running module is checked
        mod = pkg.module("lazy", SOURCE.format(v=1))
        r = pkg.reloader(strategy=strategy)
    else:
        r = pkg.reloader(strategy=strategy)
        mod = pkg.module("lazy", SOURCE.format(v=1))
    held = mod.greet
    result = edit(r, pkg.path("lazy"), SOURCE.format(v=2))
    assert result.status == "ok", result.summary()
    assert held() == "hello 2"
    assert mod.Greeter().greet() == "hello 2"
    with pytest.raises(RuntimeError, match="not configured"):
        mod.settings.anything  # noqa: B018  (the proxy is still the same, untouched)
