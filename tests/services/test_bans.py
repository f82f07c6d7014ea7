"""Bans hold on every read path, `open` channels included (table 7, docs/permissions.md).

Tybalt follows Juliet's open channel, reads it, and is banned. From then on every way of
reading the channel's posts, replies or followers refuses him with `Banned`, and the
reads across channels (feeds, firehose, search) leave the channel out for him, while they
still show it to Romeo, who is not banned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from engine_support import JULIET, ROMEO, TYBALT, posts, text

from buddycloud.domain.errors import Banned
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Item, NodeId, PageRequest, Role
from buddycloud.services.engine import Engine

ALL = PageRequest()
STATUS = NodeId(JULIET, "status")


async def banned_from_open_channel(engine: Engine) -> str:
    """Juliet's open channel with a post and a reply; Tybalt banned after reading it."""
    await engine.register(JULIET)
    await engine.register(TYBALT)
    post = await engine.publish(JULIET, posts(JULIET), text("Good night, good night!"))
    await engine.publish(
        JULIET, posts(JULIET), text("parting is such sweet sorrow", in_reply_to=post.id)
    )
    await engine.publish(JULIET, STATUS, text("on the balcony"))
    for reader in (TYBALT, ROMEO):
        await engine.subscribe(reader, posts(JULIET), reader)
        assert (await engine.get_items(reader, posts(JULIET), ALL)).count == 2
    await engine.set_role(JULIET, posts(JULIET), TYBALT, Role.OUTCAST)
    return post.id


def channels(items: list[Item]) -> set[Jid]:
    return {item.node.channel for item in items}


Read = Callable[[Engine, Jid, str], Awaitable[object]]

READS: dict[str, Read] = {
    "items": lambda e, who, _: e.get_items(who, posts(JULIET), ALL),
    "items of another node": lambda e, who, _: e.get_items(who, STATUS, ALL),
    "one item": lambda e, who, post: e.get_item(who, posts(JULIET), post),
    "replies": lambda e, who, post: e.get_replies(who, posts(JULIET), post, ALL),
    "thread": lambda e, who, post: e.get_thread(who, posts(JULIET), post, ALL),
    "threads": lambda e, who, _: e.get_threads(who, posts(JULIET), ALL),
    "followers": lambda e, who, _: e.node_subscriptions(who, posts(JULIET), ALL),
    "roles": lambda e, who, _: e.node_affiliations(who, posts(JULIET), ALL),
    "followers of another node": lambda e, who, _: e.node_subscriptions(who, STATUS, ALL),
}


@pytest.mark.parametrize("name", list(READS))
async def test_a_banned_user_reads_nothing_of_an_open_channel(engine: Engine, name: str) -> None:
    post = await banned_from_open_channel(engine)
    read = READS[name]
    await read(engine, ROMEO, post)  # the channel is open to everyone else
    with pytest.raises(Banned):
        await read(engine, TYBALT, post)


async def test_a_banned_user_may_still_read_the_channels_metadata(engine: Engine) -> None:
    """Table 5: name, title and description are for everyone, banned users included."""
    await banned_from_open_channel(engine)
    view = await engine.get_node_view(TYBALT, posts(JULIET))
    assert view.channel.jid == JULIET


async def test_reads_across_channels_leave_out_the_channel_a_user_is_banned_from(
    engine: Engine,
) -> None:
    await banned_from_open_channel(engine)
    await engine.publish(TYBALT, posts(TYBALT), text("Good night, said Tybalt"))

    firehose = await engine.firehose(TYBALT, ALL)
    assert channels(firehose.items) == {TYBALT}
    assert channels((await engine.firehose(ROMEO, ALL)).items) == {JULIET, TYBALT}

    found = await engine.search(TYBALT, words=["night"], author=None, page=ALL)
    assert channels(found.items) == {TYBALT}
    assert channels((await engine.search(ROMEO, words=["night"], author=None, page=ALL)).items) == {
        JULIET,
        TYBALT,
    }

    recent = await engine.recent_items(
        TYBALT, since="2000-01-01T00:00:00Z", max_per_node="50", parent_only=False, page=ALL
    )
    assert JULIET not in channels(recent.items)
    feed = await engine.user_items(TYBALT, since=None, parent_only=False, page=ALL)
    assert JULIET not in channels(feed.items)
    romeo_feed = await engine.user_items(ROMEO, since=None, parent_only=False, page=ALL)
    assert channels(romeo_feed.items) == {JULIET}
