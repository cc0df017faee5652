"""The SQLAlchemy adapter: a failed or refused run leaves SQLAlchemy as it was before it.

A save whose new version maps a class (or adds a table, a subclass, a column) and then
raises is aborted; the registries and metadata the module reaches hold what they held
before it, the kept classes query as before, and the corrected save applies: its classes
map once, their tables are created and take rows. Each through SQLAlchemy's public API
(``registry.mappers``, ``MetaData.tables``, ``Mapper.self_and_descendants``, sessions).
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmod

from ..support import Pkg, edit, fresh_answers, reload_error

sqlalchemy = pytest.importorskip("sqlalchemy")

from sqlalchemy.orm import Session, configure_mappers  # noqa: E402

RAISE = 'raise RuntimeError("late")\n'

BASE = """\
from sqlalchemy.orm import DeclarativeBase, registry

class Base(DeclarativeBase):
    pass

mapper_registry = registry()
"""

# How models.py reaches the registry its classes are mapped in: (import, class bases, decorator).
REACH = {
    "base by name": ("from .base import Base", "(Base)", ""),
    "base through its module": ("from . import base", "(base.Base)", ""),
    "registry decorator": ("from .base import mapper_registry", "", "@mapper_registry.mapped\n"),
}

MODELS = """\
from sqlalchemy import ForeignKey, Integer, String, Table, Column
from sqlalchemy.orm import Mapped, configure_mappers, mapped_column, relationship
{import_}

