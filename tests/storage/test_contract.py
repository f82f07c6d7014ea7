"""The storage contract (buddycloud.storage.base), one suite run on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from buddycloud.domain.errors import (
    ChannelNotFound,
    CursorNotFound,
    Forbidden,
    InvalidPaging,
    ItemNotFound,
    NodeExists,
    NodeNotFound,
    RatingError,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    MAX_PAGE,
    NS_ATOM,
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Entry,
    Item,
    Membership,
    Node,
    NodeId,
    Page,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation, ReadScope, may, read_scope
from buddycloud.storage.base import (
    ArchiveEntry,
    ArchiveKind,
    ArchiveQuery,
    OutboxStatus,
    SearchQuery,
    Storage,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
JULIET = Jid.parse("juliet@capulet.lit")
ROMEO = Jid.parse("romeo@montague.lit")
NURSE = Jid.parse("nurse@capulet.lit")
TYBALT = Jid.parse("tybalt@capulet.lit")


PARIS = Jid.parse("paris@verona.lit")
BENVOLIO = Jid.parse("benvolio@capulet.lit")
MERCUTIO = Jid.parse("mercutio@verona.lit")


def public(*models: AccessModel, requester: Jid = PARIS) -> ReadScope:
    """The channels of `models` for every role but a ban: a firehose's scope."""
    return ReadScope(requester, dict.fromkeys(models, frozenset(Role) - {Role.OUTCAST}))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def config(owner: Jid, access: AccessModel = AccessModel.OPEN, title: str = "") -> ChannelConfig:
    return ChannelConfig(
        title=title or f"{owner.local}'s channel",
        description="a channel",
        access_model=access,
        default_role=Role.PUBLISHER,
        creator=owner,
        channel_type=ChannelType.PERSONAL,
        created=T0,
        updated=T0,
    )


def node(owner: Jid, name: str = "posts", max_items: int | None = None) -> Node:
    return Node(NodeId(owner, name), NS_ATOM, max_items, T0)


def membership(
    channel: Jid,
    jid: Jid,
    role: Role = Role.MEMBER,
    state: SubscriptionState = SubscriptionState.SUBSCRIBED,
) -> Membership:
    return Membership(channel, jid, role, state, T0)


async def make_channel(
    storage: Storage,
    owner: Jid,
    names: tuple[str, ...] = ("posts", "status"),
    access: AccessModel = AccessModel.OPEN,
) -> Channel:
    channel = Channel(owner, config(owner, access))
    await storage.create_channel(
        channel,
        [node(owner, name) for name in names],
        membership(owner, owner, Role.OWNER),
    )
    return channel


def entry_item(
    where: NodeId,
    item_id: str,
    when: datetime,
    *,
    author: Jid = JULIET,
    content: str = "hello",
    title: str = "",
    in_reply_to: str | None = None,
    verb: str = "post",
    target: str | None = None,
    rating: int | None = None,
) -> Item:
    entry = Entry(
        id=f"tag:capulet.lit,2026:{item_id}",
        title=title,
        content=content,
        content_type="text",
        author=author,
        published=when,
        updated=when,
        verb=verb,
        in_reply_to=in_reply_to,
        target=target,
        rating=rating,
    )
    return Item(where, item_id, author, when, when, entry, in_reply_to=in_reply_to)


async def publish_many(storage: Storage, where: NodeId, count: int, start: float = 0) -> None:
    for index in range(count):
        await storage.put_item(entry_item(where, f"i{index:03d}", at(start + index)))


def ids(page_items: list[Item]) -> list[str]:
    return [item.id for item in page_items]


POSTS = NodeId(JULIET, "posts")


# --- channels -----------------------------------------------------------------------------


async def test_a_created_channel_comes_back_with_its_nodes_and_owner(storage: Storage) -> None:
    channel = await make_channel(storage, JULIET)
    assert await storage.get_channel(JULIET) == channel
    assert await storage.find_channel(JULIET) == channel
    assert [n.id.name for n in await storage.list_nodes(JULIET)] == ["posts", "status"]
    owner = await storage.find_membership(JULIET, JULIET)
    assert owner == membership(JULIET, JULIET, Role.OWNER)


async def test_creating_an_existing_channel_fails_and_changes_nothing(storage: Storage) -> None:
    original = await make_channel(storage, JULIET)
    clash = Channel(JULIET, config(JULIET, title="another"))
    with pytest.raises(NodeExists):
        await storage.create_channel(
            clash, [node(JULIET, "extra")], membership(JULIET, ROMEO, Role.OWNER)
        )
    assert await storage.get_channel(JULIET) == original
    assert await storage.find_node(NodeId(JULIET, "extra")) is None
    assert await storage.find_membership(JULIET, ROMEO) is None


async def test_a_channel_creation_that_fails_halfway_leaves_nothing(storage: Storage) -> None:
    """Two nodes with the same name make the node insert fail after the channel insert."""
    channel = Channel(ROMEO, config(ROMEO))
    with pytest.raises(NodeExists):
        await storage.create_channel(
            channel, [node(ROMEO), node(ROMEO)], membership(ROMEO, ROMEO, Role.OWNER)
        )
    assert await storage.find_channel(ROMEO) is None
    assert await storage.list_nodes(ROMEO) == []
    assert await storage.find_membership(ROMEO, ROMEO) is None


async def test_unknown_channels(storage: Storage) -> None:
    assert await storage.find_channel(ROMEO) is None
    with pytest.raises(ChannelNotFound):
        await storage.get_channel(ROMEO)
    with pytest.raises(ChannelNotFound):
        await storage.update_channel_config(ROMEO, config(ROMEO))
    with pytest.raises(ChannelNotFound):
        await storage.delete_channel(ROMEO)
    with pytest.raises(ChannelNotFound):
        await storage.add_nodes([node(ROMEO)])
    with pytest.raises(ChannelNotFound):
        await storage.put_membership(membership(ROMEO, JULIET))


