"""The inbox sync (`urn:xmpp:mam:tmp`, reference row 32) through the router: XML in, XML out."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from xmpp.support import NS, SERVICE, Client, Harness

from buddycloud.domain.times import format_datetime
from buddycloud.services.engine import Engine
from buddycloud.xmpp.xml import serialize

PUBSUB = f"<pubsub xmlns='{NS['pubsub']}'>"
OWNER = f"<pubsub xmlns='{NS['owner']}'>"
JULIET_POSTS = "/user/juliet@capulet.lit/posts"
ROMEO_POSTS = "/user/romeo@capulet.lit/posts"


def publish_xml(node: str, content: str) -> str:
    return (
        f"{PUBSUB}<publish node='{node}'><item><entry xmlns='{NS['atom']}'>"
        f"<content type='text'>{content}</content></entry></item></publish></pubsub>"
    )


def subscribe_xml(node: str, jid: str) -> str:
    return f"{PUBSUB}<subscribe node='{node}' jid='{jid}'/></pubsub>"


def sync_query(
    start: str | None,
    *,
    end: str | None = None,
    rsm: str = "",
    query_id: str | None = "sync",
) -> str:
    query_attribute = f" queryid='{query_id}'" if query_id is not None else ""
    bounds = f"<start>{start}</start>" if start is not None else ""
    if end is not None:
        bounds += f"<end>{end}</end>"
    set_element = f"<set xmlns='{NS['rsm']}'>{rsm}</set>" if rsm else ""
    return f"<query xmlns='{NS['mamtmp']}'{query_attribute}>{bounds}{set_element}</query>"


def now(harness: Harness) -> str:
    clock = harness.engine.clock
    moment: datetime = clock.now()
    return format_datetime(moment.astimezone(UTC))


def replayed(harness: Harness) -> list[Element]:
    """The `<result>` of each message the last request sent, in order."""
    results = []
    for message in harness.extra:
        assert message.tag == "message", serialize(message)
        result = message.find("mamtmp:result", NS)
        assert result is not None, serialize(message)
        results.append(result)
    return results


def inner(result: Element) -> Element:
    message = result.find("fwd:forwarded/client:message", NS)
    assert message is not None, serialize(result)
    return message


def payload(result: Element) -> str:
    """The forwarded message's child, serialised as the wire has it."""
    (child,) = list(inner(result))
    return serialize(child)


async def register(client: Client) -> None:
    await client.ok("set", f"<query xmlns='{NS['register']}'/>")


async def test_the_service_advertises_the_inbox_sync(juliet: Client) -> None:
    reply = await juliet.ok("get", f"<query xmlns='{NS['disco']}'/>")
    features = {f.get("var") for f in reply.findall("disco:query/disco:feature", NS)}
    assert {"urn:xmpp:mam:tmp", "urn:xmpp:mam:2"} <= features


