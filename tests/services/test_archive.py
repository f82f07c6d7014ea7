"""Archives: XEP-0313 order on a node, and the inbox sync of a returning client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from engine_support import JULIET, MERCUTIO, NURSE, ROMEO, TYBALT, FakeClock, posts, text

from buddycloud.domain.errors import ClosedNode, InvalidPaging
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
from buddycloud.domain.model import AccessModel, NodeId, Page, PageRequest, Role
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
        case SubscriptionChanged(channel=channel, membership=membership, with_role=with_role):
            # With the role when the event carries it (reference section 4).
            role = (membership.role.value,) if with_role else ()
            return (
                "subscription",
                str(channel.jid.local),
                str(membership.jid.local),
                membership.subscription.value,
                *role,
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
    # The earliest and latest instants a date-time can hold are bounds like any other.
    earliest, latest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    assert await archive(EVERYTHING, start=earliest, end=latest) == ids
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    with pytest.raises(ClosedNode):
        await archive(PageRequest())


async def test_a_returning_follower_gets_what_happened_while_away(
    engine: Engine, clock: FakeClock
) -> None:
    """Reference row 32: posts, a retraction, a new follower, a configuration change, in
    the order they happened; what others may not show stays out."""
    await engine.register(JULIET)
    await engine.register(ROMEO)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await publish(engine, JULIET, JULIET, "before")
    clock.advance(seconds=1)
    left = clock.now()
    first = await publish(engine, JULIET, JULIET, "while away")
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(title="Juliet's balcony"))
    doomed = await publish(engine, JULIET, JULIET, "soon gone")
    await engine.retract(JULIET, posts(JULIET), doomed)
    await engine.set_role(JULIET, posts(JULIET), MERCUTIO, Role.OUTCAST)
    await engine.set_role(JULIET, posts(JULIET), TYBALT, Role.MEMBER)
    await engine.register(TYBALT)
    await publish(engine, TYBALT, TYBALT, "not followed")

    page = await engine.inbox(ROMEO, EVERYTHING, start=left)
    nodes = [node.id.name for node in await engine.storage.list_nodes(JULIET)]
    assert summaries(page) == [
        ("item", "juliet", "while away"),
        ("subscription", "juliet", "nurse", "subscribed", "publisher"),
        *(("configuration", "juliet", name) for name in nodes),
        ("retract", "juliet", doomed),
        ("affiliation", "juliet", "tybalt", "member"),
    ]
    assert page.count == len(page.items) and page.complete
    assert [archived.at for archived in page.items] == sorted(a.at for a in page.items)
    assert all(archived.event.audience == (ROMEO,) for archived in page.items)
    configuration = page.items[2].event
    assert isinstance(configuration, ConfigurationChanged)
    assert configuration.channel.config.title == "Juliet's balcony"
    published = page.items[0].event
    assert isinstance(published, ItemPublished) and published.item.id == first

    # Paged: max honoured, `after` the last id goes on, nothing is lost or repeated.
    pieces: list[ArchivedEvent] = []
    chunk = await engine.inbox(ROMEO, PageRequest(max=2), start=left)
    while True:
        assert len(chunk.items) <= 2
        pieces.extend(chunk.items)
        if chunk.complete:
            break
        chunk = await engine.inbox(ROMEO, PageRequest(max=2, after=chunk.last), start=left)
    assert [a.id for a in pieces] == [a.id for a in page.items]
    with pytest.raises(InvalidPaging):
        await engine.inbox(ROMEO, PageRequest(after="not an id"))


async def test_owners_get_requests_bans_and_departures(engine: Engine, clock: FakeClock) -> None:
    await engine.register(JULIET)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    await engine.authorize(JULIET, posts(JULIET), NURSE, allow=True)
    clock.advance(seconds=1)
    left = clock.now()
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.unsubscribe(NURSE, posts(JULIET), NURSE)
    await engine.set_role(JULIET, posts(JULIET), MERCUTIO, Role.OUTCAST)

    page = await engine.inbox(JULIET, EVERYTHING, start=left)
    assert summaries(page) == [
        ("subscription", "juliet", "romeo", "pending"),
        ("authorization", "juliet", "romeo"),
        ("subscription", "juliet", "nurse", "none", "none"),
        ("subscription", "juliet", "mercutio", "none", "outcast"),
    ]


async def test_a_pending_follower_sees_only_their_request_then_its_answer(
    engine: Engine, clock: FakeClock
) -> None:
    await engine.register(JULIET)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    left = clock.now()
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(TYBALT, posts(JULIET), TYBALT)
    await publish(engine, JULIET, JULIET, "for followers")
    assert summaries(await engine.inbox(ROMEO, EVERYTHING, start=left)) == [
        ("subscription", "juliet", "romeo", "pending"),
    ]
    await engine.authorize(JULIET, posts(JULIET), TYBALT, allow=False)
    assert summaries(await engine.inbox(TYBALT, EVERYTHING, start=left)) == [
        ("subscription", "juliet", "tybalt", "none", "none"),
    ]
    await engine.authorize(JULIET, posts(JULIET), ROMEO, allow=True)
    assert summaries(await engine.inbox(ROMEO, EVERYTHING, start=left)) == [
        ("item", "juliet", "for followers"),
        ("subscription", "juliet", "romeo", "subscribed", "publisher"),
    ]


async def test_a_banned_follower_sees_nothing_of_that_channel(
    engine: Engine, clock: FakeClock
) -> None:
    await engine.register(JULIET)
    await engine.register(NURSE)
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(ROMEO, posts(NURSE), ROMEO)
    left = clock.now()
    await publish(engine, JULIET, JULIET, "before the ban")
    await publish(engine, NURSE, NURSE, "from the nurse")
    await engine.set_role(JULIET, posts(JULIET), ROMEO, Role.OUTCAST)
    assert summaries(await engine.inbox(ROMEO, EVERYTHING, start=left)) == [
        ("item", "nurse", "from the nurse"),
    ]


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
