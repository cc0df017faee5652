"""A module imported by one thread while the reloader's thread scans ``sys.modules``.

The scan is skipped while ``sys.modules`` keeps its length and its last entry. Those were
recorded after the scan: a module imported during it was taken as seen and never tracked,
so its saves were never applied (``python -m hotmod run -m tool`` missed the edit of a
module its ``__main__`` imported, about 1 run in 20 on CPython 3.13). They are recorded
before the scan now.
"""

from __future__ import annotations

from typing import Any

import pytest

from hotmod import _module_index

from ..support import Pkg, edit


def test_a_module_imported_while_the_reloader_scans_is_tracked(
    pkg: Pkg, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = pkg.reloader()  # made before the import, as `hotmod run` does
    pkg.write("late", "def value():\n    return 'one'\n")
    origin = _module_index.module_origin
    imported: list[Any] = []

    def import_during_the_scan(module: object) -> str | None:
        if not imported:  # another thread's import, landing in the middle of the scan
            imported.append(pkg.import_("late"))
        return origin(module)

    monkeypatch.setattr(_module_index, "module_origin", import_during_the_scan)
    pkg.module("first", "X = 1\n")  # something new for the scan to look at
    assert r.poll().status == "noop"
    assert imported
    monkeypatch.setattr(_module_index, "module_origin", origin)
    assert pkg.path("late") in r.modules
    result = edit(r, pkg.path("late"), "def value():\n    return 'two'\n")
    assert result.status == "ok", result.summary()
    assert imported[0].value() == "two"
