"""Every reply and notification fits the XMPP server's stanza size limit.

The fake stream refuses any stanza over the limit, as an XMPP server would (by closing the
component's stream), so every test here fails if the edge sends one. Pages end at the
first result that does not fit, and RSM `after=last` (or `before=first`) continues
without losing or repeating any result.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element

import pytest
from xmpp.support import NS, SERVICE, Client, Harness, condition_of

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId
from buddycloud.services.engine import Engine
from buddycloud.xmpp.multicast import MulticastService
from buddycloud.xmpp.namespaces import NS_ADDRESS, NS_PUBSUB
from buddycloud.xmpp.xml import serialize

PUBSUB = f"<pubsub xmlns='{NS['pubsub']}'>"
JULIET = Jid.parse("juliet@capulet.lit")
JULIET_POSTS = "/user/juliet@capulet.lit/posts"
ROMEO_POSTS = "/user/romeo@capulet.lit/posts"
LIMIT = 16_384
FILLER = "x" * 3_000  # a post of about 3.4 KiB once rendered: four or five fit a reply


def size(text: str) -> int:
    return len(text.encode("utf-8"))


@pytest.fixture
def small(engine: Engine) -> Harness:
    return Harness(engine, max_stanza_bytes=LIMIT)


def post(content: str, extra: str = "") -> str:
    return (
        f"<entry xmlns='{NS['atom']}' xmlns:thr='{NS['thr']}'>"
        f"<content type='text'>{content}</content>{extra}</entry>"
    )


async def register(client: Client) -> None:
    await client.ok("set", f"<query xmlns='{NS['register']}'/>")


async def publish(client: Client, node: str, content: str, extra: str = "") -> str:
    reply = await client.ok(
        "set",
        f"{PUBSUB}<publish node='{node}'><item>{post(content, extra)}</item></publish></pubsub>",
    )
    item = reply.find("pubsub:pubsub/pubsub:publish/pubsub:item", NS)
    assert item is not None
    return item.get("id", "")


def rsm(after: str | None = None, before: str | None = None, max_: int | None = None) -> str:
    parts = f"<max>{max_}</max>" if max_ is not None else ""
    if after is not None:
        parts += f"<after>{after}</after>"
    if before is not None:
        parts += f"<before>{before}</before>" if before else "<before/>"
    return f"<set xmlns='{NS['rsm']}'>{parts}</set>"


def item_ids(reply: Element) -> list[str]:
    return [item.get("id", "") for item in reply.iter(f"{{{NS_PUBSUB}}}item")]


def rsm_of(reply: Element) -> tuple[str | None, str | None, str | None]:
    """first, last and count of the reply's RSM <set/>."""
    found = next(reply.iter(f"{{{NS['rsm']}}}set"), None)
    assert found is not None, serialize(reply)
    return (
        found.findtext("rsm:first", namespaces=NS),
        found.findtext("rsm:last", namespaces=NS),
        found.findtext("rsm:count", namespaces=NS),
    )


async def page_forward(
    client: Client,
    request: Callable[[str | None], str],
    ids_of: Callable[[Element], list[str]],
    *,
    iq_type: str = "get",
) -> tuple[list[str], list[int]]:
    """Every result, following `after=last` until a page comes back empty; and how many
    results each page held."""
    seen: list[str] = []
    sizes: list[int] = []
    after: str | None = None
    for _ in range(100):
        reply = await client.ok(iq_type, request(after))
        assert size(client.reply_text) <= LIMIT
        ids = ids_of(reply)
        if not ids:
            return seen, sizes
        seen += ids
        sizes.append(len(ids))
        after = rsm_of(reply)[1]
    raise AssertionError("paging did not end")


async def large_posts(juliet: Client, count: int, node: str = JULIET_POSTS) -> list[str]:
    """`count` large posts by Juliet; their ids newest first, as pages list them."""
    ids = [await publish(juliet, node, f"post {n} {FILLER}") for n in range(count)]
    return ids[::-1]


