"""The main journeys of the web client, in a real browser against a real server, on a
desktop and on a phone-sized (390x844) screen: sign up, post, follow, a post arriving live,
reply, rate, settings, approve, roles, ban, and browsing without an account. Every main
page is checked with axe-core and saved as a screenshot (build/screenshots)."""

from __future__ import annotations

import pytest
from http_support import Server
from playwright.async_api import Browser, expect
from web_support import DESKTOP, PHONE, new_tab, screenshot_and_check, sign_up

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone-390x844"])
CHANNEL = "juliet@capulet.lit"


@VIEWPORTS
async def test_sign_up_post_follow_and_see_a_post_arrive_live_then_reply_and_rate(
    browser: Browser, server: Server, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    await server.add_user("juliet")
    async with server.client("juliet") as juliet:
        first = await juliet.post(f"/api/{CHANNEL}/content/posts", json={"content": "O Romeo"})
        assert first.status_code == 201, first.text
    tab = await new_tab(browser, viewport)
    page = tab.page
    await tab.open(server)
    await tab.heading("Buddycloud")
    await screenshot_and_check(page, f"{size}-welcome")
    await sign_up(tab, server, "romeo")
    await screenshot_and_check(page, f"{size}-home-empty")

    # Post on one's own channel: it shows at once, at the top of the timeline.
    await page.get_by_label("New post on your channel").fill("But soft, what light")
    await page.get_by_role("button", name="Post", exact=True).click()
    timeline = page.get_by_role("list", name="Timeline")
    await expect(timeline.locator("article").first).to_contain_text("But soft, what light")

    # Follow Juliet from her channel page.
    await page.goto(f"{server.url}/#/channel/{CHANNEL}")
    await tab.heading(f"{CHANNEL}'s Buddycloud channel")
    await expect(page.get_by_text("O Romeo")).to_be_visible()
    await page.get_by_role("button", name="Follow", exact=True).click()
    await expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("You are: follower+post.")

    # Home: her post, then a new one arrives live behind a "new posts" button.
    await page.get_by_role("link", name="Home").click()
    await tab.heading("Home")
    await expect(timeline.get_by_text("O Romeo")).to_be_visible()
    await page.evaluate("window.notReloaded = true")
    async with server.client("juliet") as juliet:
        live = await juliet.post(
            f"/api/{CHANNEL}/content/posts", json={"content": "Wherefore art thou"}
        )
        assert live.status_code == 201, live.text
    marker = page.get_by_role("button", name="Show 1 new post")
    await expect(marker).to_be_visible()
    await expect(page.locator("#announcer")).to_have_text("1 new post from juliet@capulet.lit.")
    await expect(timeline.get_by_text("Wherefore art thou")).to_have_count(0)
    await marker.click()
    newest = timeline.locator("article").first
    await expect(newest).to_contain_text("Wherefore art thou")
    await expect(newest).to_be_focused()
    assert await page.evaluate("window.notReloaded") is True
    await screenshot_and_check(page, f"{size}-home")

    # Reply to her post and rate it, on her channel page.
    await page.goto(f"{server.url}/#/channel/{CHANNEL}")
    thread = page.locator("article.post:not(.reply)", has_text="Wherefore art thou")
    await thread.get_by_label("Your reply").fill("It is the east")
    await thread.get_by_role("button", name="Send reply").click()
    await expect(thread.locator("article.reply")).to_contain_text("It is the east")
    await thread.get_by_label("Stars").select_option("4")
    await thread.get_by_role("button", name="Rate").click()
    await expect(thread.locator(".ratings")).to_have_text("Rated 4.0 of 5 by 1 person.")
    await screenshot_and_check(page, f"{size}-channel")
    # What the page showed is what the server holds.
    async with server.client() as anonymous:
        threads = (await anonymous.get(f"/api/{CHANNEL}/content/posts/threads")).json()
    contents = [entry["content"] for thread_ in threads for entry in thread_["items"]]
    assert "It is the east" in contents and "rating:4.0" in contents
    tab.assert_no_problems()
    await tab.context.close()


@VIEWPORTS
async def test_an_owner_changes_settings_approves_a_follower_sets_roles_and_bans(
    browser: Browser, server: Server, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    await server.add_user("paris")
    await server.add_user("tybalt")
    tab = await new_tab(browser, viewport)
    page = tab.page
    await sign_up(tab, server, "juliet")

    # Settings: a title, a description, followers need approval and only read.
    await page.goto(f"{server.url}/#/channel/{CHANNEL}/manage")
    await tab.heading(f"Manage {CHANNEL}'s Buddycloud channel")
    await page.get_by_label("Title").fill("Balcony notes")
    await page.get_by_label("Description").fill("Thoughts at midnight")
    await page.get_by_label("Who may follow").select_option("authorize")
    await page.get_by_label("Role of new followers").select_option("member")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_text("Settings saved.")).to_be_visible()
    async with server.client() as anonymous:
        metadata = (await anonymous.get(f"/api/{CHANNEL}/metadata/posts")).json()
    assert metadata["title"] == "Balcony notes"
    assert metadata["description"] == "Thoughts at midnight"
    assert metadata["access_model"] == "authorize"
    assert metadata["default_affiliation"] == "member"

    # Paris and Tybalt ask to follow; the owner sees both requests and approves them.
    for name in ("paris", "tybalt"):
        async with server.client(name) as asker:
            answer = await asker.post("/api/subscribed", json={f"{CHANNEL}/posts": "follower"})
            assert answer.json() == {f"{CHANNEL}/posts": "pending"}, answer.text
    # (A reload would sign out: a password is kept in memory only.)
    await page.get_by_role("link", name=CHANNEL).click()
    await tab.heading("Balcony notes")
    await page.get_by_role("link", name="Manage followers and settings").click()
    await tab.heading("Manage Balcony notes")
    await expect(page.get_by_role("button", name="Approve paris@capulet.lit")).to_be_visible()
    await screenshot_and_check(page, f"{size}-manage")
    await page.get_by_role("button", name="Approve paris@capulet.lit").click()
    await page.get_by_role("button", name="Approve tybalt@capulet.lit").click()
    await expect(page.get_by_text("No one is waiting.")).to_be_visible()
    followers = page.get_by_role("table")
    paris = followers.locator('tr[data-jid="paris@capulet.lit"]')
    tybalt = followers.locator('tr[data-jid="tybalt@capulet.lit"]')
    await expect(paris.locator("td.role")).to_have_text("follower")
    await expect(tybalt.locator("td.role")).to_have_text("follower")

    # Paris may post; then becomes a moderator. Tybalt is banned.
    await paris.get_by_label("Role of paris@capulet.lit", exact=True).select_option("publisher")
    await paris.get_by_role("button", name="Save role").click()
    await expect(paris.locator("td.role")).to_have_text("follower+post")
    await paris.get_by_label("Role of paris@capulet.lit", exact=True).select_option("moderator")
    await paris.get_by_role("button", name="Save role").click()
    await expect(paris.locator("td.role")).to_have_text("moderator")
    await tybalt.get_by_role("button", name="Ban tybalt@capulet.lit").click()
    await expect(tybalt.locator("td.role")).to_have_text("banned")
    async with server.client("juliet") as owner:
        roles = (await owner.get(f"/api/{CHANNEL}/subscribers/posts")).json()
    assert roles["paris@capulet.lit"] == "moderator"
    assert roles["tybalt@capulet.lit"] == "outcast"
    async with server.client("tybalt") as banned:
        refused = await banned.get(f"/api/{CHANNEL}/content/posts")
    assert refused.status_code == 403, refused.text

    # The channel page shows the new title.
    await page.get_by_role("link", name=CHANNEL).click()
    await tab.heading("Balcony notes")
    await expect(page.get_by_text("Thoughts at midnight")).to_be_visible()
    tab.assert_no_problems()
    await tab.context.close()


@VIEWPORTS
async def test_a_topic_channel_created_in_the_client_is_found_and_read_without_signing_in(
    browser: Browser, server: Server, viewport: dict[str, int]
) -> None:
    size = "phone" if viewport == PHONE else "desktop"
    tab = await new_tab(browser, viewport)
    page = tab.page
    await sign_up(tab, server, "escalus")
    await page.get_by_role("link", name="New channel").click()
    await tab.heading("New topic channel")
    await screenshot_and_check(page, f"{size}-new-channel")
    await page.get_by_label("Name").fill("verona")
    await page.get_by_label("Title").fill("Fair Verona")
    await page.get_by_label("Description").fill("Where we lay our scene")
    await page.get_by_role("button", name="Create channel").click()
    await tab.heading("Fair Verona")
    await page.get_by_label("New post in verona@topics.capulet.lit").fill("Two households")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("article").first).to_contain_text("Two households")
    await tab.context.close()

    visitor = await new_tab(browser, viewport)
    page = visitor.page
    await visitor.open(server)
    await page.get_by_role("link", name="Explore", exact=True).first.click()
    await visitor.heading("Explore channels")
    await page.get_by_label("Words in a channel's title or description").fill("verona")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("heading", name="1 channel found")).to_be_visible()
    await screenshot_and_check(page, f"{size}-explore")
    await page.get_by_role("link", name="Fair Verona").click()
    await visitor.heading("Fair Verona")
    await expect(page.get_by_text("Two households")).to_be_visible()
    await expect(page.get_by_text("to follow this channel and take part")).to_be_visible()
    await expect(page.get_by_role("button", name="Follow")).to_have_count(0)
    await expect(page.get_by_label("Your reply")).to_have_count(0)
    await screenshot_and_check(page, f"{size}-channel-anonymous")
    visitor.assert_no_problems()
    await visitor.context.close()


