"""Subscription events as the original servers sent them (reference section 4, rows 25,
28-30): on the node the request named, with the follower's role in the same event when
the change gave or took one, and heard by whom it concerns.

Juliet owns a channel; the Nurse moderates it; Romeo already follows it. Tybalt is the
follower whose subscription changes.
"""

from __future__ import annotations

import pytest
from engine_support import JULIET, NURSE, ROMEO, TYBALT, Recorder, posts

from buddycloud.domain.events import RoleChanged, SubscriptionChanged
from buddycloud.domain.model import AccessModel, NodeId, Role, SubscriptionState
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

STATUS = NodeId(JULIET, "status")
GEOLOC = NodeId(JULIET, "geoloc")
STAFF = {JULIET, NURSE}
EVERYONE = {JULIET, NURSE, ROMEO, TYBALT}


async def channel(engine: Engine, recorder: Recorder, model: AccessModel) -> None:
    await engine.register(JULIET)
    if model is not AccessModel.OPEN:
        await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=model))
    for user in (NURSE, ROMEO):
        await engine.subscribe(user, posts(JULIET), user)
        await engine.set_subscription(JULIET, posts(JULIET), user, SubscriptionState.SUBSCRIBED)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    recorder.clear()


def only_event(recorder: Recorder) -> SubscriptionChanged:
    """The one subscription event since the last clear, and no separate role event."""
    assert recorder.of(RoleChanged) == []
    [event] = recorder.of(SubscriptionChanged)
    assert isinstance(event, SubscriptionChanged)
    recorder.clear()
    return event


async def test_following_an_open_channel_names_the_node_and_tells_the_new_role(
    engine: Engine, recorder: Recorder
) -> None:
    await channel(engine, recorder, AccessModel.OPEN)
    await engine.subscribe(TYBALT, STATUS, TYBALT)
    event = only_event(recorder)
    assert event.node == STATUS
    assert event.membership.subscription is SubscriptionState.SUBSCRIBED
    assert event.with_role and event.membership.role is Role.PUBLISHER
    assert set(event.audience) == EVERYONE


async def test_a_request_an_approval_and_a_denial_on_a_closed_channel(
    engine: Engine, recorder: Recorder
) -> None:
    await channel(engine, recorder, AccessModel.AUTHORIZE)
    await engine.subscribe(TYBALT, GEOLOC, TYBALT)
    asked = only_event(recorder)
    assert (asked.node, asked.membership.subscription) == (GEOLOC, SubscriptionState.PENDING)
    assert not asked.with_role  # a request gives no role
    assert set(asked.audience) == STAFF | {TYBALT}  # not Romeo, a plain follower

    await engine.set_subscription(NURSE, STATUS, TYBALT, SubscriptionState.SUBSCRIBED)
    approved = only_event(recorder)
    assert approved.node == STATUS
    assert approved.with_role and approved.membership.role is Role.PUBLISHER
    assert set(approved.audience) == EVERYONE

    await engine.set_subscription(JULIET, posts(JULIET), TYBALT, SubscriptionState.NONE)
    removed = only_event(recorder)
    assert removed.membership.subscription is SubscriptionState.NONE
    assert removed.with_role and removed.membership.role is Role.NONE
    assert set(removed.audience) == STAFF | {TYBALT}


async def test_an_invitation_is_for_the_invitee_and_the_staff(
    engine: Engine, recorder: Recorder
) -> None:
    await channel(engine, recorder, AccessModel.AUTHORIZE)
    await engine.set_subscription(ROMEO, STATUS, TYBALT, SubscriptionState.INVITED)
    invited = only_event(recorder)
    assert (invited.node, invited.membership.invited_by) == (STATUS, ROMEO)
    assert not invited.with_role
    assert set(invited.audience) == STAFF | {TYBALT}


async def test_unsubscribing_tells_none_and_the_role_left(
    engine: Engine, recorder: Recorder
) -> None:
    await channel(engine, recorder, AccessModel.OPEN)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    recorder.clear()
    await engine.unsubscribe(TYBALT, STATUS, TYBALT)
    left = only_event(recorder)
    assert left.node == STATUS
    assert left.membership.subscription is SubscriptionState.NONE
    assert left.with_role and left.membership.role is Role.NONE
    assert set(left.audience) == STAFF | {TYBALT}


async def test_a_ban_is_one_event_for_the_staff_and_the_banned(
    engine: Engine, recorder: Recorder
) -> None:
    await channel(engine, recorder, AccessModel.OPEN)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    recorder.clear()
    await engine.set_role(NURSE, GEOLOC, TYBALT, Role.OUTCAST)
    ban = only_event(recorder)
    assert ban.node == GEOLOC
    assert ban.membership.subscription is SubscriptionState.NONE
    assert ban.with_role and ban.membership.role is Role.OUTCAST
    assert set(ban.audience) == STAFF | {TYBALT}


async def test_a_role_change_alone_names_the_node_and_reaches_the_followers(
    engine: Engine, recorder: Recorder
) -> None:
    await channel(engine, recorder, AccessModel.OPEN)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    recorder.clear()
    await engine.set_role(JULIET, STATUS, TYBALT, Role.MEMBER)
    assert recorder.of(SubscriptionChanged) == []
    [changed] = recorder.of(RoleChanged)
    assert isinstance(changed, RoleChanged)
    assert (changed.node, changed.membership.role) == (STATUS, Role.MEMBER)
    assert set(changed.audience) == EVERYONE


@pytest.mark.parametrize("temporary", [True, False])
async def test_a_follow_without_a_new_role_tells_only_the_subscription(
    engine: Engine, recorder: Recorder, temporary: bool
) -> None:
    """A temporary visit gives no role; a follower already given the default role by the
    owner keeps it: neither event carries a role."""
    await channel(engine, recorder, AccessModel.OPEN)
    if not temporary:
        await engine.set_role(JULIET, posts(JULIET), TYBALT, Role.PUBLISHER)
        recorder.clear()
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT, temporary=temporary)
    event = only_event(recorder)
    assert event.membership.subscription is SubscriptionState.SUBSCRIBED
    assert not event.with_role