{decorator}class User{bases}:
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(30))

    def label(self):
        return "user " + self.name
{extra}"""

ORDER = """
{decorator}class Order{bases}:
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    total: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user = relationship("User")
"""


def _models(reach: str, extra: str = "") -> str:
    import_, bases, decorator = REACH[reach]
    return MODELS.format(
        import_=import_,
        bases=bases,
        decorator=decorator,
        extra=extra.format(bases=bases, decorator=decorator),
    )


def _aborted(r: hotmod.Reloader, pkg: Pkg, name: str, source: str) -> hotmod.ReloadResult:
    """Save ``source`` plus a raising last line: aborted at that line."""
    text = textwrap.dedent(source) + RAISE
    result = edit(r, pkg.path(name), text)
    assert result.status == "aborted", result.summary()
    error = reload_error(result)
    assert isinstance(error.__cause__, RuntimeError), error
    assert error.lineno == len(text.splitlines())
    return result


def _save(r: hotmod.Reloader, pkg: Pkg, name: str, source: str) -> hotmod.ReloadResult:
    result = edit(r, pkg.path(name), textwrap.dedent(source))
    assert result.status == "ok", (result.summary(), result.warnings)
    return result


def _classes(registry: Any) -> list[str]:
    """The registry's mapped classes by name, each as often as it is mapped (iterating
    ``registry.mappers`` raises UnmappedClassError for a class left half mapped)."""
    return sorted(mapper.class_.__name__ for mapper in registry.mappers)


@pytest.fixture
def engine() -> Iterator[Any]:
    made = sqlalchemy.create_engine("sqlite://")
    yield made
    made.dispose()  # the pool's sqlite connections, closed (3.13 warns of unclosed ones)


@pytest.mark.parametrize("reach", list(REACH))
def test_a_model_of_an_aborted_save_is_taken_back_and_the_corrected_save_maps_it(
    pkg: Pkg, engine: Any, reach: str
) -> None:
    pkg.module("base", BASE)
    mod = pkg.module("models", _models(reach))
    User = mod.User
    registry = sqlalchemy.inspect(User).registry
    metadata = registry.metadata
    metadata.create_all(engine)
    with Session(engine) as session:
        session.add(User(name="ann"))
        session.commit()
    r = pkg.reloader()
    assert r.strategy == "statements"

    _aborted(r, pkg, "models", _models(reach, ORDER))
    assert not hasattr(mod, "Order")
    assert mod.User is User
    assert _classes(registry) == ["User"]
    assert sorted(metadata.tables) == ["users"]
    with Session(engine) as session:
        assert session.scalars(sqlalchemy.select(User)).one().label() == "user ann"
        session.add(User(name="bob"))
        session.commit()
        assert session.query(User).count() == 2

    _save(r, pkg, "models", _models(reach, ORDER))
    Order = mod.Order
    assert mod.User is User
    assert _classes(registry) == ["Order", "User"]
    assert sorted(metadata.tables) == ["orders", "users"]
    metadata.create_all(engine)
    with Session(engine) as session:
        ann = session.scalars(sqlalchemy.select(User).where(User.name == "ann")).one()
        session.add(Order(total=3, user=ann))  # relationship("User") resolves to the kept class
        session.commit()
        order = session.scalars(sqlalchemy.select(Order)).one()
        assert (order.total, order.user.label()) == (3, "user ann")
        assert session.query(User).count() == 2


def test_a_model_of_an_aborted_module_run_is_taken_back(pkg: Pkg, engine: Any) -> None:
    """A whole-module run of a module that maps no class yet (one that does would run the
    kept class statement again: see the two tests below)."""
    base = pkg.module("base", BASE)
    pkg.module("models", _models("base by name"))
    extra = """\
    from sqlalchemy import Integer
    from sqlalchemy.orm import Mapped, mapped_column
    from .base import Base

    def describe():
        return "extra"
    {model}"""
    mod = pkg.module("extra", textwrap.dedent(extra.format(model="")))
    Base = base.Base
    Base.metadata.create_all(engine)
    r = pkg.reloader(strategy="module")
    order = """
    class Order(Base):
        __tablename__ = "orders"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        total: Mapped[int] = mapped_column(Integer)
    """

    _aborted(r, pkg, "extra", extra.format(model=order))
    assert not hasattr(mod, "Order")
    assert _classes(Base.registry) == ["User"]
    assert sorted(Base.metadata.tables) == ["users"]

    result = _save(r, pkg, "extra", extra.format(model=order))
    assert dict(result.strategies)[pkg.qualname("extra")].startswith("module"), result.strategies
    assert _classes(Base.registry) == ["Order", "User"]
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(mod.Order(total=7))
        session.commit()
        assert session.scalars(sqlalchemy.select(mod.Order.total)).one() == 7


def test_a_module_run_of_a_mapped_class_with_its_own_base_is_refused_and_leaves_it_registered(
    pkg: Pkg, engine: Any
) -> None:
    """By design: running ``class User(Base)`` again needs a restart; here the run made a new
    Base of its own, so the adapter's refusal is what stops it."""
    source = "from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n\n"
    mod = pkg.module("models", source + _models("base by name").replace("from .base import Base", ""))
    User, Base = mod.User, mod.Base
    Base.metadata.create_all(engine)
    r = pkg.reloader(strategy="module")
    new = source + _models("base by name", ORDER).replace("from .base import Base", "")
    result = edit(r, pkg.path("models"), new)
    assert result.status == "needs_restart", result.summary()
    assert "User" in str(reload_error(result))
    assert (mod.User, mod.Base) == (User, Base)
    assert not hasattr(mod, "Order")
    assert _classes(Base.registry) == ["User"]
    assert sorted(Base.metadata.tables) == ["users"]
    with Session(engine) as session:
        session.add(User(name="ann"))
        session.commit()
        assert session.scalars(sqlalchemy.select(User)).one().label() == "user ann"


def test_a_module_run_of_a_mapped_class_on_a_kept_base_is_refused_before_it_runs(
    pkg: Pkg, engine: Any
) -> None:
    """The kept Base's metadata already holds the table, so SQLAlchemy would stop the class
    statement half way ("Table ... is already defined"), leaving a class with a manager in
    the registry and no mapper: the adapter refuses the run before any of it runs, naming
    the class, its table and the statement that made the module run as a whole."""
    base = pkg.module("base", BASE)
    mod = pkg.module("models", _models("base by name"))
    User, Base = mod.User, base.Base
    Base.metadata.create_all(engine)
    r = pkg.reloader(strategy="module")
    for extra in (ORDER, ORDER + "# again\n"):  # and the next save finds the registry as clean
        result = edit(r, pkg.path("models"), _models("base by name", extra))
        assert result.status == "needs_restart", result.summary()
        assert "User" in str(reload_error(result))
        assert "table 'users'" in str(reload_error(result))
        assert mod.User is User
        assert not hasattr(mod, "Order")  # nothing of the new version ran
        assert _classes(Base.registry) == ["User"]
        assert sorted(Base.metadata.tables) == ["users"]
    configure_mappers()
    with Session(engine) as session:
        session.add(User(name="ann"))
        session.commit()
        assert session.scalars(sqlalchemy.select(User)).one().label() == "user ann"