async def test_channel_configuration_is_updated(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    new = ChannelConfig(
        title="Balcony",
        description="Wherefore art thou",
        access_model=AccessModel.AUTHORIZE,
        default_role=Role.MEMBER,
        creator=JULIET,
        channel_type=ChannelType.TOPIC,
        created=T0,
        updated=at(60),
        ephemeral=True,
    )
    await storage.update_channel_config(JULIET, new)
    assert (await storage.get_channel(JULIET)).config == new
    context = await storage.get_node_context(POSTS, ROMEO)
    assert context.channel.config == new


async def test_deleting_a_channel_removes_nodes_items_and_memberships(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, ROMEO)
    await storage.put_membership(membership(JULIET, ROMEO))
    await storage.put_membership(membership(ROMEO, JULIET))
    await publish_many(storage, POSTS, 3)
    await storage.delete_channel(JULIET)
    assert await storage.find_channel(JULIET) is None
    assert await storage.list_nodes(JULIET) == []
    assert await storage.count_items(POSTS) == 0
    assert await storage.find_membership(JULIET, ROMEO) is None
    # The other channel and the user's other membership are untouched.
    assert await storage.find_membership(ROMEO, JULIET) is not None
    assert len(await storage.list_nodes(ROMEO)) == 2
    # Search no longer finds the deleted items.
    scope = read_scope(ROMEO, requester_is_local=False)
    found = await storage.search_items(SearchQuery(("hello",), None, scope), PageRequest())
    assert found.items == []


async def test_channels_are_listed_by_jid_in_pages(storage: Storage) -> None:
    owners = [Jid.parse(f"user{n}@example.com") for n in (3, 1, 4, 5, 2)]
    for owner in owners:
        await make_channel(storage, owner)
    first = await storage.list_channels(PageRequest(max=2))
    assert [str(c.jid) for c in first.items] == ["user1@example.com", "user2@example.com"]
    assert (first.count, first.first, first.last) == (5, "user1@example.com", "user2@example.com")
    second = await storage.list_channels(PageRequest(max=2, after=first.last))
    assert [str(c.jid) for c in second.items] == ["user3@example.com", "user4@example.com"]
    back = await storage.list_channels(PageRequest(max=2, before=second.first))
    assert back.items == first.items
    last = await storage.list_channels(PageRequest(max=2, last_page=True))
    assert [str(c.jid) for c in last.items] == ["user4@example.com", "user5@example.com"]


# --- nodes ----------------------------------------------------------------------------------


async def test_nodes_are_added_and_deleted(storage: Storage) -> None:
    await make_channel(storage, JULIET, names=("posts",))
    extra = Node(NodeId(JULIET, "geoloc"), "http://jabber.org/protocol/geoloc", 1, at(5))
    await storage.add_nodes([extra])
    assert await storage.get_node(extra.id) == extra
    with pytest.raises(NodeExists):
        await storage.add_nodes([extra])
    await publish_many(storage, POSTS, 2)
    await storage.delete_node(POSTS)
    assert await storage.find_node(POSTS) is None
    assert await storage.count_items(POSTS) == 0
    with pytest.raises(NodeNotFound):
        await storage.get_node(POSTS)
    with pytest.raises(NodeNotFound):
        await storage.delete_node(POSTS)
    assert [n.id.name for n in await storage.list_nodes(JULIET)] == ["geoloc"]


async def test_a_nodes_settings_are_updated(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    changed = Node(POSTS, "urn:example:other", 10, at(100))
    await storage.update_node(changed)
    # The creation time is not a setting: it stays.
    assert await storage.get_node(POSTS) == Node(POSTS, "urn:example:other", 10, T0)
    with pytest.raises(NodeNotFound):
        await storage.update_node(Node(NodeId(JULIET, "missing"), NS_ATOM, None, T0))


async def test_adding_nodes_is_all_or_nothing(storage: Storage) -> None:
    await make_channel(storage, JULIET, names=("posts",))
    with pytest.raises(NodeExists):
        await storage.add_nodes([node(JULIET, "fresh"), node(JULIET, "posts")])
    assert await storage.find_node(NodeId(JULIET, "fresh")) is None


async def test_node_context_holds_channel_node_and_membership(storage: Storage) -> None:
    channel = await make_channel(storage, JULIET)
    await storage.put_membership(membership(JULIET, ROMEO, Role.PUBLISHER))
    context = await storage.get_node_context(POSTS, Jid.parse("romeo@montague.lit/balcony"))
    assert context.channel == channel
    assert context.node == node(JULIET)
    assert context.membership == membership(JULIET, ROMEO, Role.PUBLISHER)
    stranger = await storage.get_node_context(POSTS, NURSE)
    assert stranger.membership is None
    with pytest.raises(NodeNotFound):
        await storage.get_node_context(NodeId(JULIET, "missing"), ROMEO)


# --- memberships ----------------------------------------------------------------------------


async def test_a_membership_is_replaced_and_deleted(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    pending = membership(JULIET, ROMEO, Role.NONE, SubscriptionState.PENDING)
    await storage.put_membership(pending)
    assert await storage.find_membership(JULIET, ROMEO) == pending
    approved = Membership(
        JULIET, ROMEO, Role.MEMBER, SubscriptionState.SUBSCRIBED, at(9), invited_by=NURSE
    )
    await storage.put_membership(approved)
    assert await storage.find_membership(JULIET, ROMEO) == approved
    await storage.delete_membership(JULIET, ROMEO)
    assert await storage.find_membership(JULIET, ROMEO) is None
    await storage.delete_membership(JULIET, ROMEO)  # no error the second time


async def test_ending_a_membership_of_a_channel_gone_meanwhile_spoils_no_other_write(
    storage: Storage,
) -> None:
    """A follow that ends while its channel is being deleted (an account removed while
    its channels go) is no error, and the writes committed with it still land."""
    await make_channel(storage, JULIET)
    await make_channel(storage, NURSE)
    await storage.put_membership(membership(JULIET, ROMEO))
    await storage.delete_channel(JULIET)
    await asyncio.gather(
        storage.delete_membership(JULIET, ROMEO, at=at(5)),
        storage.put_membership(membership(NURSE, ROMEO)),
    )
    await storage.delete_membership(JULIET, ROMEO, at=at(6))
    assert await storage.find_membership(NURSE, ROMEO) == membership(NURSE, ROMEO)
    assert await storage.find_channel(JULIET) is None


async def test_an_ended_membership_is_no_membership(storage: Storage) -> None:
    """`delete_membership` with `at` keeps when it ended for the archive; every other
    reader sees no membership, and following again replaces it."""
    await make_channel(storage, JULIET)
    await storage.put_membership(membership(JULIET, ROMEO))
    await storage.delete_membership(JULIET, ROMEO, at=at(5))
    assert await storage.find_membership(JULIET, ROMEO) is None
    context = await storage.get_node_context(POSTS, ROMEO)
    assert context.membership is None
    members = await storage.list_memberships(JULIET, PageRequest())
    assert [m.jid for m in members.items] == [JULIET] and members.count == 1
    mine = await storage.list_user_memberships(ROMEO, PageRequest())
    assert (mine.items, mine.count) == ([], 0)
    assert ROMEO not in await storage.list_audience(JULIET, frozenset(Role))
    again = membership(JULIET, ROMEO, Role.NONE, SubscriptionState.PENDING)
    await storage.put_membership(again)
    assert await storage.find_membership(JULIET, ROMEO) == again


async def test_temporary_subscriptions_round_trip_and_all_go_at_once(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, ROMEO)
    await make_channel(storage, TYBALT)
    visitor = Membership(
        JULIET, NURSE, Role.NONE, SubscriptionState.SUBSCRIBED, at(1), temporary=True
    )
    await storage.put_membership(visitor)
    await storage.put_membership(replace(visitor, channel=ROMEO))
    follower = membership(JULIET, TYBALT)
    await storage.put_membership(follower)
    await storage.put_membership(membership(TYBALT, NURSE))
    assert await storage.find_membership(JULIET, NURSE) == visitor
    visits = await storage.list_user_memberships(NURSE, PageRequest(), temporary_only=True)
    assert [(m.channel, m.temporary) for m, _ in visits.items] == [(JULIET, True), (ROMEO, True)]
    assert visits.count == 2
    # The audience of a channel holds its temporary subscribers like any other follower.
    assert NURSE in await storage.list_audience(JULIET, frozenset({Role.NONE}))
    assert await storage.delete_temporary_memberships() == 2
    assert await storage.find_membership(JULIET, NURSE) is None
    assert await storage.find_membership(ROMEO, NURSE) is None
    assert NURSE not in await storage.list_audience(JULIET, frozenset({Role.NONE}))
    assert await storage.find_membership(JULIET, TYBALT) == follower
    # Made permanent, a subscription stays.
    await storage.put_membership(visitor)
    await storage.put_membership(replace(visitor, role=Role.MEMBER, temporary=False))
    assert await storage.delete_temporary_memberships() == 0


async def test_members_are_filtered_and_paged_by_jid(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await storage.put_membership(membership(JULIET, ROMEO, Role.PUBLISHER))
    await storage.put_membership(membership(JULIET, NURSE, Role.MODERATOR))
    await storage.put_membership(membership(JULIET, TYBALT, Role.OUTCAST, SubscriptionState.NONE))
    pending = Jid.parse("benvolio@montague.lit")
    await storage.put_membership(membership(JULIET, pending, Role.NONE, SubscriptionState.PENDING))

    everyone = await storage.list_memberships(JULIET, PageRequest())
    assert [str(m.jid) for m in everyone.items] == sorted(
        str(j) for j in (JULIET, ROMEO, NURSE, TYBALT, pending)
    )
    assert everyone.count == 5
    banned = await storage.list_memberships(JULIET, PageRequest(), roles=frozenset({Role.OUTCAST}))
    assert [m.jid for m in banned.items] == [TYBALT]
    waiting = await storage.list_memberships(
        JULIET, PageRequest(), states=frozenset({SubscriptionState.PENDING})
    )
    assert [m.jid for m in waiting.items] == [pending]
    page = await storage.list_memberships(JULIET, PageRequest(max=2, after=str(JULIET)))
    assert [m.jid for m in page.items] == [NURSE, ROMEO]
    assert page.count == 5


async def test_the_audience_is_subscribed_members_with_the_given_roles(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await storage.put_membership(membership(JULIET, ROMEO, Role.PUBLISHER))
    await storage.put_membership(membership(JULIET, NURSE, Role.MEMBER))
    await storage.put_membership(membership(JULIET, TYBALT, Role.MEMBER, SubscriptionState.PENDING))
    audience = await storage.list_audience(JULIET, frozenset({Role.OWNER, Role.PUBLISHER}))
    assert audience == (JULIET, ROMEO)
    followers = await storage.list_audience(JULIET, frozenset(Role) - {Role.OUTCAST})
    assert sorted(map(str, followers)) == sorted(map(str, [JULIET, ROMEO, NURSE]))


async def test_context_and_audience_follow_every_change_after_being_read(
    storage: Storage,
) -> None:
    """Answers read once must not outlive the writes that change them."""
    await make_channel(storage, JULIET)
    roles = frozenset({Role.OWNER, Role.PUBLISHER})
    assert (await storage.get_node_context(POSTS, ROMEO)).membership is None
    assert await storage.list_audience(JULIET, roles) == (JULIET,)
    await storage.put_membership(membership(JULIET, ROMEO, Role.PUBLISHER))
    assert (await storage.get_node_context(POSTS, ROMEO)).membership == membership(
        JULIET, ROMEO, Role.PUBLISHER
    )
    assert await storage.list_audience(JULIET, roles) == (JULIET, ROMEO)
    await storage.put_membership(membership(JULIET, ROMEO, Role.OUTCAST, SubscriptionState.NONE))
    banned = (await storage.get_node_context(POSTS, ROMEO)).membership
    assert banned is not None and banned.role is Role.OUTCAST
    assert await storage.list_audience(JULIET, roles) == (JULIET,)
    await storage.delete_membership(JULIET, ROMEO)
    assert (await storage.get_node_context(POSTS, ROMEO)).membership is None
    closed = config(JULIET, AccessModel.AUTHORIZE)
    await storage.update_channel_config(JULIET, closed)
    assert (await storage.get_node_context(POSTS, ROMEO)).channel.config == closed
    await storage.update_node(node(JULIET, max_items=3))
    assert (await storage.get_node_context(POSTS, ROMEO)).node.max_items == 3
    await storage.delete_channel(JULIET)
    with pytest.raises(NodeNotFound):
        await storage.get_node_context(POSTS, ROMEO)
    assert await storage.list_audience(JULIET, roles) == ()


async def test_a_users_memberships_come_with_their_channels(storage: Storage) -> None:
    juliet = await make_channel(storage, JULIET)
    romeo = await make_channel(storage, ROMEO)
    nurse = await make_channel(storage, NURSE)
    await storage.put_membership(membership(JULIET, TYBALT))
    await storage.put_membership(membership(NURSE, TYBALT, Role.NONE, SubscriptionState.PENDING))
    await storage.put_membership(membership(ROMEO, TYBALT))
    page = await storage.list_user_memberships(TYBALT, PageRequest())
    assert [(m.channel, c) for m, c in page.items] == [
        (JULIET, juliet),
        (NURSE, nurse),
        (ROMEO, romeo),
    ]
    assert page.count == 3
    subscribed = await storage.list_user_memberships(
        TYBALT, PageRequest(max=1), states=frozenset({SubscriptionState.SUBSCRIBED})
    )
    assert [m.channel for m, _ in subscribed.items] == [JULIET]
    assert subscribed.count == 2
    rest = await storage.list_user_memberships(
        TYBALT,
        PageRequest(max=5, after=subscribed.last),
        states=frozenset({SubscriptionState.SUBSCRIBED}),
    )
    assert [m.channel for m, _ in rest.items] == [ROMEO]


async def test_a_users_memberships_split_by_ephemeral_channels(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    chat = Channel(NURSE, replace(config(NURSE, AccessModel.OPEN), ephemeral=True))
    await storage.create_channel(chat, [node(NURSE, "posts")], membership(NURSE, NURSE, Role.OWNER))
    await make_channel(storage, ROMEO)
    for channel in (JULIET, NURSE, ROMEO):
        await storage.put_membership(membership(channel, TYBALT))
    ephemeral = await storage.list_user_memberships(TYBALT, PageRequest(), ephemeral=True)
    assert [(m.channel, c.config.ephemeral) for m, c in ephemeral.items] == [(NURSE, True)]
    assert ephemeral.count == 1
    lasting = await storage.list_user_memberships(TYBALT, PageRequest(max=1), ephemeral=False)
    assert [m.channel for m, _ in lasting.items] == [JULIET]
    assert lasting.count == 2  # the count obeys the filter too
    rest = await storage.list_user_memberships(
        TYBALT, PageRequest(after=lasting.last), ephemeral=False
    )
    assert [m.channel for m, _ in rest.items] == [ROMEO]
    everything = await storage.list_user_memberships(TYBALT, PageRequest())
    assert everything.count == 3


async def test_a_users_memberships_show_on_every_node_of_their_channels(
    storage: Storage,
) -> None:
    """ProtoXEP 5.4: one membership per channel, listed once per node, paged over nodes."""
    await make_channel(storage, JULIET, names=("geoloc", "posts", "status"))
    await make_channel(storage, NURSE, access=AccessModel.AUTHORIZE)
    chat = Channel(ROMEO, replace(config(ROMEO), ephemeral=True))
    await storage.create_channel(chat, [node(ROMEO, "posts")], membership(ROMEO, ROMEO, Role.OWNER))
    await storage.put_membership(membership(JULIET, TYBALT, Role.PUBLISHER))
    await storage.put_membership(membership(NURSE, TYBALT, Role.NONE, SubscriptionState.PENDING))
    await storage.put_membership(membership(ROMEO, TYBALT, Role.MODERATOR))

    every = await storage.list_user_node_memberships(TYBALT, PageRequest())
    assert [
        (str(row.node.id), row.membership.subscription, row.membership.role) for row in every.items
    ] == [
        ("/user/juliet@capulet.lit/geoloc", SubscriptionState.SUBSCRIBED, Role.PUBLISHER),
        ("/user/juliet@capulet.lit/posts", SubscriptionState.SUBSCRIBED, Role.PUBLISHER),
        ("/user/juliet@capulet.lit/status", SubscriptionState.SUBSCRIBED, Role.PUBLISHER),
        ("/user/nurse@capulet.lit/posts", SubscriptionState.PENDING, Role.NONE),
        ("/user/nurse@capulet.lit/status", SubscriptionState.PENDING, Role.NONE),
        ("/user/romeo@montague.lit/posts", SubscriptionState.SUBSCRIBED, Role.MODERATOR),
    ]
    assert every.count == 6
    assert (every.first, every.last) == (
        "/user/juliet@capulet.lit/geoloc",
        "/user/romeo@montague.lit/posts",
    )
    assert {row.channel.jid for row in every.items} == {JULIET, NURSE, ROMEO}
    assert all(
        row.node.id.channel == row.channel.jid == row.membership.channel for row in every.items
    )

    # Pages are cut between the nodes of one channel and go on where they stopped.
    first = await storage.list_user_node_memberships(TYBALT, PageRequest(max=2))
    second = await storage.list_user_node_memberships(TYBALT, PageRequest(max=2, after=first.last))
    third = await storage.list_user_node_memberships(TYBALT, PageRequest(max=2, after=second.last))
    assert [row.node.id for page in (first, second, third) for row in page.items] == [
        row.node.id for row in every.items
    ]
    back = await storage.list_user_node_memberships(TYBALT, PageRequest(max=2, before=third.first))
    assert back.items == second.items
    last = await storage.list_user_node_memberships(TYBALT, PageRequest(max=1, last_page=True))
    assert last.items == every.items[-1:]
    with pytest.raises(InvalidPaging):
        await storage.list_user_node_memberships(TYBALT, PageRequest(after="juliet@capulet.lit"))

    subscribed = await storage.list_user_node_memberships(
        TYBALT, PageRequest(), states=frozenset({SubscriptionState.SUBSCRIBED}), ephemeral=False
    )
    assert [row.node.id.name for row in subscribed.items] == ["geoloc", "posts", "status"]
    assert subscribed.count == 3
    rooms = await storage.list_user_node_memberships(TYBALT, PageRequest(), ephemeral=True)
    assert [row.node.id.channel for row in rooms.items] == [ROMEO]

    closed = await storage.list_user_node_memberships(
        TYBALT, PageRequest(), config={"access_model": "authorize", "creator": str(NURSE)}
    )
    assert [str(row.node.id) for row in closed.items] == [
        "/user/nurse@capulet.lit/posts",
        "/user/nurse@capulet.lit/status",
    ]
    assert closed.count == 2
    nothing = await storage.list_user_node_memberships(
        TYBALT, PageRequest(), config={"title": "no such title"}
    )
    assert (nothing.items, nothing.count) == ([], 0)


# --- items ----------------------------------------------------------------------------------


async def test_items_round_trip_with_every_payload_kind(storage: Storage) -> None:
    await make_channel(storage, JULIET, names=("posts", "geoloc"))
    odd_time = datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)
    entry = Entry(
        id="tag:capulet.lit,2026:posts/1",
        title="Title",
        content="<b>what light</b>",
        content_type="html",
        author=ROMEO,
        published=odd_time,
        updated=odd_time + timedelta(microseconds=1),
        verb="post",
        object_type="comment",
        in_reply_to=None,
        target=None,
        rating=None,
        extensions=('<geo xmlns="x"/>', "<link rel='self'/>"),
    )
    with_entry = Item(POSTS, "1", ROMEO, odd_time, odd_time + timedelta(seconds=1), entry)
    geoloc = NodeId(JULIET, "geoloc")
    raw = Item(
        geoloc,
        "current",
        JULIET,
        T0,
        T0,
        RawPayload(
            '<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>45.4</lat></geoloc>',
            "http://jabber.org/protocol/geoloc",
        ),
    )
    tombstone = Item(POSTS, "2", JULIET, T0, at(3), None, deleted=True)
    for item in (with_entry, raw, tombstone):
        await storage.put_item(item)
    assert await storage.get_item(POSTS, "1") == with_entry
    assert await storage.get_item(geoloc, "current") == raw
    assert await storage.find_item(POSTS, "2") == tombstone
    assert await storage.find_item(POSTS, "3") is None
    with pytest.raises(ItemNotFound):
        await storage.get_item(POSTS, "3")


async def test_a_write_whose_caller_gives_up_still_lands_whole(storage: Storage) -> None:
    """A client that disconnects mid-request cancels its handler; the write it queued is
    neither lost halfway nor taken back, and the writes batched with it are unharmed."""
    await make_channel(storage, JULIET)
    abandoned = asyncio.create_task(storage.put_item(entry_item(POSTS, "abandoned", at(1))))
    kept = asyncio.create_task(storage.put_item(entry_item(POSTS, "kept", at(2))))
    await asyncio.sleep(0)  # both writes are queued
    abandoned.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    async with asyncio.timeout(10):
        while await storage.find_item(POSTS, "abandoned") is None:
            await asyncio.sleep(0.01)
    assert await storage.find_item(POSTS, "kept") is not None


async def test_timestamps_round_trip_exactly_in_utc(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    offset = datetime(2026, 6, 2, 1, 59, 59, 1, tzinfo=timezone(timedelta(hours=2)))
    await storage.put_item(entry_item(POSTS, "x", offset))
    item = await storage.get_item(POSTS, "x")
    assert item.published == offset
    assert item.published.utcoffset() == timedelta(0)
    assert item.published.microsecond == 1
    ancient = datetime(1901, 1, 1, 0, 0, 0, 7, tzinfo=UTC)
    await storage.put_item(entry_item(POSTS, "old", ancient))
    assert (await storage.get_item(POSTS, "old")).updated == ancient


async def test_an_item_is_replaced_in_place(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await storage.put_item(entry_item(POSTS, "a", at(1), content="first"))
    edited = entry_item(POSTS, "a", at(2), content="second")
    await storage.put_item(edited)
    assert await storage.get_item(POSTS, "a") == edited
    assert await storage.count_items(POSTS) == 1


async def test_an_item_is_checked_against_its_earlier_version_and_written_at_once(
    storage: Storage,
) -> None:
    await make_channel(storage, JULIET)
    seen: list[Item | None] = []

    def build(content: str) -> Callable[[Item | None], Item]:
        def make(previous: Item | None) -> Item:
            seen.append(previous)
            return entry_item(POSTS, "a", at(len(seen)), content=content)

        return make

    first, before = await storage.put_item_after(POSTS, "a", build("first"))
    assert before is None and first.entry is not None and first.entry.content == "first"
    second, replaced = await storage.put_item_after(POSTS, "a", build("second"))
    assert replaced == first
    assert await storage.get_item(POSTS, "a") == second

    def refuse(previous: Item | None) -> Item:
        raise Forbidden("only the author of an item may update it")

    with pytest.raises(Forbidden):
        await storage.put_item_after(POSTS, "a", refuse)
    assert await storage.get_item(POSTS, "a") == second
    # Concurrent replacements each see the version the one before them wrote.
    seen.clear()
    await asyncio.gather(*(storage.put_item_after(POSTS, "a", build(f"v{n}")) for n in range(5)))
    assert all(previous is not None for previous in seen)
    contents = [p.entry.content for p in seen if p is not None and p.entry is not None]
    assert len(set(contents)) == 5
    assert await storage.count_items(POSTS) == 1


async def test_publishing_to_an_unknown_node_fails(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    with pytest.raises(NodeNotFound):
        await storage.put_item(entry_item(NodeId(JULIET, "missing"), "a", T0))
    with pytest.raises(NodeNotFound):
        await storage.put_item(entry_item(NodeId(ROMEO, "posts"), "a", T0))


async def test_items_are_paged_newest_first_in_both_directions(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 10)
    newest = [f"i{n:03d}" for n in range(9, -1, -1)]

    first = await storage.list_items(POSTS, PageRequest(max=4))
    assert ids(first.items) == newest[:4]
    assert (first.count, first.first, first.last) == (10, newest[0], newest[3])
    second = await storage.list_items(POSTS, PageRequest(max=4, after=first.last))
    assert ids(second.items) == newest[4:8]
    third = await storage.list_items(POSTS, PageRequest(max=4, after=second.last))
    assert ids(third.items) == newest[8:]
    end = await storage.list_items(POSTS, PageRequest(max=4, after=third.last))
    assert (end.items, end.first, end.last, end.count) == ([], None, None, 10)

    back = await storage.list_items(POSTS, PageRequest(max=4, before=third.first))
    assert ids(back.items) == newest[4:8]
    near_top = await storage.list_items(POSTS, PageRequest(max=4, before=newest[2]))
    assert ids(near_top.items) == newest[:2]
    last = await storage.list_items(POSTS, PageRequest(max=3, last_page=True))
    assert ids(last.items) == newest[7:]
    counted = await storage.list_items(POSTS, PageRequest(max=0))
    assert (counted.items, counted.count) == ([], 10)


async def test_items_are_paged_oldest_first_as_an_archive(storage: Storage) -> None:
    """XEP-0313 §4.2 with XEP-0059: the first page is the oldest, `after` pages towards
    newer items, `<before/>` gives the newest page and `before` pages back; every page is
    oldest first, and `complete` says whether it reaches the end it was read towards."""
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 5)

    async def archive(page: PageRequest) -> Page[Item]:
        return await storage.list_items(POSTS, page, chronological=True)

    first = await archive(PageRequest(max=2))
    assert ids(first.items) == ["i000", "i001"]
    assert (first.count, first.first, first.last, first.complete) == (5, "i000", "i001", False)
    second = await archive(PageRequest(max=2, after=first.last))
    assert (ids(second.items), second.complete) == (["i002", "i003"], False)
    third = await archive(PageRequest(max=2, after=second.last))
    assert (ids(third.items), third.complete, third.count) == (["i004"], True, 5)

    last = await archive(PageRequest(max=2, last_page=True))
    assert (ids(last.items), last.complete) == (["i003", "i004"], False)
    back = await archive(PageRequest(max=2, before=last.first))
    assert (ids(back.items), back.complete) == (["i001", "i002"], False)
    oldest = await archive(PageRequest(max=2, before=back.first))
    assert (ids(oldest.items), oldest.complete) == (["i000"], True)

    # A page that ends exactly at the end is complete; so is everything in one page.
    exact = await archive(PageRequest(max=2, after="i002"))
    assert (ids(exact.items), exact.complete) == (["i003", "i004"], True)
    whole = await archive(PageRequest(max=5))
    assert (len(whole.items), whole.complete) == (5, True)
    newest_first = await storage.list_items(POSTS, PageRequest(max=5))
    assert ids(newest_first.items) == ids(whole.items)[::-1] and newest_first.complete


async def test_archive_pages_keep_the_filters_and_break_ties_by_id(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    for item_id in ("b", "c", "a"):
        await storage.put_item(entry_item(POSTS, item_id, at(1), author=NURSE))
    await storage.put_item(entry_item(POSTS, "z", at(0), author=NURSE))
    await publish_many(storage, POSTS, 3, start=2)
    page = await storage.list_items(
        POSTS, PageRequest(max=3), author=NURSE, until=at(1), chronological=True
    )
    assert (ids(page.items), page.count, page.complete) == (["z", "a", "b"], 4, False)
    rest = await storage.list_items(
        POSTS, PageRequest(max=3, after="b"), author=NURSE, until=at(1), chronological=True
    )
    assert (ids(rest.items), rest.complete) == (["c"], True)
    window = await storage.list_items(POSTS, PageRequest(max=10), since=at(1), chronological=True)
    assert ids(window.items) == ["i000", "i001", "i002"] and window.count == 3
    with pytest.raises(ItemNotFound):
        await storage.list_items(POSTS, PageRequest(after="nope"), chronological=True)


async def test_items_by_author_span_nodes_skip_tombstones_and_page_by_key(
    storage: Storage,
) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, ROMEO)
    romeo_posts = NodeId(ROMEO, "posts")
    juliet_status = NodeId(JULIET, "status")
    for where, item_id in [(POSTS, "b"), (POSTS, "a"), (juliet_status, "s"), (romeo_posts, "r")]:
        await storage.put_item(entry_item(where, item_id, at(1)))
    await storage.put_item(entry_item(romeo_posts, "other", at(2), author=ROMEO))
    gone = entry_item(romeo_posts, "gone", at(3))
    await storage.put_item(replace(gone, payload=None, deleted=True))

    everything = await storage.list_items_by_author(JULIET)
    expected = [(POSTS, "a"), (POSTS, "b"), (juliet_status, "s"), (romeo_posts, "r")]
    assert [(item.node, item.id) for item in everything] == expected
    # Any resource of the author finds the same items.
    assert await storage.list_items_by_author(Jid.parse("juliet@capulet.lit/balcony")) == (
        everything
    )
    pages, after = [], None
    while True:
        batch = await storage.list_items_by_author(JULIET, after=after, limit=3)
        pages.append([(item.node, item.id) for item in batch])
        if len(batch) < 3:
            break
        after = (batch[-1].node, batch[-1].id)
    assert pages == [expected[:3], expected[3:]]
    assert await storage.list_items_by_author(TYBALT) == []


async def test_public_items_come_from_the_given_access_models_newest_first(
    storage: Storage,
) -> None:
    await make_channel(storage, JULIET)  # open
    await make_channel(storage, ROMEO, access=AccessModel.AUTHORIZE)
    await make_channel(storage, NURSE, access=AccessModel.LOCAL)
    romeo_posts, nurse_posts = NodeId(ROMEO, "posts"), NodeId(NURSE, "posts")
    await storage.put_item(entry_item(POSTS, "j1", at(1)))
    await storage.put_item(entry_item(romeo_posts, "r1", at(2), author=ROMEO))
    await storage.put_item(entry_item(nurse_posts, "n1", at(3), author=NURSE))
    await storage.put_item(entry_item(POSTS, "j2", at(4), in_reply_to="j1"))
    await storage.put_item(entry_item(NodeId(JULIET, "status"), "s1", at(5)))
    dead = entry_item(POSTS, "gone", at(6))
    await storage.put_item(replace(dead, payload=None, deleted=True))

    open_only = await storage.list_public_items(public(AccessModel.OPEN), PageRequest())
    assert ids(open_only.items) == ["s1", "j2", "j1"] and open_only.count == 3
    both = public(AccessModel.OPEN, AccessModel.LOCAL)
    everything = await storage.list_public_items(both, PageRequest())
    # The reply moved its parent j1 up to its own time; ties go by node, then id.
    assert ids(everything.items) == ["s1", "j2", "j1", "n1"]
    parents = await storage.list_public_items(both, PageRequest(), parent_only=True)
    assert ids(parents.items) == ["s1", "j1", "n1"] and parents.count == 3

    first = await storage.list_public_items(both, PageRequest(max=2))
    assert ids(first.items) == ["s1", "j2"] and first.count == 4
    assert first.last == f"{POSTS},j2"
    second = await storage.list_public_items(both, PageRequest(max=2, after=first.last))
    assert ids(second.items) == ["j1", "n1"]
    back = await storage.list_public_items(both, PageRequest(max=2, before=second.first))
    assert ids(back.items) == ["s1", "j2"]
    with pytest.raises(ItemNotFound):
        await storage.list_public_items(both, PageRequest(after=f"{POSTS},nothing"))
    assert (await storage.list_public_items(public(), PageRequest())).count == 0


async def test_public_items_leave_out_channels_where_the_requesters_role_may_not_read(
    storage: Storage,
) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, ROMEO)
    await storage.put_item(entry_item(POSTS, "j1", at(1)))
    await storage.put_item(entry_item(NodeId(ROMEO, "posts"), "r1", at(2), author=ROMEO))
    await storage.put_membership(membership(JULIET, PARIS, Role.OUTCAST, SubscriptionState.NONE))
    await storage.put_membership(membership(ROMEO, PARIS, Role.MEMBER))
    banned = await storage.list_public_items(public(AccessModel.OPEN), PageRequest())
    assert ids(banned.items) == ["r1"] and banned.count == 1
    other = await storage.list_public_items(
        public(AccessModel.OPEN, requester=TYBALT), PageRequest()
    )
    assert ids(other.items) == ["r1", "j1"] and other.count == 2


async def test_top_channels_by_recent_followers_and_posts(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, ROMEO)
    await make_channel(storage, NURSE, access=AccessModel.AUTHORIZE)
    await make_channel(storage, TYBALT)
    since = at(10)
    follows = [
        (JULIET, ROMEO, at(11), SubscriptionState.SUBSCRIBED),
        (JULIET, NURSE, at(12), SubscriptionState.SUBSCRIBED),
        (JULIET, TYBALT, at(13), SubscriptionState.PENDING),  # not a follow yet
        (ROMEO, JULIET, at(11), SubscriptionState.SUBSCRIBED),
        (NURSE, JULIET, at(11), SubscriptionState.SUBSCRIBED),
        (NURSE, ROMEO, at(11), SubscriptionState.SUBSCRIBED),
        (NURSE, TYBALT, at(11), SubscriptionState.SUBSCRIBED),
        (TYBALT, JULIET, at(5), SubscriptionState.SUBSCRIBED),  # before the window
    ]
    for channel, jid, when, state in follows:
        await storage.put_membership(Membership(channel, jid, Role.MEMBER, state, when))
    followed = await storage.top_channels(
        by="followers", since=since, models=frozenset({AccessModel.OPEN}), limit=10
    )
    assert [(c.jid, n) for c, n in followed] == [(JULIET, 2), (ROMEO, 1)]
    # An owner is no follower, however new the channel.
    await storage.put_membership(
        Membership(TYBALT, TYBALT, Role.OWNER, SubscriptionState.SUBSCRIBED, at(20))
    )
    again = await storage.top_channels(
        by="followers", since=since, models=frozenset({AccessModel.OPEN}), limit=10
    )
    assert again == followed
    with_closed = await storage.top_channels(
        by="followers", since=since, models=frozenset(AccessModel), limit=1
    )
    assert [(c.jid, n) for c, n in with_closed] == [(NURSE, 3)]

    romeo_posts = NodeId(ROMEO, "posts")
    for item in [
        entry_item(POSTS, "old", at(5)),
        entry_item(POSTS, "j1", at(11)),
        entry_item(NodeId(JULIET, "status"), "s1", at(11)),  # not a post
        entry_item(romeo_posts, "r1", at(11), author=ROMEO),
        entry_item(romeo_posts, "r2", at(12), author=ROMEO),
        replace(entry_item(romeo_posts, "r3", at(13), author=ROMEO), payload=None, deleted=True),
    ]:
        await storage.put_item(item)
    published = await storage.top_channels(
        by="posts", since=since, models=frozenset({AccessModel.OPEN}), limit=10
    )
    assert [(c.jid, n) for c, n in published] == [(ROMEO, 2), (JULIET, 1)]


async def test_channels_not_advertised_stay_out_of_every_discovery_list(
    storage: Storage,
) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, ROMEO)
    await storage.update_channel_config(ROMEO, replace(config(ROMEO), advertised=False))
    assert (await storage.get_channel(ROMEO)).config.advertised is False
    assert (await storage.get_channel(JULIET)).config.advertised is True
    for channel in (JULIET, ROMEO):
        await storage.put_item(entry_item(NodeId(channel, "posts"), "p1", at(11), author=channel))
        await storage.put_membership(
            Membership(channel, NURSE, Role.MEMBER, SubscriptionState.SUBSCRIBED, at(11))
        )

    listed = await storage.list_channels(PageRequest(), advertised_only=True)
    assert [c.jid for c in listed.items] == [JULIET] and listed.count == 1
    assert (await storage.list_channels(PageRequest())).count == 2
    shown = await storage.list_public_items(public(AccessModel.OPEN), PageRequest())
    assert [item.node.channel for item in shown.items] == [JULIET] and shown.count == 1
    for by in ("followers", "posts"):
        top = await storage.top_channels(
            by=by, since=at(10), models=frozenset({AccessModel.OPEN}), limit=10
        )
        assert [c.jid for c, _ in top] == [JULIET], by
    # The channel itself is there for whoever knows its name.
    assert (await storage.find_item(NodeId(ROMEO, "posts"), "p1")) is not None


async def test_items_with_the_same_time_are_ordered_by_id(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    for item_id in ("b", "c", "a"):
        await storage.put_item(entry_item(POSTS, item_id, T0))
    await storage.put_item(entry_item(POSTS, "z", at(-1)))
    page = await storage.list_items(POSTS, PageRequest(max=2))
    assert ids(page.items) == ["c", "b"]
    rest = await storage.list_items(POSTS, PageRequest(max=5, after="b"))
    assert ids(rest.items) == ["a", "z"]
    before = await storage.list_items(POSTS, PageRequest(max=5, before="a"))
    assert ids(before.items) == ["c", "b"]


async def test_an_unknown_cursor_is_item_not_found(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 2)
    with pytest.raises(ItemNotFound):
        await storage.list_items(POSTS, PageRequest(after="nope"))
    with pytest.raises(ItemNotFound):
        await storage.list_items(POSTS, PageRequest(before="nope"))


async def test_a_list_cursor_must_name_an_entry_of_that_list(storage: Storage) -> None:
    """XEP-0059 on the keyset lists (channels, a channel's members, a user's channels): a
    cursor naming nothing in the list is CursorNotFound, not the page after its place."""
    for owner in (JULIET, NURSE, TYBALT):
        await make_channel(storage, owner)
    await storage.put_membership(membership(JULIET, ROMEO))
    await storage.put_membership(membership(TYBALT, ROMEO))
    # Each list pages on from its own entries, both ways.
    assert [c.jid for c in (await storage.list_channels(PageRequest(after=str(JULIET)))).items] == [
        NURSE,
        TYBALT,
    ]
    members = await storage.list_memberships(JULIET, PageRequest(before=str(ROMEO)))
    assert [m.jid for m in members.items] == [JULIET]
    mine = await storage.list_user_memberships(ROMEO, PageRequest(after=str(JULIET)))
    assert [m.channel for m, _ in mine.items] == [TYBALT]
    # "nurse@capulet.lit" sorts between entries of each list, but is not one of them.
    lists = {
        "channels": lambda page: storage.list_channels(page),
        "members": lambda page: storage.list_memberships(JULIET, page),
        "user's channels": lambda page: storage.list_user_memberships(ROMEO, page),
    }
    for name, read in lists.items():
        for page in (PageRequest(after="nobody@capulet.lit"), PageRequest(before="a b c")):
            with pytest.raises(CursorNotFound):
                await read(page)
        if name != "channels":
            with pytest.raises(CursorNotFound):  # a channel, but not in this list
                await read(PageRequest(after=str(NURSE)))
    # The user's nodes are paged by node id: a node of a channel Romeo does not follow, or
    # one that does not exist in a channel he follows, names nothing in his list.
    nodes = await storage.list_user_node_memberships(ROMEO, PageRequest(max=1))
    assert nodes.last == str(NodeId(JULIET, "posts"))
    after = await storage.list_user_node_memberships(ROMEO, PageRequest(after=nodes.last))
    assert [str(row.node.id) for row in after.items] == [
        str(NodeId(JULIET, "status")),
        str(NodeId(TYBALT, "posts")),
        str(NodeId(TYBALT, "status")),
    ]
    for missing in (NodeId(NURSE, "posts"), NodeId(JULIET, "geoloc")):
        for page in (PageRequest(after=str(missing)), PageRequest(before=str(missing))):
            with pytest.raises(CursorNotFound):
                await storage.list_user_node_memberships(ROMEO, page)
    # An unadvertised channel is no entry of the advertised list.
    hidden = await make_channel(storage, Jid.parse("hidden@capulet.lit"))
    await storage.update_channel_config(hidden.jid, replace(hidden.config, advertised=False))
    with pytest.raises(CursorNotFound):
        await storage.list_channels(PageRequest(after="hidden@capulet.lit"), advertised_only=True)


async def test_item_filters_and_their_count(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 6)
    await storage.put_item(entry_item(POSTS, "reply", at(2.5), in_reply_to="i001"))
    await storage.put_item(Item(POSTS, "gone", JULIET, at(3.5), at(3.5), None, deleted=True))

    parents = await storage.list_items(POSTS, PageRequest(), parent_only=True)
    assert "reply" not in ids(parents.items) and parents.count == 7
    live = await storage.list_items(POSTS, PageRequest(max=2), include_deleted=False)
    assert "gone" not in ids(live.items) and live.count == 7
    window = await storage.list_items(POSTS, PageRequest(), since=at(2), until=at(4))
    # The reply bumped i001 to 2.5, so it is inside the window too.
    assert ids(window.items) == ["i004", "gone", "i003", "reply", "i001"]
    assert window.count == 5


async def test_items_of_one_author_are_paged_among_themselves(storage: Storage) -> None:
    """The author filter is applied before the page is cut: no short pages, exact count."""
    await make_channel(storage, JULIET)
    for k in range(4):
        await storage.put_item(entry_item(POSTS, f"nurse{k}", at(k), author=NURSE))
    await publish_many(storage, POSTS, 5, start=10)
    first = await storage.list_items(POSTS, PageRequest(max=3), author=NURSE)
    assert ids(first.items) == ["nurse3", "nurse2", "nurse1"] and first.count == 4
    rest = await storage.list_items(POSTS, PageRequest(max=3, after=first.last), author=NURSE)
    assert ids(rest.items) == ["nurse0"]
    windowed = await storage.list_items(
        POSTS, PageRequest(), since=at(0), until=at(2), author=NURSE
    )
    assert ids(windowed.items) == ["nurse2", "nurse1"] and windowed.count == 2


async def test_counts_stay_exact_through_every_kind_of_write(storage: Storage) -> None:
    await make_channel(storage, JULIET)

    async def counts() -> tuple[int, int, int]:
        everything = await storage.list_items(POSTS, PageRequest(max=1000))
        parents = await storage.list_items(POSTS, PageRequest(max=1000), parent_only=True)
        assert everything.count == len(everything.items)
        assert parents.count == len(parents.items)
        threads = await storage.list_threads(POSTS, PageRequest(max=1))
        assert threads.count == parents.count
        return everything.count, parents.count, await storage.count_items(POSTS)

    await publish_many(storage, POSTS, 4)
    assert await counts() == (4, 4, 4)
    await storage.put_item(entry_item(POSTS, "r", at(9), in_reply_to="i000"))
    assert await counts() == (5, 4, 5)
    await storage.put_item(entry_item(POSTS, "i001", at(10), in_reply_to="i000"))  # now a reply
    assert await counts() == (5, 3, 5)
    await storage.put_item(entry_item(POSTS, "i001", at(11)))  # a parent again
    assert await counts() == (5, 4, 5)
    await storage.put_item(entry_item(POSTS, "i003", at(12)))  # replaced in place
    assert await counts() == (5, 4, 5)
    await storage.put_item(entry_item(POSTS, "new", at(13)), max_items=3)
    assert await counts() == (3, 3, 3)
    await storage.delete_node(POSTS)
    await storage.add_nodes([node(JULIET)])
    assert await counts() == (0, 0, 0)


async def test_a_reply_bumps_its_thread(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 3)
    await storage.put_item(entry_item(POSTS, "r1", at(10), in_reply_to="i000", author=ROMEO))
    parent = await storage.get_item(POSTS, "i000")
    assert parent.updated == at(10)
    assert parent.entry is not None and parent.entry.updated == at(0)
    page = await storage.list_items(POSTS, PageRequest(max=2), parent_only=True)
    assert ids(page.items) == ["i000", "i002"]

    replies = await storage.list_replies(POSTS, "i000", PageRequest())
    assert ids(replies.items) == ["r1"] and replies.count == 1
    with pytest.raises(ItemNotFound):
        await storage.list_replies(POSTS, "missing", PageRequest())


async def test_threads_by_last_activity(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 3)
    await storage.put_item(entry_item(POSTS, "r1", at(10), in_reply_to="i000"))
    await storage.put_item(entry_item(POSTS, "r2", at(11), in_reply_to="i000"))
    await storage.put_item(entry_item(POSTS, "r3", at(12), in_reply_to="i001"))
    page = await storage.list_threads(POSTS, PageRequest(max=2))
    assert [t.id for t in page.items] == ["i001", "i000"]
    assert page.count == 3 and (page.first, page.last) == ("i001", "i000")
    assert [ids(list(t.items)) for t in page.items] == [["i001", "r3"], ["i000", "r2", "r1"]]
    assert page.items[1].updated == at(11)
    rest = await storage.list_threads(POSTS, PageRequest(max=2, after=page.last))
    assert [(t.id, len(t.items)) for t in rest.items] == [("i002", 1)]


async def test_max_items_keeps_the_newest(storage: Storage) -> None:
    await make_channel(storage, JULIET, names=("posts", "status"))
    status = NodeId(JULIET, "status")
    for n in range(4):
        await storage.put_item(entry_item(status, f"s{n}", at(n)), max_items=1)
    page = await storage.list_items(status, PageRequest())
    assert ids(page.items) == ["s3"]
    for n in range(5):
        await storage.put_item(entry_item(POSTS, f"p{n}", at(n)), max_items=3)
    assert ids((await storage.list_items(POSTS, PageRequest())).items) == ["p4", "p3", "p2"]
    assert await storage.count_items(POSTS) == 3


async def test_one_rating_per_author_and_target(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 1)

    def rating(item_id: str, author: Jid, stars: int) -> Item:
        return entry_item(
            POSTS, item_id, at(5), author=author, verb="rated", target="i000", rating=stars
        )

    await storage.put_item(rating("rate1", ROMEO, 5))
    with pytest.raises(RatingError) as raised:
        await storage.put_item(rating("rate2", ROMEO, 3))
    assert raised.value.condition == "item-already-rated"
    assert await storage.find_item(POSTS, "rate2") is None
    await storage.put_item(rating("rate3", NURSE, 4))
    # Re-publishing the same rating item is a replacement, not a second rating.
    await storage.put_item(rating("rate1", ROMEO, 4))
    found = await storage.find_rating(POSTS, "i000", ROMEO)
    assert found is not None and found.id == "rate1"
    assert found.entry is not None and found.entry.rating == 4
    assert await storage.find_rating(POSTS, "i000", TYBALT) is None


async def test_a_failed_write_among_concurrent_ones_leaves_nothing(storage: Storage) -> None:
    """Concurrent writes may share a transaction; a failing one must not affect the rest."""
    await make_channel(storage, JULIET)
    await storage.put_item(
        entry_item(POSTS, "rate0", at(0), author=ROMEO, verb="rated", target="x", rating=1)
    )
    good = [storage.put_item(entry_item(POSTS, f"ok{n}", at(n + 1))) for n in range(20)]
    bad = storage.put_item(
        entry_item(POSTS, "dup", at(30), author=ROMEO, verb="rated", target="x", rating=2)
    )
    outcomes = await asyncio.gather(*good[:10], bad, *good[10:], return_exceptions=True)
    assert [type(o).__name__ for o in outcomes].count("RatingError") == 1
    assert all(o is None for n, o in enumerate(outcomes) if n != 10)
    assert await storage.count_items(POSTS) == 21
    assert await storage.find_item(POSTS, "dup") is None


async def test_a_failed_reply_does_not_bump_its_parent(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await publish_many(storage, POSTS, 1)
    await storage.put_item(
        entry_item(POSTS, "rate0", at(1), author=ROMEO, verb="rated", target="i000", rating=1)
    )
    reply_rating = entry_item(
        POSTS,
        "rate1",
        at(9),
        author=ROMEO,
        verb="rated",
        target="i000",
        rating=2,
        in_reply_to="i000",
    )
    with pytest.raises(RatingError):
        await storage.put_item(reply_rating, max_items=1)
    assert (await storage.get_item(POSTS, "i000")).updated == at(0)
    assert await storage.count_items(POSTS) == 2


# --- recent items and search ----------------------------------------------------------------


async def test_recent_items_of_followed_channels(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, NURSE)
    await make_channel(storage, TYBALT)
    await storage.put_membership(membership(JULIET, ROMEO))
    await storage.put_membership(membership(NURSE, ROMEO))
    await storage.put_membership(membership(TYBALT, ROMEO, Role.NONE, SubscriptionState.PENDING))
    nurse_posts = NodeId(NURSE, "posts")
    juliet_status = NodeId(JULIET, "status")
    for n in range(5):
        await storage.put_item(entry_item(POSTS, f"j{n}", at(10 * n)))
        await storage.put_item(entry_item(nurse_posts, f"n{n}", at(10 * n + 1), author=NURSE))
    await storage.put_item(entry_item(juliet_status, "mood", at(45)))
    await storage.put_item(entry_item(POSTS, "reply", at(46), in_reply_to="j0"))
    await storage.put_item(entry_item(NodeId(TYBALT, "posts"), "t", at(47), author=TYBALT))

    page = await storage.recent_items(
        ROMEO,
        since=at(5),
        max_per_node=2,
        parent_only=False,
        node_names=None,
        page=PageRequest(),
    )
    # Per node at most two, newest first across nodes; nothing from the pending channel.
    assert ids(page.items) == ["reply", "j0", "mood", "n4", "n3"]
    assert page.count == 5
    assert page.first == f"{POSTS},reply" and page.last == f"{nurse_posts},n3"

    def parent_posts(page: PageRequest) -> Awaitable[Page[Item]]:
        """Top-level posts of the posts nodes Romeo follows, at most three per node."""
        return storage.recent_items(
            ROMEO,
            since=at(5),
            max_per_node=3,
            parent_only=True,
            node_names=frozenset({"posts"}),
            page=page,
        )

    parents = await parent_posts(PageRequest(max=2))
    assert ids(parents.items) == ["j0", "n4"]
    assert parents.count == 6
    more = await parent_posts(PageRequest(max=10, after=parents.last))
    assert ids(more.items) == ["j4", "n3", "j3", "n2"]
    back = await parent_posts(PageRequest(max=1, before=more.first))
    assert ids(back.items) == ["n4"]
    # until and author narrow each node's pick before it is limited to max_per_node.
    nurse_until = await storage.recent_items(
        ROMEO,
        since=at(5),
        max_per_node=2,
        parent_only=False,
        node_names=None,
        page=PageRequest(),
        until=at(31),
        author=NURSE,
    )
    assert ids(nurse_until.items) == ["n3", "n2"] and nurse_until.count == 2
    with pytest.raises(ItemNotFound):
        await storage.recent_items(
            ROMEO,
            since=at(5),
            max_per_node=3,
            parent_only=True,
            node_names=None,
            page=PageRequest(after=f"{POSTS},unknown"),
        )


async def test_search_finds_all_words_in_readable_channels(storage: Storage) -> None:
    await make_channel(storage, JULIET, access=AccessModel.OPEN)
    await make_channel(storage, NURSE, access=AccessModel.AUTHORIZE)
    await make_channel(storage, TYBALT, access=AccessModel.AUTHORIZE)
    await storage.put_membership(membership(TYBALT, ROMEO))
    await storage.put_membership(membership(NURSE, ROMEO, Role.OUTCAST, SubscriptionState.NONE))
    tybalt_posts = NodeId(TYBALT, "posts")
    await storage.put_item(entry_item(POSTS, "a", at(1), content="the rose smells sweet"))
    await storage.put_item(entry_item(POSTS, "b", at(2), title="Rose", content="by any name"))
    await storage.put_item(entry_item(POSTS, "c", at(3), content="a sweet rose", author=NURSE))
    await storage.put_item(entry_item(NodeId(NURSE, "posts"), "n", at(4), content="sweet rose"))
    await storage.put_item(entry_item(tybalt_posts, "t", at(5), content="Sweet ROSE"))
    await storage.put_item(Item(POSTS, "gone", JULIET, at(6), at(6), None, deleted=True))

    romeo = read_scope(ROMEO, requester_is_local=False)
    both = await storage.search_items(SearchQuery(("rose", "sweet"), None, romeo), PageRequest())
    assert ids(both.items) == ["t", "c", "a"]
    assert both.count == 3
    rose = await storage.search_items(SearchQuery(("rose",), None, romeo), PageRequest(max=2))
    assert ids(rose.items) == ["t", "c"] and rose.count == 4
    after = await storage.search_items(
        SearchQuery(("rose",), None, romeo), PageRequest(max=5, after=rose.last)
    )
    assert ids(after.items) == ["b", "a"]
    by_nurse = await storage.search_items(SearchQuery(("rose",), NURSE, romeo), PageRequest())
    assert ids(by_nurse.items) == ["c"]
    outsider = read_scope(Jid.parse("paris@verona.lit"), requester_is_local=False)
    public = await storage.search_items(SearchQuery(("sweet",), None, outsider), PageRequest())
    assert ids(public.items) == ["c", "a"]
    quoted = await storage.search_items(
        SearchQuery(('"rose', "AND", "NEAR("), None, outsider), PageRequest()
    )
    assert quoted.items == []


async def test_search_pages_by_offset_and_counts_every_match(storage: Storage) -> None:
    """Numbered result pages (jabber:iq:search rpp and page) skip the earlier pages' results."""
    await make_channel(storage, JULIET)
    await asyncio.gather(
        *(
            storage.put_item(entry_item(POSTS, f"r{k:02d}", at(k), content=f"rose {k}"))
            for k in range(12)
        )
    )
    scope = read_scope(ROMEO, requester_is_local=False)
    query = SearchQuery(("rose",), None, scope)
    pages = [
        await storage.search_items(query, PageRequest(max=5), offset=offset)
        for offset in (0, 5, 10, 15)
    ]
    assert [ids(page.items) for page in pages] == [
        ["r11", "r10", "r09", "r08", "r07"],
        ["r06", "r05", "r04", "r03", "r02"],
        ["r01", "r00"],
        [],
    ]
    assert {page.count for page in pages} == {12}
    with pytest.raises(InvalidPaging):
        await storage.search_items(query, PageRequest(max=5), offset=-1)


async def test_search_sees_edits(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await storage.put_item(entry_item(POSTS, "a", at(1), content="nightingale"))
    await storage.put_item(entry_item(POSTS, "a", at(2), content="lark"))
    scope = read_scope(ROMEO, requester_is_local=False)
    old = await storage.search_items(SearchQuery(("nightingale",), None, scope), PageRequest())
    new = await storage.search_items(SearchQuery(("lark",), None, scope), PageRequest())
    assert old.items == [] and ids(new.items) == ["a"]


async def test_channel_search_finds_every_word_in_titles_and_descriptions(
    storage: Storage,
) -> None:
    """Metadata search (`/api/search?type=metadata`): advertised channels whose title or
    description hold every word, whole words with case ignored, by JID."""
    garden = Jid.parse("garden@topics.capulet.lit")
    tomb = Jid.parse("tomb@topics.capulet.lit")
    hidden = Jid.parse("hidden@topics.capulet.lit")
    for jid, title, description, advertised in [
        (garden, "The Capulet Orchard", "where Romeo climbs the wall", True),
        (tomb, "Tomb", "the Capulets' monument, by the orchard", True),
        (hidden, "Secret orchard", "not listed anywhere", False),
        (JULIET, "Juliet", "on the Balcony", True),
    ]:
        channel = Channel(
            jid,
            replace(config(jid), title=title, description=description, advertised=advertised),
        )
        await storage.create_channel(channel, [node(jid)], membership(jid, JULIET, Role.OWNER))

    def jids(page: Page[Channel]) -> list[str]:
        return [str(channel.jid) for channel in page.items]

    orchard = await storage.search_channels(("orchard",), PageRequest())
    assert jids(orchard) == [str(garden), str(tomb)] and orchard.count == 2
    assert orchard.first == str(garden) and orchard.last == str(tomb)
    both = await storage.search_channels(("ORCHARD", "wall"), PageRequest())
    assert jids(both) == [str(garden)]
    assert jids(await storage.search_channels(("balcony",), PageRequest())) == [str(JULIET)]
    assert (await storage.search_channels(("orch",), PageRequest())).items == []
    quoted = await storage.search_channels(('"orchard', "AND", "NEAR("), PageRequest())
    assert quoted.items == []

    first = await storage.search_channels(("orchard",), PageRequest(max=1))
    rest = await storage.search_channels(("orchard",), PageRequest(max=1, after=first.last))
    skipped = await storage.search_channels(("orchard",), PageRequest(max=5), offset=1)
    assert jids(first) == [str(garden)] and jids(rest) == jids(skipped) == [str(tomb)]
    assert skipped.count == 2
    with pytest.raises(InvalidPaging):
        await storage.search_channels(("orchard",), PageRequest(), offset=-1)


async def test_channel_search_sees_configuration_changes_and_deletions(storage: Storage) -> None:
    await make_channel(storage, JULIET)
    await make_channel(storage, NURSE)
    await storage.update_channel_config(
        JULIET, replace(config(JULIET), title="Nightingale", description="not the lark")
    )
    await storage.delete_channel(NURSE)

    old = await storage.search_channels(("juliet's",), PageRequest())
    new = await storage.search_channels(("lark",), PageRequest())
    gone = await storage.search_channels(("channel",), PageRequest())
    assert old.items == [] and [c.jid for c in new.items] == [JULIET]
    assert gone.items == [] and gone.count == 0


# --- the built-in user database ----------------------------------------------------------


async def test_accounts_are_kept_found_updated_and_deleted(storage: Storage) -> None:
    from buddycloud.domain.errors import AccountExists, AccountNotFound
    from buddycloud.domain.model import Account

    juliet = Account(Jid.parse("juliet@capulet.lit"), "$argon2id$hash", "j@example.org", at(1))
    await storage.insert_account(juliet)

    assert await storage.find_account(juliet.jid) == juliet
    assert await storage.find_account(Jid.parse("romeo@capulet.lit")) is None
    with pytest.raises(AccountExists):
        await storage.insert_account(juliet)

    await storage.update_account_password(juliet.jid, "$argon2id$other")
    found = await storage.find_account(juliet.jid)
    assert found is not None and found.password_hash == "$argon2id$other"

    await storage.delete_account(juliet.jid)
    assert await storage.find_account(juliet.jid) is None
    with pytest.raises(AccountNotFound):
        await storage.delete_account(juliet.jid)
    with pytest.raises(AccountNotFound):
        await storage.update_account_password(juliet.jid, "$argon2id$again")


async def test_a_server_key_is_stored_once_and_kept(storage: Storage) -> None:
    first = await storage.get_or_insert_server_key("token_key", "first-value")
    racing = await asyncio.gather(
        *(storage.get_or_insert_server_key("other_key", f"value-{n}") for n in range(5))
    )

    assert first == "first-value"
    assert await storage.get_or_insert_server_key("token_key", "second-value") == "first-value"
    assert len(set(racing)) == 1 and racing[0].startswith("value-")
    assert await storage.get_or_insert_server_key("other_key", "late") == racing[0]


async def test_sign_in_generations_start_at_zero_and_only_go_up(storage: Storage) -> None:
    juliet, romeo = Jid.parse("juliet@capulet.lit"), Jid.parse("romeo@capulet.lit")
    assert await storage.find_sign_in_generation(juliet) == 0

    assert await storage.raise_sign_in_generation(juliet) == 1
    raised = await asyncio.gather(*(storage.raise_sign_in_generation(juliet) for _ in range(4)))

    assert sorted(raised) == [2, 3, 4, 5]
    assert await storage.find_sign_in_generation(juliet) == 5
    assert await storage.find_sign_in_generation(romeo) == 0


async def test_a_password_reset_is_taken_once_and_not_after_it_expires(storage: Storage) -> None:
    juliet, romeo = Jid.parse("juliet@capulet.lit"), Jid.parse("romeo@capulet.lit")
    await storage.insert_password_reset("first", juliet, at(100))
    await storage.insert_password_reset("second", juliet, at(100))
    await storage.insert_password_reset("romeo's", romeo, at(100))
    await storage.insert_password_reset("stale", romeo, at(5))

    assert await storage.take_password_reset("first", at(10)) == juliet
    assert await storage.take_password_reset("first", at(10)) is None
    assert await storage.take_password_reset("second", at(10)) is None  # one reset per account
    assert await storage.take_password_reset("stale", at(10)) is None
    assert await storage.take_password_reset("unknown", at(10)) is None
    assert await storage.take_password_reset("romeo's", at(100)) is None  # expired now


# --- the archive of changes -------------------------------------------------------------


def archive_query(requester: Jid, **options: Any) -> ArchiveQuery:
    """What `requester` may see, per access model, as the permission tables say."""

    def scope(operation: Operation) -> dict[AccessModel, frozenset[Role]]:
        return {
            model: frozenset(
                role for role in Role if may(operation, role, model, requester_is_local=False)
            )
            for model in AccessModel
        }

    return ArchiveQuery(
        requester,
        items=scope(Operation.READ_ITEMS),
        followers=scope(Operation.READ_FOLLOWERS),
        staff=scope(Operation.READ_PENDING),
        **options,
    )


def described(entries: list[ArchiveEntry]) -> list[tuple[str, ...]]:
    """Each entry as (kind, channel, what): the item id, the member and state or role."""
    found: list[tuple[str, ...]] = []
    for entry in entries:
        what: tuple[str, ...]
        if entry.item is not None:
            what = (entry.item.id,)
        elif entry.kind is ArchiveKind.CONFIGURATION:
            assert entry.node is not None
            what = (entry.node.id.name,)
        else:
            assert entry.membership is not None
            value = (
                entry.membership.role.value
                if entry.kind is ArchiveKind.AFFILIATION
                else entry.membership.subscription.value
            )
            what = (entry.membership.jid.local, value)
        found.append((entry.kind.name.lower(), entry.channel.jid.local, *what))
    return found


async def romeos_world(storage: Storage) -> None:
    """Romeo follows Juliet, moderates the nurse's channel, waits for Tybalt's approval
    and is banned by Mercutio; each channel sees some changes after at(0.5)."""
    await make_channel(storage, JULIET)
    await make_channel(storage, NURSE, ("posts",))
    await make_channel(storage, TYBALT, ("posts",), AccessModel.AUTHORIZE)
    await make_channel(storage, MERCUTIO, ("posts",))

    async def change(channel: Jid, jid: Jid, role: Role, state: str, when: float) -> None:
        await storage.put_membership(
            Membership(channel, jid, role, SubscriptionState(state), at(when))
        )

    await change(JULIET, ROMEO, Role.MEMBER, "subscribed", 1)
    await change(TYBALT, ROMEO, Role.NONE, "pending", 2)
    await change(NURSE, ROMEO, Role.MODERATOR, "subscribed", 2.5)
    await change(MERCUTIO, ROMEO, Role.OUTCAST, "none", 2.7)
    await change(JULIET, NURSE, Role.MEMBER, "subscribed", 3)
    await change(JULIET, TYBALT, Role.NONE, "pending", 4)
    await change(JULIET, BENVOLIO, Role.OUTCAST, "none", 5)
    await change(JULIET, PARIS, Role.PUBLISHER, "none", 5.5)  # a role, no follow
    await change(NURSE, TYBALT, Role.NONE, "pending", 6)
    await change(NURSE, BENVOLIO, Role.OUTCAST, "none", 7)
    await change(NURSE, JULIET, Role.MEMBER, "subscribed", 7.5)
    await storage.delete_membership(NURSE, JULIET, at=at(8))
    juliet = await storage.get_channel(JULIET)
    await storage.update_channel_config(JULIET, replace(juliet.config, title="new", updated=at(9)))
    await storage.put_item(entry_item(POSTS, "i0", at(10)))
    await storage.put_item(entry_item(NodeId(JULIET, "status"), "s0", at(11)))
    await storage.put_item(entry_item(NodeId(NURSE, "posts"), "n0", at(12), author=NURSE))
    await storage.put_item(Item(POSTS, "gone", JULIET, at(10), at(13), None, deleted=True))
    await storage.put_item(entry_item(NodeId(TYBALT, "posts"), "t0", at(12), author=TYBALT))
    await storage.put_item(entry_item(NodeId(MERCUTIO, "posts"), "m0", at(12), author=MERCUTIO))


# Subscriptions show with their roles; a role alone only where the subscription does not.
ROMEOS_ARCHIVE = [
    ("subscription", "juliet", "romeo", "subscribed"),
    ("subscription", "tybalt", "romeo", "pending"),
    ("subscription", "nurse", "romeo", "subscribed"),
    ("subscription", "juliet", "nurse", "subscribed"),
    ("affiliation", "juliet", "paris", "publisher"),
    ("subscription", "nurse", "tybalt", "pending"),
    ("authorization", "nurse", "tybalt", "pending"),
    ("subscription", "nurse", "benvolio", "none"),
    ("subscription", "nurse", "juliet", "none"),
    ("configuration", "juliet", "posts"),
    ("configuration", "juliet", "status"),
    ("item", "juliet", "i0"),
    ("item", "juliet", "s0"),
    ("item", "nurse", "n0"),
    ("item", "juliet", "gone"),
]


async def test_the_archive_holds_what_the_requester_may_see_oldest_first(
    storage: Storage,
) -> None:
    """Followers see items and subscribed followers; moderators also requests, bans and
    ends; everyone their own membership; a pending follower no items; a banned user
    nothing of that channel."""
    await romeos_world(storage)
    page = await storage.list_archive(
        archive_query(ROMEO, start=at(0.5)), PageRequest(max=MAX_PAGE)
    )
    assert described(page.items) == ROMEOS_ARCHIVE
    assert (page.count, page.complete) == (len(ROMEOS_ARCHIVE), True)
    assert [entry.at for entry in page.items] == sorted(entry.at for entry in page.items)
    assert page.first == page.items[0].cursor and page.last == page.items[-1].cursor
    gone = page.items[-1]
    assert gone.item is not None and gone.item.deleted
    assert gone.node is not None and gone.node.id == POSTS
    configuration = next(e for e in page.items if e.kind is ArchiveKind.CONFIGURATION)
    assert configuration.channel.config.title == "new" and configuration.at == at(9)
    banned = next(e for e in page.items if e.membership and e.membership.jid == BENVOLIO)
    assert banned.membership is not None and banned.membership.role is Role.OUTCAST
    # Bounds are inclusive; an end leaves the later changes out.
    window = await storage.list_archive(
        archive_query(ROMEO, start=at(9), end=at(11)), PageRequest()
    )
    in_window = [e for e in ROMEOS_ARCHIVE if e[0] == "configuration" or e[-1] in ("i0", "s0")]
    assert described(window.items) == in_window and window.count == 4
    # The nurse, owner of her channel, sees its changes and Juliet's, which she follows.
    nurse = await storage.list_archive(archive_query(NURSE, start=at(0.5)), PageRequest())
    assert ("authorization", "nurse", "tybalt", "pending") in described(nurse.items)
    assert ("subscription", "juliet", "tybalt", "pending") not in described(nurse.items)


async def test_the_archive_pages_forwards_and_backwards(storage: Storage) -> None:
    await romeos_world(storage)
    query = archive_query(ROMEO, start=at(0.5))
    forward: list[ArchiveEntry] = []
    page = await storage.list_archive(query, PageRequest(max=5))
    pages = [page]
    while not page.complete:
        page = await storage.list_archive(query, PageRequest(max=5, after=page.last))
        pages.append(page)
    for each in pages:
        forward.extend(each.items)
        assert each.count == len(ROMEOS_ARCHIVE)
    assert [len(each.items) for each in pages] == [5, 5, 5]
    assert described(forward) == ROMEOS_ARCHIVE

    backward: list[ArchiveEntry] = []
    page = await storage.list_archive(query, PageRequest(max=5, last_page=True))
    while True:
        backward = page.items + backward
        if page.complete:
            break
        page = await storage.list_archive(query, PageRequest(max=5, before=page.first))
    assert described(backward) == ROMEOS_ARCHIVE
    exact = await storage.list_archive(query, PageRequest(max=3, after=forward[-4].cursor))
    assert described(exact.items) == ROMEOS_ARCHIVE[-3:] and exact.complete
    counted = await storage.list_archive(query, PageRequest(max=0))
    assert (counted.items, counted.count) == ([], len(ROMEOS_ARCHIVE))
    nothing = await storage.list_archive(archive_query(ROMEO, kinds=frozenset()), PageRequest())
    assert (nothing.items, nothing.count, nothing.complete) == ([], 0, True)
    for cursor in ("nope", "1,9,a,b,c", "1,0,a,b", "999999999999999999,0,a,b,c", "1,0,%ff,b,c"):
        with pytest.raises(InvalidPaging):
            await storage.list_archive(query, PageRequest(after=cursor))
    # A position whose entry is gone names nothing (XEP-0059); one whose entry changed
    # since still marks its place, and the change comes again later.
    nowhere = forward[0].cursor.replace("juliet@capulet.lit", "nobody@capulet.lit")
    with pytest.raises(CursorNotFound):
        await storage.list_archive(query, PageRequest(after=nowhere))
    i0 = next(entry for entry in forward if entry.item is not None and entry.item.id == "i0")
    await storage.put_item(entry_item(POSTS, "i0", at(30), content="edited"))
    later = await storage.list_archive(query, PageRequest(max=MAX_PAGE, after=i0.cursor))
    assert described(later.items) == [
        *ROMEOS_ARCHIVE[ROMEOS_ARCHIVE.index(("item", "juliet", "i0")) + 1 :],
        ("item", "juliet", "i0"),
    ]


async def test_the_archive_of_items_only_pages_every_node_together(storage: Storage) -> None:
    """Many items in several nodes: each node gives at most a page, in order, and the
    author filter applies before the page is cut."""
    await romeos_world(storage)
    nurse_posts = NodeId(NURSE, "posts")
    for k in range(30):
        await storage.put_item(entry_item(POSTS, f"j{k:02d}", at(20 + 2 * k)))
        await storage.put_item(entry_item(nurse_posts, f"n{k:02d}", at(21 + 2 * k), author=NURSE))
    query = archive_query(ROMEO, kinds=frozenset({ArchiveKind.ITEM}), start=at(20))
    seen: list[str] = []
    page = await storage.list_archive(query, PageRequest(max=7))
    while True:
        seen.extend(entry.item.id for entry in page.items if entry.item is not None)
        if page.complete:
            break
        page = await storage.list_archive(query, PageRequest(max=7, after=page.last))
    assert seen == [f"{prefix}{k:02d}" for k in range(30) for prefix in ("j", "n")]
    by_nurse = await storage.list_archive(
        archive_query(ROMEO, kinds=frozenset({ArchiveKind.ITEM}), author=NURSE),
        PageRequest(max=3),
    )
    assert [entry.item.id for entry in by_nurse.items if entry.item] == ["n0", "n00", "n01"]
    assert by_nurse.count == 31 and by_nurse.complete is False


# --- federation's outbox -------------------------------------------------------------------


async def test_the_outbox_keeps_each_domains_events_in_order(storage: Storage) -> None:
    await storage.enqueue_outbox(["montague.lit", "verona.lit"], "<event>1</event>", at(1))
    await storage.enqueue_outbox(["montague.lit"], "<event>2</event>", at(2))
    await storage.enqueue_outbox([], "<event>nobody</event>", at(3))
    await storage.enqueue_outbox(["verona.lit", "montague.lit"], "<event>3 é</event>", at(4))

    montague = await storage.read_outbox("montague.lit", max_bytes=1 << 16, max_rows=100)
    assert [entry.body for entry in montague] == [
        "<event>1</event>",
        "<event>2</event>",
        "<event>3 é</event>",
    ]
    assert [entry.created for entry in montague] == [at(1), at(2), at(4)]
    assert montague[0].sequence < montague[1].sequence < montague[2].sequence
    verona = await storage.read_outbox("verona.lit", max_bytes=1 << 16, max_rows=100)
    assert [entry.body for entry in verona] == ["<event>1</event>", "<event>3 é</event>"]
    assert await storage.read_outbox("padua.lit", max_bytes=1 << 16, max_rows=100) == []


async def test_an_outbox_batch_fits_its_byte_budget_and_holds_at_least_one(
    storage: Storage,
) -> None:
    for n in range(5):
        await storage.enqueue_outbox(["montague.lit"], f"<e>{n}</e>" + "é" * 10, at(n))
    size = len(("<e>0</e>" + "é" * 10).encode())  # 28 bytes, 18 characters
    two = await storage.read_outbox("montague.lit", max_bytes=2 * size + 1, max_rows=100)
    assert [entry.body[:8] for entry in two] == ["<e>0</e>", "<e>1</e>"]
    one = await storage.read_outbox("montague.lit", max_bytes=1, max_rows=100)
    assert [entry.body[:8] for entry in one] == ["<e>0</e>"]
    three = await storage.read_outbox("montague.lit", max_bytes=1 << 16, max_rows=3)
    assert len(three) == 3


async def test_a_delivered_batch_goes_and_the_status_tells_each_domain(storage: Storage) -> None:
    await storage.enqueue_outbox(["montague.lit", "verona.lit"], "<e>1</e>", at(1))
    await storage.enqueue_outbox(["montague.lit"], "<e>2</e>", at(2))
    await storage.enqueue_outbox(["montague.lit"], "<e>3</e>", at(3))
    assert await storage.list_outbox_status() == [
        OutboxStatus("montague.lit", None, 3, None, None, None, 0),
        OutboxStatus("verona.lit", None, 1, None, None, None, 0),
    ]

    await storage.record_outbox_failure(
        "montague.lit", at=at(10), server=None, error="no channel server found"
    )
    await storage.record_outbox_failure(
        "montague.lit", at=at(11), server="channels.montague.lit", error="no answer in 10 s"
    )
    await storage.record_outbox_failure(
        "montague.lit", at=at(12), server=None, error="no channel server found"
    )
    [montague, _] = await storage.list_outbox_status()
    assert montague == OutboxStatus(
        "montague.lit", "channels.montague.lit", 3, None, "no channel server found", at(12), 3
    )

    batch = await storage.read_outbox("montague.lit", max_bytes=1 << 16, max_rows=2)
    await storage.delete_outbox(
        "montague.lit", [e.sequence for e in batch], at=at(20), server="channels.montague.lit"
    )
    left = await storage.read_outbox("montague.lit", max_bytes=1 << 16, max_rows=100)
    assert [entry.body for entry in left] == ["<e>3</e>"]
    # verona's copy of the first event stays.
    assert len(await storage.read_outbox("verona.lit", max_bytes=1 << 16, max_rows=100)) == 1
    [montague, verona] = await storage.list_outbox_status()
    assert montague == OutboxStatus(
        "montague.lit", "channels.montague.lit", 1, at(20), "no channel server found", at(12), 0
    )
    assert verona.depth == 1

    # A batch refused for good goes too, and its reason is the last error.
    await storage.delete_outbox(
        "montague.lit",
        [left[0].sequence],
        at=at(30),
        server="channels.montague.lit",
        error="refused: forbidden",
    )
    [montague, _] = await storage.list_outbox_status()
    assert montague == OutboxStatus(
        "montague.lit", "channels.montague.lit", 0, at(20), "refused: forbidden", at(30), 0
    )
