"""The page in a real browser: Debian's chromium driven by Playwright, server on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from recsys_api.app import create_app

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(published: tuple[Path, dict]) -> Iterator[str]:
    """uvicorn in a thread on 127.0.0.1 only; stopped at the end of the module."""
    port = free_port()
    # loop="asyncio": uvloop would become the process-wide policy and break later Prefect tests.
    config = uvicorn.Config(create_app(published[0]), host="127.0.0.1", port=port, log_level="warning", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(base_url: str):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context()
            context.route(
                "**/*", lambda route: route.continue_() if route.request.url.startswith(base_url) else route.abort()
            )
            yield context.new_page()
        finally:
            browser.close()


def test_page_shows_a_users_list(page, base_url: str) -> None:
    page.goto(f"{base_url}/?user=7")
    page.wait_for_selector("#user-list li")
    items = page.locator("#user-list li")
    assert items.count() == 10
    assert "Movie" in items.first.inner_text() and "(" in items.first.inner_text()  # title (year)
    assert "because you rated" in page.locator("#user-list").inner_text()
    page.fill("#user-id", "3")
    page.click("#user-go")
    page.wait_for_url("**/?user=3")
    page.wait_for_selector("#user-list li")
    assert page.locator("#user-list li").count() == 10


def test_page_unknown_user_and_bad_input(page, base_url: str) -> None:
    page.goto(f"{base_url}/?user=424242")
    page.wait_for_selector("#user-list li")
    assert "not in the table" in page.inner_text("#user-note")


def test_visitor_flow(page, base_url: str) -> None:
    page.goto(base_url)
    page.wait_for_selector("#run:has-text('Run ')")
    rated: list[str] = []
    for query in ("Movie 2", "Movie 4", "Movie 6"):
        page.fill("#search", query)
        page.click("#search-go")
        first = page.locator("#search-results li").first
        first.wait_for()
        rated.append(first.get_attribute("data-movie-id"))
        first.locator("select").select_option("5")
        first.locator("button.rate").click()
    assert page.locator("#rated li").count() == 3
    page.click("#visitor-go")
    page.wait_for_selector("#visitor-list li")
    shown = page.locator("#visitor-list li")
    assert shown.count() == 10
    ids = {shown.nth(i).get_attribute("data-movie-id") for i in range(shown.count())}
    assert not ids & set(rated), "the visitor's rated movies are never recommended"
    assert "Computed now" in page.inner_text("#visitor-note")


def test_chromium_on_path_is_used() -> None:
    assert shutil.which("chromium") or CHROMIUM.is_file()
