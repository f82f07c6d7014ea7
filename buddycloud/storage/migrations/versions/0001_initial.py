"""The initial schema: channels, nodes, memberships, items and full-text search.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from buddycloud.storage.sql.schema import UtcDateTime, key_text

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite: an external-content FTS5 table over items(title, content), kept in sync by
# triggers inside the writing transaction. Rowids of `items` are its implicit rowids, which
# VACUUM may renumber: after a VACUUM run `INSERT INTO items_fts(items_fts) VALUES('rebuild')`.
_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE items_fts USING fts5("
    "title, content, content='items', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, title, content) VALUES (new.rowid, new.title, new.content); "
    "END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, content) "
    "VALUES ('delete', old.rowid, old.title, old.content); "
    "END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF title, content ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, content) "
    "VALUES ('delete', old.rowid, old.title, old.content); "
    "INSERT INTO items_fts(rowid, title, content) VALUES (new.rowid, new.title, new.content); "
    "END",
]

# Per-node counts of items and of parents (items that are no reply), kept by triggers in the
# writing transaction, so that result set counts (XEP-0059) of large nodes cost one row read.
_SQLITE_COUNTS = [
    "CREATE TRIGGER items_count_insert AFTER INSERT ON items BEGIN "
    "UPDATE nodes SET item_count = item_count + 1, "
    "parent_count = parent_count + (new.in_reply_to IS NULL) "
    "WHERE channel = new.channel AND name = new.node; "
    "END",
    "CREATE TRIGGER items_count_delete AFTER DELETE ON items BEGIN "
    "UPDATE nodes SET item_count = item_count - 1, "
    "parent_count = parent_count - (old.in_reply_to IS NULL) "
    "WHERE channel = old.channel AND name = old.node; "
    "END",
    "CREATE TRIGGER items_count_update AFTER UPDATE OF in_reply_to ON items "
    "WHEN (old.in_reply_to IS NULL) != (new.in_reply_to IS NULL) BEGIN "
    "UPDATE nodes SET parent_count = parent_count + (new.in_reply_to IS NULL) "
    "- (old.in_reply_to IS NULL) "
    "WHERE channel = new.channel AND name = new.node; "
    "END",
]
_POSTGRES_COUNTS = [
    """CREATE FUNCTION items_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE nodes SET item_count = item_count + 1,
            parent_count = parent_count + (NEW.in_reply_to IS NULL)::int
        WHERE channel = NEW.channel AND name = NEW.node;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE nodes SET item_count = item_count - 1,
            parent_count = parent_count - (OLD.in_reply_to IS NULL)::int
        WHERE channel = OLD.channel AND name = OLD.node;
    ELSIF (OLD.in_reply_to IS NULL) <> (NEW.in_reply_to IS NULL) THEN
        UPDATE nodes SET parent_count = parent_count + (NEW.in_reply_to IS NULL)::int
            - (OLD.in_reply_to IS NULL)::int
        WHERE channel = NEW.channel AND name = NEW.node;
    END IF;
    RETURN NULL;
END
$$""",
    "CREATE TRIGGER items_count AFTER INSERT OR DELETE OR UPDATE OF in_reply_to ON items "
    "FOR EACH ROW EXECUTE FUNCTION items_count()",
]

# PostgreSQL: a generated tsvector column with a GIN index. The 'simple' configuration
# (no stemming) matches words the way SQLite's unicode61 tokenizer does.
_POSTGRES_FTS = [
    "ALTER TABLE items ADD COLUMN search tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content, ''))) STORED",
    "CREATE INDEX ix_items_search ON items USING gin (search)",
]


def upgrade() -> None:
    op.create_table(
        "channels",
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
    )
    op.create_table(
        "nodes",
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
        sa.Column("item_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("parent_count", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "memberships",
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
    )
    op.create_index("ix_memberships_user", "memberships", ["jid", "channel"])
    op.create_index("ix_memberships_audience", "memberships", ["channel", "subscription", "role"])
    op.create_table(
        "items",
        sa.Column("channel", key_text(), primary_key=True),
        sa.Column("node", key_text(), primary_key=True),
        sa.Column("id", key_text(), primary_key=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("published", UtcDateTime(), nullable=False),
        sa.Column("updated", UtcDateTime(), nullable=False),
        sa.Column("in_reply_to", key_text(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True),
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
        sa.Column("extensions", sa.Text(), nullable=True),
        sa.Column("raw_xml", sa.Text(), nullable=True),
        sa.Column("raw_namespace", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel", "node"], ["nodes.channel", "nodes.name"], ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_items_updated",
        "items",
        ["channel", "node", sa.text("updated DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_items_replies", "items", ["channel", "node", "in_reply_to", "updated"])
    op.create_index(
        "ux_items_rating",
        "items",
        ["channel", "node", "target", "author"],
        unique=True,
        sqlite_where=sa.text("verb = 'rated'"),
        postgresql_where=sa.text("verb = 'rated'"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_FTS + _SQLITE_COUNTS if sqlite else _POSTGRES_FTS + _POSTGRES_COUNTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE items_fts")
    op.drop_table("items")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION items_count()")
    op.drop_table("memberships")
    op.drop_table("nodes")
    op.drop_table("channels")
