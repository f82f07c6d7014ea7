"""Sign-in state shared by every HTTP worker: the server's own keys (the key issued tokens
are signed with) and each user's sign-in generation (raised to revoke their tokens).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from buddycloud.storage.sql.schema import key_text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_keys",
        sa.Column("name", key_text(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "sign_in_generations",
        sa.Column("jid", key_text(), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sign_in_generations")
    op.drop_table("server_keys")
