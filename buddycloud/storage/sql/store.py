"""`SqlStorage`: the storage contract (`buddycloud.storage.base.Storage`) in SQLAlchemy Core.

Orderings and cursors (XEP-0059 result set management, newest first for items):
- items sort by (`updated` DESC, `id` DESC); across nodes by (`updated`, channel, node, id)
  DESC, with cursors "<node id>,<item id>";
- `after` continues towards older items, `before` returns the page of newer items just
  before the cursor, `last_page` the oldest items; a page is always newest first;
- archives (XEP-0313) read the same orders the other way round: oldest first, `after`
  towards newer items; the archive of changes (`list_archive`) has cursors of its own;
- JID-ordered lists (channels, members) sort ascending; their cursors are JIDs and need
  not exist;
- paging is by keyset on the sort columns, never OFFSET; `count` is the size of the whole
  filtered set.

Filters: `since` is exclusive (items updated after it), `until` inclusive.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from buddycloud.domain.errors import (
    AccountExists,
    AccountNotFound,
    ChannelNotFound,
    CursorNotFound,
    InvalidNodeId,
    InvalidPaging,
    ItemNotFound,
    NodeExists,
    NodeNotFound,
    RatingError,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Account,
    Channel,
    ChannelConfig,
    ChannelType,
    Entry,
    Item,
    Membership,
    Node,
    NodeId,
    NodeMembership,
    Page,
    PageRequest,
    Payload,
    RawPayload,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.domain.permissions import ReadScope
from buddycloud.storage.base import (
    ArchiveEntry,
    ArchiveKind,
    ArchiveQuery,
    NodeContext,
    OutboxEntry,
    OutboxStatus,
    SearchQuery,
    StorageClosed,
)
from buddycloud.storage.sql.archive import (
    ArchiveStatements,
    Position,
    Shape,
    cursor_params,
    entry_exists,
    format_cursor,
    scope_params,
)
from buddycloud.storage.sql.database import Database, T, Work
from buddycloud.storage.sql.keyset import beyond
from buddycloud.storage.sql.prepared import Prepared
from buddycloud.storage.sql.schema import (
    RATING_INDEX,
    accounts,
    channels,
    items,
    memberships,
    outbox,
    outbox_status,
    password_resets,
    server_keys,
    sign_in_generations,
)
from buddycloud.storage.sql.schema import nodes as nodes_table

Condition = sa.ColumnElement[bool]
Column = sa.ColumnElement[Any]

_SUBSCRIBED = SubscriptionState.SUBSCRIBED.value
_PING = sa.text("SELECT version_num FROM alembic_version")
# The channel settings `list_user_node_memberships` filters on: columns of `channels`.
CONFIG_FILTER_COLUMNS = frozenset(
    {"title", "description", "access_model", "default_role", "channel_type", "creator"}
)
_ITEM_KEY = ("channel", "node", "id")
_NONE_ROLE = Role.NONE.value
_NO_SUBSCRIPTION = SubscriptionState.NONE.value


# --- rows <-> domain values --------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _jid(text: str) -> Jid:
    """A JID read back from the database, where only validated JIDs are written.

    Cached: the same followers come back with every notification audience."""
    rest, _, resource = text.partition("/")
    local, _, domain = rest.rpartition("@")
    return Jid(local, domain, resource)


def _channel(row: RowMapping, prefix: str = "") -> Channel:
    config = ChannelConfig(
        title=row[prefix + "title"],
        description=row[prefix + "description"],
        access_model=AccessModel(row[prefix + "access_model"]),
        default_role=Role(row[prefix + "default_role"]),
        creator=_jid(row[prefix + "creator"]),
        channel_type=ChannelType(row[prefix + "channel_type"]),
        created=row[prefix + "created"],
        updated=row[prefix + "updated"],
        ephemeral=bool(row[prefix + "ephemeral"]),
        advertised=bool(row[prefix + "advertised"]),
    )
    return Channel(_jid(row[prefix + "jid"]), config)


def _config_values(config: ChannelConfig) -> dict[str, Any]:
    return {
        "title": config.title,
        "description": config.description,
        "access_model": config.access_model.value,
        "default_role": config.default_role.value,
        "creator": str(config.creator),
        "channel_type": config.channel_type.value,
        "created": config.created,
        "updated": config.updated,
        "ephemeral": config.ephemeral,
        "advertised": config.advertised,
    }


def _node(row: RowMapping, prefix: str = "") -> Node:
    return Node(
        id=NodeId(_jid(row[prefix + "channel"]), row[prefix + "name"]),
        payload_type=row[prefix + "payload_type"],
        max_items=row[prefix + "max_items"],
        created=row[prefix + "created"],
    )


def _node_values(node: Node) -> dict[str, Any]:
    return {
        "channel": str(node.id.channel),
        "name": node.id.name,
        "payload_type": node.payload_type,
        "max_items": node.max_items,
        "created": node.created,
    }


def _ended(role: str, subscription: str) -> bool:
    """A row with neither a follow nor a role records when a membership ended (for the
    archive): it is no membership."""
    return role == _NONE_ROLE and subscription == _NO_SUBSCRIPTION


def _live_membership() -> Condition:
    return sa.or_(memberships.c.role != _NONE_ROLE, memberships.c.subscription != _NO_SUBSCRIPTION)


def _membership(row: RowMapping, prefix: str = "") -> Membership:
    invited_by = row[prefix + "invited_by"]
    return Membership(
        channel=_jid(row[prefix + "channel"]),
        jid=_jid(row[prefix + "jid"]),
        role=Role(row[prefix + "role"]),
        subscription=SubscriptionState(row[prefix + "subscription"]),
        updated=row[prefix + "updated"],
        invited_by=_jid(invited_by) if invited_by is not None else None,
        temporary=bool(row[prefix + "temporary"]),
    )


def _membership_values(membership: Membership) -> dict[str, Any]:
    return {
        "channel": str(membership.channel),
        "jid": str(membership.jid),
        "role": membership.role.value,
        "subscription": membership.subscription.value,
        "invited_by": str(membership.invited_by) if membership.invited_by else None,
        "updated": membership.updated,
        "temporary": membership.temporary,
    }


def _item(row: Mapping[Any, Any]) -> Item:
    kind = row["kind"]
    payload: Payload | None
    if kind == "entry":
        extensions = row["extensions"]
        payload = Entry(
            id=row["entry_id"],
            title=row["title"],
            content=row["content"],
            content_type=row["content_type"],
            author=_jid(row["entry_author"]),
            published=row["entry_published"],
            updated=row["entry_updated"],
            verb=row["verb"],
            object_type=row["object_type"],
            in_reply_to=row["entry_in_reply_to"],
            target=row["target"],
            rating=row["rating"],
            extensions=tuple(json.loads(extensions)) if extensions else (),
        )
    elif kind == "raw":
        payload = RawPayload(xml=row["raw_xml"], namespace=row["raw_namespace"])
    else:
        payload = None
    return Item(
        node=NodeId(_jid(row["channel"]), row["node"]),
        id=row["id"],
        author=_jid(row["author"]),
        published=row["published"],
        updated=row["updated"],
        payload=payload,
        in_reply_to=row["in_reply_to"],
        deleted=bool(row["deleted"]),
    )


_PAYLOAD_COLUMNS = (
    "kind",
    "entry_id",
    "entry_author",
    "entry_published",
    "entry_updated",
    "entry_in_reply_to",
    "title",
    "content",
    "content_type",
    "verb",
    "object_type",
    "target",
    "rating",
    "extensions",
    "raw_xml",
    "raw_namespace",
)


def _item_values(item: Item) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(_PAYLOAD_COLUMNS)
    values.update(
        channel=str(item.node.channel),
        node=item.node.name,
        id=item.id,
        author=str(item.author),
        published=item.published,
        updated=item.updated,
        in_reply_to=item.in_reply_to,
        deleted=item.deleted,
    )
    payload = item.payload
    if isinstance(payload, Entry):
        values.update(
            kind="entry",
            entry_id=payload.id,
            entry_author=str(payload.author),
            entry_published=payload.published,
            entry_updated=payload.updated,
            entry_in_reply_to=payload.in_reply_to,
            title=payload.title,
            content=payload.content,
            content_type=payload.content_type,
            verb=payload.verb,
            object_type=payload.object_type,
            target=payload.target,
            rating=payload.rating,
            extensions=json.dumps(list(payload.extensions)) if payload.extensions else None,
        )
    elif isinstance(payload, RawPayload):
        values.update(kind="raw", raw_xml=payload.xml, raw_namespace=payload.namespace)
    return values


def _labelled(table: sa.Table, prefix: str) -> list[sa.Label[Any]]:
    return [column.label(prefix + column.name) for column in table.columns]


# --- keyset paging -----------------------------------------------------------------------


def _ordered(columns: Sequence[Column], *, descending: bool) -> list[Any]:
    return [column.desc() if descending else column.asc() for column in columns]


def _page_rows(
    conn: sa.Connection,
    query: sa.Select[Any],
    columns: Sequence[Column],
    *,
    descending: bool,
    cursor: Sequence[Any] | None,
    page: PageRequest,
    params: dict[str, Any] | None = None,
    offset: int = 0,
) -> list[RowMapping]:
    """One page of `query` in its natural order (`columns`, descending or not).

    `cursor` holds the sort values of the `after` or `before` row; `offset` skips that many
    rows in the direction the page is read (away from the cursor).
    """
    if page.max == 0:
        return []
    if page.last_page:
        reverse = True
    elif page.before is not None:
        assert cursor is not None
        # Rows before the cursor in natural order, the nearest ones first, then reversed.
        query = query.where(beyond(columns, cursor, less=not descending))
        reverse = True
    elif page.after is not None:
        assert cursor is not None
        query = query.where(beyond(columns, cursor, less=descending))
        reverse = False
    else:
        reverse = False
    natural = descending != reverse
    result = conn.execute(
        query.order_by(*_ordered(columns, descending=natural))
        .limit(page.max)
        .offset(offset or None),
        params,
    )
    rows = list(result.mappings())
    if reverse:
        rows.reverse()
    return rows


def _require_key(
    conn: sa.Connection,
    query: sa.Select[Any],
    key: Column | Sequence[Column],
    cursor: str,
    values: Sequence[Any] | None = None,
) -> None:
    """Raise CursorNotFound unless a row of `query` has the `cursor`'s key (XEP-0059: a
    cursor naming nothing is an error, not the page after where it would have been).

    `key` is the column the list is paged on, or its columns with the cursor's `values`.
    """
    columns = [key] if isinstance(key, sa.ColumnElement) else list(key)
    matches = [column == value for column, value in zip(columns, values or (cursor,), strict=True)]
    found = conn.execute(query.with_only_columns(sa.literal(1)).where(*matches).limit(1)).first()
    if found is None:
        raise CursorNotFound(cursor)


def _cursor_text(page: PageRequest) -> str | None:
    if page.last_page:
        return None
    return page.after if page.after is not None else page.before


def _count(conn: sa.Connection, query: sa.Select[Any], params: dict[str, Any] | None = None) -> int:
    total = conn.scalar(query, params)
    return int(total or 0)


def _node_condition(node: NodeId) -> Condition:
    return sa.and_(items.c.channel == str(node.channel), items.c.node == node.name)


def _thread_cursor(thread: Thread) -> str:
    return thread.id


def _cross_cursor(item: Item) -> str:
    return f"{item.node},{item.id}"


def _cross_cursor_candidates(cursor: str) -> list[tuple[NodeId, str]]:
    """The ways to split "<node id>,<item id>" (node names and item ids may hold commas)."""
    candidates = []
    position = cursor.find(",")
    while position != -1:
        try:
            candidates.append((NodeId.parse(cursor[:position]), cursor[position + 1 :]))
        except InvalidNodeId:
            pass
        position = cursor.find(",", position + 1)
    return candidates


def _integrity_kind(exc: IntegrityError) -> str:
    message = str(exc.orig).lower()
    if RATING_INDEX in message or "items.target" in message:
        return "rating"
    if "foreign key" in message:
        return "foreign-key"
    return "unique"


def _bound_node(prefix: str = "") -> Condition:
    # UPDATE reserves the column names for its SET values: writes use the "b_" names.
    return sa.and_(
        items.c.channel == sa.bindparam(prefix + "channel"),
        items.c.node == sa.bindparam(prefix + "node"),
    )


class _Statements:
    """The statements of the hot paths (publish, read a node), built once.

    Building a statement costs far more than running a cached one, so these take all
    their values as bound parameters at execution.
    """

    def __init__(self, dialect: str) -> None:
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        upsert = insert(items)
        self.upsert_item = Prepared(
            upsert.on_conflict_do_update(
                index_elements=list(_ITEM_KEY),
                set_={
                    column.name: upsert.excluded[column.name]
                    for column in items.columns
                    if column.name not in _ITEM_KEY
                },
            ),
            column_keys=[column.name for column in items.columns],
        )
        upsert_membership = insert(memberships)
        self.upsert_membership = upsert_membership.on_conflict_do_update(
            index_elements=["channel", "jid"],
            set_={
                name: upsert_membership.excluded[name]
                for name in ("role", "subscription", "invited_by", "updated", "temporary")
            },
        )
        self.bump_parent = Prepared(
            sa.update(items)
            .where(
                _bound_node("b_"),
                items.c.id == sa.bindparam("parent"),
                items.c.updated < sa.bindparam("reply_updated"),
            )
            .values(updated=sa.bindparam("reply_updated"))
        )
        older = (
            sa.select(items.c.id)
            .where(_bound_node("b_"))
            .order_by(items.c.updated.desc(), items.c.id.desc())
            .offset(sa.bindparam("keep", type_=sa.Integer()))
        )
        if dialect == "sqlite":
            older = older.limit(-1)  # SQLite accepts OFFSET only after a LIMIT
        self.trim_node = sa.delete(items).where(_bound_node("b_"), items.c.id.in_(older))
        self.find_item = Prepared(
            sa.select(items).where(_bound_node(), items.c.id == sa.bindparam("id"))
        )
        self.node_context = (
            sa.select(*_labelled(nodes_table, "n_"), *_labelled(channels, "c_"))
            .add_columns(*_labelled(memberships, "m_"))
            .select_from(
                nodes_table.join(channels, channels.c.jid == nodes_table.c.channel).outerjoin(
                    memberships,
                    sa.and_(
                        memberships.c.channel == nodes_table.c.channel,
                        memberships.c.jid == sa.bindparam("requester"),
                    ),
                )
            )
            .where(
                nodes_table.c.channel == sa.bindparam("channel"),
                nodes_table.c.name == sa.bindparam("node"),
            )
        )
        self.audience = (
            sa.select(memberships.c.jid)
            .where(
                memberships.c.channel == sa.bindparam("channel"),
                memberships.c.subscription == _SUBSCRIBED,
                memberships.c.role.in_(sa.bindparam("roles", expanding=True)),
            )
            .order_by(memberships.c.jid)
        )


class _ChannelCache:
    """Answers of the hot lookups (node context, notification audience) per channel.

    Only on SQLite, where one process owns the database, so every write passes through this
    storage object and forgets the channel's answers before and after it commits. (Lookups
    run on the event loop, so none can interleave between a commit and its forgetting.)
    PostgreSQL may be shared by several processes and is always asked.
    """

    MAX_ENTRIES = 100_000

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._channels: dict[str, dict[Any, Any]] = {}
        self._size = 0

    def get(self, channel: str, key: Any) -> Any | None:
        entries = self._channels.get(channel)
        return entries.get(key) if entries is not None else None

    def put(self, channel: str, key: Any, value: Any) -> None:
        if not self.enabled:
            return
        if self._size >= self.MAX_ENTRIES:
            self._channels.clear()
            self._size = 0
        entries = self._channels.setdefault(channel, {})
        if key not in entries:
            self._size += 1
        entries[key] = value

    def forget(self, channel: str) -> None:
        entries = self._channels.pop(channel, None)
        if entries is not None:
            self._size -= len(entries)

    def clear(self) -> None:
        self._channels.clear()
        self._size = 0


class SqlStorage:
    """The storage contract on SQLite or PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._sql = _Statements(database.dialect)
        self._recent_cache: dict[tuple[bool, bool, bool, bool], sa.Select[Any]] = {}
        self._page_statements: dict[tuple[Any, ...], sa.Select[Any]] = {}
        self._cache = _ChannelCache(enabled=database.dialect == "sqlite")
        self._closed = False
        self._archive = ArchiveStatements(database.dialect)

    async def _write_channel(self, channel: Jid, work: Work[T]) -> T:
        """A write that changes a channel's configuration, nodes or memberships."""
        key = str(channel)
        self._cache.forget(key)
        try:
            return await self._db.write(work)
        finally:
            self._cache.forget(key)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._db.close()

    async def ping(self) -> None:
        if self._closed:
            raise StorageClosed()

        def work(conn: sa.Connection) -> None:
            # A row of a real table, so that SQLite reads the file, not only a constant.
            conn.execute(_PING).first()

        await self._db.read(work)

    # --- channels and nodes ---------------------------------------------------------------

    async def create_channel(
        self, channel: Channel, nodes: Sequence[Node], owner: Membership
    ) -> None:
        values = {"jid": str(channel.jid), **_config_values(channel.config)}

        def work(conn: sa.Connection) -> None:
            try:
                conn.execute(sa.insert(channels).values(values))
            except IntegrityError:
                raise NodeExists(str(channel.jid)) from None
            if nodes:
                try:
                    conn.execute(sa.insert(nodes_table), [_node_values(n) for n in nodes])
                except IntegrityError:  # the same node twice, or a node of another channel
                    raise NodeExists(str(channel.jid)) from None
            conn.execute(sa.insert(memberships).values(_membership_values(owner)))

        await self._write_channel(channel.jid, work)

    async def find_channel(self, jid: Jid) -> Channel | None:
        def work(conn: sa.Connection) -> Channel | None:
            result = conn.execute(sa.select(channels).where(channels.c.jid == str(jid)))
            row = result.mappings().first()
            return _channel(row) if row is not None else None

        return await self._db.lookup(work)

    async def get_channel(self, jid: Jid) -> Channel:
        channel = await self.find_channel(jid)
        if channel is None:
            raise ChannelNotFound(str(jid))
        return channel

    async def list_channels(
        self, page: PageRequest, *, advertised_only: bool = False
    ) -> Page[Channel]:
        cursor = _cursor_text(page)
        conditions: list[Condition] = [channels.c.advertised] if advertised_only else []

        def work(conn: sa.Connection) -> Page[Channel]:
            if cursor is not None:
                _require_key(conn, sa.select(channels).where(*conditions), channels.c.jid, cursor)
            rows = _page_rows(
                conn,
                sa.select(channels).where(*conditions),
                [channels.c.jid],
                descending=False,
                cursor=(cursor,) if cursor is not None else None,
                page=page,
            )
            total = _count(
                conn, sa.select(sa.func.count()).select_from(channels).where(*conditions)
            )
            found = [_channel(row) for row in rows]
            return _page(found, total, lambda c: str(c.jid))

        return await self._db.read(work)

    async def search_channels(
        self, words: Sequence[str], page: PageRequest, *, offset: int = 0
    ) -> Page[Channel]:
        if offset < 0:
            raise InvalidPaging("offset must be a non-negative integer")
        cursor = _cursor_text(page)
        conditions: list[Condition] = [channels.c.advertised]
        cleaned = [word for word in words if word.strip()]
        if cleaned:
            conditions.append(self._matches("channels", cleaned))

        def work(conn: sa.Connection) -> Page[Channel]:
            rows = _page_rows(
                conn,
                sa.select(channels).where(*conditions),
                [channels.c.jid],
                descending=False,
                cursor=(cursor,) if cursor is not None else None,
                page=page,
                offset=offset,
            )
            total = _count(
                conn, sa.select(sa.func.count()).select_from(channels).where(*conditions)
            )
            return _page([_channel(row) for row in rows], total, lambda c: str(c.jid))

        return await self._db.read(work)

    async def top_channels(
        self,
        *,
        by: Literal["followers", "posts"],
        since: datetime,
        models: frozenset[AccessModel],
        limit: int,
    ) -> list[tuple[Channel, int]]:
        if by == "followers":
            counted = (
                sa.select(memberships.c.channel.label("jid"), sa.func.count().label("n"))
                .where(
                    memberships.c.subscription == _SUBSCRIBED,
                    memberships.c.role != Role.OWNER.value,
                    memberships.c.updated >= since,
                )
                .group_by(memberships.c.channel)
            )
        else:
            # A post's `updated` is never older than its `published`: the first condition
            # lets the time index narrow the scan to recent items.
            counted = (
                sa.select(items.c.channel.label("jid"), sa.func.count().label("n"))
                .where(
                    items.c.updated >= since,
                    items.c.published >= since,
                    items.c.node == "posts",
                    items.c.deleted == sa.false(),
                )
                .group_by(items.c.channel)
            )
        ranked = counted.subquery("ranked")
        query = (
            sa.select(channels, ranked.c.n)
            .join(ranked, ranked.c.jid == channels.c.jid)
            .where(
                channels.c.access_model.in_(sorted(model.value for model in models)),
                channels.c.advertised,
            )
            .order_by(ranked.c.n.desc(), channels.c.jid)
            .limit(limit)
        )

        def work(conn: sa.Connection) -> list[tuple[Channel, int]]:
            return [(_channel(row), int(row["n"])) for row in conn.execute(query).mappings()]

        return await self._db.read(work)

    async def update_channel_config(self, jid: Jid, config: ChannelConfig) -> None:
        def work(conn: sa.Connection) -> None:
            result = conn.execute(
                sa.update(channels).where(channels.c.jid == str(jid)).values(_config_values(config))
            )
            if result.rowcount == 0:
                raise ChannelNotFound(str(jid))

        await self._write_channel(jid, work)

    async def delete_channel(self, jid: Jid) -> None:
        def work(conn: sa.Connection) -> None:
            result = conn.execute(sa.delete(channels).where(channels.c.jid == str(jid)))
            if result.rowcount == 0:
                raise ChannelNotFound(str(jid))

        await self._write_channel(jid, work)

    async def add_nodes(self, nodes: Sequence[Node]) -> None:
        def work(conn: sa.Connection) -> None:
            for node in nodes:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(nodes_table).values(_node_values(node)))
                except IntegrityError as exc:
                    if _integrity_kind(exc) == "foreign-key":
                        raise ChannelNotFound(str(node.id.channel)) from None
                    raise NodeExists(str(node.id)) from None

        channels_touched = {node.id.channel for node in nodes}
        try:
            await self._db.write(work)
        finally:
            for channel in channels_touched:
                self._cache.forget(str(channel))

    async def find_node(self, node: NodeId) -> Node | None:
        def work(conn: sa.Connection) -> Node | None:
            result = conn.execute(
                sa.select(nodes_table).where(
                    nodes_table.c.channel == str(node.channel), nodes_table.c.name == node.name
                )
            )
            row = result.mappings().first()
            return _node(row) if row is not None else None

        return await self._db.lookup(work)

    async def get_node(self, node: NodeId) -> Node:
        found = await self.find_node(node)
        if found is None:
            raise NodeNotFound(str(node))
        return found

    async def list_nodes(self, channel: Jid) -> list[Node]:
        def work(conn: sa.Connection) -> list[Node]:
            result = conn.execute(
                sa.select(nodes_table)
                .where(nodes_table.c.channel == str(channel))
                .order_by(nodes_table.c.name)
            )
            return [_node(row) for row in result.mappings()]

        return await self._db.read(work)

    async def update_node(self, node: Node) -> None:
        values = _node_values(node)
        del values["channel"], values["name"], values["created"]

        def work(conn: sa.Connection) -> None:
            result = conn.execute(
                sa.update(nodes_table)
                .where(
                    nodes_table.c.channel == str(node.id.channel),
                    nodes_table.c.name == node.id.name,
                )
                .values(values)
            )
            if result.rowcount == 0:
                raise NodeNotFound(str(node.id))

        await self._write_channel(node.id.channel, work)

    async def delete_node(self, node: NodeId) -> None:
        def work(conn: sa.Connection) -> None:
            result = conn.execute(
                sa.delete(nodes_table).where(
                    nodes_table.c.channel == str(node.channel), nodes_table.c.name == node.name
                )
            )
            if result.rowcount == 0:
                raise NodeNotFound(str(node))

        await self._write_channel(node.channel, work)

    async def get_node_context(self, node: NodeId, requester: Jid) -> NodeContext:
        cache_key = ("context", node.name, requester.bare)
        cached: NodeContext | None = self._cache.get(str(node.channel), cache_key)
        if cached is not None:
            return cached
        params = {
            "channel": str(node.channel),
            "node": node.name,
            "requester": str(requester.bare),
        }

        def work(conn: sa.Connection) -> NodeContext:
            row = conn.execute(self._sql.node_context, params).mappings().first()
            if row is None:
                raise NodeNotFound(str(node))
            membership = (
                _membership(row, "m_")
                if row["m_jid"] is not None and not _ended(row["m_role"], row["m_subscription"])
                else None
            )
            return NodeContext(_channel(row, "c_"), _node(row, "n_"), membership)

        context = await self._db.lookup(work)
        self._cache.put(str(node.channel), cache_key, context)
        return context

    # --- memberships ------------------------------------------------------------------------

    async def find_membership(self, channel: Jid, jid: Jid) -> Membership | None:
        def work(conn: sa.Connection) -> Membership | None:
            result = conn.execute(
                sa.select(memberships).where(
                    memberships.c.channel == str(channel), memberships.c.jid == str(jid)
                )
            )
            row = result.mappings().first()
            if row is None or _ended(row["role"], row["subscription"]):
                return None
            return _membership(row)

        return await self._db.lookup(work)

    async def put_membership(self, membership: Membership) -> None:
        values = _membership_values(membership)

        def work(conn: sa.Connection) -> None:
            try:
                conn.execute(self._sql.upsert_membership, values)
            except IntegrityError:
                raise ChannelNotFound(str(membership.channel)) from None

        await self._write_channel(membership.channel, work)

    async def delete_membership(
        self, channel: Jid, jid: Jid, *, at: datetime | None = None
    ) -> None:
        ended = (
            Membership(channel, jid, Role.NONE, SubscriptionState.NONE, at)
            if at is not None
            else None
        )

        def work(conn: sa.Connection) -> None:
            if ended is None:
                conn.execute(
                    sa.delete(memberships).where(
                        memberships.c.channel == str(channel), memberships.c.jid == str(jid)
                    )
                )
                return
            # In a savepoint: on PostgreSQL a failed statement spoils the whole
            # transaction (and the writes batched with it) unless rolled back to one.
            try:
                with conn.begin_nested():
                    conn.execute(self._sql.upsert_membership, _membership_values(ended))
            except IntegrityError:
                pass  # the channel is gone, and every membership of it

        await self._write_channel(channel, work)

    async def delete_temporary_memberships(self) -> int:
        def work(conn: sa.Connection) -> int:
            result = conn.execute(sa.delete(memberships).where(memberships.c.temporary))
            return int(result.rowcount)

        self._cache.clear()
        try:
            return await self._db.write(work)
        finally:
            self._cache.clear()

    async def list_memberships(
        self,
        channel: Jid,
        page: PageRequest,
        *,
        roles: frozenset[Role] | None = None,
        states: frozenset[SubscriptionState] | None = None,
    ) -> Page[Membership]:
        conditions: list[Condition] = [memberships.c.channel == str(channel), _live_membership()]
        if roles is not None:
            conditions.append(memberships.c.role.in_([role.value for role in roles]))
        if states is not None:
            conditions.append(memberships.c.subscription.in_([state.value for state in states]))
        cursor = _cursor_text(page)

        def work(conn: sa.Connection) -> Page[Membership]:
            if cursor is not None:
                _require_key(
                    conn, sa.select(memberships).where(*conditions), memberships.c.jid, cursor
                )
            rows = _page_rows(
                conn,
                sa.select(memberships).where(*conditions),
                [memberships.c.jid],
                descending=False,
                cursor=(cursor,) if cursor is not None else None,
                page=page,
            )
            total = _count(
                conn, sa.select(sa.func.count()).select_from(memberships).where(*conditions)
            )
            return _page([_membership(row) for row in rows], total, lambda m: str(m.jid))

        return await self._db.read(work)

    async def list_audience(self, channel: Jid, roles: frozenset[Role]) -> tuple[Jid, ...]:
        cache_key = ("audience", roles)
        cached: tuple[Jid, ...] | None = self._cache.get(str(channel), cache_key)
        if cached is not None:
            return cached
        params = {"channel": str(channel), "roles": sorted(role.value for role in roles)}

        def work(conn: sa.Connection) -> tuple[Jid, ...]:
            return tuple(_jid(jid) for jid in conn.scalars(self._sql.audience, params))

        audience = await self._db.lookup(work)
        self._cache.put(str(channel), cache_key, audience)
        return audience

    async def list_user_memberships(
        self,
        jid: Jid,
        page: PageRequest,
        *,
        states: frozenset[SubscriptionState] | None = None,
        temporary_only: bool = False,
        ephemeral: bool | None = None,
    ) -> Page[tuple[Membership, Channel]]:
        conditions: list[Condition] = [memberships.c.jid == str(jid), _live_membership()]
        if states is not None:
            conditions.append(memberships.c.subscription.in_([state.value for state in states]))
        if temporary_only:
            conditions.append(memberships.c.temporary)
        if ephemeral is not None:
            conditions.append(channels.c.ephemeral == ephemeral)
        joined = memberships.join(channels, channels.c.jid == memberships.c.channel)
        query = (
            sa.select(*_labelled(memberships, "m_"), *_labelled(channels, "c_"))
            .select_from(joined)
            .where(*conditions)
        )
        cursor = _cursor_text(page)

        def work(conn: sa.Connection) -> Page[tuple[Membership, Channel]]:
            if cursor is not None:
                _require_key(conn, query, memberships.c.channel, cursor)
            rows = _page_rows(
                conn,
                query,
                [memberships.c.channel],
                descending=False,
                cursor=(cursor,) if cursor is not None else None,
                page=page,
            )
            total = _count(conn, sa.select(sa.func.count()).select_from(joined).where(*conditions))
            found = [(_membership(row, "m_"), _channel(row, "c_")) for row in rows]
            return _page(found, total, lambda pair: str(pair[0].channel))

        return await self._db.read(work)

    async def list_user_node_memberships(
        self,
        jid: Jid,
        page: PageRequest,
        *,
        states: frozenset[SubscriptionState] | None = None,
        ephemeral: bool | None = None,
        config: Mapping[str, str] | None = None,
    ) -> Page[NodeMembership]:
        conditions: list[Condition] = [memberships.c.jid == str(jid), _live_membership()]
        if states is not None:
            conditions.append(memberships.c.subscription.in_([state.value for state in states]))
        if ephemeral is not None:
            conditions.append(channels.c.ephemeral == ephemeral)
        for field, value in (config or {}).items():
            if field not in CONFIG_FILTER_COLUMNS:
                raise ValueError(f"cannot filter channels on {field!r}")
            conditions.append(channels.c[field] == value)
        # One statement for every node of every channel: the user's memberships (in
        # ix_memberships_user order), each joined to its channel and its channel's nodes.
        joined = memberships.join(channels, channels.c.jid == memberships.c.channel).join(
            nodes_table, nodes_table.c.channel == memberships.c.channel
        )
        query = (
            sa.select(
                *_labelled(memberships, "m_"),
                *_labelled(channels, "c_"),
                *_labelled(nodes_table, "n_"),
            )
            .select_from(joined)
            .where(*conditions)
        )
        cursor_text = _cursor_text(page)
        cursor: tuple[str, str] | None = None
        if cursor_text is not None:
            try:
                at_node = NodeId.parse(cursor_text)
            except InvalidNodeId:
                raise InvalidPaging(f"cursor {cursor_text[:80]!r} is not a node id") from None
            cursor = (str(at_node.channel), at_node.name)

        def work(conn: sa.Connection) -> Page[NodeMembership]:
            if cursor_text is not None:
                _require_key(
                    conn, query, [memberships.c.channel, nodes_table.c.name], cursor_text, cursor
                )
            rows = _page_rows(
                conn,
                query,
                [memberships.c.channel, nodes_table.c.name],
                descending=False,
                cursor=cursor,
                page=page,
            )
            total = _count(conn, sa.select(sa.func.count()).select_from(joined).where(*conditions))
            found = [
                NodeMembership(_node(row, "n_"), _channel(row, "c_"), _membership(row, "m_"))
                for row in rows
            ]
            return _page(found, total, lambda row: str(row.node.id))

        return await self._db.read(work)

    # --- items ------------------------------------------------------------------------------

    async def put_item(self, item: Item, *, max_items: int | None = None) -> None:
        def work(conn: sa.Connection) -> None:
            self._write_item(conn, item, max_items)

        await self._db.write(work)

    async def put_item_after(
        self,
        node: NodeId,
        item_id: str,
        build: Callable[[Item | None], Item],
        *,
        max_items: int | None = None,
    ) -> tuple[Item, Item | None]:
        params = {"channel": str(node.channel), "node": node.name, "id": item_id}

        def work(conn: sa.Connection) -> tuple[Item, Item | None]:
            row = self._sql.find_item.first(conn, params)
            previous = _item(row) if row is not None else None
            item = build(previous)
            self._write_item(conn, item, max_items)
            return item, previous

        return await self._db.write(work)

    def _write_item(self, conn: sa.Connection, item: Item, max_items: int | None) -> None:
        values = _item_values(item)
        where = {"b_channel": values["channel"], "b_node": values["node"]}
        try:
            self._sql.upsert_item.run(conn, values)
        except IntegrityError as exc:
            kind = _integrity_kind(exc)
            if kind == "rating":
                entry = item.entry
                raise RatingError(
                    "item-already-rated",
                    f"{item.author} already rated {entry.target if entry else 'this item'}",
                ) from None
            if kind == "foreign-key":
                raise NodeNotFound(str(item.node)) from None
            raise
        if item.in_reply_to is not None:
            # ProtoXEP 6.3.2: a reply is activity on its thread, so the parent moves up
            # (never down: a late reply does not make the thread look older).
            self._sql.bump_parent.run(
                conn, {**where, "parent": item.in_reply_to, "reply_updated": item.updated}
            )
        if max_items is not None:
            conn.execute(self._sql.trim_node, {**where, "keep": max_items})

    async def find_item(self, node: NodeId, item_id: str) -> Item | None:
        params = {"channel": str(node.channel), "node": node.name, "id": item_id}

        def work(conn: sa.Connection) -> Item | None:
            row = self._sql.find_item.first(conn, params)
            return _item(row) if row is not None else None

        return await self._db.lookup(work)

    async def get_item(self, node: NodeId, item_id: str) -> Item:
        item = await self.find_item(node, item_id)
        if item is None:
            raise ItemNotFound(str(node), item_id)
        return item

    def _item_position(
        self, conn: sa.Connection, node: NodeId, item_id: str
    ) -> tuple[datetime, str]:
        result = conn.execute(
            sa.select(items.c.updated, items.c.id).where(
                _node_condition(node), items.c.id == item_id
            )
        )
        row = result.first()
        if row is None:
            raise ItemNotFound(str(node), item_id)
        return row[0], row[1]

    def _item_page(
        self,
        conn: sa.Connection,
        node: NodeId,
        conditions: list[Condition],
        page: PageRequest,
        counter: str | None = None,
    ) -> Page[Item]:
        """One page of a node's items; `counter` names the nodes column holding the count.

        One statement in the usual case: the cursor's position and the total ride along
        as scalar subqueries. Only an empty page costs more: it tells an unknown cursor
        (ItemNotFound) from the end of the list, and counts separately.
        """
        if counter is not None:
            total_query = (
                sa.select(nodes_table.c[counter])
                .where(nodes_table.c.channel == str(node.channel), nodes_table.c.name == node.name)
                .scalar_subquery()
            )
        else:
            total_query = (
                sa.select(sa.func.count()).select_from(items).where(*conditions).scalar_subquery()
            )
        cursor_id = _cursor_text(page)
        cursor: tuple[Any, str] | None = None
        if cursor_id is not None:
            position = (
                sa.select(items.c.updated)
                .where(_node_condition(node), items.c.id == cursor_id)
                .scalar_subquery()
            )
            cursor = (position, cursor_id)
        rows = _page_rows(
            conn,
            sa.select(items, total_query.label("page_total")).where(*conditions),
            [items.c.updated, items.c.id],
            descending=True,
            cursor=cursor,
            page=page,
        )
        if rows:
            total = int(rows[0]["page_total"] or 0)
        else:
            if cursor_id is not None:
                self._item_position(conn, node, cursor_id)  # raises ItemNotFound
            total = _count(conn, sa.select(total_query))
        return _page([_item(row) for row in rows], total, lambda item: item.id)

    def _node_counter(self, conn: sa.Connection, node: NodeId, counter: str) -> int:
        return _count(
            conn,
            sa.select(nodes_table.c[counter]).where(
                nodes_table.c.channel == str(node.channel), nodes_table.c.name == node.name
            ),
        )

    async def list_items_by_author(
        self, author: Jid, *, after: tuple[NodeId, str] | None = None, limit: int = 500
    ) -> list[Item]:
        key = sa.tuple_(items.c.channel, items.c.node, items.c.id)
        query = sa.select(items).where(
            items.c.author == str(author.bare), items.c.deleted == sa.false()
        )
        if after is not None:
            node, item_id = after
            query = query.where(key > sa.tuple_(str(node.channel), node.name, item_id))
        query = query.order_by(items.c.channel, items.c.node, items.c.id).limit(limit)

        def work(conn: sa.Connection) -> list[Item]:
            return [_item(row) for row in conn.execute(query).mappings()]

        return await self._db.read(work)

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
        # Without a time window, author or deletion filter the count is kept in the nodes
        # table.
        unwindowed = since is None and until is None and author is None and include_deleted
        counter = ("parent_count" if parent_only else "item_count") if unwindowed else None
        cursor_id = _cursor_text(page)
        mode = (
            "last"
            if page.last_page
            else "before"
            if page.before is not None
            else ("after" if page.after is not None else "first")
        )
        statement = self._node_page_statement(
            parent_only=parent_only,
            since=since is not None,
            until=until is not None,
            by_author=author is not None,
            include_deleted=include_deleted,
            counter=counter,
            mode=mode,
            chronological=chronological,
        )
        params: dict[str, Any] = {
            "p_channel": str(node.channel),
            "p_node": node.name,
            "p_since": since,
            "p_until": until,
            "p_author": str(author.bare) if author is not None else None,
            "p_cursor": cursor_id,
            # One row more than the page: whether it exists tells if the page is the end.
            "p_limit": page.max + 1,
        }

        def work(conn: sa.Connection) -> Page[Item]:
            rows = list(conn.execute(statement, params).mappings()) if page.max else []
            complete = len(rows) <= page.max
            del rows[page.max :]
            if mode in ("before", "last"):
                rows.reverse()
            if rows:
                total = int(rows[0]["page_total"] or 0)
            else:
                if cursor_id is not None:
                    self._item_position(conn, node, cursor_id)  # raises ItemNotFound
                total = _count(conn, sa.select(statement.selected_columns.page_total), params)
                complete = page.max > 0 or total == 0
            found = [_item(row) for row in rows]
            return replace(_page(found, total, lambda item: item.id), complete=complete)

        return await self._db.read(work)

    def _node_page_statement(
        self,
        *,
        parent_only: bool,
        since: bool,
        until: bool,
        by_author: bool,
        include_deleted: bool,
        counter: str | None,
        mode: str,
        chronological: bool,
    ) -> sa.Select[Any]:
        """One page of a node's items as one statement, built once per shape.

        The cursor's position and the total ride along as scalar subqueries; parameters
        are p_channel, p_node, p_since, p_until, p_author, p_cursor and p_limit. Modes:
        first, after and (reversed by the caller) before and last. The list is newest
        first, or oldest first when `chronological`; both read ix_items_updated, forwards
        or backwards.
        """
        key = (parent_only, since, until, by_author, include_deleted, counter, mode, chronological)
        cached = self._page_statements.get(key)
        if cached is not None:
            return cached
        in_node = [
            items.c.channel == sa.bindparam("p_channel"),
            items.c.node == sa.bindparam("p_node"),
        ]
        conditions = list(in_node)
        if parent_only:
            conditions.append(items.c.in_reply_to.is_(None))
        if since:
            conditions.append(items.c.updated > sa.bindparam("p_since"))
        if until:
            conditions.append(items.c.updated <= sa.bindparam("p_until"))
        if by_author:
            conditions.append(items.c.author == sa.bindparam("p_author"))
        if not include_deleted:
            conditions.append(items.c.deleted == sa.false())
        if counter is not None:
            total = (
                sa.select(nodes_table.c[counter])
                .where(
                    nodes_table.c.channel == sa.bindparam("p_channel"),
                    nodes_table.c.name == sa.bindparam("p_node"),
                )
                .scalar_subquery()
            )
        else:
            total = (
                sa.select(sa.func.count()).select_from(items).where(*conditions).scalar_subquery()
            )
        statement = sa.select(items, total.label("page_total")).where(*conditions)
        order = [items.c.updated, items.c.id]
        descending = not chronological  # the list's own order
        if mode in ("after", "before"):
            position = (
                sa.select(items.c.updated)
                .where(*in_node, items.c.id == sa.bindparam("p_cursor"))
                .scalar_subquery()
            )
            # `after` goes on in the list's order, `before` back against it.
            less = (mode == "after") == descending
            statement = statement.where(
                beyond(order, (position, sa.bindparam("p_cursor")), less=less)
            )
        # first and after read in the list's order; before and last against it (the caller
        # turns those pages round).
        read_descending = descending if mode in ("first", "after") else not descending
        statement = statement.order_by(*_ordered(order, descending=read_descending)).limit(
            sa.bindparam("p_limit", type_=sa.Integer())
        )
        self._page_statements[key] = statement
        return statement

    async def list_replies(self, node: NodeId, parent_id: str, page: PageRequest) -> Page[Item]:
        conditions = [_node_condition(node), items.c.in_reply_to == parent_id]

        def work(conn: sa.Connection) -> Page[Item]:
            self._item_position(conn, node, parent_id)
            return self._item_page(conn, node, conditions, page)

        return await self._db.read(work)

    async def list_threads(self, node: NodeId, page: PageRequest) -> Page[Thread]:
        conditions = [_node_condition(node), items.c.in_reply_to.is_(None)]

        def work(conn: sa.Connection) -> Page[Thread]:
            parents = self._item_page(conn, node, conditions, page, "parent_count")
            replies: dict[str, list[Item]] = {parent.id: [] for parent in parents.items}
            if replies:
                result = conn.execute(
                    sa.select(items)
                    .where(_node_condition(node), items.c.in_reply_to.in_(list(replies)))
                    .order_by(items.c.updated.desc(), items.c.id.desc())
                )
                for row in result.mappings():
                    reply = _item(row)
                    assert reply.in_reply_to is not None
                    replies[reply.in_reply_to].append(reply)
            threads = [
                Thread(node, parent.id, parent.updated, (parent, *replies[parent.id]))
                for parent in parents.items
            ]
            return Page(
                threads, parents.count, parents.first, parents.last, cursor_of=_thread_cursor
            )

        return await self._db.read(work)

    async def find_rating(self, node: NodeId, target_id: str, author: Jid) -> Item | None:
        query = sa.select(items).where(
            _node_condition(node),
            items.c.target == target_id,
            items.c.author == str(author),
            # A literal, not a parameter, so that SQLite can use the partial index.
            sa.text("items.verb = 'rated'"),
        )

        def work(conn: sa.Connection) -> Item | None:
            row = (conn.execute(query)).mappings().first()
            return _item(row) if row is not None else None

        return await self._db.lookup(work)

    def _cross_position(self, conn: sa.Connection, cursor: str) -> tuple[datetime, str, str, str]:
        candidates = _cross_cursor_candidates(cursor)
        if candidates:
            result = conn.execute(
                sa.select(items.c.updated, items.c.channel, items.c.node, items.c.id).where(
                    sa.or_(
                        *(
                            sa.and_(_node_condition(node), items.c.id == item_id)
                            for node, item_id in candidates
                        )
                    )
                )
            )
            row = result.first()
            if row is not None:
                return row[0], row[1], row[2], row[3]
        node_text, _, item_id = cursor.partition(",")
        raise ItemNotFound(node_text, item_id)

    def _cross_page(
        self,
        conn: sa.Connection,
        base: sa.Select[Any],
        page: PageRequest,
        params: dict[str, Any] | None = None,
        *,
        offset: int = 0,
    ) -> Page[Item]:
        """A page of items from several nodes, newest first, with the size of all of `base`.

        The total is a window count over `base`, computed in the same query as the page;
        only an empty page needs a second query for it.
        """
        cursor_text = _cursor_text(page)
        cursor = self._cross_position(conn, cursor_text) if cursor_text else None
        source = base.add_columns(sa.func.count().over().label("total")).subquery("source")
        columns = [source.c.updated, source.c.channel, source.c.node, source.c.id]
        rows = _page_rows(
            conn,
            sa.select(source),
            columns,
            descending=True,
            cursor=cursor,
            page=page,
            params=params,
            offset=offset,
        )
        if rows:
            total = int(rows[0]["total"])
        else:
            total = _count(conn, sa.select(sa.func.count()).select_from(base.subquery()), params)
        return _page([_item(row) for row in rows], total, _cross_cursor)

    async def list_public_items(
        self, scope: ReadScope, page: PageRequest, *, parent_only: bool = False
    ) -> Page[Item]:
        conditions: list[Condition] = [
            _readable(scope),
            channels.c.advertised,
            items.c.deleted == sa.false(),
        ]
        if parent_only:
            conditions.append(items.c.in_reply_to.is_(None))
        base = (
            sa.select(*items.columns).select_from(_with_scope_membership(scope)).where(*conditions)
        )
        # Walks the newest items on ix_items_recent and keeps those of readable channels;
        # the count is a separate statement rather than a window over every public item.
        source = base.subquery("public")
        columns = [source.c.updated, source.c.channel, source.c.node, source.c.id]
        cursor_text = _cursor_text(page)

        def work(conn: sa.Connection) -> Page[Item]:
            cursor = self._cross_position(conn, cursor_text) if cursor_text else None
            rows = _page_rows(
                conn, sa.select(source), columns, descending=True, cursor=cursor, page=page
            )
            total = _count(conn, sa.select(sa.func.count()).select_from(source))
            return _page([_item(row) for row in rows], total, _cross_cursor)

        return await self._db.read(work)

    def _recent_query(
        self, *, parent_only: bool, by_name: bool, until: bool, by_author: bool
    ) -> sa.Select[Any]:
        """Items of a user's subscribed channels, the newest `per_node` of each node.

        SQLite picks each node's newest items with a correlated LIMIT on the paging index
        (a per-node top-k); PostgreSQL does the same with LATERAL.
        Parameters: jid, since, per_node and, with `by_name`, names; with `until`, until;
        with `by_author`, author.
        """
        key = (parent_only, by_name, until, by_author)
        cached = self._recent_cache.get(key)
        if cached is not None:
            return cached
        joined = memberships.join(nodes_table, nodes_table.c.channel == memberships.c.channel)
        conditions: list[Condition] = [
            memberships.c.jid == sa.bindparam("jid"),
            memberships.c.subscription == _SUBSCRIBED,
        ]
        if by_name:
            conditions.append(nodes_table.c.name.in_(sa.bindparam("names", expanding=True)))

        def picked(source: sa.FromClause) -> list[Condition]:
            """Which of a node's items count: the node's own, in the window, of the author."""
            chosen: list[Condition] = [
                source.c.channel == nodes_table.c.channel,
                source.c.node == nodes_table.c.name,
                source.c.updated > sa.bindparam("since"),
            ]
            if parent_only:
                chosen.append(source.c.in_reply_to.is_(None))
            if until:
                chosen.append(source.c.updated <= sa.bindparam("until"))
            if by_author:
                chosen.append(source.c.author == sa.bindparam("author"))
            return chosen

        if self._db.dialect == "sqlite":
            newest = items.alias("newest")
            top: sa.Select[Any] = (
                sa.select(sa.literal_column("newest.rowid"))
                .select_from(newest)
                .where(*picked(newest))
                .order_by(newest.c.updated.desc(), newest.c.id.desc())
                .limit(sa.bindparam("per_node", type_=sa.Integer()))
                .correlate(nodes_table)
            )
            query = (
                sa.select(*items.columns)
                .select_from(joined.join(items, sa.literal_column("items.rowid").in_(top)))
                .where(*conditions)
            )
        else:
            # One index probe per followed node (LATERAL ... LIMIT): the cost follows the
            # number of nodes and of items returned, never the size of the nodes.
            top_items = (
                sa.select(*items.columns)
                .where(*picked(items))
                .order_by(items.c.updated.desc(), items.c.id.desc())
                .limit(sa.bindparam("per_node", type_=sa.Integer()))
                .lateral("top_items")
            )
            query = (
                sa.select(*(top_items.c[column.name] for column in items.columns))
                .select_from(joined.join(top_items, sa.true()))
                .where(*conditions)
            )
        self._recent_cache[key] = query
        return query

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
        query = self._recent_query(
            parent_only=parent_only,
            by_name=node_names is not None,
            until=until is not None,
            by_author=author is not None,
        )
        params: dict[str, Any] = {
            "jid": str(jid.bare),
            "since": since,
            "per_node": max(max_per_node, 0),
        }
        if node_names is not None:
            params["names"] = sorted(node_names)
        if until is not None:
            params["until"] = until
        if author is not None:
            params["author"] = str(author.bare)

        def work(conn: sa.Connection) -> Page[Item]:
            return self._cross_page(conn, query, page, params)

        return await self._db.read(work)

    async def search_items(
        self, query: SearchQuery, page: PageRequest, *, offset: int = 0
    ) -> Page[Item]:
        if offset < 0:
            raise InvalidPaging("offset must be a non-negative integer")
        scope = query.scope
        conditions: list[Condition] = [_readable(scope), items.c.deleted == sa.false()]
        words = [word for word in query.words if word.strip()]
        if words:
            conditions.append(self._matches("items", words))
        if query.author is not None:
            conditions.append(items.c.author == str(query.author.bare))
        found = (
            sa.select(*items.columns).select_from(_with_scope_membership(scope)).where(*conditions)
        )

        def work(conn: sa.Connection) -> Page[Item]:
            return self._cross_page(conn, found, page, offset=offset)

        return await self._db.read(work)

    def _matches(self, table: Literal["items", "channels"], words: list[str]) -> Condition:
        """All `words` occur in the row's indexed text: an item's title or content, a
        channel's title or description."""
        if self._db.dialect == "sqlite":
            # FTS5 query syntax: each word as a quoted string, juxtaposed means AND.
            match = " ".join('"' + word.replace('"', '""') + '"' for word in words)
            hits = (
                sa.text(f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH :fts_match")
                .bindparams(fts_match=match)
                .columns(sa.column("rowid", sa.Integer()))
            )
            return sa.literal_column(f"{table}.rowid").in_(hits)
        tsquery = sa.func.plainto_tsquery("simple", " ".join(words))
        return sa.literal_column(f"{table}.search").op("@@", is_comparison=True)(tsquery)

    async def count_items(self, node: NodeId) -> int:
        def work(conn: sa.Connection) -> int:
            return self._node_counter(conn, node, "item_count")

        return await self._db.read(work)

    # --- the built-in user database ------------------------------------------------------

    async def insert_account(self, account: Account) -> None:
        values = {
            "jid": str(account.jid),
            "password_hash": account.password_hash,
            "email": account.email,
            "created": account.created,
        }

        def work(conn: sa.Connection) -> None:
            try:
                conn.execute(sa.insert(accounts).values(values))
            except IntegrityError:
                raise AccountExists(str(account.jid)) from None

        await self._db.write(work)

    async def find_account(self, jid: Jid) -> Account | None:
        def work(conn: sa.Connection) -> Account | None:
            row = (
                conn.execute(sa.select(accounts).where(accounts.c.jid == str(jid)))
                .mappings()
                .first()
            )
            return _account(row) if row is not None else None

        return await self._db.lookup(work)

    async def update_account_password(self, jid: Jid, password_hash: str) -> None:
        def work(conn: sa.Connection) -> None:
            result = conn.execute(
                sa.update(accounts)
                .where(accounts.c.jid == str(jid))
                .values(password_hash=password_hash)
            )
            if result.rowcount == 0:
                raise AccountNotFound(str(jid))

        await self._db.write(work)

    async def delete_account(self, jid: Jid) -> None:
        def work(conn: sa.Connection) -> None:
            result = conn.execute(sa.delete(accounts).where(accounts.c.jid == str(jid)))
            if result.rowcount == 0:
                raise AccountNotFound(str(jid))

        await self._db.write(work)

    async def list_accounts(self, page: PageRequest) -> Page[Account]:
        def work(conn: sa.Connection) -> Page[Account]:
            total = conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()
            query = sa.select(accounts)
            if page.before is not None:
                query = query.where(accounts.c.jid < page.before).order_by(accounts.c.jid.desc())
            elif page.last_page:
                query = query.order_by(accounts.c.jid.desc())
            else:
                if page.after is not None:
                    query = query.where(accounts.c.jid > page.after)
                query = query.order_by(accounts.c.jid)
            rows = conn.execute(query.limit(page.max)).mappings().all()
            found = [_account(row) for row in rows]
            if page.before is not None or page.last_page:
                found.reverse()
            return _page(found, int(total), lambda account: str(account.jid))

        return await self._db.read(work)

    # --- sign-in state ---------------------------------------------------------------------

    async def get_or_insert_server_key(self, name: str, value: str) -> str:
        def work(conn: sa.Connection) -> str:
            query = sa.select(server_keys.c.value).where(server_keys.c.name == name)
            found = conn.execute(query).scalar_one_or_none()
            if found is not None:
                return str(found)
            # A savepoint, so that losing the race to another worker spoils nothing else
            # of the batch this write commits with.
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(server_keys).values(name=name, value=value))
            except IntegrityError:
                return str(conn.execute(query).scalar_one())
            return value

        return await self._db.write(work)

    async def find_sign_in_generation(self, jid: Jid) -> int:
        def work(conn: sa.Connection) -> int:
            query = sa.select(sign_in_generations.c.generation).where(
                sign_in_generations.c.jid == str(jid)
            )
            found = conn.execute(query).scalar_one_or_none()
            return int(found) if found is not None else 0

        return await self._db.lookup(work)

    async def raise_sign_in_generation(self, jid: Jid) -> int:
        def work(conn: sa.Connection) -> int:
            table = sign_in_generations
            updated = conn.execute(
                sa.update(table)
                .where(table.c.jid == str(jid))
                .values(generation=table.c.generation + 1)
                .returning(table.c.generation)
            ).scalar_one_or_none()
            if updated is not None:
                return int(updated)
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(table).values(jid=str(jid), generation=1))
            except IntegrityError:
                # Another worker inserted it meanwhile: raise theirs.
                return int(
                    conn.execute(
                        sa.update(table)
                        .where(table.c.jid == str(jid))
                        .values(generation=table.c.generation + 1)
                        .returning(table.c.generation)
                    ).scalar_one()
                )
            return 1

        return await self._db.write(work)

    async def insert_password_reset(self, token_digest: str, jid: Jid, expires: datetime) -> None:
        values = {"token_digest": token_digest, "jid": str(jid), "expires": expires}

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.insert(password_resets).values(values))

        await self._db.write(work)

    async def take_password_reset(self, token_digest: str, now: datetime) -> Jid | None:
        def work(conn: sa.Connection) -> Jid | None:
            table = password_resets
            row = (
                conn.execute(
                    sa.delete(table)
                    .where(table.c.token_digest == token_digest)
                    .returning(table.c.jid, table.c.expires)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            # One reset per account: its other tokens, and every expired one, go too.
            conn.execute(
                sa.delete(table).where((table.c.jid == row["jid"]) | (table.c.expires <= now))
            )
            if row["expires"] <= now:
                return None
            return Jid.parse(row["jid"])

        return await self._db.write(work)

    # --- federation's outbox ------------------------------------------------------------------

    async def enqueue_outbox(self, domains: Sequence[str], body: str, created: datetime) -> None:
        if not domains:
            return
        rows = [{"domain": domain, "body": body, "created": created} for domain in domains]

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.insert(outbox), rows)

        await self._db.write(work)

    async def read_outbox(self, domain: str, *, max_bytes: int, max_rows: int) -> list[OutboxEntry]:
        query = (
            sa.select(outbox.c.sequence, outbox.c.body, outbox.c.created)
            .where(outbox.c.domain == domain)
            .order_by(outbox.c.sequence)
            .limit(max_rows)
        )

        def work(conn: sa.Connection) -> list[OutboxEntry]:
            found: list[OutboxEntry] = []
            used = 0
            for row in conn.execute(query):
                body = row.body
                size = len(body) if body.isascii() else len(body.encode())
                if found and used + size > max_bytes:
                    break
                found.append(OutboxEntry(int(row.sequence), body, row.created))
                used += size
            return found

        return await self._db.read(work)

    async def delete_outbox(
        self,
        domain: str,
        sequences: Sequence[int],
        *,
        at: datetime,
        server: str,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"server": server, "attempts": 0}
        if error is None:
            values["last_success"] = at
        else:
            values.update(last_error=error, last_error_at=at)
        delete = sa.delete(outbox).where(
            outbox.c.domain == domain, outbox.c.sequence.in_(list(sequences))
        )

        def work(conn: sa.Connection) -> None:
            conn.execute(delete)
            self._upsert_status(conn, domain, values)

        await self._db.write(work)

    async def record_outbox_failure(
        self, domain: str, *, at: datetime, server: str | None, error: str
    ) -> None:
        def work(conn: sa.Connection) -> None:
            values: dict[str, Any] = {"last_error": error, "last_error_at": at}
            if server is not None:
                values["server"] = server
            updated = conn.execute(
                sa.update(outbox_status)
                .where(outbox_status.c.domain == domain)
                .values(attempts=outbox_status.c.attempts + 1, **values)
            ).rowcount
            if not updated:
                self._upsert_status(conn, domain, {**values, "attempts": 1})

        await self._db.write(work)

    def _upsert_status(self, conn: sa.Connection, domain: str, values: dict[str, Any]) -> None:
        insert = sqlite_insert if self._db.dialect == "sqlite" else postgresql_insert
        statement = insert(outbox_status).values(domain=domain, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=["domain"], set_=values))

    async def list_outbox_status(self) -> list[OutboxStatus]:
        depths = (
            sa.select(outbox.c.domain, sa.func.count().label("depth"))
            .group_by(outbox.c.domain)
            .subquery()
        )
        domains = sa.union(sa.select(outbox_status.c.domain), sa.select(depths.c.domain)).subquery()
        query = (
            sa.select(
                domains.c.domain,
                outbox_status.c.server,
                sa.func.coalesce(depths.c.depth, 0).label("depth"),
                outbox_status.c.last_success,
                outbox_status.c.last_error,
                outbox_status.c.last_error_at,
                sa.func.coalesce(outbox_status.c.attempts, 0).label("attempts"),
            )
            .select_from(
                domains.outerjoin(
                    outbox_status, outbox_status.c.domain == domains.c.domain
                ).outerjoin(depths, depths.c.domain == domains.c.domain)
            )
            .order_by(domains.c.domain)
        )

        def work(conn: sa.Connection) -> list[OutboxStatus]:
            return [
                OutboxStatus(
                    row.domain,
                    row.server,
                    int(row.depth),
                    row.last_success,
                    row.last_error,
                    row.last_error_at,
                    int(row.attempts),
                )
                for row in conn.execute(query)
            ]

        return await self._db.read(work)

    # --- archive ----------------------------------------------------------------------------

    async def list_archive(self, query: ArchiveQuery, page: PageRequest) -> Page[ArchiveEntry]:
        cursor, position, backward = cursor_params(page)
        if not query.kinds:
            return Page([], 0, complete=True, cursor_of=_archive_cursor)
        shape = Shape(
            kinds=query.kinds,
            start=query.start is not None,
            end=query.end is not None,
            author=query.author is not None,
            cursor=position is not None,
            backward=backward,
        )
        params: dict[str, Any] = {
            "requester": str(query.requester.bare),
            "start": query.start,
            "end": query.end,
            "author": str(query.author.bare) if query.author is not None else None,
            # One row more than the page: whether it exists tells if the page is the end.
            "limit": page.max + 1,
            **cursor,
            **scope_params(query),
        }
        statement = self._archive.page(shape)
        counting = self._archive.count(shape)

        def work(conn: sa.Connection) -> Page[ArchiveEntry]:
            if position is not None and not entry_exists(conn, position):
                raise CursorNotFound(page.after or page.before or "")
            total = _count(conn, counting, params)
            if page.max == 0:
                return Page([], total, complete=total == 0, cursor_of=_archive_cursor)
            rows = list(conn.execute(statement, params).mappings())
            complete = len(rows) <= page.max
            del rows[page.max :]
            if backward:
                rows.reverse()
            found = [_archive_entry(row) for row in rows]
            return Page(
                found,
                total,
                found[0].cursor if found else None,
                found[-1].cursor if found else None,
                complete=complete,
                cursor_of=_archive_cursor,
            )

        return await self._db.read(work)


