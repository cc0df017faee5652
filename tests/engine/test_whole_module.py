"""Whole-module re-execution leaves nothing pointing at the discarded copies (issue 24).

Each test reloads a module (or a batch) whose new run built objects the patcher merges
into the kept ones: enum members, instances made in class bodies and defaults, tuples
in defaults, subclasses of slotted bases, wrappers that copy another module's
``__module__``. After the reload, references taken before and names read afresh must
agree on one object, as after a fresh import.
"""

from __future__ import annotations

import pickle

import pytest

from ..support import Pkg, edit, write


@pytest.fixture(autouse=True)
def _whole_module(pkg: Pkg) -> None:
    """These defects live in whole-module re-execution: every reload here takes that path."""
    pkg.strategy = "module"


SENTINELS = """
import enum
class _Nothing(enum.Enum):
    NOTHING = enum.auto()
NOTHING = _Nothing.NOTHING
def is_mandatory(default=NOTHING):
    return default is NOTHING
TABLE = {NOTHING: "missing"}
ORDER = [NOTHING]
VERSION = 1
"""

FIELDS = """
from .sentinels import NOTHING
class Field:
    default = NOTHING
    def __init__(self, default=NOTHING):
        self.mandatory = default is NOTHING
VERSION = 1
"""


def test_enum_members_of_the_new_run_end_on_the_kept_members(pkg: Pkg) -> None:
    """Defect 1: aliases, defaults, dict keys, lists and other modules' imports of a
    member all hold the kept member, so ``x is NOTHING`` keeps holding."""
    mod = pkg.module("sentinels", SENTINELS)
    fields = pkg.module("fields", FIELDS)
    held, field_before = mod.NOTHING, fields.Field()
    r = pkg.reloader()
    for name in ("sentinels", "fields"):
        write(pkg.path(name), pkg.path(name).read_text().replace("VERSION = 1", "VERSION = 2"))
        r.notify(pkg.path(name))
    result = r.poll()
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert mod.VERSION == fields.VERSION == 2
    assert mod._Nothing.NOTHING is held
    assert mod.NOTHING is held
    assert mod.is_mandatory()
    assert mod.is_mandatory.__defaults__[0] is held
    assert next(iter(mod.TABLE)) is held
    assert mod.TABLE[held] == "missing"
    assert mod.ORDER[0] is held
    assert fields.NOTHING is held
    assert fields.Field.default is held
    assert field_before.mandatory
    assert fields.Field().mandatory
    assert not fields.Field(None).mandatory


INSTANCES = """
class Token:
    def __init__(self, text):
        self.text = text
    def __add__(self, other):
        if not isinstance(other, Token):
            return NotImplemented
        return Token(self.text + other.text)
class Patterns:
    number = Token("0-9")
def join(sep=Token("<"), *, end=Token(">")):
    return sep + end
TABLE = {"a": Token("a")}
LIST = [Token("l")]
VERSION = 1
"""


def test_instances_in_class_bodies_defaults_and_containers_take_the_kept_class(pkg: Pkg) -> None:
    """Defect 2: re-classing reaches class attributes, defaults, kwdefaults and
    containers one level deep, not only module-level names."""
    mod = pkg.module("tokens", INSTANCES)
    token = mod.Token
    r = pkg.reloader()
    result = edit(r, pkg.path("tokens"), INSTANCES.replace("VERSION = 1", "VERSION = 2"))
    assert result.status == "ok", result.error
    assert mod.Token is token
    assert type(mod.Patterns.number) is token
    assert type(mod.join.__defaults__[0]) is token
    assert type(mod.join.__kwdefaults__["end"]) is token
    assert mod.join().text == "<>"
    assert (mod.Patterns.number + token("!")).text == "0-9!"
    assert type(mod.TABLE["a"]) is token
    assert type(mod.LIST[0]) is token


def test_a_package_runs_before_the_submodules_that_import_from_it(pkg: Pkg) -> None:
    """Defect 3: ``import app.sub`` binds ``sub`` on the package, which is no import by the
    package's code; ``app/sub.py`` doing ``from app import X`` runs after ``app`` in a batch,
    as in a fresh import, so it sees the package's new values and new names."""
    pkg.subpackage("app")
    init = "class Base:\n    pass\nVERSION = 1\n"
    sub = f"from {pkg.name}.app import Base, VERSION\nclass Thing(Base):\n    pass\nLABEL = f'v{{VERSION}}'\n"
    pkg.write("app.__init__", init)
    pkg.write("app.sub", sub)
    package = pkg.import_("app")
    submodule = pkg.import_("app.sub")
    base, thing = package.Base, submodule.Thing
    assert vars(package)["sub"] is submodule
    r = pkg.reloader()
    write(pkg.path("app.__init__"), init.replace("VERSION = 1", "VERSION = 2\nEXTRA = 3"))
    write(pkg.path("app.sub"), sub.replace("Base, VERSION", "Base, VERSION, EXTRA"))
    r.notify(pkg.path("app.__init__"), pkg.path("app.sub"))
    result = r.poll()
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert submodule.LABEL == "v2"
    assert submodule.EXTRA == 3
    assert package.Base is base
    assert submodule.Thing is thing
    assert issubclass(thing, base)


