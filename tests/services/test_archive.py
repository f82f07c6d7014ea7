"""Archives: XEP-0313 order on a node and across the followed channels."""

from __future__ import annotations

from datetime import datetime

import pytest
from engine_support import JULIET, NURSE, ROMEO, FakeClock, posts, text

from buddycloud.domain.errors import ClosedNode
from buddycloud.domain.events import (
    ArchivedEvent,
    AuthorizationRequested,
    ConfigurationChanged,
    Event,
    ItemPublished,
    ItemRetracted,
    RoleChanged,
    SubscriptionChanged,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, Page, PageRequest
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

EVERYTHING = PageRequest(max=1000)


def summary(event: Event) -> tuple[str, ...]:
    """What a client reads off an event: its kind and the few values that matter."""
    match event:
        case ItemPublished(node=node, item=item):
            content = item.entry.content if item.entry is not None else ""
            return ("item", str(node.id.channel.local), content)
        case ItemRetracted(node=node, tombstone=tombstone):
            return ("retract", str(node.id.channel.local), tombstone.id)
        case SubscriptionChanged(channel=channel, membership=membership):
            return (
                "subscription",
                str(channel.jid.local),
                str(membership.jid.local),
                membership.subscription.value,
            )
        case RoleChanged(channel=channel, membership=membership):
            return (
                "affiliation",
                str(channel.jid.local),
                str(membership.jid.local),
                membership.role.value,
            )
        case ConfigurationChanged(channel=channel, nodes=nodes):
            return ("configuration", str(channel.jid.local), *(node.name for node in nodes))
        case AuthorizationRequested(channel=channel, subscriber=subscriber):
            return ("authorization", str(channel.jid.local), str(subscriber.local))
    raise AssertionError(event)


def summaries(page: Page[ArchivedEvent]) -> list[tuple[str, ...]]:
    return [summary(archived.event) for archived in page.items]


async def publish(engine: Engine, author: Jid, channel: Jid, content: str) -> str:
    return (await engine.publish(author, posts(channel), text(content))).id


async def test_a_nodes_archive_is_paged_oldest_first(engine: Engine, clock: FakeClock) -> None:
    """XEP-0313 §4.2: five posts, max 2: [0, 1], [2, 3], [4] forward; [3, 4], [1, 2], [0]
    back from the end. Bounds are inclusive."""
    await engine.register(JULIET)
    ids = [await publish(engine, JULIET, JULIET, f"post {k}") for k in range(5)]

    async def archive(page: PageRequest, **bounds: datetime) -> list[str]:
        found = await engine.archive_items(ROMEO, posts(JULIET), page, **bounds)
        return [item.id for item in found.items]

    assert await archive(PageRequest(max=2)) == ids[:2]
    assert await archive(PageRequest(max=2, after=ids[1])) == ids[2:4]
    assert await archive(PageRequest(max=2, after=ids[3])) == ids[4:]
    assert await archive(PageRequest(max=2, last_page=True)) == ids[3:]
    assert await archive(PageRequest(max=2, before=ids[3])) == ids[1:3]
    assert await archive(PageRequest(max=2, before=ids[1])) == ids[:1]
    items = (await engine.archive_items(ROMEO, posts(JULIET), EVERYTHING)).items
    assert await archive(EVERYTHING, start=items[1].updated, end=items[3].updated) == ids[1:4]
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    with pytest.raises(ClosedNode):
        await archive(PageRequest())


async def test_the_feed_archive_spans_followed_nodes_oldest_first(
    engine: Engine, clock: FakeClock
) -> None:
    """XEP-0313 without a node: the items of every followed channel, one order."""
    await engine.register(JULIET)
    await engine.register(NURSE)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(ROMEO, posts(NURSE), ROMEO)
    for k in range(3):
        await publish(engine, JULIET, JULIET, f"juliet {k}")
        await publish(engine, NURSE, NURSE, f"nurse {k}")
    await engine.publish(JULIET, NodeId(JULIET, "status"), text("happy"))
    page = await engine.archive_feed(ROMEO, PageRequest(max=4))
    assert [summary(a.event)[2] for a in page.items] == [
        "juliet 0",
        "nurse 0",
        "juliet 1",
        "nurse 1",
    ]
    assert (page.count, page.complete) == (7, False)
    rest = await engine.archive_feed(ROMEO, PageRequest(max=4, after=page.last))
    assert [summary(a.event)[2] for a in rest.items] == ["juliet 2", "nurse 2", "happy"]
    by_nurse = await engine.archive_feed(ROMEO, PageRequest(max=1, last_page=True), author=NURSE)
    assert [summary(a.event)[2] for a in by_nurse.items] == ["nurse 2"]
    assert by_nurse.count == 3
