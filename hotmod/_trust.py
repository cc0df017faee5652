"""Whether the files of a plugin folder may be run, and reading them safely.

A plugin runs with the host's full privileges; this is not a sandbox. What these
checks prevent is someone else putting code there: a folder another user can write to
(or whose ancestors they can write to or own, so they could swap the folder), a
sub-folder or file someone else owns or can write to, a symlink that leads out of the
folder, a hard link that someone else could hold.

There is no window between a check and the use of what was checked: every path is
walked one component at a time from ``/``, each directory opened relative to the
previous one's descriptor without following links, and checked through its open
descriptor; the file is opened the same way (non-blocking, so a FIFO cannot hang the
host), checked through ``fstat``, read, and those very bytes are compiled. A symlink
inside the folder is resolved here, component by component, and may not climb out.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

__all__ = ["DEFAULT_MAX_SIZE", "Refuse", "Trust", "Untrusted", "check_folder", "check_name", "read_checked"]

Trust = Literal["strict", "warn", "off"]
_POSIX = os.name == "posix"

#: Plugin sources larger than this are refused (``PluginFolder(max_file_size=...)``).
DEFAULT_MAX_SIZE = 2 * 1024 * 1024
_MAX_LINKS = 40  # as the kernel's own limit on symlinks followed in one lookup

_CLOEXEC = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# O_PATH (Linux) or O_SEARCH: a folder that may be crossed but not listed (mode 0711)
# still opens; its descriptor serves fstat and the next open, which is all the walk does.
_SEARCH = getattr(os, "O_PATH", 0) or getattr(os, "O_SEARCH", 0)
_DIR_FLAGS = os.O_RDONLY | _SEARCH | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
# Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | _CLOEXEC

Refuse = Callable[[str], None]


class Untrusted(PermissionError):
    """A plugin file or folder that the trust rules refuse; the message says why."""


class _Escape(Exception):
    """A symlink leads outside the plugin folder (or a path component became one)."""


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def _describe_mode(st: os.stat_result) -> str:
    return oct(stat.S_IMODE(st.st_mode))


def _writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISLNK, "symlink"),
    ):
        if test(mode):
            return name
    return "special file"


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be a plugin module name, or None when it can.

    Python normalizes identifiers in source (NFKC): ``from . import`` of a name
    written in fullwidth letters imports the ASCII name. A name not already in that
    form would load as one module and be imported by plugin code as another, so it is
    refused.
    """
    if not name.isidentifier():
        return f"{name!r} is not a valid module name; rename the file to load it"
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        return (
            f"{name!r} is not in Unicode normal form: Python code importing it would get "
            f"{normal!r}; rename the file to load it"
        )
    return None


def _check_ancestor(st: os.stat_result, path: Path, refuse: Refuse) -> None:
    if not _owner_ok(st):
        # OpenSSH's rule: whoever owns a folder on the way can swap what is below it.
        refuse(
            f"{path} (an ancestor of the plugin folder) is owned by uid {st.st_uid}, not by this "
            "user or root; its owner could replace the plugin folder"
        )
    elif _writable_by_others(st) and not (st.st_mode & stat.S_ISVTX and st.st_uid == 0):
        # A sticky folder owned by root (/tmp) lets others create entries but not rename
        # or delete ours, so it cannot be used to swap the plugin folder.
        refuse(
            f"{path} (an ancestor of the plugin folder) is writable by group or others "
            f"(mode {_describe_mode(st)}); someone else could replace the plugin folder"
        )


def _check_dir(st: os.stat_result, path: Path, refuse: Refuse) -> None:
    """The plugin folder and every folder below it."""
    if not _owner_ok(st):
        refuse(f"{path} is owned by uid {st.st_uid}, not by this user or root")
    elif _writable_by_others(st):
        # Sticky or not: others could add files to it.
        refuse(f"{path} is writable by group or others (mode {_describe_mode(st)})")


def _check_file(st: os.stat_result, path: Path, refuse: Refuse) -> None:
    if not _owner_ok(st):
        refuse(f"{path} is owned by uid {st.st_uid}, not by this user or root")
    elif _writable_by_others(st):
        refuse(f"{path} is writable by group or others (mode {_describe_mode(st)})")
    elif st.st_nlink > 1:
        refuse(
            f"{path} has {st.st_nlink} hard links; whoever holds another link could change it "
            "(copy the file instead of linking it)"
        )


