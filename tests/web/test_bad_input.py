"""What the web client does with bad input: forms check before sending, refusals are shown
in words, other users' posts are text whatever they hold, and a dropped connection shows an
offline state that ends by itself."""

from __future__ import annotations

from http_support import Server
from playwright.async_api import Browser, Request, expect
from web_support import new_tab, screenshot_and_check, sign_in, sign_up

CHANNEL = "juliet@capulet.lit"
SCRIPT = "<script>window.attacked = 'script'</script>"
IMAGE = "<img src=x onerror=\"window.attacked = 'onerror'\">"
SVG = "<svg onload=\"window.attacked = 'svg'\"></svg> <b>bold?</b>"


async def test_a_post_holding_html_is_shown_as_text_and_runs_nothing(
    browser: Browser, server: Server
) -> None:
    await server.add_user("juliet")
    async with server.client("juliet") as juliet:
        for content in (SCRIPT, IMAGE):
            answer = await juliet.post(f"/api/{CHANNEL}/content/posts", json={"content": content})
            assert answer.status_code == 201, answer.text
    tab = await new_tab(browser)
    page = tab.page
    # Read without signing in: loaded with the page.
    await tab.open(server, f"#/channel/{CHANNEL}")
    posts = page.locator("article .content")
    await expect(posts).to_have_count(2)
    await expect(page.get_by_text(SCRIPT, exact=True)).to_be_visible()
    await expect(page.get_by_text(IMAGE, exact=True)).to_be_visible()

    # Signed in and following: one arriving live, into the timeline.
    await sign_up(tab, server, "romeo")
    async with server.client("romeo") as romeo:
        follow = await romeo.post("/api/subscribed", json={f"{CHANNEL}/posts": "follower"})
        assert follow.status_code == 200, follow.text
    await page.get_by_role("link", name="Explore").click()
    await page.get_by_role("link", name="Home").click()
    await expect(page.get_by_role("list", name="Timeline").locator("article")).to_have_count(2)
    async with server.client("juliet") as juliet:
        answer = await juliet.post(f"/api/{CHANNEL}/content/posts", json={"content": SVG})
        assert answer.status_code == 201, answer.text
    await page.get_by_role("button", name="Show 1 new post").click()
    await expect(page.get_by_text(SVG, exact=True)).to_be_visible()

    assert await page.evaluate("window.attacked") is None
    main = page.locator("main")
    for tag in ("script", "img", "svg", "b"):
        await expect(main.locator(tag)).to_have_count(0)
    tab.assert_no_problems()
    await tab.context.close()


async def test_forms_check_before_sending_and_show_refusals_in_words(
    browser: Browser, server: Server
) -> None:
    await server.add_user("juliet")
    tab = await new_tab(browser)
    page = tab.page
    sent: list[str] = []

    def on_request(request: Request) -> None:
        if "/api/" in request.url:
            sent.append(f"{request.method} {request.url}")

    page.on("request", on_request)
    await tab.open(server, "#/signup")

    # Nothing filled in: each field says what it needs, nothing is sent.
    await page.get_by_role("button", name="Create account").click()
    user_name = page.get_by_label("User name")
    await expect(user_name).to_be_focused()
    await expect(user_name).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_text("Choose a user name.")).to_be_visible()
    await expect(page.get_by_text("A password has at least 8 characters.")).to_be_visible()
    await expect(page.get_by_text("Enter an email address, like name@example.org.")).to_be_visible()
    await screenshot_and_check(page, "desktop-sign-up-errors")
    await user_name.fill("no spaces please")
    await page.get_by_label("Password", exact=True).fill("short")
    await page.get_by_label("Email").fill("not-an-address")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("A user name has letters, digits")).to_be_visible()
    assert sent == []

    # Well formed, but the name is taken: the server's refusal, in words.
    await user_name.fill("juliet")
    await page.get_by_label("Password", exact=True).fill("a long enough one")
    await page.get_by_label("Password again").fill("a long enough one")
    await page.get_by_label("Email").fill("juliet@example.org")
    await page.get_by_role("button", name="Create account").click()
    refusal = page.get_by_role("alert")
    await expect(refusal).to_contain_text("Account exists")
    await expect(refusal).to_contain_text("An account with that name exists already.")
    assert any(request.startswith("POST") and "/api/account" in request for request in sent)

    # A wrong password.
    await tab.open(server, "#/signin")
    await page.get_by_label("User name").fill("juliet")
    await page.get_by_label("Password").fill("not her password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "the user name or password is wrong.", ignore_case=True
    )

    # An empty post is not sent.
    await sign_in(tab, server, "juliet")
    before = len(sent)
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.get_by_text("Write something to post.")).to_be_visible()
    await expect(page.get_by_label("New post on your channel")).to_be_focused()
    assert not any(request.startswith("POST") for request in sent[before:])

    # A topic channel's name is checked, then a refusal (it exists) is shown.
    await page.get_by_role("link", name="New channel").click()
    await page.get_by_label("Name").fill("Not A Name!")
    await page.get_by_role("button", name="Create channel").click()
    await expect(page.get_by_text("A name has lower-case letters")).to_be_visible()
    async with server.client("juliet") as juliet:
        made = await juliet.post("/api/verona@topics.capulet.lit")
        assert made.status_code == 200, made.text
    await page.get_by_label("Name").fill("verona")
    await page.get_by_role("button", name="Create channel").click()
    await expect(page.get_by_role("alert")).to_contain_text("Conflict")
    await expect(page.get_by_role("alert")).to_contain_text("That exists already")
    tab.assert_no_problems()
    await tab.context.close()


async def test_a_dropped_connection_shows_offline_and_recovers_by_itself(
    browser: Browser, server: Server
) -> None:
    await server.add_user("juliet")
    tab = await new_tab(browser)
    page = tab.page
    await sign_up(tab, server, "romeo")
    async with server.client("romeo") as romeo:
        follow = await romeo.post("/api/subscribed", json={f"{CHANNEL}/posts": "follower"})
        assert follow.status_code == 200, follow.text
    banner = page.locator("#connection")
    await expect(banner).to_be_hidden()

    await tab.context.set_offline(True)
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Offline")
    await tab.context.set_offline(False)
    await expect(banner).to_be_hidden()
    await expect(page.locator("#announcer")).to_have_text("Back online.")

    # Live again: a new post arrives without a reload.
    async with server.client("juliet") as juliet:
        answer = await juliet.post(f"/api/{CHANNEL}/content/posts", json={"content": "Anon!"})
        assert answer.status_code == 201, answer.text
    await page.get_by_role("button", name="Show 1 new post").click()
    await expect(page.get_by_text("Anon!", exact=True)).to_be_visible()
    await tab.context.close()
