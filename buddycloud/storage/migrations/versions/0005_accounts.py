"""The built-in user database: one row per account of the `database` sign-in method.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from buddycloud.storage.sql.schema import UtcDateTime, key_text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("jid", key_text(), primary_key=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("created", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts")
