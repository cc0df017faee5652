"""Settings read from settings.json; saving that file re-runs this module."""

from __future__ import annotations

import json

import hotmod

hot = hotmod.hot(__name__)
SETTINGS = json.loads(hot.depends_on("settings.json").read_text(encoding="utf-8"))
