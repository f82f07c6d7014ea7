"""Anonymous guests (reference section 5.3): they read what anyone may read, follow only for
the time they are online, and change nothing. (The permission tables' "Anonymous" column,
cell by cell, is in test_permission_matrix.py.)"""

from __future__ import annotations

import pytest
from engine_support import JULIET, ROMEO, FakeClock, Recorder, posts, text

from buddycloud.domain.errors import AnonymousReadOnly, ClosedNode, Forbidden, NotLocalUser
from buddycloud.domain.events import ItemPublished
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, PageRequest, Role, SubscriptionState
from buddycloud.services.config import ConfigUpdate, EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.base import Storage

GUEST = Jid.parse("7f3a9c@anon.capulet.lit")
ALL = PageRequest()


async def test_a_guest_reads_an_open_channel_and_follows_it_while_online(
    engine: Engine, recorder: Recorder
) -> None:
    await engine.register(JULIET)
    await engine.publish(JULIET, posts(JULIET), text("before the guest came"))
    page = await engine.get_items(GUEST, posts(JULIET), ALL)
    assert [item.entry.content for item in page.items if item.entry] == ["before the guest came"]

    visit = await engine.subscribe(GUEST, posts(JULIET), GUEST, temporary=True)
    assert (visit.subscription, visit.role, visit.temporary) == (
        SubscriptionState.SUBSCRIBED,
        Role.NONE,
        True,
    )
    recorder.clear()
    await engine.publish(JULIET, posts(JULIET), text("live"))
    [published] = recorder.of(ItemPublished)
    assert GUEST in published.audience

    await engine.end_temporary_subscriptions(GUEST)
    followers = await engine.node_subscriptions(JULIET, posts(JULIET), ALL)
    assert GUEST not in {m.jid for m in followers.items}


async def test_a_guest_may_not_follow_for_good(engine: Engine) -> None:
    await engine.register(JULIET)
    with pytest.raises(AnonymousReadOnly) as caught:
        await engine.subscribe(GUEST, posts(JULIET), GUEST)
    assert "pubsub#expire=presence" in caught.value.message
    followers = await engine.node_subscriptions(JULIET, posts(JULIET), ALL)
    assert GUEST not in {m.jid for m in followers.items}


async def test_a_guest_may_not_post_even_where_followers_post(engine: Engine) -> None:
    """Personal channels make followers publishers by default; a guest still may not post."""
    await engine.register(JULIET)
    await engine.subscribe(GUEST, posts(JULIET), GUEST, temporary=True)
    with pytest.raises(AnonymousReadOnly):
        await engine.publish(GUEST, posts(JULIET), text("graffiti"))
    page = await engine.get_items(JULIET, posts(JULIET), ALL)
    assert page.items == []


async def test_a_guest_owns_nothing(engine: Engine) -> None:
    with pytest.raises(NotLocalUser):
        await engine.register(GUEST)
    with pytest.raises(NotLocalUser):
        await engine.create_node(GUEST, NodeId.parse("/user/guests@topics.capulet.lit/posts"))


async def test_a_guest_may_be_banned_but_given_no_role(engine: Engine) -> None:
    await engine.register(JULIET)
    with pytest.raises(Forbidden):
        await engine.set_role(JULIET, posts(JULIET), GUEST, Role.PUBLISHER)
    banned = await engine.set_role(JULIET, posts(JULIET), GUEST, Role.OUTCAST)
    assert banned.role is Role.OUTCAST
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    with pytest.raises(Forbidden):
        await engine.get_items(GUEST, posts(JULIET), ALL)


async def test_a_guest_cannot_be_invited(engine: Engine) -> None:
    await engine.register(JULIET)
    with pytest.raises(Forbidden) as caught:
        await engine.set_subscription(JULIET, posts(JULIET), GUEST, SubscriptionState.INVITED)
    assert "only while online" in caught.value.message
    followers = await engine.node_subscriptions(JULIET, posts(JULIET), ALL)
    assert GUEST not in {m.jid for m in followers.items}


async def test_a_local_channel_is_closed_to_guests_of_its_own_domain(engine: Engine) -> None:
    """Table 5: `local` channels are for the home domain's users, and guests are not."""
    await engine.register(JULIET)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.LOCAL))
    await engine.get_items(ROMEO, posts(JULIET), ALL)
    with pytest.raises(ClosedNode):
        await engine.get_items(GUEST, posts(JULIET), ALL)
    with pytest.raises(ClosedNode):
        await engine.subscribe(GUEST, posts(JULIET), GUEST, temporary=True)
    firehose = await engine.firehose(GUEST, ALL)
    assert firehose.items == []


async def test_configured_guest_domains_are_anonymous_too(
    storage: Storage, clock: FakeClock
) -> None:
    config = EngineConfig(
        domain="capulet.lit",
        service_jid=Jid.parse("channels.capulet.lit"),
        anonymous_domains=frozenset({"guests.capulet.lit"}),
    )
    engine = Engine(storage, clock, config)
    visitor = Jid.parse("abc@guests.capulet.lit")
    assert engine.is_anonymous(visitor)
    assert engine.is_anonymous(Jid.parse("abc@anon.montague.lit"))  # others' guests too
    assert not engine.is_anonymous(ROMEO)
    assert not engine.is_anonymous(Jid.parse("anon@capulet.lit"))
    await engine.register(JULIET)
    with pytest.raises(AnonymousReadOnly):
        await engine.subscribe(visitor, posts(JULIET), visitor)
