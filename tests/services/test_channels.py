"""Channels and nodes: registration, topic, application and ephemeral channels, configuration."""

from __future__ import annotations

import pytest
from engine_support import (
    BENVOLIO,
    JULIET,
    MERCUTIO,
    NURSE,
    ROMEO,
    TYBALT,
    FakeClock,
    Recorder,
    posts,
    text,
)

from buddycloud.domain.errors import (
    AnonymousReadOnly,
    BadRequest,
    ChannelNotFound,
    Forbidden,
    InvalidConfiguration,
    NodeExists,
    NodeNotFound,
    NotLocalUser,
)
from buddycloud.domain.events import ConfigurationChanged, NodeDeleted
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    ChannelType,
    NodeId,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
)
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

TOPIC = NodeId(Jid.parse("balcony@topics.capulet.lit"), "posts")


async def test_registering_creates_the_personal_channel_with_the_well_known_nodes(
    engine: Engine,
) -> None:
    channel = await engine.register(Jid.parse("juliet@capulet.lit/balcony"))
    assert channel.jid == JULIET
    names = [node.id.name for node in await engine.list_nodes(JULIET, JULIET)]
    assert sorted(names) == sorted(
        ["posts", "status", "public-key", "geoloc", "geoloc-past", "geoloc-future"]
    )
    view = await engine.get_node_view(ROMEO, posts(JULIET))
    config = view.channel.config
    assert config.title == "juliet@capulet.lit's Buddycloud channel"  # table 1 default
    assert config.description == ""
    assert config.channel_type is ChannelType.PERSONAL
    assert config.creator == JULIET
    assert config.access_model is AccessModel.OPEN
    assert config.default_role is Role.PUBLISHER
    assert view.num_subscribers == 1
    assert view.node.payload_type == "http://www.w3.org/2005/Atom"
    owner = await engine.storage.find_membership(JULIET, JULIET)
    assert owner is not None and owner.role is Role.OWNER
    assert owner.subscription is SubscriptionState.SUBSCRIBED


async def test_registering_again_is_harmless_and_adds_new_well_known_nodes(
    engine: Engine,
) -> None:
    first = await engine.register(JULIET)
    await engine.publish(JULIET, posts(JULIET), text("still here"))
    again = await engine.register(JULIET)
    assert again.config.created == first.config.created
    items = await engine.get_items(JULIET, posts(JULIET), PageRequest())
    assert [i.entry.content for i in items.items if i.entry] == ["still here"]


async def test_new_well_known_nodes_appear_when_a_user_registers_again(
    engine: Engine,
) -> None:
    from dataclasses import replace

    await engine.register(JULIET)
    engine.config = replace(
        engine.config, well_known_nodes=(*engine.config.well_known_nodes, "mood")
    )
    await engine.register(JULIET)
    assert "mood" in [node.id.name for node in await engine.list_nodes(JULIET, JULIET)]


async def test_only_users_of_this_domain_register(engine: Engine) -> None:
    with pytest.raises(NotLocalUser):
        await engine.register(BENVOLIO)
    with pytest.raises(ChannelNotFound):
        await engine.list_nodes(BENVOLIO, BENVOLIO)


async def test_any_local_user_creates_a_topic_channel_and_owns_it(engine: Engine) -> None:
    await engine.create_node(ROMEO, TOPIC, ConfigUpdate(title="Balcony scenes"))
    view = await engine.get_node_view(JULIET, TOPIC)
    assert view.channel.config.channel_type is ChannelType.TOPIC
    assert view.channel.config.title == "Balcony scenes"
    assert view.channel.config.default_role is Role.MEMBER
    membership = await engine.storage.find_membership(TOPIC.channel, ROMEO)
    assert membership is not None and membership.role is Role.OWNER
    with pytest.raises(NodeExists):
        await engine.create_node(JULIET, TOPIC)
    with pytest.raises(NotLocalUser):
        await engine.create_node(BENVOLIO, NodeId(Jid.parse("x@topics.capulet.lit"), "posts"))


async def test_nobody_creates_another_users_channel_or_one_on_a_foreign_domain(
    engine: Engine,
) -> None:
    with pytest.raises(Forbidden):
        await engine.create_node(ROMEO, posts(JULIET))
    with pytest.raises(Forbidden):
        await engine.create_node(ROMEO, NodeId(Jid.parse("x@elsewhere.lit"), "posts"))
    with pytest.raises(NodeNotFound):
        await engine.get_node_view(ROMEO, posts(JULIET))


async def test_owners_add_application_nodes_with_any_payload_and_value_stores(
    engine: Engine,
) -> None:
    await engine.register(JULIET)
    mood = NodeId(JULIET, "mood")
    await engine.create_node(
        JULIET, mood, ConfigUpdate(payload_type="urn:example:mood", max_items=1)
    )
    with pytest.raises(Forbidden):
        await engine.create_node(ROMEO, NodeId(JULIET, "scores"))
    for feeling in ("happy", "sad", "in love"):
        await engine.publish(
            JULIET,
            mood,
            RawPayload(f"<mood xmlns='urn:example:mood'>{feeling}</mood>", "urn:example:mood"),
        )
    page = await engine.get_items(ROMEO, mood, PageRequest())
    assert page.count == 1
    payload = page.items[0].payload
    assert isinstance(payload, RawPayload) and "in love" in payload.xml


