"""Indexes of items by author (what a user wrote, when they unregister) and by time across
all nodes (the firehose).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_author", "items", ["author", "channel", "node", "id"])
    op.create_index("ix_items_recent", "items", ["updated", "channel", "node", "id"])


def downgrade() -> None:
    op.drop_index("ix_items_recent", table_name="items")
    op.drop_index("ix_items_author", table_name="items")
