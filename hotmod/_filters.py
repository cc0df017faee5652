"""Which files belong to the watched tree: include and exclude patterns."""

from __future__ import annotations

import fnmatch
import os
import re
import sysconfig
from collections.abc import Iterable
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["DEFAULT_EXCLUDE", "DEFAULT_INCLUDE", "USER_CODE_ROOT", "PathFilter", "is_user_code"]

DEFAULT_INCLUDE: tuple[str, ...] = ("*.py",)

# Matched against every component of a path. Editors save through scratch files
# (vim's ``.x.py.swp`` and its ``4913`` probe, emacs' ``#x.py#`` and ``.#x.py`` locks,
# JetBrains' ``x.py___jb_tmp___``/``___jb_old___``, ``x.py~`` backups); none of them
# is a module, and watching them would only add noise to the change queue.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "__pycache__",
    ".git",
    ".hg",
    ".svn",
    ".bzr",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".eggs",
    "*.egg-info",
    "site-packages",
    "dist-packages",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    ".*.sw?",
    "*.sw?",
    "*~",
    "#*#",
    ".#*",
    "4913",
    "*___jb_tmp___",
    "*___jb_old___",
    "*.tmp",
)


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(parts)) if parts else None


def _system_dirs() -> tuple[str, ...]:
    """The standard library, site-packages and hotmod itself: never tracked unless a
    root lies inside one of them."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    found = {os.path.realpath(p) for n in names if (p := sysconfig.get_paths().get(n))}
    found.add(os.path.realpath(os.path.dirname(__file__)))  # an editable install of hotmod
    return tuple(sorted(found))


# The root of an interactive session that was given no paths: every module outside the
# standard library, installed packages (site-packages, dist-packages, virtualenvs) and
# hotmod is the user's code, wherever it lives: the working directory, folders on
# sys.path, editable installs of their own packages.
USER_CODE_ROOT = Path(os.path.abspath(os.sep))


def is_user_code(path: str) -> bool:
    """Whether a module file is the user's own code in the sense of ``USER_CODE_ROOT``."""
    return _USER_FILTER.accepts(Path(os.path.realpath(path)))


class PathFilter:
    """Decides whether a file under the watched roots is tracked.

    ``include`` patterns match the file name; ``exclude`` patterns match any component
    of the path relative to its root, so ``.venv`` hides a whole virtualenv.
    """

    def __init__(
        self,
        roots: Iterable[Path],
        include: Iterable[str] = DEFAULT_INCLUDE,
        exclude: Iterable[str] = DEFAULT_EXCLUDE,
    ) -> None:
        self.roots = tuple(roots)
        self._include = _compile(include)
        exclude = tuple(exclude)
        self._exclude = _compile(exclude)
        self._exclude_patterns = [(p, re.compile(fnmatch.translate(p))) for p in exclude]
        # A root inside site-packages is an explicit request: honour it.
        self._system = tuple(d for d in _system_dirs() if not any(_is_within(str(r), d) for r in self.roots))

    def root_of(self, path: Path) -> Path | None:
        spath = str(path)
        for root in self.roots:
            if _is_within(spath, str(root)):
                return root
        return None

    def accepts(self, path: Path, *, check_name: bool = True, honour_exclude: bool = True) -> bool:
        """True when ``path`` (absolute, resolved) is under a root and not excluded."""
        root = self.root_of(path)
        if root is None:
            return False
        spath = str(path)
        if any(_is_within(spath, d) for d in self._system):
            return False
        if check_name and self._include is not None and not self._include.match(path.name):
            return False
        return not honour_exclude or self.exclusion(path) is None

    def exclusion(self, path: Path) -> str | None:
        """The exclude pattern that matches ``path`` under its root, if any."""
        root = self.root_of(path)
        if root is None or not self._exclude_patterns:
            return None
        rel = path.relative_to(root).parts if path != root else (path.name,)
        for part in rel:
            for pattern, regex in self._exclude_patterns:
                if regex.match(part):
                    return pattern
        return None

    def name_accepted(self, name: str) -> bool:
        """The name-only part of :meth:`accepts`, for event paths in watched folders.

        Compiled extensions are tracked whatever ``include`` says (a rebuilt one must
        be reported as needing a restart), so their events pass too.
        """
        extension = name.endswith(tuple(EXTENSION_SUFFIXES))
        if self._include is not None and not self._include.match(name) and not extension:
            return False
        return self._exclude is None or not self._exclude.match(name)


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


_USER_FILTER = PathFilter([USER_CODE_ROOT])
