"""The archive of changes (`Storage.list_archive`): statements and cursors.

A change is a row of one of five kinds (`ArchiveKind`): an item (or tombstone) at its
`updated`, a membership as a subscription, as an affiliation or as an authorization
prompt at its `updated`, a node's configuration at its channel's `updated`. Every kind
comes from the channels the requester belongs to (their memberships, `ix_memberships_user`),
and is ordered by (time, kind, channel, node, key), where the key is the item id or the
member's JID.

A page is one statement: a UNION ALL of one branch per kind, in which every node (for
items) or channel (for memberships) contributes at most a page of its own, read in order
from an index (`ix_items_updated`, `ix_memberships_changes`) past the cursor: on
PostgreSQL with LATERAL, on SQLite with a correlated LIMIT on rowids (as in recent items).
The whole is then sorted and cut. The cost follows the number of channels and the page
size, not the size of the archive; only `count` reads every change in the window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import sqlalchemy as sa

from buddycloud.domain.errors import InvalidPaging
from buddycloud.domain.model import AccessModel, PageRequest, Role, SubscriptionState
from buddycloud.storage.base import ArchiveKind, ArchiveQuery
from buddycloud.storage.sql.keyset import beyond
from buddycloud.storage.sql.schema import UtcDateTime, channels, items, memberships
from buddycloud.storage.sql.schema import nodes as nodes_table

Condition = sa.ColumnElement[bool]
Column = sa.ColumnElement[Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SUBSCRIBED = SubscriptionState.SUBSCRIBED.value
_PENDING = SubscriptionState.PENDING.value
_OUTCAST = Role.OUTCAST.value
_NONE = Role.NONE.value
_SCOPES = ("items", "followers", "staff")
_ORDER = ("at", "kind", "channel", "node", "key")
_MEMBERSHIP_KINDS = (
    ArchiveKind.SUBSCRIPTION.value,
    ArchiveKind.AFFILIATION.value,
    ArchiveKind.AUTHORIZATION.value,
)
_CURSOR = re.compile(
    rf"^(-?[0-9]{{1,18}}),([0-{max(kind.value for kind in ArchiveKind)}]),"
    r"([^,]*),([^,]*),([^,]*)$"
)


# --- cursors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """Where an entry sorts: its cursor, parsed."""

    at: datetime
    kind: int
    channel: str
    node: str
    key: str


def format_cursor(position: Position) -> str:
    """The cursor of a position: `<µs since 1970>,<kind>,<channel>,<node>,<key>`, the
    last three %-escaped (commas included), JIDs and node paths readable."""
    micros = (position.at - _EPOCH) // _MICROSECOND
    parts = (position.channel, position.node, position.key)
    return ",".join([str(micros), str(position.kind), *(quote(p, safe="@/") for p in parts)])


def parse_cursor(cursor: str) -> Position:
    """Raises InvalidPaging: not a cursor of the archive."""
    match = _CURSOR.match(cursor)
    if match is None:
        raise InvalidPaging("this is not a position in the archive")
    micros, kind, *parts = match.groups()
    try:
        at = _EPOCH + int(micros) * _MICROSECOND
        channel, node, key = (unquote(part, errors="strict") for part in parts)
    except (OverflowError, UnicodeDecodeError):
        raise InvalidPaging("this is not a position in the archive") from None
    return Position(at, int(kind), channel, node, key)


# --- statements ---------------------------------------------------------------------------


def _labelled(table: sa.FromClause, prefix: str) -> list[sa.Label[Any]]:
    return [column.label(prefix + column.name) for column in table.columns]


def scope_params(query: ArchiveQuery) -> dict[str, Any]:
    """The roles of each scope and access model, as the statements' parameters."""
    params: dict[str, Any] = {}
    for name, scope in zip(_SCOPES, (query.items, query.followers, query.staff), strict=True):
        for model in AccessModel:
            params[f"{name}_{model.value}"] = sorted(r.value for r in scope.get(model, ()))
    return params


@dataclass(frozen=True, slots=True)
class Shape:
    """What a statement depends on besides its parameters."""

    kinds: frozenset[ArchiveKind]
    start: bool
    end: bool
    author: bool
    cursor: bool
    backward: bool


