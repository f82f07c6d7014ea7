"""Full-text search over channels' titles and descriptions (`/api/search?type=metadata`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite: an external-content FTS5 table over channels(title, description), kept in sync by
# triggers inside the writing transaction, as items_fts is for items (0001).
_SQLITE = [
    "CREATE VIRTUAL TABLE channels_fts USING fts5("
    "title, description, content='channels', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER channels_fts_insert AFTER INSERT ON channels BEGIN "
    "INSERT INTO channels_fts(rowid, title, description) "
    "VALUES (new.rowid, new.title, new.description); "
    "END",
    "CREATE TRIGGER channels_fts_delete AFTER DELETE ON channels BEGIN "
    "INSERT INTO channels_fts(channels_fts, rowid, title, description) "
    "VALUES ('delete', old.rowid, old.title, old.description); "
    "END",
    "CREATE TRIGGER channels_fts_update AFTER UPDATE OF title, description ON channels BEGIN "
    "INSERT INTO channels_fts(channels_fts, rowid, title, description) "
    "VALUES ('delete', old.rowid, old.title, old.description); "
    "INSERT INTO channels_fts(rowid, title, description) "
    "VALUES (new.rowid, new.title, new.description); "
    "END",
    # Channels made before this migration.
    "INSERT INTO channels_fts(channels_fts) VALUES ('rebuild')",
]

# PostgreSQL: a generated tsvector column with a GIN index, in the 'simple' configuration
# like items.search.
_POSTGRES = [
    "ALTER TABLE channels ADD COLUMN search tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple', title || ' ' || description)) STORED",
    "CREATE INDEX ix_channels_search ON channels USING gin (search)",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE if sqlite else _POSTGRES:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER channels_fts_{trigger}")
        op.execute("DROP TABLE channels_fts")
    else:
        op.execute("DROP INDEX ix_channels_search")
        op.execute("ALTER TABLE channels DROP COLUMN search")
