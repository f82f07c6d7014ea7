"""The permission matrix over HTTP: every role x access model x operation, performed for real
through uvicorn, each answer compared with what the engine's permission rules say.

Expectations are derived from `buddycloud.domain.permissions` (`may` and
`check_role_change`), never written out here, so the matrix follows the engine when a rule
changes. An allowed operation answers its success status; a refused one 401 to a guest and
403 to a signed-in user (reference 9.1). Every user here is of the channel's home domain,
so under `local` a signed-in non-follower reads as under `open` (ProtoXEP table 3).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import httpx
import pytest
from http_support import Server

from buddycloud.domain.errors import Forbidden
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Item,
    Membership,
    NodeId,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation, check_role_change, may
from buddycloud.services.config import ConfigUpdate, EntryDraft

DOMAIN = "capulet.lit"
OWNER = Jid.parse(f"juliet@{DOMAIN}")
GUEST = Jid.parse(f"anonymous@anon.{DOMAIN}")


@dataclass(frozen=True)
class Actor:
    """A column of the matrix: who asks, their role and follow, signed in or not."""

    name: str
    role: Role
    subscription: SubscriptionState = SubscriptionState.SUBSCRIBED

    @property
    def anonymous(self) -> bool:
        return self.name == "anonymous"

    @property
    def jid(self) -> Jid:
        if self.anonymous:
            return GUEST
        return OWNER if self.role is Role.OWNER else Jid.parse(f"{self.name}@{DOMAIN}")


ACTORS = [
    Actor("owner", Role.OWNER),
    Actor("moderator", Role.MODERATOR),
    Actor("poster", Role.PUBLISHER),
    Actor("follower", Role.MEMBER),
    Actor("outsider", Role.NONE, SubscriptionState.NONE),
    Actor("banned", Role.OUTCAST, SubscriptionState.NONE),
    Actor("pending", Role.NONE, SubscriptionState.PENDING),
    Actor("anonymous", Role.NONE, SubscriptionState.NONE),
]


def allowed(operation: Operation, actor: Actor, model: AccessModel) -> bool:
    return may(
        operation,
        actor.role,
        model,
        requester_is_local=not actor.anonymous,
        requester_is_anonymous=actor.anonymous,
    )


def role_change_allowed(actor: Actor, new_role: Role) -> bool:
    try:
        check_role_change(
            actor=actor.jid,
            actor_role=actor.role,
            target=Jid.parse(f"target@{DOMAIN}"),
            target_role=Role.MEMBER,
            new_role=new_role,
            actor_is_anonymous=actor.anonymous,
        )
    except Forbidden:
        return False
    return True


@dataclass
class Channel:
    """One channel of the matrix, with what its cells need."""

    server: Server
    model: AccessModel
    node: NodeId
    parent: str
    serial: itertools.count[int]

    @property
    def path(self) -> str:
        return f"/api/{self.node.channel}"

    def fresh(self, what: str) -> Jid:
        return Jid.parse(f"{what}-{next(self.serial)}@{DOMAIN}")

    async def item_by(self, author: Jid) -> str:
        """An item written by `author`, put in place directly: the cell under test is the
        deletion, not the posting."""
        engine = self.server.app.engine
        item = await engine.publish(OWNER, self.node, EntryDraft(content="seed", byte_size=4))
        entry = item.entry
        assert entry is not None
        await engine.storage.put_item(
            replace(item, author=author, payload=replace(entry, author=author))
        )
        return item.id

    async def follower(self) -> Jid:
        jid = self.fresh("follower")
        await self.server.app.engine.set_role(OWNER, self.node, jid, Role.MEMBER)
        return jid

    async def pending(self) -> Jid:
        jid = self.fresh("asking")
        now = self.server.app.engine.clock.now()
        await self.server.app.engine.storage.put_membership(
            Membership(self.node.channel, jid, Role.NONE, SubscriptionState.PENDING, now)
        )
        return jid


Perform = Callable[[httpx.AsyncClient, Channel, Actor], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Cell:
    """An operation of the matrix: how to do it over HTTP, its success status, and whether
    the engine's rules allow it to an actor under a model."""

    name: str
    perform: Perform
    success: int
    expected: Callable[[Actor, AccessModel], bool]


