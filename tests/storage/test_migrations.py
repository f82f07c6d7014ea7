"""Schema migrations: a fresh database gets the expected tables, mismatches are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Membership,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.storage.base import SchemaVersionMismatch
from buddycloud.storage.factory import migrate, open_storage
from buddycloud.storage.sql.database import head_revision
from buddycloud.storage.sql.schema import metadata

JULIET = Jid.parse("juliet@capulet.lit")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHANNEL = Channel(
    JULIET,
    ChannelConfig("title", "", AccessModel.OPEN, Role.MEMBER, JULIET, ChannelType.PERSONAL, T0, T0),
)
OWNER = Membership(JULIET, JULIET, Role.OWNER, SubscriptionState.SUBSCRIBED, T0)
EXPECTED_TABLES = {
    "alembic_version",
    "channels",
    "nodes",
    "memberships",
    "items",
    "accounts",
    "server_keys",
    "sign_in_generations",
    "password_resets",
    "outbox",
    "outbox_status",
}


def _shape(conn: sa.Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(conn)
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
        if not table.startswith(("items_fts", "channels_fts"))
    }


def _indexes(conn: sa.Connection) -> set[str]:
    inspector = sa.inspect(conn)
    return {
        index["name"] or ""
        for table in ("memberships", "items", "channels", "outbox")
        for index in inspector.get_indexes(table)
    }


async def test_a_fresh_migration_creates_the_expected_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/fresh.db"
    await migrate(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            shape = _shape(conn)
            indexes = _indexes(conn)
    finally:
        engine.dispose()
    assert set(shape) == EXPECTED_TABLES
    for table in metadata.sorted_tables:
        assert shape[table.name] == {column.name for column in table.columns}, table.name
    # Every index the table declarations name is created by the migrations.
    declared = {index.name for table in metadata.sorted_tables for index in table.indexes}
    assert {"ix_items_author", "ix_items_recent", "ux_items_rating"} <= declared
    assert declared <= indexes


async def test_the_postgres_migration_matches_the_tables(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.connect() as conn:
            shape = await conn.run_sync(_shape)
            indexes = await conn.run_sync(_indexes)
    finally:
        await engine.dispose()
    assert set(shape) == EXPECTED_TABLES
    for table in metadata.sorted_tables:
        # PostgreSQL adds the generated full-text columns to items and channels.
        extra = {"search"} if table.name in ("items", "channels") else set()
        assert shape[table.name] == {column.name for column in table.columns} | extra
    declared = {index.name for table in metadata.sorted_tables for index in table.indexes}
    assert declared | {"ix_items_search", "ix_channels_search"} <= indexes


async def test_an_empty_database_is_refused_without_migrate(tmp_path: Path) -> None:
    with pytest.raises(SchemaVersionMismatch, match="buddycloud migrate"):
        await open_storage(f"sqlite:///{tmp_path}/empty.db")
    storage = await open_storage(f"sqlite:///{tmp_path}/empty.db", migrate=True)
    await storage.close()
    storage = await open_storage(f"sqlite:///{tmp_path}/empty.db")
    await storage.close()


async def test_an_older_or_unknown_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    await migrate(url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaVersionMismatch, match="ffff.*upgrade the server"):
        await open_storage(url)
    with pytest.raises(SchemaVersionMismatch, match="does not know"):
        await migrate(url)


async def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/twice.db"
    await migrate(url)
    storage = await open_storage(url)
    try:
        await storage.create_channel(CHANNEL, [], OWNER)
    finally:
        await storage.close()
    await migrate(url)
    storage = await open_storage(url, migrate=True)
    try:
        assert await storage.find_channel(JULIET) == CHANNEL
    finally:
        await storage.close()


async def test_the_head_revision_is_the_one_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/head.db"
    await migrate(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            recorded = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()
    assert recorded == head_revision()


@pytest.mark.parametrize("url", ["mysql://db/x", "postgresql+psycopg://db/x", "redis://localhost"])
async def test_other_url_schemes_are_rejected_by_name(url: str) -> None:
    scheme = url.partition("://")[0]
    with pytest.raises(ValueError, match=re.escape(f"unsupported storage URL scheme {scheme!r}")):
        await open_storage(url)


async def test_an_in_memory_database_works_for_tests() -> None:
    storage = await open_storage("sqlite:///:memory:", migrate=True)
    try:
        await storage.create_channel(CHANNEL, [], OWNER)
        assert await storage.find_channel(JULIET) == CHANNEL
    finally:
        await storage.close()


async def test_an_older_database_is_upgraded_with_its_data(tmp_path: Path) -> None:
    """A channel and a follow stored at revision 0001 are still there at head: the follow
    permanent, the channel advertised and found by a search of its title."""
    from alembic import command

    from buddycloud.storage.sql.database import _alembic_config
    from buddycloud.storage.sql.schema import channels, memberships

    url = f"sqlite:///{tmp_path}/older.db"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(
                sa.insert(channels).values(
                    jid=str(JULIET),
                    title="title",
                    description="",
                    access_model="open",
                    default_role="member",
                    creator=str(JULIET),
                    channel_type="personal",
                    created=T0,
                    updated=T0,
                    ephemeral=False,
                )
            )
            conn.execute(
                sa.insert(memberships).values(
                    channel=str(JULIET),
                    jid=str(JULIET),
                    role="owner",
                    subscription="subscribed",
                    updated=T0,
                )
            )
    finally:
        engine.dispose()
    storage = await open_storage(url, migrate=True)
    try:
        assert await storage.find_membership(JULIET, JULIET) == OWNER
        assert await storage.delete_temporary_memberships() == 0
        assert (await storage.get_channel(JULIET)).config.advertised is True
        found = await storage.search_channels(("title",), PageRequest())
        assert [channel.jid for channel in found.items] == [JULIET]
    finally:
        await storage.close()
