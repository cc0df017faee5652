"""A module function a library installs elsewhere and renames stays one object after a reload.

attrs on CPython 3.13 does this with its ``evolve``: every class it builds gets
``evolve`` itself as ``__replace__``, and ``__qualname__``/``__module__`` are set to that
class's. A package reloaded in one transaction then meets the old ``evolve`` in classes
its other modules built (their new run still imports from the old version, which stays
visible until the commit) and the new one in its own module. Both must end on the kept
function: module binding, other modules' imports, every class's ``__replace__``.
"""

from __future__ import annotations

import pytest

from ..support import Pkg, write

MAKE = """
def evolve(inst):
    return ("evolve", {n})


def frozen_setattr(self, name, value):
    raise AttributeError(name)


def define(cls):
    cls.__replace__ = evolve
    cls.__setattr__ = frozen_setattr
    evolve.__qualname__ = f"{{cls.__qualname__}}.__replace__"
    evolve.__module__ = cls.__module__
    return cls


@define
class Inner:
    pass
"""

VERSION = """
from .make import define


@define
class Version:
    pass
"""

INIT = """
from .make import Inner, evolve, frozen_setattr
from .version import Version
"""


@pytest.mark.parametrize("strategy", ["module", "statements"])
def test_a_renamed_module_function_installed_on_classes_stays_one_object(pkg: Pkg, strategy: str) -> None:
    pkg.write("make", MAKE.format(n=1))
    pkg.write("version", VERSION)
    write(pkg.dir / "__init__.py", INIT)
    make, version = pkg.import_("make"), pkg.import_("version")
    root = __import__(pkg.name)
    held = make.evolve
    held_setattr = make.frozen_setattr
    assert version.Version.__replace__ is held
    assert held.__qualname__ == "Version.__replace__"  # renamed by the last class built
    pkg.strategy = strategy
    r = pkg.reloader()

    # Every file changes and moves one line down, applied in one poll.
    pkg.write("make", "\n" + MAKE.format(n=2))
    pkg.write("version", "\n" + VERSION)
    write(pkg.dir / "__init__.py", "\n" + INIT)
    r.notify(pkg.path("make"), pkg.path("version"), pkg.dir / "__init__.py")
    result = r.poll()

    assert result.status == "ok", result.report()
    assert not result.warnings, result.warnings
    assert make.evolve is held
    assert root.evolve is held
    assert make.frozen_setattr is held_setattr
    assert root.frozen_setattr is held_setattr
    assert make.Inner.__replace__ is held
    assert version.Version.__replace__ is held
    assert version.Version.__setattr__ is held_setattr
    assert held(None) == ("evolve", 2)
    assert held.__code__.co_firstlineno == 3  # the new code, one line down
