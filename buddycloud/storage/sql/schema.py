"""The tables, as SQLAlchemy Core metadata used to build queries.

The migrations in `buddycloud/storage/migrations` create the same tables; the migration
test checks that both agree. Full-text search lives outside these tables: an FTS5 table on
SQLite and a generated `tsvector` column on PostgreSQL (see the migration).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, exact to the microsecond on every backend.

    PostgreSQL stores `timestamptz` (microsecond precision). SQLite has no date type, so it
    stores integer microseconds since the epoch: exact, compact and ordered like the time.
    Naive datetimes are refused, so a local time can never be stored by mistake.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware datetimes, not {value!r}")
        if dialect.name == "sqlite":
            return (value - _EPOCH) // _MICROSECOND
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return _EPOCH + timedelta(microseconds=int(value))
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


def key_text() -> sa.types.TypeEngine[str]:
    """Text compared byte by byte on every backend, so orderings by JID or id agree."""
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


metadata = sa.MetaData()

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("jid", key_text(), primary_key=True),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("access_model", sa.Text(), nullable=False),
    sa.Column("default_role", sa.Text(), nullable=False),
    sa.Column("creator", sa.Text(), nullable=False),
    sa.Column("channel_type", sa.Text(), nullable=False),
    sa.Column("created", UtcDateTime(), nullable=False),
    sa.Column("updated", UtcDateTime(), nullable=False),
    sa.Column("ephemeral", sa.Boolean(), nullable=False),
    # False: left out of disco#items, the firehose and the top lists.
    sa.Column("advertised", sa.Boolean(), nullable=False, server_default=sa.true()),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column(
        "channel",
        key_text(),
        sa.ForeignKey("channels.jid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", key_text(), primary_key=True),
    sa.Column("payload_type", sa.Text(), nullable=False),
    sa.Column("max_items", sa.Integer(), nullable=True),
    sa.Column("created", UtcDateTime(), nullable=False),
    # Kept by triggers (see the migration): all items, and items that are no reply.
    sa.Column("item_count", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("parent_count", sa.BigInteger(), nullable=False, server_default="0"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column(
        "channel",
        key_text(),
        sa.ForeignKey("channels.jid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("jid", key_text(), primary_key=True),
    sa.Column("role", sa.Text(), nullable=False),
    sa.Column("subscription", sa.Text(), nullable=False),
    sa.Column("invited_by", sa.Text(), nullable=True),
    sa.Column("updated", UtcDateTime(), nullable=False),
    sa.Column("temporary", sa.Boolean(), nullable=False, server_default=sa.false()),
    # A user's memberships (recent items, their subscription list).
    sa.Index("ix_memberships_user", "jid", "channel"),
    # Who gets notified: the subscribed members of a channel with some roles.
    sa.Index("ix_memberships_audience", "channel", "subscription", "role"),
    # What changed in a channel since a time (the archive, oldest first).
    sa.Index("ix_memberships_changes", "channel", "updated", "jid"),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("channel", key_text(), primary_key=True),
    sa.Column("node", key_text(), primary_key=True),
    sa.Column("id", key_text(), primary_key=True),
    sa.Column("author", sa.Text(), nullable=False),
    sa.Column("published", UtcDateTime(), nullable=False),
    sa.Column("updated", UtcDateTime(), nullable=False),
    sa.Column("in_reply_to", key_text(), nullable=True),
    sa.Column("deleted", sa.Boolean(), nullable=False),
    # 'entry', 'raw' or NULL (no payload, e.g. a tombstone).
    sa.Column("kind", sa.Text(), nullable=True),
    # The Atom entry, one column per field (ProtoXEP 6.3).
    sa.Column("entry_id", sa.Text(), nullable=True),
    sa.Column("entry_author", sa.Text(), nullable=True),
    sa.Column("entry_published", UtcDateTime(), nullable=True),
    sa.Column("entry_updated", UtcDateTime(), nullable=True),
    sa.Column("entry_in_reply_to", sa.Text(), nullable=True),
    sa.Column("title", sa.Text(), nullable=True),
    sa.Column("content", sa.Text(), nullable=True),
    sa.Column("content_type", sa.Text(), nullable=True),
    sa.Column("verb", sa.Text(), nullable=True),
    sa.Column("object_type", sa.Text(), nullable=True),
    sa.Column("target", key_text(), nullable=True),
    sa.Column("rating", sa.Integer(), nullable=True),
    sa.Column("extensions", sa.Text(), nullable=True),  # JSON array of XML strings
    # A payload the engine does not interpret.
    sa.Column("raw_xml", sa.Text(), nullable=True),
    sa.Column("raw_namespace", sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(
        ["channel", "node"], ["nodes.channel", "nodes.name"], ondelete="CASCADE"
    ),
    # Keyset paging, newest first (never OFFSET).
    sa.Index(
        "ix_items_updated",
        "channel",
        "node",
        sa.text("updated DESC"),
        sa.text("id DESC"),
    ),
    # Replies of one parent, newest first.
    sa.Index("ix_items_replies", "channel", "node", "in_reply_to", "updated"),
    # What one user wrote, in any node (unregistering).
    sa.Index("ix_items_author", "author", "channel", "node", "id"),
    # The newest items across every node (the firehose, top channels by posts).
    sa.Index("ix_items_recent", "updated", "channel", "node", "id"),
    # ProtoXEP 6.3.4: one rating per author and target.
    sa.Index(
        "ux_items_rating",
        "channel",
        "node",
        "target",
        "author",
        unique=True,
        sqlite_where=sa.text("verb = 'rated'"),
        postgresql_where=sa.text("verb = 'rated'"),
    ),
)

RATING_INDEX = "ux_items_rating"

# The built-in user database of the HTTP edge's `database` sign-in method.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("jid", key_text(), primary_key=True),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("email", sa.Text(), nullable=False),
    sa.Column("created", UtcDateTime(), nullable=False),
)

# Keys the server makes for itself once and shares between its workers: `token_key`, the key
# of the tokens the HTTP edge issues (unless `[auth] token_key` sets one).
server_keys = sa.Table(
    "server_keys",
    metadata,
    sa.Column("name", key_text(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

# A user's sign-in generation: every issued token carries the one current when it was
# issued, and raising it (signing out, a new password, a deleted account) revokes them all.
sign_in_generations = sa.Table(
    "sign_in_generations",
    metadata,
    sa.Column("jid", key_text(), primary_key=True),
    sa.Column("generation", sa.BigInteger(), nullable=False),
)

# Password resets by email: the SHA-256 digest of each one-time token (never the token),
# whose account it resets, and until when.
password_resets = sa.Table(
    "password_resets",
    metadata,
    sa.Column("token_digest", key_text(), primary_key=True),
    sa.Column("jid", key_text(), nullable=False),
    sa.Column("expires", UtcDateTime(), nullable=False),
)

# Federation's outbox: the events queued for each remote domain's channel server, oldest
# first by `sequence` (docs/federation.md), and each domain's delivery status.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column(
        "sequence",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("domain", key_text(), nullable=False),
    # One or more serialised `<event>` elements, as the inbox IQ carries them.
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("created", UtcDateTime(), nullable=False),
    # A domain's queue, oldest first (delivery, its depth).
    sa.Index("ix_outbox_domain", "domain", "sequence"),
)

outbox_status = sa.Table(
    "outbox_status",
    metadata,
    sa.Column("domain", key_text(), primary_key=True),
    # The channel server discovery last named for the domain; NULL while none was found.
    sa.Column("server", sa.Text(), nullable=True),
    sa.Column("last_success", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("last_error_at", UtcDateTime(), nullable=True),
    # Failed attempts since the last delivered (or refused) batch.
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
)