def test_a_module_that_takes_an_instance_from_another_runs_after_it(pkg: Pkg) -> None:
    """``from .zeta import TAG`` names no module through the value it binds (an instance),
    but the import is in the code: ``alpha`` runs after ``zeta`` in a batch, as in a fresh
    import, so what it builds from ``TAG`` holds zeta's new ``TAG`` (pyparsing's
    ``_html_stripper`` is built from helpers' ``any_open_tag``)."""
    zeta = pkg.module("zeta", "class Tag:\n    def __init__(self, n):\n        self.n = n\nTAG = Tag(1)\n")
    alpha = pkg.module("alpha", "from .zeta import TAG\nHOLDER = [TAG]\n")
    r = pkg.reloader()
    for name in ("zeta", "alpha"):
        write(pkg.path(name), "# edited\n" + pkg.path(name).read_text())
        r.notify(pkg.path(name))
    result = r.poll()
    assert result.status == "ok", result.error
    assert alpha.TAG is zeta.TAG
    assert alpha.HOLDER[0] is zeta.TAG


def test_a_package_that_imports_its_submodule_still_runs_after_it(pkg: Pkg) -> None:
    """The other half: a package whose code uses what its submodule builds (toolz's
    ``functoolz._sigs.create_signature_registry()`` fills the submodule's new registry)."""
    pkg.subpackage("reg")
    pkg.write("reg.table", "SIGNATURES = {}\ndef fill(target=SIGNATURES):\n    target['abs'] = 1\n")
    pkg.write("reg.__init__", "from . import table\ntable.fill()\n")
    pkg.import_("reg")
    table = pkg.import_("reg.table")
    r = pkg.reloader()
    for name in ("reg.table", "reg.__init__"):
        write(pkg.path(name), "# edited\n" + pkg.path(name).read_text())
        r.notify(pkg.path(name))
    result = r.poll()
    assert result.status == "ok", result.error
    assert table.SIGNATURES == {"abs": 1}


def test_tuples_and_frozensets_in_defaults_hold_the_kept_classes(pkg: Pkg) -> None:
    """Defect 4: ``def f(skip=(Blank,))`` is repointed like a module-level tuple."""
    v1 = (
        "class Blank:\n    pass\n"
        "def f(skip=(Blank, (Blank,)), *, kinds=frozenset([Blank])):\n    return skip, kinds\n"
        "VERSION = 1\n"
    )
    mod = pkg.module("blanks", v1)
    blank = mod.Blank
    r = pkg.reloader()
    result = edit(r, pkg.path("blanks"), v1.replace("VERSION = 1", "VERSION = 2"))
    assert result.status == "ok", result.error
    skip, kinds = mod.f()
    assert skip[0] is blank
    assert skip[1][0] is blank
    assert next(iter(kinds)) is blank


ENUM_DUNDERS = """
import enum
class Level(enum.Enum):
    LOW = 1
    HIGH = 2
    def __repr__(self):
        return "repr {n}"
    def __str__(self):
        return "str {n}"
    def __bool__(self):
        return {truth}
    @classmethod
    def _missing_(cls, value):
        return cls.LOW if value == {n} else None
"""


def test_enum_dunder_and_sunder_methods_are_applied(pkg: Pkg) -> None:
    """Defect 5: ``__repr__``, ``__str__``, ``__bool__`` and ``_missing_`` edits apply."""
    mod = pkg.module("levels", ENUM_DUNDERS.format(n=1, truth=True))
    held = mod.Level.HIGH
    assert (repr(held), str(held), bool(held)) == ("repr 1", "str 1", True)
    r = pkg.reloader()
    result = edit(r, pkg.path("levels"), ENUM_DUNDERS.format(n=2, truth=False))
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert held is mod.Level.HIGH
    assert (repr(held), str(held), bool(held)) == ("repr 2", "str 2", False)
    assert mod.Level(2) is held
    assert mod.Level._missing_(2) is mod.Level.LOW
    assert mod.Level._missing_(1) is None


def test_an_enum_of_object_sentinels_is_kept(pkg: Pkg) -> None:
    """Defect 6: members whose values are fresh ``object()``s did not change."""
    v1 = "import enum\nclass Marker(enum.Enum):\n    A = object()\n    B = object()\nVERSION = 1\n"
    mod = pkg.module("markers", v1)
    held = mod.Marker.A
    r = pkg.reloader()
    result = edit(r, pkg.path("markers"), v1.replace("VERSION = 1", "VERSION = 2"))
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert result.classes_replaced == 0
    assert mod.Marker.A is held
    assert mod.Marker(held.value) is held


def test_an_enum_whose_member_value_changes_is_still_replaced(pkg: Pkg) -> None:
    v1 = "import enum\nclass Marker(enum.Enum):\n    A = object()\n    B = (1, 'x')\n"
    mod = pkg.module("markers2", v1)
    held = mod.Marker.B
    r = pkg.reloader()
    result = edit(r, pkg.path("markers2"), v1.replace("(1, 'x')", "(2, 'x')"))
    assert result.status == "ok", result.error
    assert result.classes_replaced == 1
    assert mod.Marker.B.value == (2, "x")
    assert held is not mod.Marker.B


