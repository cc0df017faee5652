"""Print a pip constraints file pinning every ``>=`` floor of hotmod's runtime and test
dependencies exactly, so one CI run tests the lowest versions the project declares.

Extras that name hotmod itself (``hotmod[web]``) are followed. The linters are left out:
they check the code, they are not something hotmod runs with.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_LINTERS = {"mypy", "ruff"}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*(.*)$")


def main() -> None:
    data = tomllib.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml").read_text())
    project = data["project"]
    optional = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", []))
    todo, done = ["test"], set()
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for requirement in optional.get(extra, []):
            match = _REQUIREMENT.match(requirement.split(";")[0])
            if match and match.group(1).lower() == "hotmod":
                todo += [e.strip() for e in (match.group(2) or "[]")[1:-1].split(",") if e.strip()]
            else:
                requirements.append(requirement)
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement.split(";")[0])
        if match is None:
            continue
        name, _, spec = match.groups()
        floor = re.search(r">=\s*([0-9][^,\s]*)", spec)
        if floor and name.lower() not in _LINTERS:
            print(f"{name}=={floor.group(1)}")


if __name__ == "__main__":
    main()