class ArchiveStatements:
    """Page and count statements of the archive, built once per shape and dialect.

    Parameters: requester, start, end, author, limit, the cursor's c_at, c_kind,
    c_channel, c_node and c_key, and the scopes' role lists (`scope_params`).
    """

    def __init__(self, dialect: str) -> None:
        self._dialect = dialect
        self._pages: dict[Shape, sa.Select[Any]] = {}
        self._counts: dict[Shape, sa.Select[Any]] = {}

    def page(self, shape: Shape) -> sa.Select[Any]:
        statement = self._pages.get(shape)
        if statement is None:
            statement = self._pages[shape] = _Builder(self._dialect, shape).page()
        return statement

    def count(self, shape: Shape) -> sa.Select[Any]:
        key = Shape(shape.kinds, shape.start, shape.end, shape.author, False, False)
        statement = self._counts.get(key)
        if statement is None:
            statement = self._counts[key] = _Builder(self._dialect, key).count()
        return statement


class _Builder:
    def __init__(self, dialect: str, shape: Shape) -> None:
        self.dialect = dialect
        self.shape = shape
        self.mine = memberships.alias("mine")
        self.requester = sa.bindparam("requester", type_=sa.Text())
        self.limit = sa.bindparam("limit", type_=sa.Integer())
        self.cursor = (
            sa.bindparam("c_at", type_=UtcDateTime()),
            sa.bindparam("c_kind", type_=sa.Integer()),
            sa.bindparam("c_channel", type_=sa.Text()),
            sa.bindparam("c_node", type_=sa.Text()),
            sa.bindparam("c_key", type_=sa.Text()),
        )

    # --- shared pieces --------------------------------------------------------------------

    def belongs(self) -> sa.FromClause:
        """The requester's memberships, with their channels."""
        return self.mine.join(channels, channels.c.jid == self.mine.c.channel)

    def member(self) -> list[Condition]:
        """A membership of the requester that is not a ban."""
        return [self.mine.c.jid == self.requester, self.mine.c.role != _OUTCAST]

    def followed(self) -> Condition:
        return self.mine.c.subscription == _SUBSCRIBED

    def in_scope(self, name: str) -> Condition:
        """The requester's role is one of the scope's roles for the channel's model."""
        return sa.or_(
            *(
                sa.and_(
                    channels.c.access_model == model.value,
                    self.mine.c.role.in_(sa.bindparam(f"{name}_{model.value}", expanding=True)),
                )
                for model in AccessModel
            )
        )

    def window(self, column: Column) -> list[Condition]:
        conditions: list[Condition] = []
        if self.shape.start:
            conditions.append(column >= sa.bindparam("start", type_=UtcDateTime()))
        if self.shape.end:
            conditions.append(column <= sa.bindparam("end", type_=UtcDateTime()))
        return conditions

    def past_cursor(self, columns: Sequence[Column]) -> list[Condition]:
        if not self.shape.cursor:
            return []
        return [beyond(columns, self.cursor, less=self.shape.backward)]

    def order(self, columns: Sequence[Column]) -> list[Any]:
        return [c.desc() if self.shape.backward else c.asc() for c in columns]

    @staticmethod
    def kind(kind: ArchiveKind) -> Column:
        return sa.literal_column(str(kind.value), sa.Integer())

    @staticmethod
    def blank() -> Column:
        return sa.literal_column("''", sa.Text())

    # --- per node and per channel pages ---------------------------------------------------

    def top(
        self,
        table: sa.Table,
        name: str,
        conditions: Callable[[sa.FromClause], list[Condition]],
        order: Callable[[sa.FromClause], list[Column]],
        correlate: Sequence[sa.FromClause],
        keys: Callable[[sa.FromClause], list[Column]],
    ) -> tuple[sa.FromClause, Condition, list[Column]]:
        """At most `limit` rows of `table` per outer row, read in order: what to join, on
        what, and the joined row's (at, channel, node, key) columns."""
        if self.dialect == "sqlite":
            inner = table.alias(f"{name}_pick")
            picked: sa.Select[Any] = (
                sa.select(sa.literal_column(f"{name}_pick.rowid"))
                .select_from(inner)
                .where(*conditions(inner))
                .order_by(*self.order(order(inner)))
                .limit(self.limit)
                .correlate(*correlate)
            )
            joined = table.alias(name)
            return joined, sa.literal_column(f"{name}.rowid").in_(picked), keys(joined)
        # An alias, so that nothing outside can be mistaken for this subquery's table.
        source = table.alias(f"{name}_pick")
        columns = keys(source)
        lateral = (
            sa.select(*(column.label(f"k{n}") for n, column in enumerate(columns)))
            .where(*conditions(source))
            .order_by(*self.order(order(source)))
            .limit(self.limit)
            .lateral(name)
        )
        return lateral, sa.true(), [lateral.c[f"k{n}"] for n in range(len(columns))]

    # --- one branch per kind --------------------------------------------------------------

    def items_branch(self, *, limited: bool) -> sa.Select[Any]:
        def conditions(source: sa.FromClause) -> list[Condition]:
            found = [
                source.c.channel == nodes_table.c.channel,
                source.c.node == nodes_table.c.name,
                *self.window(source.c.updated),
            ]
            if self.shape.author:
                found.append(source.c.author == sa.bindparam("author", type_=sa.Text()))
            return found + self.past_cursor(
                [
                    source.c.updated,
                    self.kind(ArchiveKind.ITEM),
                    source.c.channel,
                    source.c.node,
                    source.c.id,
                ]
            )

        def keys(source: sa.FromClause) -> list[Column]:
            return [source.c.updated, source.c.channel, source.c.node, source.c.id]

        base = self.belongs().join(nodes_table, nodes_table.c.channel == self.mine.c.channel)
        where = [*self.member(), self.followed(), self.in_scope("items")]
        if limited:
            joined, on, columns = self.top(
                items,
                "item",
                conditions,
                lambda source: [source.c.updated, source.c.id],
                (nodes_table,),
                keys,
            )
            source = base.join(joined, on)
        else:
            source = base.join(items, sa.and_(*conditions(items)))
            columns = keys(items)
        return self.branch(ArchiveKind.ITEM, source, where, columns)

    def membership_branch(self, kind: ArchiveKind, *, limited: bool) -> sa.Select[Any]:
        """Memberships of the followed channels that `kind` shows the requester."""
        staff = self.in_scope("staff")

        def visible(source: sa.FromClause) -> list[Condition]:
            mine_too = source.c.jid == self.requester
            if kind is ArchiveKind.SUBSCRIPTION:
                followers = sa.and_(
                    self.in_scope("followers"),
                    source.c.subscription == _SUBSCRIBED,
                    source.c.role != _OUTCAST,
                )
                return [sa.or_(staff, followers, mine_too)]
            if kind is ArchiveKind.AFFILIATION:
                # Where the subscription shows, the role goes with it: alone, a role shows
                # only to followers who may not see that member's subscription.
                return [
                    self.in_scope("followers"),
                    sa.not_(staff),
                    source.c.role.not_in([_NONE, _OUTCAST]),
                    source.c.subscription != _SUBSCRIBED,
                    source.c.jid != self.requester,
                ]
            return [source.c.subscription == _PENDING]

        def conditions(source: sa.FromClause) -> list[Condition]:
            return [
                source.c.channel == self.mine.c.channel,
                *self.window(source.c.updated),
                *visible(source),
                *self.past_cursor(
                    [
                        source.c.updated,
                        self.kind(kind),
                        source.c.channel,
                        self.blank(),
                        source.c.jid,
                    ]
                ),
            ]

        def keys(source: sa.FromClause) -> list[Column]:
            return [source.c.updated, source.c.channel, self.blank(), source.c.jid]

        where = [*self.member(), self.followed()]
        if kind is ArchiveKind.AUTHORIZATION:
            where.append(staff)
        if limited:
            joined, on, columns = self.top(
                memberships,
                "change",
                conditions,
                lambda source: [source.c.updated, source.c.jid],
                (self.mine, channels),
                keys,
            )
            source = self.belongs().join(joined, on)
        else:
            changes = memberships.alias("change")
            source = self.belongs().join(changes, sa.and_(*conditions(changes)))
            columns = keys(changes)
        return self.branch(kind, source, where, columns)

    def own_branch(self) -> sa.Select[Any]:
        """The requester's own membership of a channel they do not follow (a request, an
        invitation, a role, or its end), as a subscription."""
        mine = self.mine
        kind = ArchiveKind.SUBSCRIPTION
        where = [
            *self.member(),
            sa.not_(self.followed()),
            *self.window(mine.c.updated),
            *self.past_cursor(
                [mine.c.updated, self.kind(kind), mine.c.channel, self.blank(), mine.c.jid]
            ),
        ]
        columns = [mine.c.updated, mine.c.channel, self.blank(), mine.c.jid]
        return self.branch(kind, self.belongs(), where, columns)

    def configuration_branch(self) -> sa.Select[Any]:
        at = channels.c.updated
        kind = self.kind(ArchiveKind.CONFIGURATION)
        where = [
            *self.member(),
            self.followed(),
            at > channels.c.created,
            *self.window(at),
            *self.past_cursor([at, kind, channels.c.jid, nodes_table.c.name, self.blank()]),
        ]
        source = self.belongs().join(nodes_table, nodes_table.c.channel == self.mine.c.channel)
        columns = [at, channels.c.jid, nodes_table.c.name, self.blank()]
        return self.branch(ArchiveKind.CONFIGURATION, source, where, columns)

    def branch(
        self,
        kind: ArchiveKind,
        source: sa.FromClause,
        where: list[Condition],
        columns: list[Column],
    ) -> sa.Select[Any]:
        at, channel, node, key = columns
        return (
            sa.select(
                at.label("at"),
                self.kind(kind).label("kind"),
                channel.label("channel"),
                node.label("node"),
                key.label("key"),
            )
            .select_from(source)
            .where(*where)
        )

    def branches(self, *, limited: bool) -> list[sa.Select[Any]]:
        kinds = self.shape.kinds
        found = []
        if ArchiveKind.ITEM in kinds:
            found.append(self.items_branch(limited=limited))
        if ArchiveKind.SUBSCRIPTION in kinds:
            found.append(self.membership_branch(ArchiveKind.SUBSCRIPTION, limited=limited))
            found.append(self.own_branch())
        if ArchiveKind.AFFILIATION in kinds:
            found.append(self.membership_branch(ArchiveKind.AFFILIATION, limited=limited))
        if ArchiveKind.AUTHORIZATION in kinds:
            found.append(self.membership_branch(ArchiveKind.AUTHORIZATION, limited=limited))
        if ArchiveKind.CONFIGURATION in kinds:
            found.append(self.configuration_branch())
        return found

    # --- statements -----------------------------------------------------------------------

    def page(self) -> sa.Select[Any]:
        """The page's positions (a_at, a_kind, a_channel, a_node, a_key) with the rows
        they name, by primary key: the channel (c_), node (n_), item (i_), membership (m_)."""
        union = sa.union_all(*self.branches(limited=True)).subquery("archive_union")
        order = [union.c.at, union.c.kind, union.c.channel, union.c.node, union.c.key]
        page = sa.select(*order).order_by(*self.order(order)).limit(self.limit).subquery("page")
        channel, node = channels.alias("c"), nodes_table.alias("n")
        item, membership = items.alias("i"), memberships.alias("m")
        kind = page.c.kind
        joined = (
            page.join(channel, channel.c.jid == page.c.channel)
            .outerjoin(
                node,
                sa.and_(
                    kind.in_([ArchiveKind.ITEM.value, ArchiveKind.CONFIGURATION.value]),
                    node.c.channel == page.c.channel,
                    node.c.name == page.c.node,
                ),
            )
            .outerjoin(
                item,
                sa.and_(
                    kind == ArchiveKind.ITEM.value,
                    item.c.channel == page.c.channel,
                    item.c.node == page.c.node,
                    item.c.id == page.c.key,
                ),
            )
            .outerjoin(
                membership,
                sa.and_(
                    kind.in_(_MEMBERSHIP_KINDS),
                    membership.c.channel == page.c.channel,
                    membership.c.jid == page.c.key,
                ),
            )
        )
        positions = [page.c[name].label(f"a_{name}") for name in _ORDER]
        return (
            sa.select(
                *positions,
                *_labelled(channel, "c_"),
                *_labelled(node, "n_"),
                *_labelled(item, "i_"),
                *_labelled(membership, "m_"),
            )
            .select_from(joined)
            .order_by(*self.order([page.c[name] for name in _ORDER]))
        )

    def count(self) -> sa.Select[Any]:
        union = sa.union_all(*self.branches(limited=False)).subquery("archive")
        return sa.select(sa.func.count()).select_from(union)


