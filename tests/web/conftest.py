"""Browser tests of the web client (docs/web.md): Debian's Chromium, driven by Playwright,
against a real server on a loopback port. No browser is downloaded: the tests use
/usr/bin/chromium (.ci/run installs it), headless."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from http_support import Server, serve
from playwright.async_api import Browser, async_playwright, expect
from web_support import CHROMIUM

expect.set_options(timeout=20_000)


@pytest.fixture
async def browser(server: Server) -> AsyncIterator[Browser]:
    """Chromium, closed before the server stops (its pages' requests end first)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is needed: apt-get install chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    # A page signed in with a password hears of new posts by long-polling; short polls let
    # the server stop at the end of a test without waiting for the ones held open.
    async with serve(tmp_path, BUDDYCLOUD_HTTP_LONG_POLL_SECONDS="2") as server:
        yield server
