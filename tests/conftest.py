"""Shared fixtures. Storage: `storage` runs a test on every backend (see tests/storage)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from buddycloud.storage.base import Storage

POSTGRES_ENV = "BUDDYCLOUD_TEST_POSTGRES"
T = TypeVar("T")
STORAGE_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TABLES = (
    "channels, nodes, memberships, items, accounts, server_keys, sign_in_generations, "
    "password_resets, outbox, outbox_status"
)


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, work).result()


async def _postgres(url: str, statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    from buddycloud.storage.factory import migrate

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    _run(migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The server named by BUDDYCLOUD_TEST_POSTGRES; tests needing it skip without it."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql://user@host:port/db to test PostgreSQL")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, uniquely named and migrated database, dropped after the session."""
    from sqlalchemy.engine import make_url

    from buddycloud.storage.factory import migrate

    name = f"buddycloud_test_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    _run(_postgres(postgres_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        _run(migrate(url))
        yield url
    finally:
        _run(_postgres(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL test database, emptied."""
    _run(_postgres(postgres_url, f"TRUNCATE {TABLES}"))
    return postgres_url


@pytest.fixture(params=STORAGE_BACKENDS)
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Storage]:
    """An empty storage on each backend: SQLite always, PostgreSQL when configured."""
    from buddycloud.storage.factory import open_storage

    if request.param == "sqlite":
        path = tmp_path / "buddycloud.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    opened = await open_storage(url)
    try:
        yield opened
    finally:
        await opened.close()
