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
    node = posts(f"{user}@capulet.lit")
    async with httpx.AsyncClient(base_url=await api(server), timeout=10) as http:
        made = await http.post(
            "/api/account",
            json={"username": user, "password": PASSWORD, "email": f"{user}@example.org"},
        )
        assert made.status_code == 200, made.text
        await romeo.ok("set", subscribe(node, romeo.bare))
        posted = await http.post(
            f"/api/{user}@capulet.lit/content/posts",
            json={"content": f"from the web {unique}"},
            auth=(user, PASSWORD),
        )
    assert posted.status_code == 201, posted.text
    item_id = posted.json()["id"]

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

    async with httpx.AsyncClient(base_url=await api(server), timeout=10) as http:
        one = await http.get(f"/api/{juliet.bare}/content/posts/{item_id}")
        page = await http.get(f"/api/{juliet.bare}/content/posts")
        feed = await http.get(
            f"/api/{juliet.bare}/content/posts", headers={"Accept": "application/atom+xml"}
        )

    assert one.status_code == 200, one.text
    assert one.json()["content"] == f"from an XMPP client {unique}"
    assert one.json()["author"] == juliet.bare
    assert item_id in [post["id"] for post in page.json()]
    ids = [
        (element.text or "").rsplit(",", 1)[-1]
        for element in ET.fromstring(feed.content).iter(f"{{{NS_ATOM}}}id")
    ]
    assert item_id in ids
