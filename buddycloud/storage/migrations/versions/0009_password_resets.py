"""Password resets by email: each one-time token, kept as its SHA-256 digest, until it is
used or expires.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from buddycloud.storage.sql.schema import UtcDateTime, key_text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("token_digest", key_text(), primary_key=True),
        sa.Column("jid", key_text(), nullable=False),
        sa.Column("expires", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("password_resets")
