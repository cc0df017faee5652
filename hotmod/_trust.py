"""Whether the files of a plugin folder may be run, and reading them safely.

A plugin runs with the host's full privileges; this is not a sandbox. What these
checks prevent is someone else putting code there: a folder another user can write to
(or whose ancestors they can write to, so they could swap the folder), a file someone
else owns, a symlink that leads out of the folder. The bytes that are compiled are the
bytes of the file that was checked: it is opened without following links, the open
file is checked, then read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

Trust = Literal["strict", "warn", "off"]
_POSIX = os.name == "posix"


class Untrusted(PermissionError):
    """A plugin file or folder that the trust rules refuse; the message says why."""


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def _describe_mode(st: os.stat_result) -> str:
    return oct(stat.S_IMODE(st.st_mode))


def check_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot hold trusted plugins, or None when it can."""
    if not _POSIX:
        return None
    try:
        st = os.stat(folder)
    except OSError as exc:
        return f"{folder} cannot be examined ({exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a folder"
    if not _owner_ok(st):
        return f"{folder} is owned by uid {st.st_uid}, not by this user or root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        # Sticky or not: others could add files to the plugin folder itself.
        return f"{folder} is writable by group or others (mode {_describe_mode(st)})"
    for ancestor in folder.parents:
        try:
            st = os.stat(ancestor)
        except OSError as exc:
            return f"{ancestor} cannot be examined ({exc.strerror or exc})"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            # A sticky folder owned by root (/tmp) lets others create entries but not
            # rename or delete ours, so it cannot be used to swap the plugin folder.
            if st.st_mode & stat.S_ISVTX and st.st_uid == 0:
                continue
            return (
                f"{ancestor} (an ancestor of the plugin folder) is writable by group or others "
                f"(mode {_describe_mode(st)}); someone else could replace the plugin folder"
            )
    return None


def check_file(st: os.stat_result, path: Path) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if not _POSIX:
        return None
    if not _owner_ok(st):
        return f"{path} is owned by uid {st.st_uid}, not by this user or root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others (mode {_describe_mode(st)})"
    return None


def inside(path: Path, folder: Path) -> bool:
    """``path`` resolves to a place within ``folder`` (symlinks followed)."""
    real = os.path.realpath(path)
    root = os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def read_checked(path: Path, folder: Path, trust: Trust) -> tuple[bytes, os.stat_result, str | None]:
    """Read ``path`` after checking the file it opened; returns (data, stat, warning).

    Raises ``Untrusted`` in strict mode when a rule fails; in warn mode the reason is
    returned as a warning, and the file is read all the same.
    """
    problem = None
    if trust != "off" and not inside(path, folder):
        problem = f"{path} is a symlink that leads outside the plugin folder ({os.path.realpath(path)})"
        if trust == "strict":
            raise Untrusted(problem)
    target = os.path.realpath(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags)
    try:
        st = os.fstat(fd)
        reason = check_file(st, path) if trust != "off" else None
        if reason is not None:
            if trust == "strict":
                raise Untrusted(reason)
            problem = problem or reason
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st, problem
    finally:
        os.close(fd)