async def test_on_a_channel_page_new_threads_wait_behind_a_button_and_replies_join_theirs(
    browser: Browser, server: Server
) -> None:
    await server.add_user("juliet")
    async with server.client("juliet") as juliet:
        first = await juliet.post(f"/api/{CHANNEL}/content/posts", json={"content": "Good night"})
        assert first.status_code == 201, first.text
        parent = first.json()["id"]
    tab = await new_tab(browser, PHONE)
    page = tab.page
    await sign_up(tab, server, "romeo")
    await page.goto(f"{server.url}/#/channel/{CHANNEL}")
    await page.get_by_role("button", name="Follow", exact=True).click()
    await expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
    thread = page.locator("article.post:not(.reply)", has_text="Good night")
    await expect(thread).to_be_visible()

    async with server.client("juliet") as juliet:
        reply = await juliet.post(
            f"/api/{CHANNEL}/content/posts",
            json={"content": "Parting is such sweet sorrow", "replyTo": parent},
        )
        assert reply.status_code == 201, reply.text
        rating = await juliet.post(
            f"/api/{CHANNEL}/content/posts",
            content=(
                '<entry xmlns="http://www.w3.org/2005/Atom" '
                'xmlns:thr="http://purl.org/syndication/thread/1.0" '
                'xmlns:activity="http://activitystrea.ms/spec/1.0/" '
                'xmlns:review="http://activitystrea.ms/schema/1.0/review">'
                f'<content>rating:5.0</content><thr:in-reply-to ref="{parent}"/>'
                f"<activity:target><id>{parent}</id></activity:target>"
                "<review:rating>5</review:rating></entry>"
            ),
            headers={"Content-Type": "application/atom+xml"},
        )
        assert rating.status_code == 201, rating.text
        newer = await juliet.post(
            f"/api/{CHANNEL}/content/posts", json={"content": "Till it be morrow"}
        )
        assert newer.status_code == 201, newer.text
    # The reply and the rating join the thread on screen; the new thread waits.
    await expect(thread.locator("article.reply")).to_contain_text("Parting is such sweet sorrow")
    await expect(thread.locator(".ratings")).to_have_text("Rated 5.0 of 5 by 1 person.")
    marker = page.get_by_role("button", name="Show 1 new post")
    await expect(marker).to_be_visible()
    threads = page.get_by_role("list", name="Threads")
    await expect(threads.locator("article.post:not(.reply)")).to_have_count(1)
    await marker.click()
    await expect(threads.locator("article.post:not(.reply)")).to_have_count(2)
    await expect(threads.locator("article").first).to_contain_text("Till it be morrow")
    await expect(threads.locator("article").first).to_be_focused()
    tab.assert_no_problems()
    await tab.context.close()
