"""The permission matrix through the engine: every role x access model x operation of
ProtoXEP tables 5 and 6, performed for real, compared with the transcribed tables.

Requesters other than the owner come from another domain, so `local` channels are closed to
them, exactly as the tables' columns read. (Home-domain users of `local` channels are covered
in test_following.py.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from engine_support import JULIET, posts, text
from protoxep_tables import COLUMNS, cells

from buddycloud.domain.errors import Forbidden
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Item,
    Membership,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

NODE = posts(JULIET)
ALL = PageRequest()


GUEST = Jid.parse("guest@anon.capulet.lit")  # an anonymous guest (reference section 5.3)


def member(role: Role) -> Jid:
    return JULIET if role is Role.OWNER else Jid.parse(f"{role.value}@montague.lit")


async def build_channel(engine: Engine, model: AccessModel) -> None:
    await engine.register(JULIET)
    await engine.configure(JULIET, NODE, ConfigUpdate(access_model=model))
    for role in COLUMNS:
        user = member(role)
        if role in (Role.OWNER, Role.NONE):
            continue
        await engine.subscribe(user, NODE, user)
        await engine.set_subscription(JULIET, NODE, user, SubscriptionState.SUBSCRIBED)
        await engine.set_role(JULIET, NODE, user, role)


async def seed_item(engine: Engine, author: Jid, key: str) -> Item:
    """Put an item in place directly: the cell under test is retraction, not publishing."""
    now = engine.clock.now()
    draft_item = await engine.publish(JULIET, NODE, text(key))
    item = Item(NODE, draft_item.id, author, now, now, draft_item.payload)
    await engine.storage.put_item(item)
    return item


async def seed_pending(engine: Engine, key: str) -> Jid:
    jid = Jid.parse(f"pending-{key}@verona.lit")
    now = engine.clock.now()
    await engine.storage.put_membership(
        Membership(JULIET, jid, Role.NONE, SubscriptionState.PENDING, now)
    )
    return jid


async def seed_follower(engine: Engine, key: str) -> Jid:
    jid = Jid.parse(f"follower-{key}@verona.lit")
    await engine.set_role(JULIET, NODE, jid, Role.MEMBER)
    return jid


def operation(
    engine: Engine, op: Operation, role: Role, user: Jid | None = None
) -> Callable[[], Awaitable[object]]:
    user = user or member(role)
    key = f"{op.name.lower()}-{user.local}"

    async def run() -> object:
        if op is Operation.READ_METADATA:
            return await engine.get_node_view(user, NODE)
        if op is Operation.READ_ITEMS:
            return await engine.get_items(user, NODE, ALL)
        if op is Operation.READ_FOLLOWERS:
            return await engine.node_subscriptions(user, NODE, ALL)
        if op is Operation.READ_BANNED:
            roles = {m.role for m in (await engine.node_affiliations(user, NODE, ALL)).items}
            if Role.OUTCAST not in roles:
                raise Forbidden("the banned list was not shown")
            return roles
        if op is Operation.READ_PENDING:
            await seed_pending(engine, key)
            states = {
                m.subscription for m in (await engine.node_subscriptions(user, NODE, ALL)).items
            }
            if SubscriptionState.PENDING not in states:
                raise Forbidden("the pending list was not shown")
            return states
        if op is Operation.CONFIGURE_TITLE:
            return await engine.configure(user, NODE, ConfigUpdate(title=key))
        if op is Operation.CONFIGURE_DESCRIPTION:
            return await engine.configure(user, NODE, ConfigUpdate(description=key))
        if op is Operation.MANAGE_BANNED:
            target = await seed_follower(engine, key)
            return await engine.set_role(user, NODE, target, Role.OUTCAST)
        if op is Operation.APPROVE_PENDING:
            target = await seed_pending(engine, key)
            return await engine.set_subscription(user, NODE, target, SubscriptionState.SUBSCRIBED)
        if op is Operation.PUBLISH:
            return await engine.publish(user, NODE, text(key))
        if op is Operation.RETRACT_OWN:
            item = await seed_item(engine, user, key)
            return await engine.retract(user, NODE, item.id)
        if op is Operation.RETRACT_ANY:
            item = await seed_item(
                engine, member(Role.MODERATOR if role is Role.OWNER else Role.OWNER), key
            )
            return await engine.retract(user, NODE, item.id)
        raise AssertionError(f"no engine call for {op}")

    return run


@pytest.mark.parametrize("model", list(AccessModel))
async def test_every_cell_of_tables_5_and_6_through_the_engine(
    engine: Engine, model: AccessModel
) -> None:
    await build_channel(engine, model)
    mismatches = []
    checked = 0
    for op, cell_model, role, expected in cells():
        if cell_model is not model:
            continue
        try:
            await operation(engine, op, role)()
            allowed = True
        except Forbidden:
            allowed = False
        checked += 1
        if allowed is not expected:
            mismatches.append(
                f"{role.value} / {op.value}: allowed={allowed}, table says {expected}"
            )
    assert checked == 12 * 6
    assert mismatches == []


@pytest.mark.parametrize("held", [Role.NONE, Role.MEMBER, Role.PUBLISHER, Role.MODERATOR])
@pytest.mark.parametrize("model", list(AccessModel))
async def test_an_anonymous_guest_gets_the_anonymous_column_whatever_role_it_holds(
    engine: Engine, model: AccessModel, held: Role
) -> None:
    """The tables' "Anonymous (e.g. web)" column, for a guest of `anon.capulet.lit`, also
    when a role was stored for it (given before its domain was known as anonymous)."""
    await build_channel(engine, model)
    if held is not Role.NONE:
        now = engine.clock.now()
        await engine.storage.put_membership(
            Membership(JULIET, GUEST, held, SubscriptionState.SUBSCRIBED, now)
        )
    mismatches = []
    checked = 0
    for op, cell_model, role, expected in cells():
        if cell_model is not model or role is not Role.NONE:
            continue
        try:
            await operation(engine, op, role, GUEST)()
            allowed = True
        except Forbidden:
            allowed = False
        checked += 1
        if allowed is not expected:
            mismatches.append(f"guest / {op.value}: allowed={allowed}, table says {expected}")
    assert checked == 12
    assert mismatches == []
