"""What the browser tests share: pages that fail on script errors, the accessibility
check (axe-core, from tests/web/node_modules), screenshots, and the steps of a journey."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from http_support import PASSWORD, Server
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
AXE = Path(__file__).resolve().parent / "web" / "node_modules" / "axe-core" / "axe.min.js"
# Screenshots of the main pages, written by every run (docs/web.md); git-ignored.
SCREENSHOTS = ROOT / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Tab:
    """A page of the web client in its own browser context (its own storage)."""

    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)

    async def open(self, server: Server, hash_: str = "#/") -> None:
        await self.page.goto(server.url + "/" + hash_)
        await expect(self.page.locator("main h1")).to_be_visible()

    async def heading(self, text: str) -> None:
        await expect(self.page.locator("main h1")).to_have_text(text)

    def assert_no_problems(self) -> None:
        assert self.problems == [], self.problems


async def new_tab(browser: Browser, viewport: dict[str, int] = DESKTOP) -> Tab:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    tab = Tab(context, page)

    def on_console(message: ConsoleMessage) -> None:
        # A refused request (a 4xx the page shows in words) is logged by the browser as a
        # failed resource; script errors and CSP violations are problems.
        text = message.text
        if message.type == "error" and "Failed to load resource" not in text:
            tab.problems.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    return tab


async def check_accessibility(page: Page) -> list[dict[str, Any]]:
    """axe-core run inside the page: its serious and critical violations."""
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` in tests/web (.ci/run does)"
    if not await page.evaluate("typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol: the page's content security policy,
        # which admits no injected script, does not apply.
        await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    results = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


async def screenshot_and_check(page: Page, name: str) -> None:
    """Save a screenshot of the page under build/screenshots, and check it with axe."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    violations = await check_accessibility(page)
    assert violations == [], f"{name}: {violations}"


async def sign_up(tab: Tab, server: Server, name: str, password: str = PASSWORD) -> None:
    page = tab.page
    await tab.open(server, "#/signup")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_label("Password again").fill(password)
    await page.get_by_label("Email").fill(f"{name}@example.org")
    await page.get_by_role("button", name="Create account").click()
    await tab.heading("Home")
    await expect(page.get_by_role("button", name=f"Sign out {name}@")).to_be_visible()


async def sign_in(tab: Tab, server: Server, name: str, password: str = PASSWORD) -> None:
    page = tab.page
    await tab.open(server, "#/signin")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await tab.heading("Home")
