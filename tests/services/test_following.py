"""Following: subscribe, approve, deny, invite, unsubscribe, roles, and who sees which list."""

from __future__ import annotations

import pytest
from engine_support import (
    BENVOLIO,
    JULIET,
    MERCUTIO,
    NURSE,
    ROMEO,
    TYBALT,
    Recorder,
    posts,
    text,
)

from buddycloud.domain.errors import (
    BadRequest,
    Banned,
    ClosedNode,
    Forbidden,
    JidMismatch,
    NotSubscribed,
    OwnAffiliation,
    OwnerRequired,
    OwnSubscription,
    SubscriptionPending,
)
from buddycloud.domain.events import (
    AuthorizationRequested,
    ItemPublished,
    RoleChanged,
    SubscriptionChanged,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, PageRequest, Role, SubscriptionState
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

ALL = PageRequest()


async def closed_channel(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))


async def test_following_an_open_channel_gives_its_default_role(engine: Engine) -> None:
    await engine.register(JULIET)
    membership = await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert membership.subscription is SubscriptionState.SUBSCRIBED
    assert membership.role is Role.PUBLISHER
    again = await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert again == membership


async def test_one_follow_covers_every_node_of_the_channel(engine: Engine) -> None:
    """Section 5.4: following posts also follows status, geoloc and the rest."""
    await closed_channel(engine)
    with pytest.raises(ClosedNode):
        await engine.get_items(ROMEO, NodeId(JULIET, "status"), ALL)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.set_subscription(JULIET, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED)
    page = await engine.get_items(ROMEO, NodeId(JULIET, "geoloc"), ALL)
    assert page.count == 0


async def test_own_lists_name_every_node_of_each_followed_channel(engine: Engine) -> None:
    """Section 5.4 made visible: the subscriptions, affiliations and subscriptions with
    configuration of a follower show each node of the channel with its state and role."""
    await closed_channel(engine)
    await engine.create_node(JULIET, NodeId(JULIET, "diary"))
    await engine.register(NURSE)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.set_subscription(JULIET, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED)
    await engine.subscribe(ROMEO, NodeId(NURSE, "status"), ROMEO)
    juliet_nodes = sorted(n.id.name for n in await engine.list_nodes(ROMEO, JULIET))
    assert "diary" in juliet_nodes and "status" in juliet_nodes

    subscriptions = await engine.user_subscriptions(ROMEO, ALL)
    shown = [(row.node.id, row.membership.subscription) for row in subscriptions.items]
    expected_channels = [JULIET] * len(juliet_nodes)
    assert [node.channel for node, _ in shown if node.channel != NURSE] == expected_channels
    assert [node.name for node, _ in shown if node.channel == JULIET] == juliet_nodes
    assert {state for _, state in shown} == {SubscriptionState.SUBSCRIBED}
    assert (
        subscriptions.count
        == len(shown)
        == len(juliet_nodes) + len(await engine.list_nodes(ROMEO, NURSE))
    )
    roles = await engine.user_affiliations(ROMEO, ALL)
    assert {
        (row.node.id.name, row.membership.role)
        for row in roles.items
        if row.node.id.channel == JULIET
    } == {(name, Role.PUBLISHER) for name in juliet_nodes}
    configured = await engine.subscriptions_with_configuration(ROMEO, {}, ALL)
    assert [row.node.id for row in configured.items] == [node for node, _ in shown]
    filtered = await engine.subscriptions_with_configuration(ROMEO, {"creator": str(NURSE)}, ALL)
    assert {row.node.id.channel for row in filtered.items} == {NURSE}

    # Paged over the nodes: pages of two put every node in order, once.
    seen, after = [], None
    while True:
        batch = await engine.user_subscriptions(ROMEO, PageRequest(max=2, after=after))
        seen.extend(row.node.id for row in batch.items)
        assert batch.count == subscriptions.count
        if len(batch.items) < 2:
            break
        after = batch.last
    assert seen == [node for node, _ in shown]


async def test_a_pending_follow_shows_pending_on_every_node(engine: Engine) -> None:
    await closed_channel(engine)
    await engine.subscribe(ROMEO, NodeId(JULIET, "status"), ROMEO)
    mine = await engine.user_subscriptions(ROMEO, ALL)
    assert {row.membership.subscription for row in mine.items} == {SubscriptionState.PENDING}
    assert {row.node.id.name for row in mine.items} == {
        n.id.name for n in await engine.list_nodes(ROMEO, JULIET)
    }


