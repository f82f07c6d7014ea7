"""Connections and transactions: engines per dialect, SQLite group commit, schema version.

SQLite runs in WAL mode with `synchronous=FULL`: every commit is fsynced before the caller
is acknowledged, so an acknowledged write survives a crash or a power loss. The price of an
fsync per commit is paid once per *batch*: concurrent writes are queued to one writer
connection, which runs each in its own savepoint inside one transaction and acknowledges
them all after that transaction's commit (group commit). Reads use a small pool of other
connections and never wait for the writer (WAL readers see the last commit).

PostgreSQL needs none of this: every operation takes a pooled connection and its own
transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from buddycloud.storage.base import SchemaVersionMismatch

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)
_MAX_BATCH = 500
_READ_POOL = 4


def parse_url(url: str) -> URL:
    """Map a storage URL onto the async driver's URL.

    Raises:
        ValueError: the URL is malformed or names an unsupported scheme.
    """
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy raises ArgumentError with the whole URL inside.
        raise ValueError("malformed storage URL: expected sqlite:///… or postgresql://…") from None
    scheme = parsed.drivername
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"unsupported storage URL scheme {scheme!r}: use sqlite:///path/to/file.db, "
        "sqlite:///:memory: or postgresql://user@host:port/database"
    )


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL, *, begin: str, memory: bool) -> AsyncEngine:
    if memory:
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        engine = create_async_engine(url, pool_size=_READ_POOL, max_overflow=0)

    # pysqlite's own transaction handling is bypassed (isolation_level None) so that
    # BEGIN, SAVEPOINT and COMMIT are exactly the statements this module emits.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database(Protocol):
    """Runs work in a transaction; writes return after their commit."""

    dialect: str

    async def read(self, work: Work[T]) -> T: ...

    async def write(self, work: Work[T]) -> T: ...

    async def close(self) -> None: ...


class PooledDatabase:
    """One pooled connection and transaction per operation (PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def read(self, work: Work[T]) -> T:
        async with self.engine.connect() as conn:
            return await work(conn)

    async def write(self, work: Work[T]) -> T:
        async with self.engine.begin() as conn:
            return await work(conn)

    async def close(self) -> None:
        await self.engine.dispose()


class SerialDatabase:
    """One connection used by one operation at a time (SQLite in memory)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = asyncio.Lock()

    async def read(self, work: Work[T]) -> T:
        return await self.write(work)

    async def write(self, work: Work[T]) -> T:
        async with self._lock, self.engine.begin() as conn:
            return await work(conn)

    async def close(self) -> None:
        await self.engine.dispose()


@dataclass(eq=False)
class _Job:
    work: Work[Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = field(default=False)


class GroupCommitDatabase:
    """SQLite on a file: one writer connection committing batches, a pool of readers."""

    def __init__(self, writer: AsyncEngine, readers: AsyncEngine) -> None:
        self.writer = writer
        self.readers = readers
        self.dialect = "sqlite"
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def read(self, work: Work[T]) -> T:
        async with self.readers.connect() as conn:
            return await work(conn)

    async def write(self, work: Work[T]) -> T:
        if self._closed:
            raise RuntimeError("the storage is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(work, future))
        # The job runs even if the caller stops waiting: its outcome is in the database.
        return await asyncio.shield(future)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        await self.writer.dispose()
        await self.readers.dispose()

    async def _run(self) -> None:
        async with self.writer.connect() as conn:
            while True:
                first = await self._queue.get()
                batch: list[_Job] = []
                stop = first is None
                if first is not None:
                    batch.append(first)
                while not stop and len(batch) < _MAX_BATCH and not self._queue.empty():
                    job = self._queue.get_nowait()
                    if job is None:
                        stop = True
                    else:
                        batch.append(job)
                if batch:
                    await self._commit(conn, batch)
                if stop:
                    return

    async def _commit(self, conn: AsyncConnection, batch: list[_Job]) -> None:
        try:
            async with conn.begin():
                if len(batch) == 1:
                    # Alone in its transaction: a failure rolls the whole transaction back.
                    batch[0].result = await batch[0].work(conn)
                else:
                    for job in batch:
                        try:
                            async with conn.begin_nested():
                                job.result = await job.work(conn)
                        except Exception as exc:  # the job's own failure, reported to it
                            job.error = exc
        except Exception as exc:
            for job in batch:
                if job.error is None:
                    job.error = exc
        for job in batch:
            if job.future.done():
                continue
            if job.error is not None:
                job.future.set_exception(job.error)
            else:
                job.future.set_result(job.result)


# --- schema version --------------------------------------------------------------------


def _alembic_config() -> Config:
    config = Config()
    location = resources.files("buddycloud.storage") / "migrations"
    config.set_main_option("script_location", str(Path(str(location))))
    return config


def head_revision() -> str:
    """The schema version this code expects."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: sa.Connection) -> None:
    config = _alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


async def _migration_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        if not _is_memory(url):
            assert url.database is not None
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url, begin="BEGIN IMMEDIATE", memory=_is_memory(url))
    return create_async_engine(url, poolclass=NullPool)


async def upgrade_schema(conn: AsyncConnection) -> None:
    """Bring the schema on `conn` to the head revision.

    Raises:
        SchemaVersionMismatch: the database has a revision this code does not know.
    """
    try:
        await conn.run_sync(_upgrade)
    except CommandError as exc:
        raise SchemaVersionMismatch(
            f"the database schema is at a version this server does not know ({exc}); "
            "upgrade the server"
        ) from None


async def check_schema(conn: AsyncConnection) -> None:
    """Raises SchemaVersionMismatch unless the schema is at the head revision."""
    current = await conn.run_sync(_current_revision)
    expected = head_revision()
    if current == expected:
        return
    found = "an empty database" if current is None else f"schema version {current}"
    raise SchemaVersionMismatch(
        f"found {found}, expected schema version {expected}: run `buddycloud migrate`"
    )


async def migrate_url(url: str) -> None:
    """Create or upgrade the schema of the database at `url` (`buddycloud migrate`)."""
    engine = await _migration_engine(parse_url(url))
    try:
        async with engine.begin() as conn:
            await upgrade_schema(conn)
    finally:
        await engine.dispose()


async def open_database(url: str, *, migrate: bool) -> Database:
    """Connect to `url`, migrating first if asked, and check the schema version.

    Raises:
        ValueError: the URL is not a supported storage URL.
        SchemaVersionMismatch: the schema is missing or not the expected version.
    """
    parsed = parse_url(url)
    database: Database
    if parsed.get_backend_name() == "sqlite":
        if _is_memory(parsed):
            database = SerialDatabase(_sqlite_engine(parsed, begin="BEGIN", memory=True))
        else:
            assert parsed.database is not None
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            writer = _sqlite_engine(parsed, begin="BEGIN IMMEDIATE", memory=False)
            readers = _sqlite_engine(parsed, begin="BEGIN", memory=False)
            database = GroupCommitDatabase(writer, readers)
    else:
        database = PooledDatabase(create_async_engine(parsed, pool_size=10, max_overflow=10))
    try:
        if migrate:
            await database.write(upgrade_schema)
        await database.read(check_schema)
    except BaseException:
        await database.close()
        raise
    return database