async def test_ephemeral_channels_disappear_when_the_last_follower_leaves(
    engine: Engine,
) -> None:
    room = NodeId(Jid.parse("125bd2c4@capulet.lit"), "posts")
    await engine.create_node(JULIET, room, ConfigUpdate(ephemeral=True))
    await engine.subscribe(ROMEO, room, ROMEO)
    membership = await engine.storage.find_membership(room.channel, ROMEO)
    assert membership is not None and membership.role is Role.MODERATOR
    await engine.unsubscribe(JULIET, room, JULIET)
    assert await engine.storage.find_channel(room.channel) is not None
    await engine.unsubscribe(ROMEO, room, ROMEO)
    assert await engine.storage.find_channel(room.channel) is None


async def test_channel_type_and_creation_date_are_fixed_and_updated_date_moves(
    engine: Engine, recorder: Recorder
) -> None:
    await engine.register(JULIET)
    before = (await engine.get_node_view(JULIET, posts(JULIET))).channel.config
    with pytest.raises(InvalidConfiguration):
        await engine.configure(JULIET, posts(JULIET), ConfigUpdate(channel_type=ChannelType.TOPIC))
    view = await engine.configure(
        JULIET, posts(JULIET), ConfigUpdate(title="Juliet's musings", description="Romeo")
    )
    after = view.channel.config
    assert after.title == "Juliet's musings" and after.description == "Romeo"
    assert after.created == before.created
    assert after.updated > before.updated
    # Section 5.4: one configuration for every node of the channel.
    status = await engine.get_node_view(ROMEO, NodeId(JULIET, "status"))
    assert status.channel.config.title == "Juliet's musings"
    changed = recorder.of(ConfigurationChanged)
    assert len(changed) == 1 and NodeId(JULIET, "status") in changed[0].nodes  # type: ignore[union-attr]


async def test_who_may_change_which_setting(engine: Engine) -> None:
    await engine.register(JULIET)
    for user in (ROMEO, NURSE):
        await engine.subscribe(user, posts(JULIET), user)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    # Table 6: moderators change title and description; the table 1 note: default role too.
    await engine.configure(NURSE, posts(JULIET), ConfigUpdate(title="by the nurse"))
    await engine.configure(NURSE, posts(JULIET), ConfigUpdate(default_role=Role.MEMBER))
    with pytest.raises(Forbidden):
        await engine.configure(
            NURSE, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE)
        )
    with pytest.raises(Forbidden):
        await engine.configure(ROMEO, posts(JULIET), ConfigUpdate(description="by romeo"))
    with pytest.raises(InvalidConfiguration):
        await engine.configure(JULIET, posts(JULIET), ConfigUpdate(default_role=Role.OWNER))
    with pytest.raises(InvalidConfiguration):
        await engine.configure(JULIET, posts(JULIET), ConfigUpdate(title="x" * 500))
    view = await engine.configure(
        JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE)
    )
    assert view.channel.config.access_model is AccessModel.AUTHORIZE
    assert view.channel.config.title == "by the nurse"


async def test_a_request_that_changes_nothing_still_needs_a_right_to_configure(
    engine: Engine, recorder: Recorder
) -> None:
    """XEP-0060 §8.2.3.2: a follower, a stranger, a banned user or a guest who sends a
    configuration changing nothing is refused, and nobody hears of a configuration change;
    a moderator may (they may change some fields)."""
    await engine.register(JULIET)
    for user in (ROMEO, NURSE, TYBALT):
        await engine.subscribe(user, posts(JULIET), user)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    await engine.set_role(JULIET, posts(JULIET), TYBALT, Role.OUTCAST)
    recorder.clear()
    unchanged = ConfigUpdate(title="juliet@capulet.lit's Buddycloud channel")
    for update in (ConfigUpdate(), unchanged):
        for user in (ROMEO, MERCUTIO, TYBALT, BENVOLIO):
            with pytest.raises(Forbidden, match="may not configure this channel"):
                await engine.configure(user, posts(JULIET), update)
        with pytest.raises(AnonymousReadOnly):
            await engine.configure(Jid.parse("guest@anon.capulet.lit"), posts(JULIET), update)
    assert recorder.of(ConfigurationChanged) == []
    await engine.configure(NURSE, posts(JULIET), ConfigUpdate())
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate())


async def test_the_owner_deletes_a_node_and_deleting_posts_deletes_the_channel(
    engine: Engine, recorder: Recorder
) -> None:
    await engine.register(JULIET)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    with pytest.raises(Forbidden):
        await engine.delete_node(ROMEO, posts(JULIET))
    await engine.delete_node(JULIET, NodeId(JULIET, "geoloc"))
    with pytest.raises(NodeNotFound):
        await engine.get_node_view(JULIET, NodeId(JULIET, "geoloc"))
    await engine.delete_node(JULIET, posts(JULIET))
    assert await engine.storage.find_channel(JULIET) is None
    deleted = recorder.of(NodeDeleted)
    assert len(deleted) == 6
    assert ROMEO in deleted[-1].audience  # type: ignore[union-attr]