async def test_the_followers_of_any_node_are_the_channels_followers(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(NURSE, NodeId(JULIET, "status"), NURSE)
    for name in ("posts", "status", "geoloc"):
        followers = await engine.node_subscriptions(TYBALT, NodeId(JULIET, name), ALL)
        assert {m.jid for m in followers.items} == {JULIET, ROMEO, NURSE}, name
        roles = await engine.node_affiliations(TYBALT, NodeId(JULIET, name), ALL)
        assert {m.jid: m.role for m in roles.items} == {
            JULIET: Role.OWNER,
            ROMEO: Role.PUBLISHER,
            NURSE: Role.PUBLISHER,
        }


async def test_a_closed_channel_asks_the_owner_and_moderators_to_approve(
    engine: Engine, recorder: Recorder
) -> None:
    await closed_channel(engine)
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    await engine.set_subscription(JULIET, posts(JULIET), NURSE, SubscriptionState.SUBSCRIBED)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    recorder.clear()
    pending = await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert pending.subscription is SubscriptionState.PENDING
    [asked] = recorder.of(AuthorizationRequested)
    assert set(asked.audience) == {JULIET, NURSE}  # type: ignore[union-attr]
    with pytest.raises(SubscriptionPending):
        await engine.get_items(ROMEO, posts(JULIET), ALL)
    approved = await engine.set_subscription(
        NURSE, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED
    )
    assert approved.subscription is SubscriptionState.SUBSCRIBED
    assert approved.role is Role.PUBLISHER
    notified = recorder.of(SubscriptionChanged)[-1]
    assert ROMEO in notified.audience  # type: ignore[union-attr]
    await engine.get_items(ROMEO, posts(JULIET), ALL)


async def test_denying_a_request_leaves_the_channel_closed(engine: Engine) -> None:
    await closed_channel(engine)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.authorize(JULIET, posts(JULIET), ROMEO, allow=False)
    assert await engine.storage.find_membership(JULIET, ROMEO) is None
    with pytest.raises(ClosedNode):
        await engine.get_items(ROMEO, posts(JULIET), ALL)
    with pytest.raises(NotSubscribed):
        await engine.set_subscription(JULIET, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED)


async def test_followers_cannot_approve_and_nobody_approves_themselves(engine: Engine) -> None:
    await closed_channel(engine)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    await engine.authorize(JULIET, posts(JULIET), TYBALT, allow=True)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    with pytest.raises(Forbidden):
        await engine.set_subscription(TYBALT, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED)
    with pytest.raises(OwnSubscription):
        await engine.set_subscription(ROMEO, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED)


async def test_an_invitation_from_the_owner_lets_the_invitee_in(engine: Engine) -> None:
    await closed_channel(engine)
    invited = await engine.set_subscription(JULIET, posts(JULIET), ROMEO, SubscriptionState.INVITED)
    assert invited.invited_by == JULIET
    joined = await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert joined.subscription is SubscriptionState.SUBSCRIBED


async def test_an_invitation_from_a_follower_still_needs_approval(engine: Engine) -> None:
    await closed_channel(engine)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    await engine.authorize(JULIET, posts(JULIET), TYBALT, allow=True)
    await engine.set_subscription(TYBALT, posts(JULIET), ROMEO, SubscriptionState.INVITED)
    joined = await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert joined.subscription is SubscriptionState.PENDING


async def test_the_owner_cannot_unsubscribe_from_their_own_channel(engine: Engine) -> None:
    await engine.register(JULIET)
    with pytest.raises(OwnerRequired):
        await engine.unsubscribe(JULIET, posts(JULIET), JULIET)
    with pytest.raises(NotSubscribed):
        await engine.unsubscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert await engine.unsubscribe(ROMEO, posts(JULIET), ROMEO) is None
    assert await engine.storage.find_membership(JULIET, ROMEO) is None


async def test_nobody_subscribes_or_unsubscribes_someone_else(engine: Engine) -> None:
    await engine.register(JULIET)
    with pytest.raises(JidMismatch):
        await engine.subscribe(ROMEO, posts(JULIET), TYBALT)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    with pytest.raises(JidMismatch):
        await engine.unsubscribe(ROMEO, posts(JULIET), TYBALT)
    assert (await engine.storage.find_membership(JULIET, TYBALT)) is not None


async def test_local_channels_are_open_to_the_home_domain_only(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.LOCAL))
    assert (await engine.subscribe(ROMEO, posts(JULIET), ROMEO)).subscription is (
        SubscriptionState.SUBSCRIBED
    )
    assert (await engine.subscribe(BENVOLIO, posts(JULIET), BENVOLIO)).subscription is (
        SubscriptionState.PENDING
    )
    await engine.get_items(MERCUTIO, posts(JULIET), ALL)  # local, not following: open
    with pytest.raises(SubscriptionPending):
        await engine.get_items(BENVOLIO, posts(JULIET), ALL)