HELPER = """\
from sqlalchemy import Column, Integer, Table
from .base import Base

def audit_table(name):
    return Table(name, Base.metadata, Column("id", Integer, primary_key=True))
"""

# A Core table, made in models.py on Base.metadata, or by a helper of another module that
# the failed save imports first (models.py reached neither that module nor Base before).
AUDIT = {
    "on Base.metadata": '\naudit = Table("audit", Base.metadata, Column("id", Integer, primary_key=True))\n',
    "by another module's helper": '\nfrom .helpers import audit_table\naudit = audit_table("audit")\n',
}


@pytest.mark.parametrize("made", list(AUDIT))
def test_a_core_table_of_an_aborted_save_is_taken_back(pkg: Pkg, engine: Any, made: str) -> None:
    base = pkg.module("base", BASE)
    pkg.module("helpers", HELPER)
    reach = "base by name" if made == "on Base.metadata" else "registry decorator"
    pkg.module("models", _models(reach))
    Base = base.Base
    kept = sorted(Base.metadata.tables)  # users, or nothing (the decorator maps in mapper_registry)
    r = pkg.reloader()

    _aborted(r, pkg, "models", _models(reach, AUDIT[made]))
    assert sorted(Base.metadata.tables) == kept

    _save(r, pkg, "models", _models(reach, AUDIT[made]))
    assert sorted(Base.metadata.tables) == sorted([*kept, "audit"])
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(Base.metadata.tables["audit"].insert().values(id=5))
        assert connection.execute(sqlalchemy.select(Base.metadata.tables["audit"].c.id)).scalar() == 5


POLYMORPHIC = """\
from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from .base import Base

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(10))
    __mapper_args__ = {{"polymorphic_on": "kind", "polymorphic_identity": "user", "with_polymorphic": "*"}}
{extra}"""

SUBCLASS = {
    # single-table: the subclass's own column goes into the kept users table
    "single table": """
class Admin(User):
    level: Mapped[int] = mapped_column(Integer, nullable=True)
    __mapper_args__ = {"polymorphic_identity": "admin"}
""",
    "joined table": """
class Admin(User):
    __tablename__ = "admins"
    id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, nullable=True)
    __mapper_args__ = {"polymorphic_identity": "admin"}
""",
}


@pytest.mark.parametrize("inheritance", list(SUBCLASS))
def test_a_subclass_of_a_kept_model_made_by_an_aborted_save_leaves_its_hierarchy(
    pkg: Pkg, engine: Any, inheritance: str
) -> None:
    base = pkg.module("base", BASE)
    mod = pkg.module("models", POLYMORPHIC.format(extra=""))
    User, Base = mod.User, base.Base
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(User(name="ann"))
        session.commit()
    users = Base.metadata.tables["users"]
    columns = list(users.c.keys())
    mapper = sqlalchemy.inspect(User)
    r = pkg.reloader()

    _aborted(r, pkg, "models", POLYMORPHIC.format(extra=SUBCLASS[inheritance]))
    assert not hasattr(mod, "Admin")
    assert _classes(Base.registry) == ["User"]
    assert sorted(Base.metadata.tables) == ["users"]
    assert list(users.c.keys()) == columns
    assert list(mapper.self_and_descendants) == [mapper]
    assert list(mapper.polymorphic_map) == ["user"]
    with Session(engine) as session:  # with_polymorphic "*": a kept Admin would be queried too
        assert [u.name for u in session.scalars(sqlalchemy.select(User))] == ["ann"]

    result = _save(r, pkg, "models", POLYMORPHIC.format(extra=SUBCLASS[inheritance]))
    assert result.warnings == ()  # no "Reassigning polymorphic association for identity 'admin'"
    Admin = mod.Admin
    assert _classes(Base.registry) == ["Admin", "User"]
    assert [m.class_ for m in mapper.self_and_descendants] == [User, Admin]
    fresh = sqlalchemy.create_engine("sqlite://")  # the users table has a new column now
    try:
        Base.metadata.create_all(fresh)
        with Session(fresh) as session:
            session.add_all([User(name="ann"), Admin(name="root", level=2)])
            session.commit()
            loaded = session.scalars(sqlalchemy.select(User).order_by(User.id)).all()
            assert [(type(u), u.name) for u in loaded] == [(User, "ann"), (Admin, "root")]
            assert loaded[1].level == 2
    finally:
        fresh.dispose()


