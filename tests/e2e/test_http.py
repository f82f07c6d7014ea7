"""The REST API and XMPP clients on one server: a post made over REST reaches XMPP
followers as a notification, and a post made over XMPP is read over REST."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx
from e2e.harness import (
    NS_ATOM,
    Client,
    ServerProcess,
    entry,
    event_items,
    has_item,
    local_id,
    posts,
    publish,
    published_id,
    subscribe,
)

from buddycloud.client import Client as ApiClient
from buddycloud.client import PostEvent

PASSWORD = "balcony-at-midnight"


async def api(server: ServerProcess) -> str:
    """The base URL the running server's HTTP API listens on (its port is chosen at start)."""
    output = await server.wait_for_log("HTTP API listening on http://")
    found = re.findall(r"HTTP API listening on (http://\S+)/api", output)
    return found[-1]


async def test_a_post_made_over_rest_reaches_an_xmpp_follower(
    server: ServerProcess, romeo: Client, unique: str
) -> None:
    user = f"web{unique}"
    channel = f"{user}@capulet.lit"
    node = posts(channel)
    url = await api(server)
    async with ApiClient(url) as guest:
        assert await guest.register(user, PASSWORD, f"{user}@example.org") == channel
    await romeo.ok("set", subscribe(node, romeo.bare))
    async with ApiClient(url, username=user, password=PASSWORD) as web:
        item_id = (await web.publish(channel, f"from the web {unique}")).id

    message = await romeo.wait_for(has_item(node, item_id))
    [item] = event_items(message, node)
    content = item.find(f"{{{NS_ATOM}}}entry/{{{NS_ATOM}}}content")
    author = item.find(f"{{{NS_ATOM}}}entry/{{{NS_ATOM}}}author/{{{NS_ATOM}}}name")
    assert content is not None and content.text == f"from the web {unique}"
    assert author is not None and author.text == f"{user}@capulet.lit"


async def test_a_post_made_over_xmpp_is_read_over_rest(
    server: ServerProcess, juliet: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    reply = await juliet.ok("set", publish(node, entry(f"from an XMPP client {unique}")))
    item_id = local_id(published_id(reply))

    url = await api(server)
    async with ApiClient(url) as guest:
        one = await guest.post(juliet.bare, item_id)
        page = await guest.posts(juliet.bare)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        feed = await http.get(
            f"/api/{juliet.bare}/content/posts", headers={"Accept": "application/atom+xml"}
        )

    assert (one.content, one.author) == (f"from an XMPP client {unique}", juliet.bare)
    assert item_id in [post.id for post in page.items]
    ids = [
        (element.text or "").rsplit(",", 1)[-1]
        for element in ET.fromstring(feed.content).iter(f"{{{NS_ATOM}}}id")
    ]
    assert item_id in ids


async def test_a_post_made_over_xmpp_arrives_live_at_a_web_follower(
    server: ServerProcess, juliet: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    await juliet.ok("set", publish(node, entry(f"before anyone listens {unique}")))
    user = f"live{unique}"
    url = await api(server)
    async with ApiClient(url) as guest:
        await guest.register(user, PASSWORD, f"{user}@example.org")
    async with ApiClient(url, username=user, password=PASSWORD) as web:
        await web.follow(juliet.bare)
        async with web.events() as events:
            reply = await juliet.ok("set", publish(node, entry(f"live {unique}")))
            item_id = local_id(published_id(reply))
            while True:
                event = await events.next(10)
                if isinstance(event, PostEvent) and event.post.id == item_id:
                    break
    assert (event.channel, event.post.content) == (juliet.bare, f"live {unique}")
