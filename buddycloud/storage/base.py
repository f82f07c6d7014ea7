"""The storage contract every backend implements and `tests/storage/test_contract.py` checks.

Rules for every method:
- a write returns only after its transaction has committed;
- a method either applies all of its writes or none of them;
- lists come in a stable order, paged by keyset (never OFFSET on a large set);
- `get_*` raises the matching `…NotFound`, `find_*` returns None.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Account,
    Channel,
    ChannelConfig,
    Item,
    Membership,
    Node,
    NodeId,
    NodeMembership,
    Page,
    PageRequest,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.domain.permissions import ReadScope
from buddycloud.util.errors import CannotStart


class StorageUnavailable(CannotStart):
    """The storage cannot be opened or migrated: the database is missing, refuses the
    credentials, cannot be reached, or its schema is not this code's.

    The message is one line naming the storage URL (its password hidden) and what to do.
    """


class SchemaVersionMismatch(StorageUnavailable):
    """The database schema is not the version this code expects: run `buddycloud migrate`
    (an older schema), or upgrade the server (a newer one)."""


def redact_url(url: str) -> str:
    """A storage URL as it may be shown: without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class StorageClosed(RuntimeError):
    """The storage was closed: it takes no more work."""

    def __init__(self) -> None:
        super().__init__("the storage is closed")


# Called with the seconds each write took, from the call until its commit was acknowledged
# (metrics); must be cheap and must not raise.
WriteObserver = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What the engine needs to decide an operation on a node, loaded in one round trip."""

    channel: Channel
    node: Node
    membership: Membership | None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Full-text search: all `words` must match (title or content); `author` optional."""

    words: tuple[str, ...]
    author: Jid | None
    scope: ReadScope


class ArchiveKind(enum.Enum):
    """What changed, in the order changes of the same instant are listed."""

    ITEM = 0
    SUBSCRIPTION = 1
    AFFILIATION = 2
    AUTHORIZATION = 3
    CONFIGURATION = 4


ARCHIVE_KINDS = frozenset(ArchiveKind)


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """The changes of the channels `requester` belongs to that they may see now.

    Who sees what is the engine's to decide, from the permission tables: for each access
    model, the roles that may read the items (`items`), the followers (`followers`), and
    the pending and banned lists (`staff`). A channel counts when the requester has a
    membership there that is not a ban; it is *followed* when that membership is
    `subscribed`.

    - ITEM: items and tombstones of every node of a followed channel, when the requester's
      role may read items there; at `updated`; `author` keeps one author's;
    - SUBSCRIPTION: memberships of a followed channel (every one for `staff`, the
      subscribed ones that are no ban for `followers`), and the requester's own membership
      of any channel, including one that ended (`delete_membership` with `at`); the role
      shows with each of these;
    - AFFILIATION: the role alone, where the subscription does not show: for `followers`
      who are not `staff`, memberships of a followed channel with a role other than
      `none` and `outcast` that are not subscribed (and not the requester's);
    - AUTHORIZATION: pending memberships of a followed channel, for `staff`;
    - CONFIGURATION: every node of a followed channel whose configuration changed after
      the channel was created, at the channel's `updated`.

    `start` and `end` are inclusive bounds of the time of the change.
    """

    requester: Jid
    items: dict[AccessModel, frozenset[Role]]
    followers: dict[AccessModel, frozenset[Role]]
    staff: dict[AccessModel, frozenset[Role]]
    kinds: frozenset[ArchiveKind] = ARCHIVE_KINDS
    start: datetime | None = None
    end: datetime | None = None
    author: Jid | None = None


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One change as the archive lists it: `item` for ITEM, `membership` for SUBSCRIPTION,
    AFFILIATION and AUTHORIZATION, `node` for ITEM and CONFIGURATION."""

    cursor: str
    at: datetime
    kind: ArchiveKind
    channel: Channel
    node: Node | None = None
    item: Item | None = None
    membership: Membership | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One event queued for a remote domain: `body` is its serialised `<event>` elements,
    `sequence` its place in the domain's queue (higher is newer)."""

    sequence: int
    body: str
    created: datetime


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """How delivery to one remote domain stands (`buddycloud federation status`).

    Attributes:
        domain: the remote domain.
        server: the channel server discovery last named for it, None while none was found.
        depth: the events queued for it.
        last_success: when a batch last reached it.
        last_error: what went wrong last (this server's own words, never the remote text).
        last_error_at: when.
        attempts: failed attempts since the last batch that was delivered or refused.
    """

    domain: str
    server: str | None
    depth: int
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    attempts: int


