"""A real headless Chromium on the example app: the page follows edits by itself."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support import write_replace
from ..support.webtools import CHROMIUM, CHROMIUM_ARGS, Server, copy_example, free_port, replace_in

BROWSER_TIMEOUT_MS = 15_000

if CHROMIUM is None and not os.environ.get("HOTMOD_REQUIRE_BROWSER"):
    pytest.skip("no chromium on this machine (.ci/run installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    assert CHROMIUM is not None, "HOTMOD_REQUIRE_BROWSER is set but chromium is missing"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "web_app")


@pytest.fixture
def served(folder: Path) -> Iterator[Server]:
    server = Server(folder)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def open_live(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => window.__hotmod && window.__hotmod.connected")
    page.evaluate("() => { window.marker = 'set before the edit' }")


def test_page_refreshes_by_itself_after_a_code_edit(served: Server, page: Any) -> None:
    open_live(page, served.url)
    assert page.text_content("#title") == "hotmod web example"
    visits = int(page.text_content("#visits"))
    started = time.perf_counter()
    replace_in(served.folder / "pages.py", '"hotmod web example"', '"changed in the editor"')
    page.wait_for_function("() => document.getElementById('title').textContent === 'changed in the editor'")
    print(f"save -> updated page: {(time.perf_counter() - started) * 1000:.0f} ms")
    # A reload of the page, not of the server: the marker is gone, the count went on.
    assert page.evaluate("() => window.marker") is None
    assert int(page.text_content("#visits")) == visits + 1


def test_stylesheet_edit_swaps_in_place_without_reloading(served: Server, page: Any) -> None:
    open_live(page, served.url)
    color = "() => getComputedStyle(document.getElementById('title')).color"
    assert page.evaluate(color) == "rgb(40, 40, 120)"
    replace_in(served.folder / "static" / "style.css", "40, 40, 120", "200, 0, 0")
    page.wait_for_function(f"() => ({color})() === 'rgb(200, 0, 0)'")
    assert page.evaluate("() => window.marker") == "set before the edit"
    assert page.evaluate("() => document.querySelectorAll('link[rel=stylesheet]').length") == 1


def test_template_edit_refreshes_the_page(served: Server, page: Any) -> None:
    open_live(page, served.url)
    replace_in(served.folder / "templates" / "index.html", "Visits:", "Visit count:")
    page.wait_for_function("() => document.body.textContent.includes('Visit count:')")
    assert page.evaluate("() => window.marker") is None


def test_failed_reload_is_shown_on_the_page_and_the_fix_clears_it(served: Server, page: Any) -> None:
    open_live(page, served.url)
    pages = served.folder / "pages.py"
    good = pages.read_text()
    write_replace(pages, good.replace('return "hotmod web example"', 'return "half" +'))
    page.wait_for_selector("#hotmod-error")
    assert "pages.py" in page.text_content("#hotmod-error")
    assert page.evaluate("() => window.marker") == "set before the edit"  # no reload on failure
    write_replace(pages, good.replace("hotmod web example", "fixed"))
    page.wait_for_function("() => document.getElementById('title').textContent === 'fixed'")
    assert page.query_selector("#hotmod-error") is None


def test_page_reconnects_and_reloads_when_the_server_restarts(folder: Path, page: Any) -> None:
    port = free_port()
    first = Server(folder, port=port)
    try:
        open_live(page, first.url)
        first.stop()
        replace_in(folder / "pages.py", '"hotmod web example"', '"after the restart"')
        second = Server(folder, port=port)
        try:
            page.wait_for_function(
                "() => document.querySelector('#title').textContent === 'after the restart'"
            )
            assert page.evaluate("() => window.marker") is None
        finally:
            second.stop()
    finally:
        first.stop()