def cursor_params(page: PageRequest) -> tuple[dict[str, Any], Position | None, bool]:
    """The cursor's parameters, its position (None without one), and whether the page is
    read backwards (towards older changes).

    Raises:
        InvalidPaging: a malformed cursor.
    """
    cursor = page.after if page.after is not None else page.before
    backward = page.last_page or page.before is not None
    if cursor is None:
        return dict.fromkeys(("c_at", "c_kind", "c_channel", "c_node", "c_key")), None, backward
    position = parse_cursor(cursor)
    params = {
        "c_at": position.at,
        "c_kind": position.kind,
        "c_channel": position.channel,
        "c_node": position.node,
        "c_key": position.key,
    }
    return params, position, backward


def entry_exists(conn: sa.Connection, position: Position) -> bool:
    """Whether the item, membership (or its end) or node a position names still exists,
    wherever it sorts now: a position stays a place in time order when its entry changed
    since (a page goes on from there), but one naming nothing is no cursor (XEP-0059)."""
    if position.kind == ArchiveKind.ITEM.value:
        table, match = items, [items.c.node == position.node, items.c.id == position.key]
    elif position.kind == ArchiveKind.CONFIGURATION.value:
        table, match = nodes_table, [nodes_table.c.name == position.node]
    else:
        table, match = memberships, [memberships.c.jid == position.key]
    found = conn.execute(
        sa.select(sa.literal(1))
        .select_from(table)
        .where(table.c.channel == position.channel, *match)
        .limit(1)
    ).first()
    return found is not None