def test_a_batch_whose_later_module_fails_takes_back_the_models_of_the_earlier_one(
    pkg: Pkg, engine: Any
) -> None:
    base = pkg.module("base", BASE)
    mod = pkg.module("models", _models("base by name"))
    other = pkg.module("other", "VALUE = 1\n")
    Base = base.Base
    r = pkg.reloader()
    pkg.write("models", _models("base by name", ORDER))
    pkg.write("other", "VALUE = 2\n" + RAISE)
    r.notify(pkg.path("models"), pkg.path("other"))
    result = r.poll()
    assert result.status == "aborted", result.summary()
    assert {pkg.path("models"), pkg.path("other")} <= set(result.paths)
    assert (other.VALUE, hasattr(mod, "Order")) == (1, False)
    assert _classes(Base.registry) == ["User"]
    assert sorted(Base.metadata.tables) == ["users"]

    result = _save(r, pkg, "other", "VALUE = 2\n")  # the batch's models.py applies again with it
    assert pkg.path("models") in result.paths
    assert (other.VALUE, _classes(Base.registry)) == (2, ["Order", "User"])
    assert sorted(Base.metadata.tables) == ["orders", "users"]
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(mod.Order(total=1, user=mod.User(name="ann")))
        session.commit()
        assert session.scalars(sqlalchemy.select(mod.Order)).one().user.name == "ann"