def _account(row: RowMapping) -> Account:
    return Account(
        jid=Jid.parse(row["jid"]),
        password_hash=row["password_hash"],
        email=row["email"],
        created=row["created"],
    )


def _with_scope_membership(scope: ReadScope) -> sa.FromClause:
    """Items joined to their channel and to the scope requester's membership there, if any."""
    return items.join(channels, channels.c.jid == items.c.channel).outerjoin(
        memberships,
        sa.and_(
            memberships.c.channel == items.c.channel,
            memberships.c.jid == str(scope.requester.bare),
        ),
    )


def _readable(scope: ReadScope) -> Condition:
    """The channel (joined by `_with_scope_membership`) is one the scope may read: its access
    model maps to roles holding the requester's role there (`none` without a membership)."""
    role = sa.func.coalesce(memberships.c.role, Role.NONE.value)
    readable = [
        sa.and_(
            channels.c.access_model == model.value,
            role.in_(sorted(r.value for r in roles)),
        )
        for model, roles in scope.roles_by_model.items()
        if roles
    ]
    return sa.or_(*readable) if readable else sa.false()


_ITEM_COLUMNS = tuple(column.name for column in items.columns)


def _archive_cursor(entry: ArchiveEntry) -> str:
    return entry.cursor


def _archive_entry(row: RowMapping) -> ArchiveEntry:
    """An entry from a row of the archive's page statement (positions and the rows)."""
    position = Position(row["a_at"], row["a_kind"], row["a_channel"], row["a_node"], row["a_key"])
    kind = ArchiveKind(position.kind)
    node = _node(row, "n_") if row["n_channel"] is not None else None
    item = (
        _item({name: row["i_" + name] for name in _ITEM_COLUMNS})
        if row["i_channel"] is not None
        else None
    )
    membership = _membership(row, "m_") if row["m_channel"] is not None else None
    return ArchiveEntry(
        format_cursor(position),
        position.at,
        kind,
        _channel(row, "c_"),
        node=node,
        item=item,
        membership=membership,
    )


def _page(found: list[Any], total: int, key: Any) -> Page[Any]:
    if not found:
        return Page(found, total, cursor_of=key)
    return Page(found, total, key(found[0]), key(found[-1]), cursor_of=key)
