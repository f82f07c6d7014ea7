"""Replies and notifications fit the XMPP server's stanza size limit (docs/xmpp.md,
"Stanza size").

Prosody closes a component's stream for a stanza over `component_stanza_size_limit`
(512 KiB by default); the private ejabberd's service listener has the same
`max_stanza_size` (tests/e2e/ejabberd.py). Before, a firehose page of posts near the
64 KiB payload limit was larger than that: the request went unanswered and everyone's
requests bounced until the component had reconnected.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

from e2e.conftest import Connect
from e2e.harness import (
    NS,
    NS_DISCO_INFO,
    NS_MAM,
    NS_PUBSUB,
    NS_RSM,
    REGISTER,
    Client,
    Reply,
    ServerProcess,
    another_server,
    create,
    entry,
    event_items,
    has_item,
    local_id,
    publish,
    published_id,
    subscribe,
    topic,
)

# A post whose entry is just under the 64 KiB payload limit ([server] max_payload_bytes).
LARGE = "x" * 64_000


def large_entry(marker: str) -> str:
    return entry(f"{marker} {LARGE}")


def paged_items(node: str, *, after: str | None = None, max_: int | None = None) -> str:
    """An items request with an RSM <set/> (none when neither is given)."""
    parts = f"<max>{max_}</max>" if max_ is not None else ""
    if after is not None:
        parts += f"<after>{after}</after>"
    rsm = f"<set xmlns='{NS_RSM}'>{parts}</set>" if parts else ""
    return f"<pubsub xmlns='{NS_PUBSUB}'><items node={quoteattr(node)}/>{rsm}</pubsub>"


def results(reply: Reply) -> list[tuple[str, str]]:
    """(node, local item id) of every item of an items or firehose result, in order."""
    return [
        (block.get("node", ""), local_id(item.get("id", "")))
        for block in reply.findall("pubsub:pubsub/pubsub:items")
        for item in block.findall("pubsub:item", NS)
    ]


def rsm_last_and_count(reply: Reply) -> tuple[str | None, int]:
    last = reply.find("pubsub:pubsub/rsm:set/rsm:last")
    count = reply.find("pubsub:pubsub/rsm:set/rsm:count")
    assert count is not None and count.text is not None, reply
    return (last.text if last is not None else None), int(count.text)


async def page_to_the_end(
    client: Client, node: str, first: Reply, *, max_: int
) -> list[tuple[str, str]]:
    """The results of `first` and of every page after it, following `after=last`."""
    seen = results(first)
    after, _ = rsm_last_and_count(first)
    for _ in range(1_000):
        reply = await client.ok("get", paged_items(node, after=after, max_=max_))
        page = results(reply)
        if not page:
            return seen
        seen += page
        after, _ = rsm_last_and_count(reply)
    raise AssertionError("paging did not end")


async def publish_large(client: Client, node: str, count: int, marker: str) -> list[str]:
    """`count` large posts; their ids newest first, as pages list them."""
    ids = []
    for n in range(count):
        reply = await client.ok("set", publish(node, large_entry(f"{marker} {n}")))
        ids.append(local_id(published_id(reply)))
    return ids[::-1]


async def test_a_firehose_page_of_large_posts_is_answered_and_pages_to_the_end(
    server: ServerProcess, juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"large-{unique}")
    await juliet.ok("set", create(node))
    newest_first = await publish_large(juliet, node, 12, f"large {unique}")
    log_before = len(server.log_path.read_text(errors="replace"))

    # The firehose's default page: 50 of the newest public posts, twelve of them ~64 KiB.
    first = await romeo.ok("get", paged_items("/firehose"))
    kept = results(first)
    assert 1 < len(kept) < 12
    assert kept == [(node, item_id) for item_id in newest_first[: len(kept)]]
    # The component's stream is still up: another user is answered right after.
    await juliet.ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>")

    _, count = rsm_last_and_count(first)
    everything = await page_to_the_end(romeo, "/firehose", first, max_=1000)
    assert len(everything) == len(set(everything)) == count  # none lost, none twice
    assert everything[:12] == [(node, item_id) for item_id in newest_first]

    # The node itself, 1,000 asked for per page: pages of what fits.
    node_first = await romeo.ok("get", paged_items(node, max_=1000))
    assert 1 < len(results(node_first)) < 12
    assert rsm_last_and_count(node_first)[1] == 12
    in_node = await page_to_the_end(romeo, node, node_first, max_=1000)
    assert in_node == [(node, item_id) for item_id in newest_first]

    log = server.log_path.read_text(errors="replace")[log_before:]
    assert "closed; reconnecting" not in log, log


async def test_under_a_smaller_limit_a_large_post_is_notified_and_archived_by_id_only(
    server: ServerProcess, connect: Connect, unique: str
) -> None:
    """`[xmpp] max_stanza_bytes` below a rendered 64 KiB post (from the environment): its
    notification and its MAM result carry the item id only; asked for alone, it is refused
    with the reason. Smaller posts are delivered whole."""
    async with another_server(server, {"BUDDYCLOUD_XMPP_MAX_STANZA_BYTES": "32768"}):
        juliet = await connect("juliet", resource="limit")
        romeo = await connect("romeo", resource="limit")
        await juliet.ok("set", REGISTER)
        node = topic(f"limit-{unique}")
        await juliet.ok("set", create(node))
        await romeo.ok("set", subscribe(node, romeo.bare))

        reply = await juliet.ok("set", publish(node, large_entry(f"too large {unique}")))
        large = local_id(published_id(reply))
        message = await romeo.wait_for(has_item(node, large))
        (item,) = event_items(message, node)
        assert len(item) == 0, ET.tostring(item)  # the id, no payload: fetch it

        refused = await romeo.iq(
            "get",
            f"<pubsub xmlns='{NS_PUBSUB}'><items node={quoteattr(node)}>"
            f"<item id={quoteattr(large)}/></items></pubsub>",
        )
        assert refused.condition == "not-acceptable", refused
        assert "payload-too-big" in refused.app_conditions
        assert "stanza size limit" in refused.text

        reply = await juliet.ok("set", publish(node, entry(f"small {unique}")))
        small = local_id(published_id(reply))
        message = await romeo.wait_for(has_item(node, small))
        (item,) = event_items(message, node)
        assert f"small {unique}" in ET.tostring(item, encoding="unicode")

        archive = await romeo.ok(
            "set",
            f"<query xmlns='{NS_MAM}' queryid='limit' node={quoteattr(node)}>"
            f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{NS_MAM}</value></field></x></query>",
        )
        assert archive.find("mam:fin") is not None
        archived = {
            local_id(item.get("id", "")): item
            for result in romeo.received(lambda m: m.find("mam:result", NS) is not None)
            for item in result.iter(f"{{{NS['event']}}}item")
        }
        assert set(archived) == {large, small}
        assert len(archived[large]) == 0
        assert len(archived[small]) == 1