def test_a_backref_the_aborted_run_configured_on_a_kept_model_is_reported(
    pkg: Pkg, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLAlchemy cannot un-map a single attribute of a mapped class: a failed run that
    configured its mappers (``configure_mappers()``, a query) left a backref on the kept
    class. Its new class is taken out; the backref is logged as needing a restart."""
    base = pkg.module("base", BASE)
    mod = pkg.module("models", _models("base by name"))
    Base = base.Base
    r = pkg.reloader()
    order = ORDER.replace('relationship("User")', 'relationship("User", backref="orders")')
    with caplog.at_level(logging.WARNING, logger="hotmod.adapters"):
        _aborted(r, pkg, "models", _models("base by name", order) + "configure_mappers()\n")
    assert _classes(Base.registry) == ["User"]
    assert sorted(Base.metadata.tables) == ["users"]
    said = [rec.getMessage() for rec in caplog.records if rec.name == "hotmod.adapters._sqlalchemy"]
    assert len(said) == 1, said
    assert "User kept the attribute(s) orders" in said[0]
    assert mod.__name__ in said[0]


# A SQLAlchemy whose private pieces moved: (what is taken away, what the log says then).
MOVED = {
    "no per-class dispose": "Order: this SQLAlchemy version has no registry._dispose_manager_and_mapper",
    "no list of class managers": "the new classes of <sqlalchemy.orm",
}


@pytest.mark.parametrize("moved", list(MOVED))
def test_sqlalchemy_internals_that_moved_degrade_to_a_warning(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, moved: str
) -> None:
    """The reload is still aborted (no adapter exception), the new table is still removed
    (public API), and what is left is logged, only when the failed run mapped something."""
    from sqlalchemy.orm import registry as registry_type

    import hotmod.adapters._sqlalchemy as adapter

    base = pkg.module("base", BASE)
    mod = pkg.module("models", _models("base by name"))
    Base = base.Base
    r = pkg.reloader()
    if moved == "no per-class dispose":
        monkeypatch.delattr(registry_type, "_dispose_manager_and_mapper")
    else:
        monkeypatch.setattr(adapter, "_managers", lambda registry: None)
    with caplog.at_level(logging.WARNING, logger="hotmod.adapters"):
        _aborted(r, pkg, "models", _models("base by name", "\nVALUE = 1\n"))
        said = [rec.getMessage() for rec in caplog.records if rec.name == adapter.__name__]
        assert said == []  # nothing mapped, nothing to tell
        result = _aborted(r, pkg, "models", _models("base by name", ORDER))
    assert result.warnings == ()
    assert sorted(Base.metadata.tables) == ["users"]
    assert not hasattr(mod, "Order")
    said = [rec.getMessage() for rec in caplog.records if rec.name == adapter.__name__]
    assert len(said) == 1, said
    assert MOVED[moved] in said[0]
    assert not any(rec.levelno >= logging.ERROR for rec in caplog.records)  # no adapter exception


@pytest.mark.parametrize("base_in", ["models.py", "base.py"])
def test_a_new_relationship_on_a_mapped_class_is_refused_naming_it(pkg: Pkg, base_in: str) -> None:
    """Columns are compared by the table; a relationship has no column: it is named from
    the attributes the mapper instrumented on the class when the run made a new class (a
    Base of its own), or by the line of the statement that changed (a kept Base: the run
    is refused before it runs)."""
    pkg.module("base", BASE)
    source = _models("base by name", ORDER)
    if base_in == "models.py":
        source = source.replace(
            "from .base import Base",
            "from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n",
        )
    with_orders = source.replace(
        "    def label(self):",
        '    orders = relationship("Order", viewonly=True)\n\n    def label(self):',
    )
    models = pkg.module("models", source)
    User = models.User
    r = pkg.reloader()
    result = edit(r, pkg.path("models"), textwrap.dedent(with_orders))
    assert result.status == "needs_restart", result.summary()
    error = str(reload_error(result))
    assert "User" in error
    line = (
        textwrap.dedent(with_orders).splitlines().index('    orders = relationship("Order", viewonly=True)')
        + 1
    )
    assert "orders added" in error if base_in == "models.py" else f"models.py:{line}" in error
    assert models.User is User
    assert not hasattr(User, "orders")
    assert r.poll().status == "noop"  # reported once


FRESH_PROBE = """\
import json

import sqlalchemy
from sqlalchemy.orm import Session


def answers(models, base):
    engine = sqlalchemy.create_engine("sqlite://")
    base.Base.metadata.create_all(engine)
    with Session(engine) as session:
        user = models.User(name="ann")
        session.add_all([user, models.Order(total=3, user=user)])
        session.commit()
        replies = {
            "labels": [u.label() for u in session.scalars(sqlalchemy.select(models.User))],
            "orders": [[o.total, o.user.name] for o in session.scalars(sqlalchemy.select(models.Order))],
            "tables": sorted(base.Base.metadata.tables),
            "classes": sorted(m.class_.__name__ for m in base.Base.registry.mappers),
        }
    engine.dispose()
    return replies


if __name__ == "__main__":
    from . import base, models

    print(json.dumps(answers(models, base)))
"""


def test_after_edits_the_process_answers_as_a_fresh_start(pkg: Pkg, tmp_path: Path) -> None:
    base = pkg.module("base", BASE)
    probe = pkg.module("probe", FRESH_PROBE)
    models = pkg.module("models", _models("base by name"))
    r = pkg.reloader()
    _aborted(r, pkg, "models", _models("base by name", ORDER))  # taken back
    _save(r, pkg, "models", _models("base by name", ORDER))  # a new model
    final = _models("base by name", ORDER).replace(
        'return "user " + self.name', 'return "user " + self.name + "!"'
    )
    _save(r, pkg, "models", final)  # a method
    reloaded = probe.answers(models, base)
    fresh = fresh_answers(pkg, tmp_path, "probe")
    assert reloaded == fresh
    assert fresh["labels"] == ["user ann!"]
    assert fresh["classes"] == ["Order", "User"]
