"""The documentation site as a reader gets it: built with ``mkdocs build --strict`` from this
checkout, served over HTTP on 127.0.0.1, opened in Debian's headless Chromium. Screenshots are
kept in ``.artefacts/docs-site/``."""

from __future__ import annotations

import functools
import html.parser
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from devstack._process import free_port

from tests._browser import DevToolsPipe, chromium_binary, hex_rgb, until

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / ".artefacts" / "docs-site"
HEADER = "#4051b5"  # Material's indigo header


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(built)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return built


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevToolsPipe]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    chromium = DevToolsPipe(chromium_binary(), tmp_path_factory.mktemp("profile"))
    try:
        yield chromium
    finally:
        chromium.close()


_NAV_LINKS = "[...document.querySelectorAll('nav.md-nav--primary a.md-nav__link')]"


def _nav_titles(browser: DevToolsPipe, session: str) -> list[str]:
    titles = browser.evaluate(session, f"{_NAV_LINKS}.map(a => a.textContent.trim())")
    return [str(t) for t in titles]


def _header_is_drawn(browser: DevToolsPipe, session: str, name: str) -> None:
    image = browser.screenshot(session, ARTEFACTS / f"{name}.png")
    assert (image.width, image.height) == (browser.width, browser.height)
    assert image.pixel(image.width // 2, 5) == pytest.approx(hex_rgb(HEADER), abs=12)


def test_the_home_page_renders_with_navigation_to_every_guide(browser, base_url):
    session = browser.open(f"{base_url}/")
    titles = _nav_titles(browser, session)
    for title in (
        "Getting started",
        "Handlers and context managers",
        "Python API",
        "Troubleshooting",
    ):
        assert title in titles
    assert (
        browser.evaluate(session, "document.querySelector('h1').firstChild.textContent")
        == "kafkascope"
    )
    _header_is_drawn(browser, session, "home")


def test_a_guide_renders_with_its_table_of_contents(browser, base_url):
    session = browser.open(f"{base_url}/guides/handlers/")
    assert browser.evaluate(session, "document.title").startswith("Handlers and context managers")
    toc = browser.evaluate(
        session,
        "[...document.querySelectorAll('nav.md-nav--secondary a')].map(a => a.textContent.trim())",
    )
    assert "Parent policy" in toc
    active = browser.evaluate(
        session, "document.querySelector('nav.md-nav--primary .md-nav__link--active').textContent"
    )
    assert "Handlers and context managers" in str(active)
    _header_is_drawn(browser, session, "guide-handlers")


def test_the_api_reference_renders_each_public_name_from_its_docstring(browser, base_url):
    session = browser.open(f"{base_url}/reference/api/")
    heading = browser.evaluate(
        session, "document.getElementById('kafkascope.traced_handler').textContent"
    )
    assert "traced_handler" in str(heading)
    parameters = browser.evaluate(
        session,
        "[...document.querySelectorAll('#kafkascope\\\\.traced_handler ~ div table td code')]"
        ".map(c => c.textContent)",
    )
    assert "group" in parameters
    _header_is_drawn(browser, session, "reference-api")


def test_searching_traced_handler_finds_its_reference(browser, base_url):
    session = browser.open(f"{base_url}/")
    browser.evaluate(
        session, "document.querySelector('input[data-md-component=search-query]').focus()"
    )
    browser.type_text(session, "traced_handler")
    results = browser.evaluate(
        session,
        until(
            "document.querySelectorAll('.md-search-result__item a').length > 0",
            "[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)",
        ),
    )
    # Material adds ?h=<query> to highlight the words on the page it opens.
    found = [urlsplit(str(url))._replace(query="").geturl() for url in results]
    assert f"{base_url}/reference/api/#kafkascope.traced_handler" in found
    # The open search dims the page under its results: kept to look at, not checked by colour.
    browser.screenshot(session, ARTEFACTS / "search.png")


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.hrefs.append(str(found["href"]))


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_no_page_has_a_broken_internal_link(site):
    # 404.html is served at any path, so its links are absolute (root-relative) by design.
    pages = {page: _parse(page) for page in site.rglob("*.html") if page.name != "404.html"}
    broken: list[str] = []
    for page, links in pages.items():
        for href in links.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith("mailto:"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {href}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert broken == []