class Storage(Protocol):
    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Answer one cheap query of the database (health checks).

        Raises:
            StorageClosed: the storage was closed.
            Exception: whatever the database raises when it cannot answer.
        """

    # --- channels and nodes -------------------------------------------------------------

    async def create_channel(
        self, channel: Channel, nodes: Sequence[Node], owner: Membership
    ) -> None:
        """Create a channel with its nodes and its owner's membership, atomically.

        Raises:
            NodeExists: the channel exists already.
        """

    async def find_channel(self, jid: Jid) -> Channel | None: ...

    async def get_channel(self, jid: Jid) -> Channel:
        """Raises ChannelNotFound."""

    async def list_channels(
        self, page: PageRequest, *, advertised_only: bool = False
    ) -> Page[Channel]:
        """All channels (or only the advertised ones), ordered by JID; cursors are channel
        JIDs."""

    async def search_channels(
        self, words: Sequence[str], page: PageRequest, *, offset: int = 0
    ) -> Page[Channel]:
        """Advertised channels whose title or description holds every one of `words`
        (whole words, case ignored), ordered by JID; cursors are channel JIDs.
        `offset` skips that many results before the page, as in `search_items`.

        Raises:
            InvalidPaging: a negative offset.
        """

    async def top_channels(
        self,
        *,
        by: Literal["followers", "posts"],
        since: datetime,
        models: frozenset[AccessModel],
        limit: int,
    ) -> list[tuple[Channel, int]]:
        """Advertised channels with an access model in `models`, ranked by what happened
        since `since`: follows that became `subscribed` (by the time the membership last
        changed; owners are not counted), or items published in their `posts` node. Most
        first, ties by JID; channels with none left out."""

    async def update_channel_config(self, jid: Jid, config: ChannelConfig) -> None:
        """Raises ChannelNotFound."""

    async def delete_channel(self, jid: Jid) -> None:
        """Delete a channel with all its nodes, items and memberships. Raises ChannelNotFound."""

    async def add_nodes(self, nodes: Sequence[Node]) -> None:
        """Add nodes to existing channels. Raises NodeExists or ChannelNotFound."""

    async def find_node(self, node: NodeId) -> Node | None: ...

    async def get_node(self, node: NodeId) -> Node:
        """Raises NodeNotFound."""

    async def list_nodes(self, channel: Jid) -> list[Node]:
        """The nodes of one channel, ordered by name."""

    async def update_node(self, node: Node) -> None:
        """Replace a node's own settings (payload type, max items). Raises NodeNotFound."""

    async def delete_node(self, node: NodeId) -> None:
        """Delete one node and its items. Raises NodeNotFound."""

    async def get_node_context(self, node: NodeId, requester: Jid) -> NodeContext:
        """The node, its channel and the requester's membership there, in one round trip.

        Raises:
            NodeNotFound: the node does not exist.
        """

    # --- memberships (one follow and one role per user and channel) ---------------------

    async def find_membership(self, channel: Jid, jid: Jid) -> Membership | None: ...

    async def put_membership(self, membership: Membership) -> None:
        """Insert or replace the membership of (channel, jid). Raises ChannelNotFound."""

    async def delete_membership(
        self, channel: Jid, jid: Jid, *, at: datetime | None = None
    ) -> None:
        """Remove it; no error when it does not exist.

        With `at`, the storage remembers when the membership ended, for the archive
        (`list_archive`); it is no membership for any other method.
        """

    async def delete_temporary_memberships(self) -> int:
        """Remove every temporary subscription (nobody is online after a start); how many."""

    async def list_memberships(
        self,
        channel: Jid,
        page: PageRequest,
        *,
        roles: frozenset[Role] | None = None,
        states: frozenset[SubscriptionState] | None = None,
    ) -> Page[Membership]:
        """Members of a channel filtered by role and state, ordered by JID (cursor = JID)."""

    async def list_audience(self, channel: Jid, roles: frozenset[Role]) -> tuple[Jid, ...]:
        """Bare JIDs with a `subscribed` membership and one of `roles`: who gets notified,
        ordered by JID. The same answer may be the same tuple again (kept in memory)."""

    async def list_user_memberships(
        self,
        jid: Jid,
        page: PageRequest,
        *,
        states: frozenset[SubscriptionState] | None = None,
        temporary_only: bool = False,
        ephemeral: bool | None = None,
    ) -> Page[tuple[Membership, Channel]]:
        """One user's memberships with their channels, ordered by channel JID; with
        `temporary_only`, only their temporary subscriptions; with `ephemeral`, only those in
        ephemeral channels (True) or only those in lasting ones (False)."""

    async def list_user_node_memberships(
        self,
        jid: Jid,
        page: PageRequest,
        *,
        states: frozenset[SubscriptionState] | None = None,
        ephemeral: bool | None = None,
        config: Mapping[str, str] | None = None,
    ) -> Page[NodeMembership]:
        """One user's memberships, once for each node of their channels (ProtoXEP 5.4),
        ordered by channel JID then node name; cursors are node ids. `states` and
        `ephemeral` filter as in `list_user_memberships`; `config` keeps the channels whose
        configuration holds every given value, by field: title, description, access_model,
        default_role, channel_type, creator (enum values and bare JIDs as text).

        Raises:
            InvalidPaging: a cursor that is not a node id.
        """

    # --- items ----------------------------------------------------------------------------

    async def put_item(self, item: Item, *, max_items: int | None = None) -> None:
        """Insert or replace an item; atomically:
        - a reply (`in_reply_to` set) also sets its parent's `updated` to the reply's;
        - with `max_items`, the node keeps only its newest `max_items` items afterwards.

        Raises:
            NodeNotFound: the node does not exist.
            RatingError("item-already-rated"): this author already rated that target.
        """

    async def put_item_after(
        self,
        node: NodeId,
        item_id: str,
        build: Callable[[Item | None], Item],
        *,
        max_items: int | None = None,
    ) -> tuple[Item, Item | None]:
        """Read the item `item_id` (None when absent), make its replacement with `build`
        and store it as `put_item` does, all in one transaction: no other write can slip
        between the check and the write. `build` is pure and may raise a domain error, and
        then nothing is written. Returns the stored item and the version it replaced.

        Raises:
            what `build` raises, and what `put_item` raises.
        """

    async def find_item(self, node: NodeId, item_id: str) -> Item | None: ...

    async def get_item(self, node: NodeId, item_id: str) -> Item:
        """Raises ItemNotFound."""

    async def list_items(
        self,
        node: NodeId,
        page: PageRequest,
        *,
        parent_only: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
        include_deleted: bool = True,
        author: Jid | None = None,
        chronological: bool = False,
    ) -> Page[Item]:
        """Items newest `updated` first, ties by id; cursors are item ids.

        With `chronological`, the order is reversed (oldest first, as XEP-0313 §4.2 wants
        archives): the first page holds the oldest items, `after` pages towards newer ones,
        `before` towards older ones, `last_page` holds the newest. Either way a page is in
        the list's order, and `complete` tells whether it reaches the list's end in the
        direction it was read.

        `since` (exclusive) and `until` (inclusive) bound `updated`; `author` keeps one
        author's items. `count` is the size of the whole filtered set. Raises ItemNotFound
        for an unknown cursor.
        """

    async def list_items_by_author(
        self, author: Jid, *, after: tuple[NodeId, str] | None = None, limit: int = 500
    ) -> list[Item]:
        """Up to `limit` live items (no tombstones) written by `author`, in any node, ordered
        by node and item id, starting after the (node, item id) `after`."""

    async def list_public_items(
        self, scope: ReadScope, page: PageRequest, *, parent_only: bool = False
    ) -> Page[Item]:
        """Live items (no tombstones) of every advertised channel the scope may read (as in
        `search_items`: its access model maps to a set holding the requester's role there),
        newest `updated` first, ties by node and id; cursors are "<node>,<item id>" as in
        recent items. Raises ItemNotFound for an unknown cursor."""

    async def list_replies(self, node: NodeId, parent_id: str, page: PageRequest) -> Page[Item]:
        """Replies to one item, newest first. Raises ItemNotFound if the parent is missing."""

    async def list_threads(self, node: NodeId, page: PageRequest) -> Page[Thread]:
        """Threads (a parent and its replies) by last activity, newest first; cursor = parent id."""

    async def find_rating(self, node: NodeId, target_id: str, author: Jid) -> Item | None:
        """The rating `author` gave to `target_id`, if any."""

    async def recent_items(
        self,
        jid: Jid,
        *,
        since: datetime,
        max_per_node: int,
        parent_only: bool,
        node_names: frozenset[str] | None,
        page: PageRequest,
        until: datetime | None = None,
        author: Jid | None = None,
    ) -> Page[Item]:
        """Items updated after `since` (and up to `until`) in nodes of channels `jid` is
        subscribed to, by `author` only when given.

        At most `max_per_node` per node, counted after those filters; `node_names` limits
        which nodes (None = all). Ordered newest first across nodes; cursors are
        "<node id>,<item id>".
        """

    async def search_items(
        self, query: SearchQuery, page: PageRequest, *, offset: int = 0
    ) -> Page[Item]:
        """Items matching the query in channels the scope may read, newest first.

        `offset` skips that many results before the page (numbered result pages); the
        count is still that of every match.
        """

    async def count_items(self, node: NodeId) -> int: ...

    # --- the built-in user database ------------------------------------------------------

    async def insert_account(self, account: Account) -> None:
        """Add an account. Raises AccountExists when one of that JID exists."""

    async def find_account(self, jid: Jid) -> Account | None: ...

    async def update_account_password(self, jid: Jid, password_hash: str) -> None:
        """Replace an account's password hash. Raises AccountNotFound."""

    async def delete_account(self, jid: Jid) -> None:
        """Remove an account. Raises AccountNotFound."""

    async def list_accounts(self, page: PageRequest) -> Page[Account]:
        """Accounts in JID order, paged by keyset on the JID."""

    # --- sign-in state --------------------------------------------------------------------

    async def get_or_insert_server_key(self, name: str, value: str) -> str:
        """The server key named `name`; `value` is stored as it when there is none yet.

        Concurrent callers (several workers starting at once) all get the one that was
        stored first.
        """

    async def find_sign_in_generation(self, jid: Jid) -> int:
        """The user's sign-in generation: 0 until it is first raised."""

    async def raise_sign_in_generation(self, jid: Jid) -> int:
        """Add one to the user's sign-in generation, and return the new one."""

    async def insert_password_reset(self, token_digest: str, jid: Jid, expires: datetime) -> None:
        """Keep a password reset token's digest until `expires`."""

    async def take_password_reset(self, token_digest: str, now: datetime) -> Jid | None:
        """The account a reset token resets, once: the token goes as it is taken, and so
        do the account's other tokens. None when unknown, taken already, or expired."""

    # --- archive ----------------------------------------------------------------------------

    async def list_archive(self, query: ArchiveQuery, page: PageRequest) -> Page[ArchiveEntry]:
        """Changes (see `ArchiveQuery`) oldest first: by time, then kind, channel, node and
        item id or member JID. Paged like a chronological `list_items`: the first page is
        the oldest, `after` pages towards newer changes, `before` and `last_page` towards
        older ones, every page oldest first, `complete` set. Cursors are the entries' own
        positions: a malformed one raises InvalidPaging, one whose item, membership or node
        no longer exists CursorNotFound (one that changed since still marks its place).
        `count` is the number of every change the query selects.

        One statement finds a page whatever the number of channels: each node and
        channel contributes at most a page, read from an index in order.
        """

    # --- federation's outbox ------------------------------------------------------------------

    async def enqueue_outbox(self, domains: Sequence[str], body: str, created: datetime) -> None:
        """Queue `body` once for each of `domains`, in one write, after everything queued
        before."""

    async def read_outbox(self, domain: str, *, max_bytes: int, max_rows: int) -> list[OutboxEntry]:
        """The oldest entries queued for `domain`, oldest first: as many as fit in
        `max_bytes` of UTF-8 bodies (at least one, whatever its size), at most `max_rows`."""

    async def delete_outbox(
        self,
        domain: str,
        sequences: Sequence[int],
        *,
        at: datetime,
        server: str,
        error: str | None = None,
    ) -> None:
        """Remove a batch of `domain`'s entries that `server` took (`error` None: the
        domain's last success becomes `at`) or refused for good (`error` is recorded as the
        domain's last error, at `at`). Either way its failed attempts start again at 0."""

    async def record_outbox_failure(
        self, domain: str, *, at: datetime, server: str | None, error: str
    ) -> None:
        """One more failed attempt to deliver to `domain`: `error` at `at`. `server` is the
        channel server tried (None: none was found; the one known before is kept)."""

    async def list_outbox_status(self) -> list[OutboxStatus]:
        """Every domain with a status or a queued entry, by domain name."""