async def _read_posts(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/content/posts")


async def _read_one(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/content/posts/{ch.parent}")


async def _read_replies(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/content/posts/{ch.parent}/replyto")


async def _read_threads(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/content/posts/threads")


async def _post(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.post(f"{ch.path}/content/posts", json={"content": "a post"})


async def _reply(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.post(f"{ch.path}/content/posts", json={"content": "re", "replyTo": ch.parent})


async def _delete_own(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.delete(f"{ch.path}/content/posts/{await ch.item_by(a.jid)}")


async def _delete_others(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    author = ch.fresh("author")
    return await c.delete(f"{ch.path}/content/posts/{await ch.item_by(author)}")


async def _read_followers(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/subscribers/posts")


async def _read_follow_states(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/subscribers/posts/approve")


async def _change_role(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    target = await ch.follower()
    return await c.post(f"{ch.path}/subscribers/posts", json={str(target): "publisher"})


async def _ban(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    target = await ch.follower()
    return await c.post(f"{ch.path}/subscribers/posts", json={str(target): "outcast"})


async def _approve(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    target = await ch.pending()
    return await c.post(
        f"{ch.path}/subscribers/posts/approve",
        json=[{"jid": str(target), "subscription": "subscribed"}],
    )


async def _read_metadata(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.get(f"{ch.path}/metadata/posts")


async def _change_title(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.post(f"{ch.path}/metadata/posts", json={"title": f"by {a.name}"})


async def _change_description(c: httpx.AsyncClient, ch: Channel, a: Actor) -> httpx.Response:
    return await c.post(f"{ch.path}/metadata/posts", json={"description": f"by {a.name}"})


def _may(operation: Operation) -> Callable[[Actor, AccessModel], bool]:
    return lambda actor, model: allowed(operation, actor, model)


CELLS = [
    Cell("read posts", _read_posts, 200, _may(Operation.READ_ITEMS)),
    Cell("read one post", _read_one, 200, _may(Operation.READ_ITEMS)),
    Cell("read replies", _read_replies, 200, _may(Operation.READ_ITEMS)),
    Cell("read threads", _read_threads, 200, _may(Operation.READ_ITEMS)),
    Cell("post", _post, 201, _may(Operation.PUBLISH)),
    Cell("reply", _reply, 201, _may(Operation.PUBLISH)),
    Cell("delete own post", _delete_own, 204, _may(Operation.RETRACT_OWN)),
    Cell("delete another's post", _delete_others, 204, _may(Operation.RETRACT_ANY)),
    Cell("read followers", _read_followers, 200, _may(Operation.READ_FOLLOWERS)),
    # The follow states (row 20) need a sign-in in the original API, then table 5.
    Cell(
        "read follow states",
        _read_follow_states,
        200,
        lambda actor, model: (
            not actor.anonymous and allowed(Operation.READ_FOLLOWERS, actor, model)
        ),
    ),
    Cell("change a role", _change_role, 200, lambda a, m: role_change_allowed(a, Role.PUBLISHER)),
    Cell("ban", _ban, 200, lambda a, m: role_change_allowed(a, Role.OUTCAST)),
    Cell("approve a request", _approve, 200, _may(Operation.APPROVE_PENDING)),
    Cell("read metadata", _read_metadata, 200, _may(Operation.READ_METADATA)),
    Cell("change the title", _change_title, 200, _may(Operation.CONFIGURE_TITLE)),
    Cell("change the description", _change_description, 200, _may(Operation.CONFIGURE_DESCRIPTION)),
]


async def _channel(server: Server, model: AccessModel, serial: itertools.count[int]) -> Channel:
    engine = server.app.engine
    node = NodeId(Jid.parse(f"{model.value}@topics.{DOMAIN}"), "posts")
    await engine.create_node(OWNER, node, ConfigUpdate(access_model=model))
    for actor in ACTORS:
        if actor.role is Role.OWNER or actor.anonymous:
            continue
        if actor.subscription is SubscriptionState.PENDING:
            now = engine.clock.now()
            await engine.storage.put_membership(
                Membership(node.channel, actor.jid, Role.NONE, SubscriptionState.PENDING, now)
            )
        elif actor.role is not Role.NONE:
            await engine.subscribe(actor.jid, node, actor.jid)
            await engine.set_subscription(OWNER, node, actor.jid, SubscriptionState.SUBSCRIBED)
            await engine.set_role(OWNER, node, actor.jid, actor.role)
    parent: Item = await engine.publish(OWNER, node, EntryDraft(content="parent", byte_size=6))
    await engine.publish(
        OWNER, node, EntryDraft(content="reply", in_reply_to=parent.id, byte_size=5)
    )
    return Channel(server, model, node, parent.id, serial)


@pytest.fixture
async def actors(server: Server) -> Server:
    await server.add_user("juliet")
    for actor in ACTORS:
        if actor.role is not Role.OWNER and not actor.anonymous:
            await server.add_user(actor.name)
    return server


@pytest.mark.parametrize("model", list(AccessModel))
async def test_every_cell_answers_as_the_engine_rules_say(
    actors: Server, model: AccessModel
) -> None:
    channel = await _channel(actors, model, itertools.count())
    mismatches = []
    checked = 0
    for actor in ACTORS:
        user = None if actor.anonymous else ("juliet" if actor.role is Role.OWNER else actor.name)
        async with actors.client(user) as client:
            for cell in CELLS:
                answer = await cell.perform(client, channel, actor)
                expected = cell.expected(actor, model)
                status = cell.success if expected else (401 if actor.anonymous else 403)
                checked += 1
                if answer.status_code != status:
                    mismatches.append(
                        f"{actor.name} / {cell.name}: {answer.status_code} {answer.text[:120]}, "
                        f"expected {status}"
                    )
            mismatches.extend(await _lists_seen(client, channel, actor))
    assert checked == len(ACTORS) * len(CELLS)
    assert mismatches == []


async def _lists_seen(client: httpx.AsyncClient, channel: Channel, actor: Actor) -> list[str]:
    """Table 5: the banned and pending lists only for those READ_BANNED and READ_PENDING
    allow, inside the lists READ_FOLLOWERS lets them see at all."""
    roles = await _read_followers(client, channel, actor)
    states = await _read_follow_states(client, channel, actor)
    sees_banned = roles.status_code == 200 and "outcast" in roles.json().values()
    sees_pending = states.status_code == 200 and any(
        entry["subscription"] == "pending" for entry in states.json()
    )
    model = channel.model
    may_read = allowed(Operation.READ_FOLLOWERS, actor, model)
    expected_banned = may_read and allowed(Operation.READ_BANNED, actor, model)
    expected_pending = (
        not actor.anonymous and may_read and allowed(Operation.READ_PENDING, actor, model)
    )
    if (sees_banned, sees_pending) == (expected_banned, expected_pending):
        return []
    return [
        f"{actor.name}: sees banned {sees_banned}, pending {sees_pending}; "
        f"expected {expected_banned}, {expected_pending}"
    ]
