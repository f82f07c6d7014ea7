"""Archives: a node's items in chronological order (XEP-0313), and the inbox sync that
replays every change of the channels a user follows (reference row 32, `urn:xmpp:mam:tmp`).

The inbox sync replays what storage keeps: the current version of every item and
tombstone changed since a time, the current state of every membership and channel
configuration changed since then, and the follow requests waiting since then. Changes
since overwritten show as they stand now; deleted channels and nodes are not replayed.
Each change comes as the event that announced it live, and only to those who may see it
now, by the same tables (docs/permissions.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
from buddycloud.domain.model import (
    AccessModel,
    Item,
    NodeId,
    Page,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation, may
from buddycloud.services.items import _with_item_cursors
from buddycloud.services.users import UserOps
from buddycloud.storage.base import ARCHIVE_KINDS, ArchiveEntry, ArchiveKind, ArchiveQuery

# Archive bounds are inclusive (XEP-0313 §4.1.2); storage's `since` is exclusive, and
# timestamps are exact to the microsecond on every backend.
_TICK = timedelta(microseconds=1)


def _exclusive(start: datetime | None) -> datetime | None:
    if start is None or start.replace(tzinfo=None) - datetime.min < _TICK:
        return None  # nothing is older than the first instant a datetime can hold
    return start - _TICK


class ArchiveOps(UserOps):
    async def archive_items(
        self,
        requester: Jid,
        node: NodeId,
        page: PageRequest,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        author: Jid | None = None,
    ) -> Page[Item]:
        """A node's items oldest first (XEP-0313 §4.2), paged by XEP-0059: without a
        cursor the first (oldest) page, `after` towards newer items, `before` (or the last
        page) towards older ones; each page oldest first. An item counts at the time of
        its last activity (`updated`). `start` and `end` are inclusive; `author` keeps
        one author's items.

        Raises:
            NodeNotFound, ClosedNode, Banned, SubscriptionPending, ItemNotFound (cursor)
        """
        await self._readable(requester, node)
        return await self.storage.list_items(
            node,
            _with_item_cursors(page),
            since=_exclusive(start),
            until=end,
            author=author,
            chronological=True,
        )

    async def archive_feed(
        self,
        requester: Jid,
        page: PageRequest,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        author: Jid | None = None,
    ) -> Page[ArchivedEvent]:
        """The items of every channel the requester follows and may read, oldest first
        across nodes, paged as `archive_items`; each an ItemPublished or, for a tombstone,
        an ItemRetracted. Cursors are the events' ids.

        Raises:
            InvalidPaging: a cursor that is not an event id.
        """
        query = self._archive_query(
            requester, frozenset({ArchiveKind.ITEM}), start=start, end=end, author=author
        )
        return await self._replay(requester, query, page)

    async def inbox(
        self,
        requester: Jid,
        page: PageRequest,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Page[ArchivedEvent]:
        """Inbox sync (reference row 32): every change since `start` (until `end`, both
        inclusive) of the channels the requester belongs to, as the events that announce
        them live, oldest first and paged like `archive_items`:

        - new, updated and retracted items of the channels they follow and may read;
        - follows, requests, invitations, ends and roles: every one to the owner and
          moderators, the subscribed followers to the followers who may read them, and
          their own (a request they made, its answer) to everyone;
        - follow requests waiting for approval, to the owner and moderators;
        - configuration changes, once per node of the channel.

        A banned user gets nothing of that channel; a pending follower only their own
        request. Cursors are the events' ids.

        Raises:
            InvalidPaging: a cursor that is not an event id.
        """
        query = self._archive_query(requester, ARCHIVE_KINDS, start=start, end=end, author=None)
        return await self._replay(requester, query, page)

    def _archive_query(
        self,
        requester: Jid,
        kinds: frozenset[ArchiveKind],
        *,
        start: datetime | None,
        end: datetime | None,
        author: Jid | None,
    ) -> ArchiveQuery:
        """Who sees what, from the permission tables: the roles allowed each read."""
        local = self.is_local_user(requester.bare)
        anonymous = self.is_anonymous(requester.bare)

        def scope(operation: Operation) -> dict[AccessModel, frozenset[Role]]:
            return {
                model: frozenset(
                    role
                    for role in Role
                    if may(
                        operation,
                        role,
                        model,
                        requester_is_local=local,
                        requester_is_anonymous=anonymous,
                    )
                )
                for model in AccessModel
            }

        staff = scope(Operation.READ_PENDING)
        banned_list = scope(Operation.READ_BANNED)
        return ArchiveQuery(
            requester.bare,
            items=scope(Operation.READ_ITEMS),
            followers=scope(Operation.READ_FOLLOWERS),
            # Staff see requests, bans and ends: both lists must be theirs to read.
            staff={model: staff[model] & banned_list[model] for model in AccessModel},
            kinds=kinds,
            start=start,
            end=end,
            author=author.bare if author is not None else None,
        )

    async def _replay(
        self, requester: Jid, query: ArchiveQuery, page: PageRequest
    ) -> Page[ArchivedEvent]:
        found = await self.storage.list_archive(query, page)
        audience = (requester.bare,)
        events = [
            ArchivedEvent(entry.cursor, entry.at, _event_of(entry, audience))
            for entry in found.items
        ]
        return Page(
            events,
            found.count,
            found.first,
            found.last,
            complete=found.complete,
            cursor_of=_archived_id,
        )


def _archived_id(archived: ArchivedEvent) -> str:
    return archived.id


def _event_of(entry: ArchiveEntry, audience: tuple[Jid, ...]) -> Event:
    """The event that announced the change live."""
    channel = entry.channel
    match entry.kind:
        case ArchiveKind.ITEM:
            assert entry.node is not None and entry.item is not None
            item = entry.item
            if item.deleted:
                return ItemRetracted(entry.node, item, audience)
            return ItemPublished(
                entry.node, item, audience, is_update=item.updated != item.published
            )
        case ArchiveKind.CONFIGURATION:
            assert entry.node is not None
            return ConfigurationChanged(channel, channel.config, (entry.node.id,), audience)
    membership = entry.membership
    assert membership is not None
    # Memberships are per channel; their events name its posts node (ProtoXEP 5.4).
    posts = NodeId(channel.jid, "posts")
    match entry.kind:
        case ArchiveKind.SUBSCRIPTION:
            # The role goes with the subscription, as it did live when the change gave or
            # took one: a follow, an end, a ban (not a request or an invitation).
            with_role = (
                membership.role is not Role.NONE
                or membership.subscription is SubscriptionState.NONE
            )
            return SubscriptionChanged(channel, posts, membership, audience, with_role)
        case ArchiveKind.AFFILIATION:
            return RoleChanged(channel, posts, membership, audience)
    return AuthorizationRequested(channel, posts, membership.jid, audience)
