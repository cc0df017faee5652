"""Plugin folders under attack (issue 19, findings 7-10): each test performs the attack
and checks that it gets nothing. As root, other users are played with ``os.chown``."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hotmod
from hotmod._trust import Untrusted, check_folder, read_checked

from ..support import bump_mtime, write

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
root = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to give files away")
OTHER_UID = 12345
TIMEOUT = 10.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "plugins"
    path.mkdir(mode=0o755)
    return path


@pytest.fixture
def make(folder: Path) -> Iterator[Any]:
    made: list[hotmod.PluginFolder] = []

    def factory(where: Path = folder, **options: Any) -> hotmod.PluginFolder:
        options.setdefault("backend", "manual")
        options.setdefault("apply", "manual")
        options.setdefault("debounce", 0)
        pf = hotmod.PluginFolder(where, **options)
        made.append(pf)
        return pf

    yield factory
    for pf in made:
        pf.close()


def plugin(where: Path, name: str, value: str) -> Path:
    path = write(where / f"{name}.py", f"VALUE = {value!r}\n")
    bump_mtime(path)
    return path


def package(folder: Path, name: str, value: str) -> Path:
    pkg = folder / name
    pkg.mkdir(mode=0o755)
    write(pkg / "__init__.py", "from .impl import VALUE\n")
    write(pkg / "impl.py", f"VALUE = {value!r}\n")
    return pkg


# -- 7: sub-folders are checked, and there is no window between check and open -------------


@posix
def test_a_package_plugin_whose_folder_anyone_can_write_is_refused(folder: Path, make: Any) -> None:
    pkg = package(folder, "shared", "planted by anyone")
    os.chmod(pkg, 0o777)
    plugin(folder, "mine", "mine")
    plugins = make().load()
    assert plugins["shared"].state == "refused"
    assert f"{pkg} is writable by group or others (mode 0o777)" in str(plugins["shared"].error)
    assert plugins["mine"].state == "loaded"

    with pytest.warns(hotmod.HotmodWarning, match="writable by group or others"):
        plugins = make(package="warned_pkg", trust="warn").load()
    assert plugins["shared"].state == "loaded"


@root
def test_a_sub_folder_owned_by_someone_else_is_refused(folder: Path, make: Any) -> None:
    pkg = package(folder, "theirs", "theirs")
    os.chown(pkg, OTHER_UID, OTHER_UID)
    plugins = make().load()
    assert plugins["theirs"].state == "refused"
    assert f"{pkg} is owned by uid {OTHER_UID}" in str(plugins["theirs"].error)


@posix
def test_flipping_a_link_between_check_and_open_never_reads_outside(folder: Path, tmp_path: Path) -> None:
    # The attack of the finding: a link in a sub-folder flipped between a file inside and
    # one outside while the host reads. Here the sub-folder passes the mode checks (the
    # attacker is played by a thread), so only the open itself stands between them.
    pkg = package(folder, "flip", "inside")
    outside = write(tmp_path / "secret.py", "VALUE = 'outside'\n")
    link = pkg / "impl.py"
    write(pkg / "real.py", "VALUE = 'inside'\n")
    link.unlink()
    os.symlink("real.py", link)
    stop = threading.Event()

    def flip() -> None:
        flips = 0
        while not stop.is_set():
            target = str(outside) if flips % 2 else "real.py"
            os.symlink(target, pkg / "next")
            os.replace(pkg / "next", link)
            flips += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    read, refused = 0, 0
    reasons: set[str] = set()
    try:
        for _ in range(400):
            try:
                data, _, _ = read_checked(link, folder, "strict")
            except Untrusted as exc:
                reasons.add(str(exc).split(" is a symlink")[1])
                refused += 1
                continue
            except FileNotFoundError:
                continue
            assert data == b"VALUE = 'inside'\n"
            read += 1
    finally:
        stop.set()
        flipper.join(TIMEOUT)
    assert read + refused > 0
    assert reasons <= {f" that leads outside the plugin folder (to {outside})"}


@posix
def test_links_that_stay_inside_the_folder_still_load(folder: Path, make: Any) -> None:
    package(folder, "real", "real")
    os.symlink("real", folder / "alias")
    os.symlink(folder / "real" / "impl.py", folder / "absolute.py")
    os.symlink("alias/../real/impl.py", folder / "relative.py")
    os.symlink("../plugins/../../etc/passwd", folder / "climbing.py")
    plugins = make().load()
    assert plugins["alias"].module.VALUE == "real"
    assert plugins["absolute"].module.VALUE == "real"
    assert plugins["relative"].module.VALUE == "real"
    assert plugins["climbing"].state == "refused"
    assert "leads outside the plugin folder" in str(plugins["climbing"].error)


# -- 8: ancestors must be owned by root or this user -----------------------------------------


@root
def test_an_ancestor_owned_by_another_user_is_refused_even_after_a_swap(tmp_path: Path, make: Any) -> None:
    home = tmp_path / "alice"
    home.mkdir(mode=0o755)
    folder = home / "plugins"
    folder.mkdir(mode=0o755)
    plugin(folder, "tool", "ours")
    os.chown(home, OTHER_UID, OTHER_UID)
    reason = check_folder(folder)
    assert reason is not None
    assert f"{home} (an ancestor of the plugin folder) is owned by uid {OTHER_UID}" in reason
    pf = make(folder)
    assert pf.load()["tool"].state == "refused"

    # What alice can do as the owner of her folder: put her own plugin folder in its place.
    os.rename(folder, home / "old")
    folder.mkdir(mode=0o755)
    marker = tmp_path / "ran"
    write(folder / "tool.py", f"open({str(marker)!r}, 'w').close()\n")
    bump_mtime(folder / "tool.py")
    result = pf.poll()
    assert not marker.exists()
    assert pf.plugins["tool"].state == "refused"
    assert result.status in ("noop", "failed")
    with pytest.raises(Untrusted, match="owned by uid 12345"):
        read_checked(folder / "tool.py", folder, "strict")


# -- 9: only regular files, opened without blocking --------------------------------------------


@posix
@pytest.mark.parametrize("trust", ["strict", "off"])
def test_a_fifo_named_like_a_plugin_is_refused_without_hanging(folder: Path, make: Any, trust: str) -> None:
    os.mkfifo(folder / "x.py", 0o644)
    plugin(folder, "fine", "fine")
    pf = make(trust=trust)
    done: list[Any] = []
    loader = threading.Thread(target=lambda: done.append(pf.load()), daemon=True)
    loader.start()
    loader.join(TIMEOUT)
    assert not loader.is_alive(), "load() blocked on the FIFO"
    plugins = done[0]
    assert plugins["x"].state == "refused"
    assert "is a FIFO, not a regular file" in str(plugins["x"].error)
    assert plugins["fine"].state == "loaded"
    assert pf.poll().status in ("noop", "ok")


# -- 10: one plugin never takes the folder down; sizes, hard links, names -------------------------


DEEP = "VALUE = " + "+".join(["1"] * 200_000) + "\n"


def test_a_source_too_deep_to_parse_fails_alone_at_load(folder: Path, make: Any) -> None:
    write(folder / "deep.py", DEEP)
    plugin(folder, "fine", "fine")
    pf = make()
    plugins = pf.load()  # raised RecursionError before
    assert plugins["deep"].state == "failed"
    assert "RecursionError" in str(plugins["deep"].error)
    assert plugins["fine"].state == "loaded"
    assert pf.poll().status == "noop"


def test_a_source_too_deep_to_parse_fails_alone_at_edit(folder: Path, make: Any) -> None:
    edited = plugin(folder, "edited", "first")
    plugin(folder, "fine", "fine")
    pf = make()
    pf.load()
    write(edited, DEEP)
    bump_mtime(edited)
    pf.notify(edited)
    result = pf.poll()  # must not raise either
    assert not result.ok
    assert pf.plugins["edited"].module.VALUE == "first"
    assert pf.plugins["fine"].state == "loaded"


def test_a_file_over_the_size_limit_is_refused(folder: Path, make: Any) -> None:
    write(folder / "huge.py", "#" * 5000 + "\nVALUE = 1\n")
    plugin(folder, "small", "small")
    plugins = make(max_file_size=4096).load()
    assert plugins["huge"].state == "refused"
    assert "5011 bytes, over the limit of 4096" in str(plugins["huge"].error)
    assert plugins["small"].state == "loaded"
    assert hotmod.PluginFolder.__init__.__kwdefaults__["max_file_size"] >= 1 << 20  # type: ignore[index]


@posix
def test_a_hard_linked_file_is_refused_in_strict_mode(folder: Path, make: Any, tmp_path: Path) -> None:
    # Whoever holds the other link (here a file outside the folder) can change the plugin.
    theirs = write(tmp_path / "elsewhere.py", "VALUE = 'linked'\n")
    os.link(theirs, folder / "linked.py")
    plugins = make().load()
    assert plugins["linked"].state == "refused"
    assert "has 2 hard links" in str(plugins["linked"].error)
    with pytest.warns(hotmod.HotmodWarning, match="hard links"):
        plugins = make(package="warned_links", trust="warn").load()
    assert plugins["linked"].module.VALUE == "linked"


@pytest.mark.parametrize("trust", ["strict", "off"])
def test_dotted_names_cannot_reach_files_outside_the_folder(
    folder: Path, make: Any, tmp_path: Path, trust: str
) -> None:
    marker = tmp_path / "ran"
    write(tmp_path / "evil.py", f"open({str(marker)!r}, 'w').close()\n")
    pf = make(trust=trust)
    pf.load()
    # A path join took "<package>./tmp/.../evil" to /tmp/.../evil.py.
    with pytest.raises(ModuleNotFoundError, match="is not a valid module name"):
        importlib.import_module(f"{pf.package}.{tmp_path}/evil")
    assert not marker.exists()


def test_look_alike_names_are_refused_with_what_python_would_import(folder: Path, make: Any) -> None:
    look_alike = "\uff47reet"  # a fullwidth g: Python source reads it as "greet"
    plugin(folder, look_alike, "look-alike")
    plugin(folder, "greet", "real")
    plugins = make().load()
    assert plugins["greet"].module.VALUE == "real"
    assert plugins[look_alike].state == "failed"
    assert "would get 'greet'" in str(plugins[look_alike].error)
