"""Bad input through a real XMPP server: each request gets its stanza error (docs/errors.md)
and the service keeps serving; hostile XML never reaches storage; internal failures say
nothing about themselves."""

from __future__ import annotations

import asyncio
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from e2e.conftest import Connect, XmppServer, write_server_config
from e2e.harness import (
    NS,
    NS_ATOM,
    NS_DISCO_INFO,
    NS_OWNER,
    NS_PUBSUB,
    NS_RSM,
    REGISTER,
    SERVICE,
    TOPICS_DOMAIN,
    Client,
    ServerProcess,
    create,
    entry,
    item_ids,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
)

PUBSUB = f"<pubsub xmlns='{NS_PUBSUB}'>"
OWNER = f"<pubsub xmlns='{NS_OWNER}'>"
JULIET_POSTS = "/user/juliet@capulet.lit/posts"
ENTRY = f"<entry xmlns='{NS_ATOM}'><content>fine</content></entry>"
# What must never appear in an error's text: traces, code, storage details.
LEAKS = ("Traceback", 'File "', ".py", "sqlite", "sqlalchemy", "psycopg", "Error(", "0x")


def assert_no_leak(reply_text: str, element: ET.Element) -> None:
    texts = [t.text or "" for t in element.iter(f"{{{NS['stanzas']}}}text")]
    for text in texts:
        assert not any(leak in text for leak in LEAKS), reply_text
    if element.find("client:error/stanzas:internal-server-error", NS) is not None:
        assert texts == [], f"an internal error explained itself: {reply_text}"


async def still_serving(client: Client, unique: str) -> None:
    """A normal publish and read right after the bad request."""
    node = posts(client.bare)
    reply = await client.ok("set", publish(node, entry(f"still here {unique}")))
    item_id = local_id(published_id(reply))
    fetched = await client.ok("get", items_request(node, item_id=item_id))
    assert item_ids(fetched) == [item_id]


