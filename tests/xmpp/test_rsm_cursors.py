"""RSM cursors on every paged query: a malformed cursor is bad-request, a well-formed one
that names nothing is item-not-found (XEP-0059), and nothing is ever an internal error.

Every query goes through the router with the fake stream, as a client would send it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xmpp.support import NS, Client, Harness, condition_of

from buddycloud.xmpp.xml import escape_text, serialize

J = "/user/juliet@capulet.lit/posts"
SERVICE = "channels.capulet.lit"
PUBSUB = f"<pubsub xmlns='{NS['pubsub']}'>"
OWNER = f"<pubsub xmlns='{NS['owner']}'>"
BC = f"xmlns='{NS['bc']}'"
SINCE = "since='2000-01-01T00:00:00Z'"
MAM_FORM = (
    f"<x xmlns='{NS['x']}' type='submit'><field var='FORM_TYPE' type='hidden'>"
    f"<value>{NS['mam']}</value></field></x>"
)
SEARCH_FORM = (
    f"<x xmlns='{NS['x']}' type='submit'><field var='FORM_TYPE' type='hidden'>"
    f"<value>{NS['search']}</value></field><field var='content'><value>hello</value></field></x>"
)
SWC_FILTER = (
    "<subscription-filter><allow field='pubsub#access_model' value='open'/></subscription-filter>"
)

# Every paged query: (IQ type, payload with {set} where the RSM <set/> goes).
PAGED = {
    "items": ("get", f"{PUBSUB}<items node='{J}'/>{{set}}</pubsub>"),
    "firehose": ("get", f"{PUBSUB}<items node='/firehose'/>{{set}}</pubsub>"),
    "replies": ("get", f"{PUBSUB}<replies {BC} node='{J}' item_id='p0'/>{{set}}</pubsub>"),
    "thread": ("get", f"{PUBSUB}<thread {BC} node='{J}' item_id='p0'/>{{set}}</pubsub>"),
    "threads": ("get", f"{PUBSUB}<threads node='{J}'/>{{set}}</pubsub>"),
    "recent-items": ("get", f"{PUBSUB}<recent-items {BC} {SINCE} max='10'/>{{set}}</pubsub>"),
    "user-items": ("get", f"{PUBSUB}<user-items {BC}/>{{set}}</pubsub>"),
    "user subscriptions": ("get", f"{PUBSUB}<subscriptions/>{{set}}</pubsub>"),
    "user affiliations": ("get", f"{PUBSUB}<affiliations/>{{set}}</pubsub>"),
    "node subscriptions": ("get", f"{PUBSUB}<subscriptions node='{J}'/>{{set}}</pubsub>"),
    "node subscriptions (owner)": ("get", f"{OWNER}<subscriptions node='{J}'/>{{set}}</pubsub>"),
    "node affiliations": ("get", f"{PUBSUB}<affiliations node='{J}'/>{{set}}</pubsub>"),
    "node affiliations (owner)": ("get", f"{OWNER}<affiliations node='{J}'/>{{set}}</pubsub>"),
    "subscriptions with configuration": (
        "get",
        f"{PUBSUB}<subscriptions-with-configuration {BC}/>{{set}}</pubsub>",
    ),
    "subscriptions with configuration, filtered": (
        "get",
        f"{PUBSUB}<subscriptions-with-configuration {BC}>{SWC_FILTER}"
        "</subscriptions-with-configuration>{set}</pubsub>",
    ),
    "disco#items": ("get", f"<query xmlns='{NS['items']}'>{{set}}</query>"),
    "disco#items of a node": ("get", f"<query xmlns='{NS['items']}' node='{J}'>{{set}}</query>"),
    "top nodes": (
        "get",
        f"<query xmlns='{NS['items']}' node='/top-published-nodes'>{{set}}</query>",
    ),
    "MAM of a node": ("set", f"<query xmlns='{NS['mam']}' node='{J}'>{MAM_FORM}{{set}}</query>"),
    "MAM": ("set", f"<query xmlns='{NS['mam']}'>{MAM_FORM}{{set}}</query>"),
    "inbox sync": ("get", f"<query xmlns='{NS['mamtmp']}'>{{set}}</query>"),
    "search": ("set", f"<query xmlns='{NS['search']}'>{SEARCH_FORM}{{set}}</query>"),
}

# Cursors that once broke something, or look like the forms the queries use.
TRICKY = [
    "",
    " ",
    "tag:",
    "tag:foo",
    "tag:,",
    "tag:,,",
    f"tag:{SERVICE}",
    f"tag:{SERVICE},",
    f"tag:{SERVICE},{J}",
    f"tag:{SERVICE},{J},",
    f"tag:{SERVICE},{J},nothing",
    f"tag:{SERVICE},/user/nobody@capulet.lit/posts,p0",
    f"{J}",
    f"{J},",
    f"{J},nothing",
    f"{J};p0",
    ",",
    ",,,",
    ",p0",
    "p0,",
    "/firehose,p0",
    "/user/,p0",
    "/user/@/posts,p0",
    "juliet@capulet.lit",
    "nobody@capulet.lit",
    "@",
    "x" * 1024,
    "x" * 1025,
    "é" * 1024,
    "\U0001f600" * 300,
    "\ufffd",
    "a\u0301",
    "\u202eevil",
    "0",
    "-1",
    "99999999999999999999",
    "2000-01-01T00:00:00Z",
]
_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"),
    blacklist_characters="\ufffe\uffff",
    whitelist_characters="\t\n",
)
CURSORS = st.one_of(st.sampled_from(TRICKY), st.text(_CHARS, max_size=60), st.text(_CHARS))

ACCEPTABLE = {"bad-request", "item-not-found"}

PROPERTY = settings(
    max_examples=int(os.environ.get("BUDDYCLOUD_FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def rsm(where: str, cursor: str) -> str:
    return f"<set xmlns='{NS['rsm']}'><max>3</max><{where}>{escape_text(cursor)}</{where}></set>"


@pytest.fixture
async def world(harness: Harness) -> Client:
    """Juliet's open channel with posts and a reply, and two followers. Hypothesis runs
    every example of a test on the same world: the queries only read."""
    juliet = harness.client("juliet@capulet.lit/balcony")
    for user in ("juliet", "romeo", "nurse"):
        client = harness.client(f"{user}@capulet.lit/x")
        await client.ok("set", f"<query xmlns='{NS['register']}'/>")
        if user != "juliet":
            await client.ok(
                "set", f"{PUBSUB}<subscribe node='{J}' jid='{user}@capulet.lit'/></pubsub>"
            )
    for n in range(4):
        await juliet.ok(
            "set",
            f"{PUBSUB}<publish node='{J}'><item id='p{n}'><entry xmlns='{NS['atom']}'>"
            f"<content>hello {n}</content></entry></item></publish></pubsub>",
        )
    reply = (
        f"<entry xmlns='{NS['atom']}' xmlns:thr='{NS['thr']}'><content>hello back</content>"
        f"<thr:in-reply-to ref='tag:{SERVICE},{J},p0'/></entry>"
    )
    await juliet.ok(
        "set", f"{PUBSUB}<publish node='{J}'><item id='r0'>{reply}</item></publish></pubsub>"
    )
    return juliet


@pytest.mark.parametrize("where", ["after", "before"])
@pytest.mark.parametrize("query", list(PAGED))
@PROPERTY
@given(cursor=CURSORS)
async def test_no_cursor_is_an_internal_error(
    world: Client, query: str, where: str, cursor: str
) -> None:
    type_, payload = PAGED[query]
    reply = await world.iq(type_, payload.format(set=rsm(where, cursor)))
    if reply.get("type") == "error":
        condition, type_, _ = condition_of(reply)
        assert condition in ACCEPTABLE, (cursor, serialize(reply))
        assert reply.findtext("error/stanzas:text", namespaces=NS), serialize(reply)


@pytest.mark.parametrize("query", list(PAGED))
async def test_the_tricky_cursors_on_every_query(world: Client, query: str) -> None:
    """The examples above, every one of them, both ways (Hypothesis may skip some)."""
    type_, payload = PAGED[query]
    for where in ("after", "before"):
        for cursor in TRICKY:
            reply = await world.iq(type_, payload.format(set=rsm(where, cursor)))
            if reply.get("type") == "error":
                assert condition_of(reply)[0] in ACCEPTABLE, (where, cursor, serialize(reply))


# Per query, a well-formed cursor that names nothing in the list it pages; None where the
# query is not paged by cursor (docs/xmpp.md: the top lists take `max` only, search pages
# by its form's `page`).
ITEM = "nothing"
CROSS = f"{J},nothing"
JID = "nobody@capulet.lit"
NODE = "/user/nobody@capulet.lit/posts"
# A position in the archive (MAM without node): an item of Juliet's posts that is not.
POSITION = "1767225600000000,0,juliet@capulet.lit,posts,nothing"
UNKNOWN: dict[str, str | None] = {
    "items": ITEM,
    "firehose": CROSS,
    "replies": ITEM,
    "thread": ITEM,
    "threads": ITEM,
    "recent-items": CROSS,
    "user-items": CROSS,
    "user subscriptions": NODE,
    "user affiliations": NODE,
    "node subscriptions": JID,
    "node subscriptions (owner)": JID,
    "node affiliations": JID,
    "node affiliations (owner)": JID,
    "subscriptions with configuration": NODE,
    "subscriptions with configuration, filtered": NODE,
    "disco#items": JID,
    "disco#items of a node": ITEM,
    "top nodes": None,
    "MAM of a node": ITEM,
    "MAM": POSITION,
    "inbox sync": POSITION,
    "search": None,
}


def test_every_paged_query_has_an_unknown_cursor() -> None:
    assert set(UNKNOWN) == set(PAGED)


@pytest.mark.parametrize("where", ["after", "before"])
@pytest.mark.parametrize("query", [q for q, cursor in UNKNOWN.items() if cursor is not None])
async def test_a_cursor_that_names_nothing_is_item_not_found(
    world: Client, query: str, where: str
) -> None:
    """XEP-0059: the cursor must name an entry of the list; it is not a position to seek."""
    type_, payload = PAGED[query]
    cursor = UNKNOWN[query]
    assert cursor is not None
    reply = await world.iq(type_, payload.format(set=rsm(where, cursor)))
    assert condition_of(reply) == ("item-not-found", "cancel", None), serialize(reply)
    assert cursor.split(",")[-1] in (reply.findtext("error/stanzas:text", namespaces=NS) or "")


@pytest.mark.parametrize(
    "query", ["firehose", "recent-items", "user-items", "items", "replies", "threads"]
)
@pytest.mark.parametrize(
    "cursor", ["tag:", "tag:foo", f"tag:{SERVICE},{J}", "x" * 1025], ids=lambda c: c[:12]
)
async def test_a_malformed_cursor_is_a_bad_request(world: Client, query: str, cursor: str) -> None:
    type_, payload = PAGED[query]
    reply = await world.iq(type_, payload.format(set=rsm("after", cursor)))
    assert condition_of(reply) == ("bad-request", "modify", None), serialize(reply)


def _last(reply: object) -> str | None:
    from xml.etree.ElementTree import Element

    assert isinstance(reply, Element)
    return reply.findtext(".//rsm:set/rsm:last", namespaces=NS)


@pytest.mark.parametrize("query", [q for q, cursor in UNKNOWN.items() if cursor is not None])
async def test_the_cursors_a_page_gives_lead_on_and_back(world: Client, query: str) -> None:
    """The cursors the server hands out name something: following them never fails."""
    type_, payload = PAGED[query]
    one = f"<set xmlns='{NS['rsm']}'><max>1</max></set>"
    first = await world.ok(type_, payload.format(set=one))
    last = _last(first)
    assert last, serialize(first)
    second = await world.ok(type_, payload.format(set=rsm("after", last)))
    back = await world.ok(type_, payload.format(set=rsm("before", last)))
    assert second.get("type") == back.get("type") == "result"


@pytest.mark.parametrize("cursor", [f"tag:{SERVICE},{J},p2", f"{J},p2"])
@pytest.mark.parametrize("query", ["firehose", "recent-items", "user-items"])
async def test_cross_node_queries_take_both_cursor_forms(
    world: Client, query: str, cursor: str
) -> None:
    """Reference rows 17-19: "<node>,<id>" or the global id, for the same item. Newest
    activity first: the reply to p0 made it the newest parent, so only p1 is older than p2."""
    type_, payload = PAGED[query]
    reply = await world.ok(type_, payload.format(set=rsm("after", cursor)))
    ids = [item.get("id") for item in reply.iter(f"{{{NS['pubsub']}}}item")]
    assert ids == ["p1"], serialize(reply)
