"""Federation's outbox: the events queued for each remote domain's channel server, and
each domain's delivery status (docs/federation.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from buddycloud.storage.sql.schema import UtcDateTime, key_text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("domain", key_text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_outbox_domain", "outbox", ["domain", "sequence"])
    op.create_table(
        "outbox_status",
        sa.Column("domain", key_text(), primary_key=True),
        sa.Column("server", sa.Text(), nullable=True),
        sa.Column("last_success", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("outbox_status")
    op.drop_index("ix_outbox_domain", table_name="outbox")
    op.drop_table("outbox")