# (IQ type, payload, RFC 6120 condition, application condition or None)
BAD_REQUESTS = {
    # malformed or unknown payload children
    "unknown pubsub operation": (
        "set",
        f"{PUBSUB}<bogus/></pubsub>",
        "feature-not-implemented",
        "unsupported",
    ),
    "empty pubsub": ("set", f"{PUBSUB}</pubsub>", "bad-request", None),
    "two payloads in one IQ": (
        "get",
        f"<query xmlns='{NS_DISCO_INFO}'/><query xmlns='{NS_DISCO_INFO}'/>",
        "bad-request",
        None,
    ),
    "two payloads in one item": (
        "set",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'><item>{ENTRY}{ENTRY}</item></publish></pubsub>",
        "bad-request",
        None,
    ),
    "an item without payload": (
        "set",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'><item/></publish></pubsub>",
        "bad-request",
        "payload-required",
    ),
    "a publish without item": (
        "set",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'/></pubsub>",
        "bad-request",
        "item-required",
    ),
    "an entry with two contents": (
        "set",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'><item><entry xmlns='{NS_ATOM}'>"
        "<content>a</content><content>b</content></entry></item></publish></pubsub>",
        "bad-request",
        "invalid-payload",
    ),
    "a configure without form": (
        "set",
        f"{OWNER}<configure node='{JULIET_POSTS}'/></pubsub>",
        "bad-request",
        "invalid-options",
    ),
    # namespaces nobody here speaks
    "unknown namespace": (
        "get",
        "<query xmlns='urn:example:nothing'/>",
        "service-unavailable",
        None,
    ),
    "unknown pubsub namespace": (
        "set",
        "<pubsub xmlns='urn:example:pubsub'><publish node='x'/></pubsub>",
        "service-unavailable",
        None,
    ),
    # a known element with the other IQ type
    "disco#info set": ("set", f"<query xmlns='{NS_DISCO_INFO}'/>", "bad-request", None),
    "publish get": (
        "get",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'><item>{ENTRY}</item></publish></pubsub>",
        "bad-request",
        None,
    ),
    "items set": ("set", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>", "bad-request", None),
    # missing attributes
    "publish without node": (
        "set",
        f"{PUBSUB}<publish><item>{ENTRY}</item></publish></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "items without node": (
        "get",
        f"{PUBSUB}<items/></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "create without node (an instant node)": (
        "set",
        f"{PUBSUB}<create/></pubsub>",
        "not-acceptable",
        "nodeid-required",
    ),
    "retract without node": (
        "set",
        f"{PUBSUB}<retract><item id='x'/></retract></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "subscribe with an empty node": (
        "set",
        f"{PUBSUB}<subscribe node='' jid='juliet@capulet.lit'/></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "unsubscribe without node": (
        "set",
        f"{PUBSUB}<unsubscribe/></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "configure without node": (
        "get",
        f"{OWNER}<configure/></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "delete without node": ("set", f"{OWNER}<delete/></pubsub>", "bad-request", "nodeid-required"),
    "node subscribers without node": (
        "get",
        f"{OWNER}<subscriptions/></pubsub>",
        "bad-request",
        "nodeid-required",
    ),
    "retract without item id": (
        "set",
        f"{PUBSUB}<retract node='{JULIET_POSTS}'><item/></retract></pubsub>",
        "bad-request",
        "item-required",
    ),
    "subscribe without jid": (
        "set",
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}'/></pubsub>",
        "bad-request",
        "jid-required",
    ),
    "affiliation without jid": (
        "set",
        f"{OWNER}<affiliations node='{JULIET_POSTS}'><affiliation affiliation='member'/>"
        "</affiliations></pubsub>",
        "bad-request",
        "jid-required",
    ),
    # invalid JIDs, node names, item ids, paging
    "subscribe with an invalid jid": (
        "set",
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='juliet@@capulet.lit'/></pubsub>",
        "bad-request",
        "invalid-jid",
    ),
    "subscribe someone else": (
        "set",
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>",
        "bad-request",
        "invalid-jid",
    ),
    "unsubscribe someone else": (
        "set",
        f"{PUBSUB}<unsubscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit/orchard'/></pubsub>",
        "bad-request",
        "invalid-jid",
    ),
    "unsubscribe with an invalid jid": (
        "set",
        f"{PUBSUB}<unsubscribe node='{JULIET_POSTS}' jid='juliet@'/></pubsub>",
        "bad-request",
        "invalid-jid",
    ),
    "affiliation of an invalid jid": (
        "set",
        f"{OWNER}<affiliations node='{JULIET_POSTS}'><affiliation jid='@capulet.lit' "
        "affiliation='member'/></affiliations></pubsub>",
        "bad-request",
        "invalid-jid",
    ),
    "a node that is not /user/jid/name": (
        "get",
        f"{PUBSUB}<items node='posts'/></pubsub>",
        "bad-request",
        "invalid-node-format",
    ),
    "a node without a name": (
        "get",
        f"{PUBSUB}<items node='/user/juliet@capulet.lit/'/></pubsub>",
        "bad-request",
        "invalid-node-format",
    ),
    "a node of an invalid jid": (
        "get",
        f"{PUBSUB}<items node='/user/ju liet@@capulet.lit/posts'/></pubsub>",
        "bad-request",
        None,
    ),
    "an item id with spaces": (
        "get",
        f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='a b'/></items></pubsub>",
        "bad-request",
        None,
    ),
    "an RSM max that is no number": (
        "get",
        f"{PUBSUB}<items node='{JULIET_POSTS}'/><set xmlns='{NS_RSM}'><max>lots</max></set>"
        "</pubsub>",
        "bad-request",
        None,
    ),
    "a firehose page after tag:": (
        "get",
        f"{PUBSUB}<items node='/firehose'/><set xmlns='{NS_RSM}'><after>tag:</after></set>"
        "</pubsub>",
        "bad-request",
        None,
    ),
    "a firehose page before tag:": (
        "get",
        f"{PUBSUB}<items node='/firehose'/><set xmlns='{NS_RSM}'><before>tag:</before></set>"
        "</pubsub>",
        "bad-request",
        None,
    ),
    "a firehose page after a post that does not exist": (
        "get",
        f"{PUBSUB}<items node='/firehose'/><set xmlns='{NS_RSM}'>"
        f"<after>tag:{SERVICE},{JULIET_POSTS},nothing</after></set></pubsub>",
        "item-not-found",
        None,
    ),
    "followers after someone who does not follow": (
        "get",
        f"{PUBSUB}<subscriptions node='{JULIET_POSTS}'/><set xmlns='{NS_RSM}'>"
        "<after>nobody@capulet.lit</after></set></pubsub>",
        "item-not-found",
        None,
    ),
    "a date out of range": (
        "get",
        f"{PUBSUB}<user-items xmlns='{NS['bc']}' since='0001-01-01T00:00:00+01:00'/></pubsub>",
        "bad-request",
        None,
    ),
    "a rating beyond any number": (
        "set",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'><item><entry xmlns='{NS_ATOM}'>"
        f"<content>x</content><review:rating xmlns:review='{NS['review']}'>{'9' * 400}"
        "</review:rating></entry></item></publish></pubsub>",
        "bad-request",
        None,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_requests_get_their_error_and_the_service_keeps_serving(
    juliet: Client, unique: str, case: str
) -> None:
    type_, payload, condition, app_condition = BAD_REQUESTS[case]
    reply = await juliet.iq(type_, payload)
    assert reply.type == "error", reply
    assert reply.element.get("from") == SERVICE, reply  # answered by the component itself
    assert reply.condition == condition, reply
    if app_condition is not None:
        assert app_condition in reply.app_conditions, reply
    assert_no_leak(reply.text, reply.element)
    await still_serving(juliet, unique)


async def test_an_oversized_payload_is_refused_and_not_stored(juliet: Client, unique: str) -> None:
    """docs/errors.md: PayloadTooLarge is not-acceptable / payload-too-big (default 64 KiB)."""
    node = posts(f"big-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    reply = await juliet.iq("set", publish(node, entry("x" * (65 * 1024))))
    assert reply.condition == "not-acceptable", reply
    assert "payload-too-big" in reply.app_conditions, reply
    assert_no_leak(reply.text, reply.element)
    assert item_ids(await juliet.ok("get", items_request(node))) == []

    # Just under the limit is fine.
    fits = await juliet.ok("set", publish(node, entry("y" * (60 * 1024))))
    assert item_ids(await juliet.ok("get", items_request(node))) == [local_id(published_id(fits))]


async def test_a_publish_nesting_a_thousand_levels_is_refused_and_the_service_serves_on(
    juliet: Client, unique: str
) -> None:
    """docs/xmpp.md, limits on incoming stanzas: bad-request naming the limit (it was
    internal-server-error), nothing stored, the component's stream still up."""
    node = posts(f"deep-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    deep = "<a>" * 1000 + "</a>" * 1000
    payload = (
        f"{PUBSUB}<publish node='{node}'><item><entry xmlns='{NS_ATOM}'>"
        f"<content>deep {unique}</content>{deep}</entry></item></publish></pubsub>"
    )
    reply = await juliet.raw_iq("set", payload)
    assert reply.type == "error", reply
    assert reply.element.get("from") == SERVICE, reply
    assert reply.condition == "bad-request", reply
    reason = reply.find("client:error/stanzas:text")
    assert reason is not None and "deeper than 64 levels" in (reason.text or ""), reply
    assert_no_leak(reply.text, reply.element)
    assert item_ids(await juliet.ok("get", items_request(node))) == []
    await still_serving(juliet, unique)


def closed(client: Client) -> asyncio.Event:
    """An event set when the client's stream to the XMPP server goes away."""
    event = asyncio.Event()
    client.stream.add_event_handler("disconnected", lambda _: event.set())
    return event


HOSTILE = {
    # A DTD declaring an entity, then a publish using it (XXE / entity expansion).
    "dtd with entity": (
        "<!DOCTYPE iq [<!ENTITY boom 'EXPANDED{marker}'>]>"
        f"<iq type='set' to='{SERVICE}' id='dtd-{{marker}}'>{PUBSUB}<publish node='{{node}}'>"
        f"<item><entry xmlns='{NS_ATOM}'><content>&boom;</content></entry></item></publish>"
        "</pubsub></iq>"
    ),
    # Billion laughs, nested entities.
    "billion laughs": (
        "<!DOCTYPE lolz [<!ENTITY lol 'EXPANDED{marker}'>"
        "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
        "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
        f"<iq type='set' to='{SERVICE}' id='lol-{{marker}}'>{PUBSUB}<publish node='{{node}}'>"
        f"<item><entry xmlns='{NS_ATOM}'><content>&lol3;</content></entry></item></publish>"
        "</pubsub></iq>"
    ),
    # An entity reference with no declaration at all.
    "undeclared entity": (
        f"<iq type='set' to='{SERVICE}' id='ent-{{marker}}'>{PUBSUB}<publish node='{{node}}'>"
        f"<item><entry xmlns='{NS_ATOM}'><content>EXPANDED{{marker}}&xxe;</content></entry>"
        "</item></publish></pubsub></iq>"
    ),
}


@pytest.mark.parametrize("attack", list(HOSTILE))
async def test_entity_expansion_is_refused_and_nothing_is_stored(
    connect: Connect, juliet: Client, unique: str, attack: str
) -> None:
    """RFC 6120 §11.1 forbids DTDs and entity declarations in XMPP: the XMPP server closes
    the offending stream. The component must survive and store nothing expanded."""
    node = posts(f"xxe-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    attacker = await connect("mercutio", resource=f"xxe-{unique}")
    await attacker.ok("set", REGISTER)
    gone = closed(attacker)
    await attacker.send_raw(HOSTILE[attack].format(marker=unique, node=node))
    await asyncio.wait_for(gone.wait(), 10)

    await still_serving(juliet, unique)
    stored = await juliet.ok("get", items_request(node))
    assert item_ids(stored) == [], stored
    assert f"EXPANDED{unique}" not in stored.text


BURST_PAYLOADS = [
    ("set", f"{PUBSUB}<bogus/></pubsub>", "feature-not-implemented"),
    ("get", "<query xmlns='urn:example:garbage'/>", "service-unavailable"),
    ("get", f"{PUBSUB}<items node='garbage'/></pubsub>", "bad-request"),
    ("set", f"{PUBSUB}<publish node='{JULIET_POSTS}'><item/></publish></pubsub>", "bad-request"),
    ("set", f"{PUBSUB}<retract node='{JULIET_POSTS}'><item/></retract></pubsub>", "bad-request"),
    ("get", f"{PUBSUB}<items/></pubsub>", "bad-request"),
    ("set", f"{PUBSUB}<create/></pubsub>", "not-acceptable"),
    ("set", f"<query xmlns='{NS_DISCO_INFO}'/>", "bad-request"),
]


async def test_a_burst_of_garbage_then_a_normal_publish(juliet: Client, unique: str) -> None:
    total = 500
    requests = [BURST_PAYLOADS[n % len(BURST_PAYLOADS)] for n in range(total)]
    replies = await asyncio.gather(*(juliet.iq(type_, payload) for type_, payload, _ in requests))
    wrong = [
        (expected, reply.text[:300])
        for (_, _, expected), reply in zip(requests, replies, strict=True)
        if reply.type != "error" or reply.condition != expected
    ]
    assert wrong == [], f"{len(wrong)} of {total} unexpected replies, e.g. {wrong[:3]}"
    for reply in replies:
        assert_no_leak(reply.text, reply.element)
    await still_serving(juliet, unique)


async def test_an_internal_failure_says_nothing_and_the_service_survives(
    connect: Connect, xmpp_server: XmppServer, server: ServerProcess, tmp_path: Path, unique: str
) -> None:
    """Storage breaks under a running server (a table disappears): the reply is a bare
    internal-server-error, and requests that do not need the broken part still work.

    The session's server is stopped meanwhile (one component per JID) and started again.
    """
    database = tmp_path / "broken.db"
    config = write_server_config(tmp_path, xmpp_server, f"sqlite:///{database}")
    scratch = ServerProcess(config, tmp_path, xmpp_server.c2s_port)
    await asyncio.to_thread(server.stop)
    try:
        await asyncio.to_thread(scratch.start)
        juliet = await connect("juliet", resource=f"broken-{unique}")
        await juliet.ok("set", REGISTER)
        node = posts(juliet.bare)
        await juliet.ok("set", publish(node, entry(f"before {unique}")))

        with sqlite3.connect(database) as broken:
            broken.execute("DROP TABLE items")
        reply = await juliet.iq("get", items_request(node))
        assert reply.condition == "internal-server-error", reply
        assert reply.find("client:error/stanzas:text") is None, reply
        assert "items" not in "".join(reply.element.itertext())
        assert_no_leak(reply.text, reply.element)

        info = await juliet.ok("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
        assert info.find("info:query/data:x") is not None
        assert "no such table" in scratch.log_path.read_text()  # logged, not sent
    finally:
        status = await asyncio.to_thread(scratch.stop)
        await asyncio.to_thread(server.start)
    assert status == 0, scratch.log_tail()