async def test_a_returning_client_gets_what_it_missed_as_the_live_notifications(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """Romeo was offline while Juliet posted, the nurse followed and Juliet renamed her
    channel; Tybalt, online, got the live notifications. Romeo asks once and gets the same
    events, oldest first, each forwarded with its time, then the result."""
    tybalt = harness.client("tybalt@capulet.lit/street")
    nurse = harness.client("nurse@capulet.lit/kitchen")
    await register(juliet)
    await romeo.ok("set", subscribe_xml(JULIET_POSTS, "romeo@capulet.lit"))
    await tybalt.ok("set", subscribe_xml(JULIET_POSTS, "tybalt@capulet.lit"))
    await tybalt.presence()
    left = now(harness)

    live: list[str] = []

    async def happens(client: Client, payload_xml: str) -> None:
        await client.ok("set", payload_xml)
        for message in harness.extra:
            if message.get("to") == "tybalt@capulet.lit/street":
                live.extend(serialize(child) for child in message)

    await happens(juliet, publish_xml(JULIET_POSTS, "while you were away"))
    await happens(nurse, subscribe_xml(JULIET_POSTS, "nurse@capulet.lit"))
    await happens(
        juliet,
        f"{OWNER}<configure node='{JULIET_POSTS}'><x xmlns='{NS['x']}' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
        "<field var='pubsub#title'><value>The balcony</value></field></x></configure></pubsub>",
    )
    assert len(live) >= 3

    reply = await romeo.ok("get", sync_query(left))
    results = replayed(harness)
    assert all(m.get("to") == "romeo@capulet.lit/orchard" for m in harness.extra)
    assert all(m.get("from") == SERVICE for m in harness.extra)
    assert all(r.get("queryid") == "sync" for r in results)
    assert len({r.get("id") for r in results}) == len(results)
    stamps = [r.find("fwd:forwarded/delay:delay", NS).get("stamp") for r in results]  # type: ignore[union-attr]
    assert stamps == sorted(stamps) and all(s and s >= left for s in stamps)
    for result in results:
        message = inner(result)
        assert (message.get("from"), message.get("type")) == (SERVICE, "headline")
    replay = [payload(result) for result in results]
    # Every live notification Tybalt got comes again, the same, in the same order.
    assert [body for body in replay if body in live] == live
    # Following also shows the nurse's role (as the original Java server's event did).
    assert any("affiliation" in body and "nurse@capulet.lit" in body for body in replay)
    # The result: the RSM set says how many there were and where the page ended.
    assert reply.findtext("mamtmp:query/rsm:set/rsm:count", namespaces=NS) == str(len(results))
    assert reply.findtext("mamtmp:query/rsm:set/rsm:last", namespaces=NS) == results[-1].get("id")


async def test_max_is_honoured_and_the_rest_comes_page_by_page(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    await romeo.ok("set", subscribe_xml(JULIET_POSTS, "romeo@capulet.lit"))
    left = now(harness)
    for k in range(7):
        await juliet.ok("set", publish_xml(JULIET_POSTS, f"post {k}"))

    contents: list[str | None] = []
    rsm = "<max>3</max>"
    pages = 0
    while True:
        reply = await romeo.ok("get", sync_query(left, rsm=rsm))
        results = replayed(harness)
        assert len(results) <= 3
        pages += 1
        contents.extend(
            inner(r).findtext(
                "event:event/event:items/event:item/atom:entry/atom:content", namespaces=NS
            )
            for r in results
        )
        count = reply.findtext("mamtmp:query/rsm:set/rsm:count", namespaces=NS)
        assert count == "7"
        last = reply.findtext("mamtmp:query/rsm:set/rsm:last", namespaces=NS)
        rsm = f"<max>3</max><after>{last}</after>"
        if len(contents) >= 7:
            break
    assert contents == [f"post {k}" for k in range(7)] and pages == 3
    # Past the end: nothing, and the count.
    reply = await romeo.ok("get", sync_query(left, rsm=rsm))
    assert replayed(harness) == []
    assert reply.findtext("mamtmp:query/rsm:set/rsm:count", namespaces=NS) == "7"
    # <before/> is the newest page.
    await romeo.ok("get", sync_query(left, rsm="<max>2</max><before/>"))
    newest = [inner(r).findtext(".//atom:content", namespaces=NS) for r in replayed(harness)]
    assert newest == ["post 5", "post 6"]


async def test_owners_get_authorization_prompts_as_plain_messages(
    harness: Harness, romeo: Client, juliet: Client
) -> None:
    """A follow request to a closed channel waits for the owner: replayed like the live
    prompt (a message with the subscribe_authorization form, not a headline)."""
    await register(romeo)
    await romeo.ok(
        "set",
        f"{OWNER}<configure node='{ROMEO_POSTS}'><x xmlns='{NS['x']}' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
        "<field var='pubsub#access_model'><value>authorize</value></field></x></configure>"
        "</pubsub>",
    )
    left = now(harness)
    await juliet.ok("set", subscribe_xml(ROMEO_POSTS, "juliet@capulet.lit"))
    live_prompt = [
        serialize(child)
        for message in harness.extra
        if message.get("to") == "romeo@capulet.lit"
        for child in message
    ]
    await romeo.ok("get", sync_query(left, query_id=None))
    results = replayed(harness)
    assert all(r.get("queryid") is None for r in results)
    prompts = [r for r in results if inner(r).find("x:x", NS) is not None]
    assert len(prompts) == 1 and inner(prompts[0]).get("type") is None
    assert payload(prompts[0]) in live_prompt
    pending = [r for r in results if "pending" in payload(r)]
    assert len(pending) == 1


async def test_bad_sync_requests_are_refused_with_the_reason(romeo: Client) -> None:
    for query in (
        sync_query("yesterday"),
        sync_query(None, end="never"),
        sync_query(None, rsm="<after>not-a-position</after>"),
        sync_query(None, rsm="<max>many</max>"),
    ):
        condition = await romeo.error("get", query)
        assert condition[:2] == ("bad-request", "modify"), query
    # A set is answered like a get; no start means from the beginning.
    await romeo.ok("set", sync_query(None))


async def test_each_replayed_event_fits_and_a_too_large_post_comes_by_id(
    engine: Engine,
) -> None:
    """Every stanza fits the XMPP server's limit: a post too large for one is replayed as
    its live notification would be, `<item id/>` without the payload (docs/xmpp.md)."""
    tiny = Harness(engine, max_stanza_bytes=3_000)
    juliet = tiny.client("juliet@capulet.lit/balcony")
    romeo = tiny.client("romeo@capulet.lit/orchard")
    await register(juliet)
    await romeo.ok("set", subscribe_xml(JULIET_POSTS, "romeo@capulet.lit"))
    left = now(tiny)
    await juliet.ok("set", publish_xml(JULIET_POSTS, "big " + "x" * 4_000))
    await juliet.ok("set", publish_xml(JULIET_POSTS, "small"))
    await romeo.ok("get", sync_query(left))
    assert all(len(serialize(message).encode()) <= 3_000 for message in tiny.extra)
    items = [
        inner(result).find("event:event/event:items/event:item", NS) for result in replayed(tiny)
    ]
    assert [item is not None and len(item) for item in items] == [0, 1]
    assert items[1] is not None
    assert items[1].findtext("atom:entry/atom:content", namespaces=NS) == "small"