async def test_banned_users_cannot_follow_and_the_ban_list_is_for_moderators(
    engine: Engine, recorder: Recorder
) -> None:
    await engine.register(JULIET)
    for user in (ROMEO, TYBALT, NURSE):
        await engine.subscribe(user, posts(JULIET), user)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    recorder.clear()
    banned = await engine.set_role(NURSE, posts(JULIET), TYBALT, Role.OUTCAST)
    assert banned.subscription is SubscriptionState.NONE
    # One notification tells both the ended subscription and the ban, to staff and Tybalt.
    assert recorder.of(RoleChanged) == []
    [ban_event] = recorder.of(SubscriptionChanged)
    assert isinstance(ban_event, SubscriptionChanged) and ban_event.with_role
    assert ban_event.membership.role is Role.OUTCAST
    assert set(ban_event.audience) == {JULIET, NURSE, TYBALT}
    with pytest.raises(Banned):
        await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    for staff in (JULIET, NURSE):
        roles = {
            m.jid: m.role for m in (await engine.node_affiliations(staff, posts(JULIET), ALL)).items
        }
        assert roles[TYBALT] is Role.OUTCAST
    seen_by_romeo = await engine.node_affiliations(ROMEO, posts(JULIET), ALL)
    assert TYBALT not in {m.jid for m in seen_by_romeo.items}
    assert {m.jid for m in seen_by_romeo.items} == {JULIET, ROMEO, NURSE}


async def test_pending_requests_are_shown_only_to_the_owner_and_moderators(
    engine: Engine,
) -> None:
    await closed_channel(engine)
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    await engine.authorize(JULIET, posts(JULIET), NURSE, allow=True)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    owner_view = await engine.node_subscriptions(JULIET, posts(JULIET), ALL)
    assert {m.jid: m.subscription for m in owner_view.items}[ROMEO] is SubscriptionState.PENDING
    follower_view = await engine.node_subscriptions(NURSE, posts(JULIET), ALL)
    assert ROMEO not in {m.jid for m in follower_view.items}
    with pytest.raises(SubscriptionPending):
        await engine.node_subscriptions(ROMEO, posts(JULIET), ALL)


async def test_role_changes_follow_table_7(engine: Engine) -> None:
    await engine.register(JULIET)
    for user in (ROMEO, NURSE, TYBALT):
        await engine.subscribe(user, posts(JULIET), user)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    with pytest.raises(OwnAffiliation):
        await engine.set_role(NURSE, posts(JULIET), NURSE, Role.OWNER)
    with pytest.raises(Forbidden):
        await engine.set_role(NURSE, posts(JULIET), ROMEO, Role.MODERATOR)
    with pytest.raises(OwnerRequired):
        await engine.set_role(NURSE, posts(JULIET), JULIET, Role.MEMBER)
    with pytest.raises(Forbidden):
        await engine.set_role(ROMEO, posts(JULIET), TYBALT, Role.MEMBER)
    demoted = await engine.set_role(NURSE, posts(JULIET), ROMEO, Role.MEMBER)
    assert demoted.role is Role.MEMBER and demoted.subscription is SubscriptionState.SUBSCRIBED