def test_a_metaclass_with_a_module_property_keeps_its_classes(pkg: Pkg) -> None:
    """Defect 7: the class's module is read from its own ``__dict__``."""
    v1 = (
        "class Meta(type):\n"
        "    @property\n"
        "    def __module__(cls):\n        return 'somewhere.else'\n"
        "class C(metaclass=Meta):\n    def m(self):\n        return 1\n"
    )
    mod = pkg.module("metamod", v1)
    held, obj = mod.C, mod.C()
    assert held.__module__ == "somewhere.else"
    r = pkg.reloader()
    result = edit(r, pkg.path("metamod"), v1.replace("return 1", "return 2"))
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert result.classes_replaced == 0
    assert mod.C is held
    assert obj.m() == 2


def test_an_instance_of_a_subclass_of_a_slotted_base_of_the_batch_is_reclassed(pkg: Pkg) -> None:
    """Defect 8: the subclass made by this run derives from the base's discarded twin."""
    pkg.module("slotted", "class Base:\n    __slots__ = ('x',)\nVERSION = 1\n")
    days_source = (
        "from .slotted import Base\n"
        "class Day(Base):\n    def __init__(self, x):\n        self.x = x\n"
        "FIRST = Day(1)\nVERSION = 1\n"
    )
    days = pkg.module("days", days_source)
    day = days.Day
    r = pkg.reloader()
    write(pkg.path("slotted"), "class Base:\n    __slots__ = ('x',)\nVERSION = 2\n")
    write(pkg.path("days"), days_source.replace("VERSION = 1", "VERSION = 2"))
    r.notify(pkg.path("slotted"), pkg.path("days"))
    result = r.poll()
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert days.Day is day
    assert isinstance(days.FIRST, day)
    assert days.FIRST.x == 1
    copy = pickle.loads(pickle.dumps(days.FIRST))
    assert type(copy) is day
    assert copy.x == 1


def test_a_wraps_wrapper_of_another_modules_function_is_updated_in_place(pkg: Pkg) -> None:
    """Defect 9: ownership follows the code's file, not the copied ``__module__``."""
    pkg.module("inner", "def g():\n    return 10\n")
    v1 = (
        "import functools\nfrom .inner import g\n"
        "def make(fn):\n"
        "    @functools.wraps(fn)\n"
        "    def wrapper():\n        return fn() + 1\n"
        "    return wrapper\n"
        "h = make(g)\n"
    )
    mod = pkg.module("wrapping", v1)
    held = mod.h
    assert held.__module__ == pkg.qualname("inner")
    r = pkg.reloader()
    result = edit(r, pkg.path("wrapping"), v1.replace("fn() + 1", "fn() + 2"))
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert mod.h is held
    assert held() == 12


def test_instances_of_a_class_that_refuses_setattr_are_reclassed(pkg: Pkg) -> None:
    """A frozen class' ``__setattr__`` (attrs' ``frozen=True``) is user code: re-classing
    never goes through it, at module level or in a class body."""
    v1 = (
        "class Frozen:\n"
        "    def __setattr__(self, name, value):\n        raise AttributeError('frozen')\n"
        "    def m(self):\n        return 1\n"
        "DEFAULT = Frozen()\n"
        "class Holder:\n    item = Frozen()\n"
    )
    mod = pkg.module("frozen", v1)
    frozen = mod.Frozen
    r = pkg.reloader()
    result = edit(r, pkg.path("frozen"), v1.replace("return 1", "return 2"))
    assert result.status == "ok", result.error
    assert result.warnings == ()
    assert type(mod.DEFAULT) is frozen
    assert type(mod.Holder.item) is frozen
    assert mod.DEFAULT.m() == mod.Holder.item.m() == 2


def test_an_enum_whose_member_values_are_equal_plain_objects_is_kept(pkg: Pkg) -> None:
    """Values made by the same expression (an instance with the same plain state) are the
    same members; an instance whose state changed is a changed member."""
    v1 = (
        "import enum\n"
        "class Spec:\n    def __init__(self, n):\n        self.n = n\n"
        "class Kind(enum.Enum):\n    A = Spec(1)\n    B = Spec(2)\n"
        "VERSION = 1\n"
    )
    mod = pkg.module("specs", v1)
    held = mod.Kind.A
    r = pkg.reloader()
    result = edit(r, pkg.path("specs"), v1.replace("VERSION = 1", "VERSION = 2"))
    assert result.status == "ok", result.error
    assert (result.warnings, result.classes_replaced) == ((), 0)
    assert mod.Kind.A is held
    assert type(held.value) is mod.Spec
    result = edit(r, pkg.path("specs"), v1.replace("Spec(2)", "Spec(3)"))
    assert result.status == "ok", result.error
    assert result.classes_replaced == 1
    assert mod.Kind.B.value.n == 3
