"""What the server's operations read from the storage, on every backend: the health
check's ping and the write hook behind the storage write latency metric."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Account
from buddycloud.storage.base import StorageClosed
from buddycloud.storage.factory import open_storage

JULIET = Jid.parse("juliet@capulet.lit")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """An empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "buddycloud.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    postgres: str = request.getfixturevalue("postgres_url")
    storage = await open_storage(postgres)
    try:
        if await storage.find_account(JULIET) is not None:
            await storage.delete_account(JULIET)
    finally:
        await storage.close()
    yield postgres


async def test_ping_answers_while_open_and_raises_once_closed(url: str) -> None:
    storage = await open_storage(url)
    await storage.ping()
    await storage.close()
    with pytest.raises(StorageClosed):
        await storage.ping()
    await storage.close()  # a second close is harmless


async def test_each_write_is_timed_until_its_commit(url: str) -> None:
    timings: list[float] = []
    storage = await open_storage(url, observe_write=timings.append)
    try:
        account = Account(JULIET, "$argon2id$hash", "juliet@example.org", datetime.now(UTC))
        await storage.insert_account(account)
        assert len(timings) == 1
        await storage.find_account(JULIET)
        await storage.ping()
        assert len(timings) == 1  # reads are not writes
        await storage.delete_account(JULIET)
        assert len(timings) == 2
        assert all(0 < seconds < 60 for seconds in timings)
    finally:
        await storage.close()