async def test_a_page_of_large_posts_ends_where_the_next_post_would_not_fit(
    small: Harness,
) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    newest_first = await large_posts(juliet, 12)

    first = await juliet.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")
    first_size = size(juliet.reply_text)
    kept = item_ids(first)
    assert 1 < len(kept) < 12
    assert kept == newest_first[: len(kept)]
    assert first_size <= LIMIT
    # Cut exactly: the next post, as a reply writes it, would not have fitted beside them.
    following = await juliet.ok(
        "get",
        f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='{newest_first[len(kept)]}'/></items>"
        "</pubsub>",
    )
    next_item = following.find("pubsub:pubsub/pubsub:items/pubsub:item", NS)
    assert next_item is not None
    assert first_size + size(serialize(next_item, parent_namespace=NS_PUBSUB)) > LIMIT
    # RSM says where the page ended and how long the whole list is.
    assert rsm_of(first) == (kept[0], kept[-1], "12")

    seen, pages = await page_forward(
        juliet,
        lambda after: (
            f"{PUBSUB}<items node='{JULIET_POSTS}'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        item_ids,
    )
    assert seen == newest_first
    assert len(pages) > 2


async def test_paging_backwards_keeps_the_results_next_to_the_cursor(small: Harness) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    newest_first = await large_posts(juliet, 10)

    # An empty <before/> asks for the last page: the oldest posts.
    last = await juliet.ok(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'/>{rsm(before='')}</pubsub>"
    )
    kept = item_ids(last)
    assert 0 < len(kept) < 10
    assert kept == newest_first[-len(kept) :]
    assert rsm_of(last) == (kept[0], kept[-1], "10")
    seen = kept
    for _ in range(20):
        reply = await juliet.ok(
            "get", f"{PUBSUB}<items node='{JULIET_POSTS}'/>{rsm(before=seen[0])}</pubsub>"
        )
        ids = item_ids(reply)
        if not ids:
            break
        seen = ids + seen
    assert seen == newest_first


async def test_firehose_recent_and_user_items_pages_continue_across_nodes(
    small: Harness,
) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    romeo = small.client("romeo@capulet.lit/orchard")
    await register(juliet)
    await register(romeo)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    published: list[str] = []
    for n in range(6):  # interleaved: pages hold several <items node> blocks
        published.append(await publish(juliet, JULIET_POSTS, f"juliet {n} {FILLER}"))
        published.append(await publish(romeo, ROMEO_POSTS, f"romeo {n} {FILLER}"))
    newest_first = published[::-1]

    def grouped_ids(reply: Element) -> list[str]:
        blocks = reply.findall("pubsub:pubsub/pubsub:items", NS)
        nodes = [block.get("node") for block in blocks]
        assert all(a != b for a, b in zip(nodes, nodes[1:], strict=False)), nodes
        return [item.get("id", "") for block in blocks for item in block]

    firehose, pages = await page_forward(
        romeo,
        lambda after: (
            f"{PUBSUB}<items node='/firehose'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        grouped_ids,
    )
    assert firehose == newest_first
    assert len(pages) > 2
    recent, _ = await page_forward(
        romeo,
        lambda after: (
            f"{PUBSUB}<recent-items xmlns='{NS['bc']}' "
            f"since='2000-01-01T00:00:00Z' max='50'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        grouped_ids,
    )
    assert recent == newest_first
    user_items, _ = await page_forward(
        romeo,
        lambda after: (
            f"{PUBSUB}<user-items xmlns='{NS['bc']}'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        grouped_ids,
    )
    assert user_items == newest_first


async def test_replies_thread_and_threads_pages_continue(small: Harness) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    parent = await publish(juliet, JULIET_POSTS, f"parent {FILLER}")
    replies = [
        await publish(
            juliet, JULIET_POSTS, f"reply {n} {FILLER}", f"<thr:in-reply-to ref='{parent}'/>"
        )
        for n in range(8)
    ]

    replies_seen, pages = await page_forward(
        juliet,
        lambda after: (
            f"{PUBSUB}<replies xmlns='{NS['bc']}' node='{JULIET_POSTS}' "
            f"item_id='{parent}'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        item_ids,
    )
    assert replies_seen == replies[::-1]
    assert len(pages) > 1
    # The thread starts with its parent; a page may end right after it.
    thread_seen, _ = await page_forward(
        juliet,
        lambda after: (
            f"{PUBSUB}<thread xmlns='{NS['bc']}' node='{JULIET_POSTS}' "
            f"item_id='{parent}'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        item_ids,
    )
    assert thread_seen == [parent, *replies[::-1]]

    others = [await publish(juliet, JULIET_POSTS, f"thread {n} {FILLER}") for n in range(5)]

    def thread_ids(reply: Element) -> list[str]:
        return [t.get("id", "") for t in reply.findall("pubsub:pubsub/pubsub:thread", NS)]

    threads, _ = await page_forward(
        juliet,
        lambda after: (
            f"{PUBSUB}<threads node='{JULIET_POSTS}'/>{rsm(after=after) if after else ''}</pubsub>"
        ),
        thread_ids,
    )
    assert threads == [*others[::-1], parent]


async def test_a_thread_too_large_for_a_reply_is_listed_with_its_items_ids(
    small: Harness,
) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    parent = await publish(juliet, JULIET_POSTS, f"parent {FILLER}")
    replies = [
        await publish(
            juliet, JULIET_POSTS, f"reply {n} {FILLER}", f"<thr:in-reply-to ref='{parent}'/>"
        )
        for n in range(6)
    ]
    reply = await juliet.ok("get", f"{PUBSUB}<threads node='{JULIET_POSTS}'/></pubsub>")
    (thread,) = reply.findall("pubsub:pubsub/pubsub:thread", NS)
    items = thread.findall("pubsub:item", NS)
    assert sorted(item.get("id", "") for item in items) == sorted([parent, *replies])
    assert all(len(item) == 0 for item in items)  # ids only: `thread` pages the posts


async def test_a_post_too_large_for_any_reply_is_listed_by_id_and_refused_alone(
    engine: Engine,
) -> None:
    """With a limit below one rendered post, pages still go on: each such post is listed
    as `<item id/>`; asked for alone by id, it is refused with the reason."""
    tiny = Harness(engine, max_stanza_bytes=3_000)
    juliet = tiny.client("juliet@capulet.lit/balcony")
    await register(juliet)
    big = await publish(juliet, JULIET_POSTS, f"big {FILLER}")
    small_one = await publish(juliet, JULIET_POSTS, "small")

    first = await juliet.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")
    assert item_ids(first) == [small_one]
    second = await juliet.ok(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'/>{rsm(after=small_one)}</pubsub>"
    )
    (stub,) = second.findall("pubsub:pubsub/pubsub:items/pubsub:item", NS)
    assert stub.get("id") == big and len(stub) == 0
    assert rsm_of(second) == (big, big, "2")

    refused = await juliet.iq(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='{big}'/></items></pubsub>"
    )
    assert condition_of(refused) == ("not-acceptable", "cancel", "payload-too-big")
    text = refused.findtext("error/stanzas:text", namespaces=NS) or ""
    assert f"item {big} is" in text and "stanza size limit" in text

    both = await juliet.ok(
        "get",
        f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='{big}'/><item id='{small_one}'/>"
        "</items></pubsub>",
    )
    assert item_ids(both) == [big]  # the stub, and the rest is for another request
    assert rsm_of(both) == (big, big, "2")


async def test_items_asked_by_id_come_as_many_as_fit_and_rsm_says_how_many_were_asked(
    small: Harness,
) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    asked = await large_posts(juliet, 8)
    request = "".join(f"<item id='{item_id}'/>" for item_id in asked)
    reply = await juliet.ok(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'>{request}</items></pubsub>"
    )
    got = item_ids(reply)
    assert 0 < len(got) < 8 and got == asked[: len(got)]
    assert all(len(item) == 1 for item in reply.iter(f"{{{NS_PUBSUB}}}item"))  # payloads
    assert rsm_of(reply) == (got[0], got[-1], "8")
    # Everything fits: no RSM, as before.
    whole = await juliet.ok(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='{asked[0]}'/></items></pubsub>"
    )
    assert whole.find(".//rsm:set", NS) is None


async def test_a_notification_too_large_for_a_stanza_carries_the_item_id_only(
    engine: Engine,
) -> None:
    tiny = Harness(engine, max_stanza_bytes=3_000)
    juliet = tiny.client("juliet@capulet.lit/balcony")
    romeo = tiny.client("romeo@capulet.lit/orchard")
    await register(juliet)
    await romeo.presence()
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    big = await publish(juliet, JULIET_POSTS, f"big {FILLER}")
    (message,) = [m for m in tiny.extra if m.get("to") == "romeo@capulet.lit/orchard"]
    (item,) = message.findall("event:event/event:items/event:item", NS)
    assert item.get("id") == big and len(item) == 0
    assert message.find("event:event/event:items", NS).get("node") == JULIET_POSTS  # type: ignore[union-attr]
    small_one = await publish(juliet, JULIET_POSTS, "small")
    (message,) = [m for m in tiny.extra if m.get("to") == "romeo@capulet.lit/orchard"]
    (item,) = message.findall("event:event/event:items/event:item", NS)
    assert item.get("id") == small_one
    assert item.findtext("atom:entry/atom:content", namespaces=NS) == "small"


async def test_multicast_stanzas_carry_as_many_addresses_as_fit(small: Harness) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    posts = NodeId.parse(JULIET_POSTS)
    resources = [f"romeo@capulet.lit/{'r' * 200}{n}" for n in range(150)]
    for full in resources:
        small.online.add(Jid.parse(full))
    romeo = Jid.parse("romeo@capulet.lit")
    await small.engine.subscribe(romeo, posts, romeo)
    small.notifier.multicast = MulticastService("capulet.lit", 100)
    small.stream.take()

    item_id = await publish(juliet, JULIET_POSTS, f"to all {FILLER}")
    sent = [m for m in small.extra if m.get("to") == "capulet.lit"]
    assert len(sent) > 2  # 100 addresses would not fit beside the post
    addressed = [
        address.get("jid")
        for message in sent
        for address in message.iter(f"{{{NS_ADDRESS}}}address")
    ]
    assert sorted(addressed) == sorted(resources)
    for message in sent:
        (item,) = message.findall("event:event/event:items/event:item", NS)
        assert item.get("id") == item_id and len(item) == 1  # the post, not a stub


async def test_mam_results_each_fit_and_a_too_large_one_comes_without_payload(
    engine: Engine,
) -> None:
    tiny = Harness(engine, max_stanza_bytes=3_000)
    juliet = tiny.client("juliet@capulet.lit/balcony")
    await register(juliet)
    big = await publish(juliet, JULIET_POSTS, f"big {FILLER}")
    small_one = await publish(juliet, JULIET_POSTS, "small")
    await juliet.ok(
        "set",
        f"<query xmlns='{NS['mam']}' queryid='sync' node='{JULIET_POSTS}'>"
        f"<x xmlns='{NS['x']}' type='submit'><field var='FORM_TYPE' type='hidden'>"
        f"<value>{NS['mam']}</value></field>"
        "<field var='start'><value>2000-01-01T00:00:00Z</value></field></x></query>",
    )
    results = {
        item.get("id"): item
        for message in tiny.extra
        for item in message.iter(f"{{{NS['event']}}}item")
    }
    assert set(results) == {big, small_one}
    assert len(results[big]) == 0
    assert results[small_one].findtext("atom:entry/atom:content", namespaces=NS) == "small"


async def test_membership_lists_are_cut_and_continue(engine: Engine, small: Harness) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    posts = NodeId.parse(JULIET_POSTS)
    followers = [Jid.parse(f"{'f' * 200}{n:03d}@capulet.lit") for n in range(120)]
    for follower in followers:
        await engine.subscribe(follower, posts, follower)
    everyone = {str(follower) for follower in followers} | {"juliet@capulet.lit"}

    def jids(reply: Element, name: str) -> list[str]:
        return [row.get("jid", "") for row in reply.iter(f"{{{NS['owner']}}}{name}")]

    for name in ("subscription", "affiliation"):

        def request(after: str | None, name: str = name) -> str:
            return (
                f"<pubsub xmlns='{NS['owner']}'><{name}s node='{JULIET_POSTS}'/>"
                f"{rsm(after=after, max_=1000)}</pubsub>"
            )

        seen, pages = await page_forward(
            juliet, request, lambda reply, name=name: jids(reply, name)
        )
        assert len(seen) == len(everyone) and set(seen) == everyone, name
        assert len(pages) > 1  # not for the page size: 1,000 were asked for


async def test_lists_of_channels_are_cut_and_continue(engine: Engine, small: Harness) -> None:
    """disco#items, and a follower's subscriptions, affiliations and
    subscriptions-with-configuration, with 1,000 asked for per page."""
    juliet = small.client("juliet@capulet.lit/balcony")
    romeo = small.client("romeo@capulet.lit/orchard")
    await register(juliet)
    romeo_jid = Jid.parse("romeo@capulet.lit")
    topics = set()
    for n in range(70):
        topic = NodeId(Jid.parse(f"{'t' * 180}{n:03d}@topics.capulet.lit"), "posts")
        await engine.create_node(JULIET, topic)
        await engine.subscribe(romeo_jid, topic, romeo_jid)
        topics.add(str(topic))

    def channels(reply: Element) -> list[str]:
        return [item.get("node", "") for item in reply.iter(f"{{{NS['items']}}}item")]

    listed, pages = await page_forward(
        juliet,
        lambda after: f"<query xmlns='{NS['items']}'>{rsm(after=after, max_=1000)}</query>",
        channels,
    )
    assert len(listed) == len(set(listed)) and topics <= set(listed)
    assert len(pages) > 1  # not for the page size: 1,000 were asked for

    # The top lists are not paged: one that does not fit ends early, and says so.
    top = await juliet.ok(
        "get", f"<query xmlns='{NS['items']}' node='/top-followed-nodes'>{rsm(max_=1000)}</query>"
    )
    shown = channels(top)
    assert 0 < len(shown) < 70 and set(shown) <= topics
    ends = (str(NodeId.parse(shown[0]).channel), str(NodeId.parse(shown[-1]).channel))
    assert rsm_of(top) == (*ends, "70")

    def nodes(reply: Element) -> list[str]:
        return [
            row.get("node", "")
            for row in reply.iter()
            if row.tag
            in (
                f"{{{NS['pubsub']}}}subscription",
                f"{{{NS['pubsub']}}}affiliation",
                f"{{{NS['bc']}}}subscription-with-configuration",
            )
        ]

    for request in (
        f"{PUBSUB}<subscriptions/>",
        f"{PUBSUB}<affiliations/>",
        f"{PUBSUB}<subscriptions-with-configuration xmlns='{NS['bc']}'/>",
    ):
        followed, pages = await page_forward(
            romeo,
            lambda after, request=request: f"{request}{rsm(after=after, max_=1000)}</pubsub>",
            nodes,
        )
        assert len(followed) == len(set(followed)) and topics <= set(followed), request
        assert len(pages) > 1, request


async def test_search_results_are_cut_and_continue_with_rsm(small: Harness) -> None:
    juliet = small.client("juliet@capulet.lit/balcony")
    await register(juliet)
    newest_first = [await publish(juliet, JULIET_POSTS, f"a rose {n} {FILLER}") for n in range(10)][
        ::-1
    ]

    def request(after: str | None) -> str:
        return (
            f"<query xmlns='{NS['search']}'><x xmlns='{NS['x']}' type='submit'>"
            "<field var='content'><value>rose</value></field></x>"
            f"{rsm(after=after) if after else ''}</query>"
        )

    def found(reply: Element) -> list[str]:
        rows = reply.findall("search:query/x:x/x:item", NS)
        return [row.findtext("x:field[@var='id']/x:value", namespaces=NS) or "" for row in rows]

    first = await juliet.ok("set", request(None))
    kept = found(first)
    assert 0 < len(kept) < 10
    # A numbered page that had to end early says where it starts and how long the set is.
    first_set = first.find("search:query/rsm:set", NS)
    assert first_set is not None
    assert first_set.find("rsm:first", NS).get("index") == "0"  # type: ignore[union-attr]
    assert first_set.findtext("rsm:count", namespaces=NS) == "10"
    seen, _ = await page_forward(juliet, request, found, iq_type="set")
    assert seen == newest_first


async def test_an_answer_that_cannot_be_cut_becomes_an_error_and_never_too_large(
    engine: Engine,
) -> None:
    """disco#info of the service is about 2.5 KiB: under a smaller limit it is refused
    with the reason; an IQ whose id alone exceeds the limit gets no answer at all."""
    tiny = Harness(engine, max_stanza_bytes=1_500)
    juliet = tiny.client("juliet@capulet.lit/balcony")
    refused = await juliet.iq("get", f"<query xmlns='{NS['disco']}'/>")
    assert condition_of(refused) == ("not-acceptable", "cancel", None)
    assert "the answer is" in (refused.findtext("error/stanzas:text", namespaces=NS) or "")
    sent = await tiny.feed(
        f"<iq xmlns='jabber:component:accept' type='get' id='{'i' * 2_000}' "
        f"from='juliet@capulet.lit/balcony' to='{SERVICE}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    assert sent == []