def _open_folder(folder: Path, ancestors: Refuse, own: Refuse) -> int:
    """Walk from ``/`` to ``folder`` without following links; a descriptor of ``folder``."""
    if not folder.is_absolute():
        raise ValueError(f"{folder} is not an absolute path")
    fd = os.open("/", _DIR_FLAGS)
    here = Path("/")
    try:
        for name in folder.parts[1:]:
            _check_ancestor(os.fstat(fd), here, ancestors)
            here = here / name
            try:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if _is_link(name, fd):
                    raise Untrusted(f"{here} is a symlink now; the plugin folder has moved") from exc
                raise
            os.close(fd)
            fd = next_fd
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise Untrusted(f"{folder} is not a folder")
        _check_dir(st, folder, own)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def check_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot hold trusted plugins, or None when it can."""
    if not _POSIX:
        return None
    problems: list[str] = []
    try:
        fd = _open_folder(folder, problems.append, problems.append)
    except (_Escape, Untrusted) as exc:
        return str(exc)
    except OSError as exc:
        return f"{folder} cannot be examined ({exc.strerror or exc})"
    os.close(fd)
    return problems[0] if problems else None


def _open_beneath(root: int, folder: Path, parts: Sequence[str], refuse: Refuse) -> int:
    """Open ``folder/parts`` relative to ``root`` (the folder's descriptor), confined to it.

    Each directory on the way is opened without following links and checked; a symlink
    met on the way is read and resolved here, and fails if it climbs out of the folder.
    """
    stack: list[int] = []  # descriptors below root, deepest last
    names: list[str] = []
    pending = list(parts)
    links = 0
    via = ""  # the last symlink followed, for the message: what it said when read
    try:
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if not stack:
                    raise _Escape(via or f"{folder.joinpath(*parts)} leads outside the plugin folder")
                os.close(stack.pop())
                names.pop()
                continue
            here = stack[-1] if stack else root
            last = not pending
            try:
                fd = os.open(name, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=here)
            except OSError:
                if not _is_link(name, here):
                    raise
                links += 1
                if links > _MAX_LINKS:
                    raise Untrusted(f"{folder.joinpath(*names, name)}: too many levels of symlinks") from None
                target = PurePosixPath(os.readlink(name, dir_fd=here))
                via = (
                    f"{folder.joinpath(*names, name)} is a symlink that leads outside the plugin "
                    f"folder (to {target})"
                )
                if target.is_absolute():
                    try:
                        inner = target.relative_to(folder)
                    except ValueError:
                        raise _Escape(via) from None
                    while stack:  # start again from the folder itself
                        os.close(stack.pop())
                    names.clear()
                    pending = [*inner.parts, *pending]
                else:
                    pending = [*target.parts, *pending]
                continue
            if last:
                return fd
            stack.append(fd)
            names.append(name)
            _check_dir(os.fstat(fd), folder.joinpath(*names), refuse)
        raise IsADirectoryError(f"{folder.joinpath(*parts)} names the plugin folder itself")
    finally:
        for fd in stack:
            os.close(fd)


def _open_checked(path: Path, folder: Path, trust: Trust, problems: list[str]) -> int:
    """A descriptor of ``path`` opened by the confined walk (strict and warn modes)."""

    def refuse(reason: str) -> None:
        if trust == "strict":
            raise Untrusted(reason)
        problems.append(reason)

    try:
        parts = path.relative_to(folder).parts
    except ValueError:
        raise Untrusted(f"{path} is outside the plugin folder {folder}") from None
    # The folder's own problems are check_folder's to report (once, at discovery); in
    # strict mode they are refused here again, on the very descriptors that are used.
    folder_rules = refuse if trust == "strict" else _ignore
    root = _open_folder(folder, folder_rules, folder_rules)
    try:
        return _open_beneath(root, folder, parts, refuse)
    except _Escape as escape:
        refuse(str(escape))
        # Warn mode: load it all the same, from where the link leads.
        return os.open(path, _FILE_FLAGS & ~_NOFOLLOW)
    finally:
        os.close(root)


def read_checked(
    path: Path, folder: Path, trust: Trust, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[bytes, os.stat_result, str | None]:
    """Read ``path`` after checking the file it opened; returns (data, stat, warning).

    Raises ``Untrusted`` in strict mode when a rule fails; in warn mode the reasons are
    returned as a warning, and the file is read all the same. In every mode, anything
    but a regular file, or a file over ``max_size`` bytes, is refused.
    """
    problems: list[str] = []
    if _POSIX and trust != "off":
        fd = _open_checked(path, folder, trust, problems)
    else:
        fd = os.open(path, _FILE_FLAGS & ~_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted(f"{path} is a {_kind(st)}, not a regular file")
        if _POSIX and trust != "off":
            _check_file(st, path, problems.append if trust == "warn" else _raise)
        if st.st_size > max_size:
            raise Untrusted(f"{path} is {st.st_size} bytes, over the limit of {max_size} (max_file_size)")
        chunks = []
        size = 0
        while size <= max_size:  # the file may grow while it is read
            chunk = os.read(fd, min(1 << 20, max_size + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_size:
            raise Untrusted(f"{path} grew over the limit of {max_size} bytes (max_file_size) while read")
        return b"".join(chunks), st, "; ".join(problems) or None
    finally:
        os.close(fd)


def _ignore(reason: str) -> None:
    pass


def _raise(reason: str) -> None:
    raise Untrusted(reason)