async def test_top_channels_count_the_last_seven_days_of_open_channels(
    engine: Engine, clock: FakeClock
) -> None:
    for user in (JULIET, ROMEO, NURSE, TYBALT):
        await engine.register(user)
    await engine.subscribe(TYBALT, posts(NURSE), TYBALT)  # a week and more ago
    await engine.publish(NURSE, posts(NURSE), text("old news"))
    await engine.publish(NURSE, posts(NURSE), text("older news"))
    clock.advance(days=8)
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    await engine.subscribe(NURSE, posts(ROMEO), NURSE)
    await engine.publish(ROMEO, posts(ROMEO), text("new"))
    await engine.configure(TYBALT, posts(TYBALT), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    for n in range(3):
        await engine.publish(TYBALT, posts(TYBALT), text(f"closed {n}"))

    followed = await engine.top_channels(ROMEO, by="followers")
    assert [c.jid for c in followed] == [JULIET, ROMEO]
    published = await engine.top_channels(ROMEO, by="posts", limit=5)
    # Tybalt's channel is closed: it stays out, however busy.
    assert [c.jid for c in published] == [ROMEO]
    assert [c.jid for c in await engine.top_channels(ROMEO, by="followers", limit=1)] == [JULIET]


async def test_a_channel_not_advertised_is_found_only_by_its_name(engine: Engine) -> None:
    """`buddycloud#advertise_node` false: out of the channel list, the firehose and the top
    lists; reading it by name still follows its access model. Owner only."""
    for user in (JULIET, ROMEO, NURSE):
        await engine.register(user)
    await engine.subscribe(NURSE, posts(ROMEO), NURSE)
    await engine.set_role(ROMEO, posts(ROMEO), NURSE, Role.MODERATOR)
    with pytest.raises(Forbidden):
        await engine.configure(NURSE, posts(ROMEO), ConfigUpdate(advertised=False))
    view = await engine.configure(ROMEO, posts(ROMEO), ConfigUpdate(advertised=False))
    assert view.channel.config.advertised is False
    await engine.publish(ROMEO, posts(ROMEO), text("quietly"))
    await engine.publish(JULIET, posts(JULIET), text("loudly"))

    listed = await engine.list_channels(JULIET, PageRequest())
    assert ROMEO not in [c.jid for c in listed.items] and JULIET in [c.jid for c in listed.items]
    stream = await engine.firehose(JULIET, PageRequest())
    assert {item.node.channel for item in stream.items} == {JULIET}
    assert ROMEO not in [c.jid for c in await engine.top_channels(JULIET, by="posts")]
    assert (await engine.get_items(JULIET, posts(ROMEO), PageRequest())).count == 1

    # A new channel may be created unadvertised, and advertised later.
    hidden = NodeId(Jid.parse("secret@topics.capulet.lit"), "posts")
    await engine.create_node(JULIET, hidden, ConfigUpdate(advertised=False))
    assert hidden.channel not in [
        c.jid for c in (await engine.list_channels(ROMEO, PageRequest())).items
    ]
    await engine.configure(JULIET, hidden, ConfigUpdate(advertised=True))
    assert hidden.channel in [
        c.jid for c in (await engine.list_channels(ROMEO, PageRequest())).items
    ]


async def test_channel_search_finds_titles_and_descriptions_of_advertised_channels(
    engine: Engine,
) -> None:
    """Metadata search: every word in the title or description, whoever asks (table 5:
    metadata is public), unadvertised channels left out, configuration changes seen."""
    guest = Jid.parse("guest@anon.capulet.lit")
    await engine.create_node(
        JULIET, TOPIC, ConfigUpdate(title="Balcony scenes", description="moonlit orchard")
    )
    hidden = NodeId(Jid.parse("secret@topics.capulet.lit"), "posts")
    await engine.create_node(JULIET, hidden, ConfigUpdate(title="orchard", advertised=False))
    await engine.create_node(
        JULIET,
        NodeId(Jid.parse("closed@topics.capulet.lit"), "posts"),
        ConfigUpdate(description="a closed orchard", access_model=AccessModel.AUTHORIZE),
    )

    for requester in (JULIET, BENVOLIO, guest):
        found = await engine.search_channels(requester, words=["Orchard"], page=PageRequest())
        assert [str(c.jid) for c in found.items] == [
            "balcony@topics.capulet.lit",
            "closed@topics.capulet.lit",
        ]
    await engine.configure(JULIET, TOPIC, ConfigUpdate(description="a tomb"))
    found = await engine.search_channels(BENVOLIO, words=["orchard", " "], page=PageRequest())
    assert [str(c.jid) for c in found.items] == ["closed@topics.capulet.lit"]
    with pytest.raises(BadRequest):
        await engine.search_channels(JULIET, words=[" "], page=PageRequest())
    with pytest.raises(BadRequest):
        await engine.search_channels(JULIET, words=["w"] * 17, page=PageRequest())
