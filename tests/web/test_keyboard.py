"""The web client with the keyboard alone: the focus order of the page and its forms, and
where the focus goes after each step."""

from __future__ import annotations

from http_support import PASSWORD, Server
from playwright.async_api import Browser, Page, expect
from web_support import new_tab

CHANNEL = "juliet@capulet.lit"


async def focused(page: Page) -> str:
    """What has the focus: its tag and its name as a person would hear it."""
    return str(
        await page.evaluate(
            """() => {
              const e = document.activeElement;
              if (!e) return "";
              const label = e.labels && e.labels[0] ? e.labels[0].textContent : "";
              const name = label || e.getAttribute("aria-label") || e.textContent || "";
              return `${e.tagName.toLowerCase()}:${name.trim()}`;
            }"""
        )
    )


async def test_signing_in_posting_and_following_with_the_keyboard_alone(
    browser: Browser, server: Server
) -> None:
    await server.add_user("juliet")
    await server.add_user("romeo")
    tab = await new_tab(browser)
    page = tab.page
    await tab.open(server, "#/signin")
    await tab.heading("Sign in")
    # The heading of a new page has the focus.
    assert await focused(page) == "h1:Sign in"

    # The focus order: backwards from the heading, the navigation and the skip link;
    # forwards, the form's fields and its button.
    backwards = []
    for _ in range(6):
        await page.keyboard.press("Shift+Tab")
        backwards.append(await focused(page))
    assert backwards == [
        "a:Sign up",
        "a:Sign in",
        "a:Explore",
        "a:Home",
        "a:Buddycloud",
        "a:Skip to content",
    ], backwards
    # Skip to content moves the focus to the page's heading.
    await page.keyboard.press("Enter")
    assert await focused(page) == "h1:Sign in"
    forwards = []
    for _ in range(3):
        await page.keyboard.press("Tab")
        forwards.append(await focused(page))
    assert forwards == ["input:User name", "input:Password", "button:Sign in"], forwards

    # Fill in and submit with Enter.
    await page.get_by_label("User name").focus()
    await page.keyboard.type("romeo")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await tab.heading("Home")
    await expect(page.locator("main h1")).to_be_focused()

    # The post box is the next stop after the heading; Tab to the button, Enter posts.
    await page.keyboard.press("Tab")
    assert await focused(page) == "textarea:New post on your channel"
    await page.keyboard.type("Parting is such sweet sorrow")
    await page.keyboard.press("Tab")
    assert await focused(page) == "button:Post"
    await page.keyboard.press("Enter")
    timeline = page.get_by_role("list", name="Timeline")
    await expect(timeline.locator("article").first).to_contain_text("Parting is such sweet sorrow")
    await expect(page.locator("#announcer")).to_have_text("Posted.")

    # To Juliet's channel and follow her, by keyboard.
    await page.goto(f"{server.url}/#/channel/{CHANNEL}")
    await tab.heading(f"{CHANNEL}'s Buddycloud channel")
    await page.get_by_role("button", name="Follow", exact=True).focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
    async with server.client("romeo") as romeo:
        followed = (await romeo.get("/api/subscribed")).json()
    assert followed[f"{CHANNEL}/posts"] == "publisher"
    tab.assert_no_problems()
    await tab.context.close()
