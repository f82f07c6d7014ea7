"""Reading across channels through the wire: recent items, threads, ratings, MAM, search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from e2e.conftest import Connect
from e2e.harness import (
    NS_BC,
    NS_DATA,
    NS_MAM,
    NS_PUBSUB,
    NS_SEARCH,
    TOPICS_DOMAIN,
    Client,
    create,
    entry,
    form_values,
    item_ids,
    items_request,
    local_id,
    mentions,
    posts,
    publish,
    published_id,
    rating_entry,
    subscribe,
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def recent_items(since: str | None, max_: str | None, *, parent_only: bool = False) -> str:
    attributes = ""
    if since is not None:
        attributes += f" since='{since}'"
    if max_ is not None:
        attributes += f" max='{max_}'"
    if parent_only:
        attributes += " parent-only='true'"
    return f"<pubsub xmlns='{NS_PUBSUB}'><recent-items xmlns='{NS_BC}'{attributes}/></pubsub>"


async def post(client: Client, node: str, text: str, *, in_reply_to: str | None = None) -> str:
    reply = await client.ok("set", publish(node, entry(text, in_reply_to=in_reply_to)))
    return local_id(published_id(reply))


async def test_recent_items_gathers_posts_of_followed_channels(
    juliet: Client, romeo: Client, benvolio: Client, unique: str
) -> None:
    """ProtoXEP 6.1.1: posts of every followed channel since a date, at most `max` per node."""
    since = iso(datetime.now(UTC) - timedelta(seconds=1))
    juliet_posts = posts(juliet.bare)
    benvolio_posts = posts(benvolio.bare)
    await romeo.ok("set", subscribe(juliet_posts, romeo.bare))
    await romeo.ok("set", subscribe(benvolio_posts, romeo.bare))
    first = await post(juliet, juliet_posts, f"first {unique}")
    second = await post(juliet, juliet_posts, f"second {unique}")
    third = await post(juliet, juliet_posts, f"third {unique}")
    from_benvolio = await post(benvolio, benvolio_posts, f"benvolio {unique}")
    reply_id = await post(romeo, juliet_posts, f"a reply {unique}", in_reply_to=third)

    reply = await romeo.ok("get", recent_items(since, "2"))
    juliet_ids = item_ids(reply, juliet_posts)
    assert len(juliet_ids) == 2 and first not in juliet_ids, reply
    assert from_benvolio in item_ids(reply, benvolio_posts)

    parents = await romeo.ok("get", recent_items(since, "10", parent_only=True))
    parent_ids = item_ids(parents, juliet_posts)
    assert {second, third} <= set(parent_ids)
    assert reply_id not in parent_ids


@pytest.mark.parametrize(
    ("since", "max_", "condition"),
    [
        (None, "10", "since-required"),
        ("2020-01-01T00:00:00Z", None, "max-required"),
        ("yesterday", "10", "invalid-since-value-provided"),
        ("2020-01-01T00:00:00Z", "-3", "invalid-max-value-provided"),
    ],
)
async def test_recent_items_errors(
    romeo: Client, since: str | None, max_: str | None, condition: str
) -> None:
    """ProtoXEP 6.1.1.1."""
    reply = await romeo.iq("get", recent_items(since, max_))
    assert reply.condition == "bad-request", reply
    assert condition in reply.app_conditions, reply


async def test_replies_and_thread_of_a_post(juliet: Client, romeo: Client, unique: str) -> None:
    node = posts(juliet.bare)
    await romeo.ok("set", subscribe(node, romeo.bare))
    parent = await post(juliet, node, f"parent {unique}")
    first = await post(romeo, node, f"reply one {unique}", in_reply_to=parent)
    second = await post(juliet, node, f"reply two {unique}", in_reply_to=parent)

    replies = await romeo.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><replies xmlns='{NS_BC}' node='{node}' "
        f"item_id='{parent}'/></pubsub>",
    )
    assert set(item_ids(replies)) == {first, second}

    thread = await romeo.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><thread xmlns='{NS_BC}' node='{node}' "
        f"item_id='{parent}'/></pubsub>",
    )
    assert set(item_ids(thread)) == {parent, first, second}

    # Threads are one level deep (ProtoXEP 6.3.2).
    too_deep = await romeo.iq(
        "set", publish(node, entry(f"reply to a reply {unique}", in_reply_to=first))
    )
    assert too_deep.condition == "bad-request", too_deep


async def test_a_reply_to_a_missing_post_is_refused(juliet: Client, unique: str) -> None:
    node = posts(juliet.bare)
    reply = await juliet.iq("set", publish(node, entry("orphan", in_reply_to=f"missing{unique}")))
    assert reply.condition in ("bad-request", "item-not-found", "not-acceptable"), reply


async def test_rating_errors(juliet: Client, romeo: Client, unique: str) -> None:
    """ProtoXEP 6.3.4.1."""
    node = posts(juliet.bare)
    await romeo.ok("set", subscribe(node, romeo.bare))
    target = await post(juliet, node, f"rate me {unique}")

    for value, condition in (("lovely", "invalid-rating"), ("7", "rating-out-of-range")):
        reply = await romeo.iq("set", publish(node, rating_entry(target, value)))
        assert reply.condition == "bad-request", reply
        assert condition in reply.app_conditions, reply

    rated = await romeo.ok("set", publish(node, rating_entry(target, "5")))
    rating_id = local_id(published_id(rated))
    fetched = await romeo.ok("get", items_request(node, item_id=rating_id))
    assert "rating:5.0" in fetched.text or "5.0" in fetched.text, fetched

    again = await romeo.iq("set", publish(node, rating_entry(target, "4")))
    assert "item-already-rated" in again.app_conditions, again

    rate_a_rating = await juliet.iq(
        "set", publish(node, rating_entry(rating_id, "3", parent=target))
    )
    assert "invalid-rating-request" in rate_a_rating.app_conditions, rate_a_rating


async def test_mam_replays_what_an_offline_follower_missed(
    connect: Connect, juliet: Client, romeo: Client, unique: str
) -> None:
    """Reference row 32: a returning client asks for everything since it left."""
    node = posts(juliet.bare)
    await romeo.ok("set", subscribe(node, romeo.bare))
    left_at = iso(datetime.now(UTC) - timedelta(seconds=1))
    await romeo.disconnect()
    await juliet.sync()
    missed = [await post(juliet, node, f"while away {n} {unique}") for n in range(3)]

    back = await connect("romeo", resource="back")
    await back.sync()
    assert back.received(mentions(unique)) == []  # notifications were not stored
    query = (
        f"<query xmlns='{NS_MAM}' queryid='catchup-{unique}'>"
        f"<x xmlns='{NS_DATA}' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_MAM}</value></field>"
        f"<field var='start'><value>{left_at}</value></field></x></query>"
    )
    fin = await back.ok("set", query)
    assert fin.find("mam:fin") is not None, fin
    replayed = back.received(mentions(f"catchup-{unique}"))
    replayed_ids = set()
    for message in replayed:
        for item in message.iter("{http://jabber.org/protocol/pubsub#event}item"):
            replayed_ids.add(local_id(item.get("id", "")))
    assert set(missed) <= replayed_ids, replayed


def search_form(words: str, author: str | None = None) -> str:
    author_field = (
        f"<field var='author'><value>{author}</value></field>" if author is not None else ""
    )
    return (
        f"<query xmlns='{NS_SEARCH}'><x xmlns='{NS_DATA}' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_SEARCH}</value></field>"
        f"<field var='content'><value>{words}</value></field>{author_field}</x></query>"
    )


async def test_search_finds_readable_posts_only(
    juliet: Client, romeo: Client, tybalt: Client, unique: str
) -> None:
    word = f"nightingale{unique}"
    open_node = posts(juliet.bare)
    closed_node = posts(f"secret-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(closed_node, {"pubsub#access_model": "authorize"}))
    public = await post(juliet, open_node, f"It was the {word} and not the lark")
    await post(juliet, closed_node, f"A secret {word}")

    form = await romeo.ok("get", f"<query xmlns='{NS_SEARCH}'/>")
    assert form.find("search:query/data:x") is not None, form

    reply = await tybalt.ok("set", search_form(word))
    rows = [form_values(row) for row in reply.findall("search:query/data:x/data:item")]
    found = {(row["node"][0], local_id(row["id"][0])) for row in rows}
    assert found == {(open_node, public)}, reply

    by_author = await tybalt.ok("set", search_form(word, author=romeo.bare))
    assert by_author.findall("search:query/data:x/data:item") == []


async def test_the_firehose_shows_new_public_posts_to_anyone(
    juliet: Client, benvolio: Client, unique: str
) -> None:
    """Reference row 17: Benvolio follows nobody and still sees Juliet's public post."""
    reply = await juliet.ok("set", publish(posts(juliet.bare), entry(f"for all {unique}")))
    item_id = local_id(published_id(reply))
    firehose = await benvolio.ok("get", items_request("/firehose", max_items=20))
    blocks = firehose.findall("pubsub:pubsub/pubsub:items")
    newest = {(block.get("node"), item.get("id")) for block in blocks for item in block}
    assert (posts(juliet.bare), item_id) in newest