async def test_subscriptions_with_configuration_filters_by_configuration(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.register(ROMEO)
    await engine.configure(ROMEO, posts(ROMEO), ConfigUpdate(title="Romeo"))
    await engine.subscribe(JULIET, posts(ROMEO), JULIET)
    everything = await engine.subscriptions_with_configuration(JULIET, {}, ALL)
    assert {row.channel.jid for row in everything.items} == {JULIET, ROMEO}
    filtered = await engine.subscriptions_with_configuration(JULIET, {"title": "Romeo"}, ALL)
    assert {row.channel.config.title for row in filtered.items} == {"Romeo"}
    assert [row.node.id for row in filtered.items] == [
        node.id for node in await engine.list_nodes(JULIET, ROMEO)
    ]
    with pytest.raises(BadRequest):
        await engine.subscriptions_with_configuration(JULIET, {"colour": "red"}, ALL)


async def test_several_changes_in_one_request_are_all_checked_before_any_is_written(
    engine: Engine,
) -> None:
    await engine.register(JULIET)
    for user in (ROMEO, NURSE, TYBALT):
        await engine.subscribe(user, posts(JULIET), user)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    with pytest.raises(Forbidden):
        # The second change is not the nurse's to make: the first must not happen either.
        await engine.set_roles(
            NURSE, posts(JULIET), [(ROMEO, Role.MEMBER), (TYBALT, Role.MODERATOR)]
        )
    romeo = await engine.storage.find_membership(JULIET, ROMEO)
    assert romeo is not None and romeo.role is Role.PUBLISHER
    with pytest.raises(OwnerRequired):
        await engine.set_subscriptions(
            NURSE,
            posts(JULIET),
            [(TYBALT, SubscriptionState.NONE), (JULIET, SubscriptionState.NONE)],
        )
    assert await engine.storage.find_membership(JULIET, TYBALT) is not None
    with pytest.raises(BadRequest):
        await engine.set_roles(JULIET, posts(JULIET), [(ROMEO, Role.MEMBER), (ROMEO, Role.NONE)])
    changed = await engine.set_roles(
        JULIET, posts(JULIET), [(ROMEO, Role.MEMBER), (TYBALT, Role.OUTCAST)]
    )
    assert [m.role for m in changed] == [Role.MEMBER, Role.OUTCAST]


async def test_a_temporary_subscription_follows_without_a_role_until_the_user_leaves(
    engine: Engine, recorder: Recorder
) -> None:
    await engine.register(JULIET)
    visit = await engine.subscribe(ROMEO, posts(JULIET), ROMEO, temporary=True)
    assert visit.temporary and visit.role is Role.NONE
    assert visit.subscription is SubscriptionState.SUBSCRIBED
    # Notifications reach him like any follower.
    recorder.clear()
    await engine.publish(JULIET, posts(JULIET), text("while you are here"))
    (published,) = recorder.of(ItemPublished)
    assert ROMEO in published.audience
    # Asking again is harmless; he cannot post with it.
    assert await engine.subscribe(ROMEO, posts(JULIET), ROMEO, temporary=True) == visit
    with pytest.raises(Forbidden):
        await engine.publish(ROMEO, posts(JULIET), text("may I?"))

    recorder.clear()
    await engine.end_temporary_subscriptions(Jid.parse("romeo@capulet.lit/orchard"))
    assert await engine.storage.find_membership(JULIET, ROMEO) is None
    (ended,) = recorder.of(SubscriptionChanged)
    assert ended.membership.subscription is SubscriptionState.NONE


async def test_following_for_good_replaces_a_temporary_subscription(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO, temporary=True)
    follow = await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    assert not follow.temporary and follow.role is Role.PUBLISHER
    await engine.end_temporary_subscriptions(ROMEO)
    assert await engine.storage.find_membership(JULIET, ROMEO) == follow
    # A temporary request leaves a real follow alone.
    assert await engine.subscribe(ROMEO, posts(JULIET), ROMEO, temporary=True) == follow


async def test_temporary_subscriptions_are_for_channels_open_to_the_user(engine: Engine) -> None:
    await closed_channel(engine)
    with pytest.raises(ClosedNode):
        await engine.subscribe(ROMEO, posts(JULIET), ROMEO, temporary=True)
    assert await engine.storage.find_membership(JULIET, ROMEO) is None
    await engine.register(NURSE)
    await engine.configure(NURSE, posts(NURSE), ConfigUpdate(access_model=AccessModel.LOCAL))
    await engine.subscribe(ROMEO, posts(NURSE), ROMEO, temporary=True)  # same domain
    with pytest.raises(ClosedNode):
        await engine.subscribe(BENVOLIO, posts(NURSE), BENVOLIO, temporary=True)
    await engine.set_role(JULIET, posts(JULIET), TYBALT, Role.OUTCAST)
    with pytest.raises(Banned):
        await engine.subscribe(TYBALT, posts(JULIET), TYBALT, temporary=True)


async def test_leftover_temporary_subscriptions_go_at_start(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO, temporary=True)
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    assert await engine.forget_temporary_subscriptions() == 1
    assert await engine.storage.find_membership(JULIET, ROMEO) is None
    assert await engine.storage.find_membership(JULIET, NURSE) is not None


async def test_own_lists_keep_ephemeral_channels_apart(engine: Engine) -> None:
    """Reference rows 23 and 26: the plain lists hold lasting channels; `bc:ephemeral`
    asks for the ephemeral ones only."""
    await engine.register(JULIET)
    room = NodeId(Jid.parse("5c1a7e@capulet.lit"), "posts")
    await engine.create_node(NURSE, room, ConfigUpdate(ephemeral=True))
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(ROMEO, room, ROMEO)

    lasting = await engine.user_subscriptions(ROMEO, ALL)
    assert {row.membership.channel for row in lasting.items} == {JULIET}
    rooms = await engine.user_subscriptions(ROMEO, ALL, ephemeral=True)
    assert [(row.node.id, row.membership.role) for row in rooms.items] == [(room, Role.MODERATOR)]
    assert rooms.count == 1
    roles = await engine.user_affiliations(ROMEO, ALL)
    assert {(row.membership.channel, row.membership.role) for row in roles.items} == {
        (JULIET, Role.PUBLISHER)
    }
    room_roles = await engine.user_affiliations(ROMEO, ALL, ephemeral=True)
    assert [row.node.id for row in room_roles.items] == [room]
