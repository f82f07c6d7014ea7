"""Unregistering: a user's channels, posts and follows go; bans and other users' data stay."""

from __future__ import annotations

import pytest
from engine_support import BENVOLIO, JULIET, NURSE, ROMEO, TYBALT, Recorder, posts, text

from buddycloud.domain.errors import ChannelNotFound, NodeNotFound, NotLocalUser
from buddycloud.domain.events import ItemRetracted, NodeDeleted, SubscriptionChanged
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId, PageRequest, Role, SubscriptionState
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

ALL = PageRequest()
TOPIC = NodeId(Jid.parse("balcony@topics.capulet.lit"), "posts")
ROOM = NodeId(Jid.parse("125bd2c4@capulet.lit"), "posts")


async def juliets_world(engine: Engine) -> dict[str, str]:
    """Juliet owns a channel and a topic, follows Romeo's and posts there, is in an
    ephemeral room with Nurse, and is banned from Tybalt's; Nurse follows Juliet."""
    for user in (JULIET, ROMEO, NURSE, TYBALT):
        await engine.register(user)
    await engine.create_node(JULIET, TOPIC)
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    await engine.subscribe(NURSE, TOPIC, NURSE)
    await engine.subscribe(JULIET, posts(ROMEO), JULIET)
    await engine.subscribe(NURSE, posts(ROMEO), NURSE)
    await engine.create_node(NURSE, ROOM, ConfigUpdate(ephemeral=True))
    await engine.subscribe(JULIET, ROOM, JULIET)
    await engine.set_role(TYBALT, posts(TYBALT), JULIET, Role.OUTCAST)
    own = await engine.publish(JULIET, posts(JULIET), text("my own post"))
    there = await engine.publish(JULIET, posts(ROMEO), text("hello Romeo"))
    romeos = await engine.publish(ROMEO, posts(ROMEO), text("a reply", in_reply_to=there.id))
    await engine.publish(JULIET, ROOM, text("in the room"))
    return {"own": own.id, "there": there.id, "romeos": romeos.id}


async def test_unregistering_removes_the_users_channels_posts_and_follows(
    engine: Engine, recorder: Recorder
) -> None:
    ids = await juliets_world(engine)
    recorder.clear()

    await engine.unregister(Jid.parse("juliet@capulet.lit/balcony"))

    # Channels she owned are gone, every node of them, announced to their followers.
    assert await engine.storage.find_channel(JULIET) is None
    assert await engine.storage.find_channel(TOPIC.channel) is None
    with pytest.raises(NodeNotFound):
        await engine.get_items(NURSE, posts(JULIET), ALL)
    deleted = recorder.of(NodeDeleted)
    assert {event.node for event in deleted} >= {posts(JULIET), NodeId(JULIET, "status"), TOPIC}
    assert all(NURSE in event.audience for event in deleted)

    # Her post in Romeo's channel is a tombstone, announced to its readers; replies stay.
    item = await engine.storage.find_item(posts(ROMEO), ids["there"])
    assert item is not None and item.deleted
    reply = await engine.storage.find_item(posts(ROMEO), ids["romeos"])
    assert reply is not None and not reply.deleted
    retracted = [e for e in recorder.of(ItemRetracted) if e.node.id == posts(ROMEO)]
    assert [e.tombstone.id for e in retracted] == [ids["there"]]
    assert NURSE in retracted[0].audience and retracted[0].notify

    # She no longer follows Romeo; followers and staff hear of it as of an unsubscription.
    assert await engine.storage.find_membership(ROMEO, JULIET) is None
    ended = [e for e in recorder.of(SubscriptionChanged) if e.channel.jid == ROMEO]
    assert [(e.membership.jid, e.membership.subscription) for e in ended] == [
        (JULIET, SubscriptionState.NONE)
    ]

    # The ephemeral room stays for the nurse, without Juliet; her post in it is retracted.
    assert await engine.storage.find_membership(ROOM.channel, JULIET) is None
    assert await engine.storage.find_channel(ROOM.channel) is not None
    room_items = await engine.get_items(NURSE, ROOM, ALL)
    assert [i.deleted for i in room_items.items] == [True]

    # The ban stays: registering again does not lift it.
    ban = await engine.storage.find_membership(TYBALT, JULIET)
    assert ban is not None and ban.role is Role.OUTCAST
    # Other users' data is untouched.
    assert await engine.storage.find_membership(ROMEO, NURSE) is not None
    assert await engine.storage.find_channel(ROMEO) is not None


async def test_unregistering_twice_or_without_an_account_is_harmless(
    engine: Engine, recorder: Recorder
) -> None:
    await juliets_world(engine)
    await engine.unregister(JULIET)
    recorder.clear()
    await engine.unregister(JULIET)
    assert recorder.events == []
    await engine.unregister(Jid.parse("mercutio@capulet.lit"))  # never registered
    assert recorder.events == []
    # Registering again starts afresh.
    await engine.register(JULIET)
    page = await engine.get_items(JULIET, posts(JULIET), ALL)
    assert page.count == 0


async def test_the_last_member_leaving_an_ephemeral_room_deletes_it(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.create_node(JULIET, ROOM, ConfigUpdate(ephemeral=True))
    await engine.unregister(JULIET)
    with pytest.raises(ChannelNotFound):
        await engine.storage.get_channel(ROOM.channel)


async def test_only_users_of_this_domain_can_unregister(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.subscribe(BENVOLIO, posts(JULIET), BENVOLIO)
    with pytest.raises(NotLocalUser):
        await engine.unregister(BENVOLIO)
    assert await engine.storage.find_membership(JULIET, BENVOLIO) is not None


async def test_many_posts_are_all_retracted(engine: Engine, recorder: Recorder) -> None:
    """More posts than one batch of the author index."""
    await engine.register(ROMEO)
    await engine.register(JULIET)
    await engine.subscribe(JULIET, posts(ROMEO), JULIET)
    for n in range(520):
        await engine.publish(JULIET, posts(ROMEO), text(f"post {n}"))
    await engine.unregister(JULIET)
    page = await engine.get_items(ROMEO, posts(ROMEO), PageRequest(max=1000))
    assert page.count == 520 and all(item.deleted for item in page.items)
