"""The production switch: ``HOTMOD=0`` in the environment turns every integration off.

A deployment can leave ``hotmod.web.enable(app)`` (or the IPython extension, the REPL
hook, ``python -m hotmod run``) in place and set one variable, with no code change.
The variable is read at each call, so a test or a launcher may set it late.
"""

from __future__ import annotations

import os

__all__ = ["VARIABLE", "disabled"]

VARIABLE = "HOTMOD"
_OFF = frozenset({"0", "off", "false", "no", "disable", "disabled"})


def disabled() -> bool:
    """True when the environment says ``HOTMOD=0`` (or ``off``, ``false``, ``no``)."""
    return os.environ.get(VARIABLE, "").strip().lower() in _OFF
