"""Membership changes in time order (the archive, `urn:xmpp:mam:tmp`): an index.

A membership that ends is kept as a row with neither a follow nor a role, so that the
archive can replay its end; the storage shows it to no other reader.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_memberships_changes", "memberships", ["channel", "updated", "jid"])


def downgrade() -> None:
    op.drop_index("ix_memberships_changes", table_name="memberships")
    op.execute("DELETE FROM memberships WHERE role = 'none' AND subscription = 'none'")
