"""Connections and transactions: engines per dialect, SQLite group commit, schema version.

Every operation of the storage is one *unit of work*: a plain function that runs its
statements on a SQLAlchemy `Connection` inside one transaction.

PostgreSQL runs units of work on the asyncpg driver (`AsyncConnection.run_sync`), each on
a pooled connection in its own transaction; the server handles concurrency.

SQLite runs each unit of work whole on a worker thread with the standard `sqlite3` driver.
An async driver (aiosqlite) would hop between threads for every statement, cursor and
fetch, eight hops for a one-row read; here a read costs one hop and a batch of writes one
hop, which is what makes the throughput targets reachable.
- Writes go to one writer thread and connection (SQLite has one writer anyway). Writes that
  arrive while the writer is busy are batched into one transaction, each in its own
  savepoint, and every caller is acknowledged after that transaction's commit (group
  commit): a failing write rolls back to its savepoint and fails alone.
- Reads of pages, feeds and searches use a small pool of reader threads and connections;
  in WAL mode they never wait for the writer and see the last commit.
- Lookups (one statement by key: a node's context, an item, an audience) run on the event
  loop's own connection. They take tens of microseconds in SQLite, less than the thread
  hand-over they would otherwise need, and under the GIL a thread would not run them any
  more concurrently; measured, this more than doubled publishes per second.
- `synchronous=FULL`: each commit is fsynced before any caller is acknowledged, so an
  acknowledged write survives a crash *or a power loss*. NORMAL would only survive a
  process crash; FULL costs one fsync per batch, which group commit amortises.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from buddycloud.storage.base import (
    SchemaVersionMismatch,
    StorageClosed,
    StorageUnavailable,
    WriteObserver,
    redact_url,
)

T = TypeVar("T")
Work = Callable[[sa.Connection], T]

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)
_MAX_BATCH = 1000
_READERS = 3


def parse_url(url: str) -> URL:
    """Map a storage URL onto the driver's URL.

    Raises:
        ValueError: the URL is malformed or names an unsupported scheme.
    """
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy's error would repeat the whole URL, password included.
        raise ValueError("malformed storage URL: expected sqlite:///… or postgresql://…") from None
    scheme = parsed.drivername
    if scheme in ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite+pysqlite")
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"unsupported storage URL scheme {scheme!r}: use sqlite:///path/to/file.db, "
        "sqlite:///:memory: or postgresql://user@host:port/database"
    )


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL, *, begin: str | None, pool_size: int) -> sa.Engine:
    """An engine whose transactions start with `begin`; None leaves each statement to
    run in its own implicit transaction (enough for a lookup of one statement)."""
    # Connections move between worker threads, but only one thread uses one at a time.
    connect_args = {"check_same_thread": False}
    if _is_memory(url):
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args=connect_args)
    else:
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, pool_size=pool_size, max_overflow=0, connect_args=connect_args
        )

    # The sqlite3 module's own transaction handling is bypassed (isolation_level None) so
    # that BEGIN, SAVEPOINT and COMMIT are exactly the statements SQLAlchemy emits.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    if begin is not None:
        statement = begin

        @event.listens_for(engine, "begin")
        def _on_begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql(statement)

    return engine


class Database(Protocol):
    """Runs units of work, each in one transaction; writes return after their commit."""

    dialect: str

    async def read(self, work: Work[T]) -> T: ...

    async def lookup(self, work: Work[T]) -> T:
        """One statement reading rows by key: may run on the event loop's own thread."""
        ...

    async def write(self, work: Work[T]) -> T: ...

    async def close(self) -> None: ...


class PostgresDatabase:
    """Pooled asyncpg connections for reads; writes group-committed on one connection."""

    dialect = "postgresql"

    def __init__(self, engine: AsyncEngine, observe_write: WriteObserver | None = None) -> None:
        self.engine = engine
        # A lookup is one statement: autocommit spares it the BEGIN and ROLLBACK round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._writes = _GroupCommit(self._commit, observe_write)

    async def read(self, work: Work[T]) -> T:
        # Reads run in autocommit: no BEGIN and ROLLBACK round trips around them. A page and
        # its count may then come from two snapshots a moment apart, which readers of a
        # live channel cannot tell from a write landing between two requests.
        async with self._autocommit.connect() as conn:
            return await conn.run_sync(work)

    async def lookup(self, work: Work[T]) -> T:
        async with self._autocommit.connect() as conn:
            return await conn.run_sync(work)

    async def write(self, work: Work[T]) -> T:
        return await self._writes.write(work)

    async def _commit(self, batch: list[_Job]) -> None:
        async with self.engine.connect() as conn:
            await conn.run_sync(commit_batch, batch)

    async def close(self) -> None:
        await self._writes.close()
        await self.engine.dispose()


@dataclass(eq=False)
class _Job:
    work: Work[Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


class SqliteDatabase:
    """SQLite: a writer thread committing batches, and reader threads.

    In memory there is a single connection (each would otherwise see its own database),
    so the one writer thread runs the reads too.
    """

    dialect = "sqlite"

    def __init__(self, url: URL, observe_write: WriteObserver | None = None) -> None:
        memory = _is_memory(url)
        self._writer_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE", pool_size=1)
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._writer_conn: sa.Connection | None = None
        if memory:
            self._reader_engine = None
            self._reader_threads = self._writer_thread
        else:
            self._reader_engine = _sqlite_engine(url, begin="BEGIN", pool_size=_READERS)
            self._lookup_engine = _sqlite_engine(url, begin=None, pool_size=1)
            self._reader_threads = ThreadPoolExecutor(_READERS, thread_name_prefix="sqlite-read")
        self._lookup_conn: sa.Connection | None = None
        self._writes = _GroupCommit(self._commit, observe_write)

    async def read(self, work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_threads, self._read_now, work)

    async def lookup(self, work: Work[T]) -> T:
        # A lookup by key takes tens of microseconds in SQLite, less than handing it to a
        # thread and back; WAL readers never wait for the writer, so the loop is not held.
        if self._reader_engine is None:
            return await self.read(work)
        if self._lookup_conn is None:
            self._lookup_conn = self._lookup_engine.connect()
        try:
            return work(self._lookup_conn)
        finally:
            self._lookup_conn.rollback()

    def _read_now(self, work: Work[T]) -> T:
        if self._reader_engine is None:
            with self._writer().begin():
                return work(self._writer())
        with self._reader_engine.connect() as conn:
            return work(conn)

    async def write(self, work: Work[T]) -> T:
        return await self._writes.write(work)

    async def _commit(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_thread, self._commit_now, batch)

    def _commit_now(self, batch: list[_Job]) -> None:
        commit_batch(self._writer(), batch)

    async def close(self) -> None:
        await self._writes.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_thread, self._close_writer)
        self._writer_thread.shutdown()
        if self._lookup_conn is not None:
            self._lookup_conn.close()
            self._lookup_engine.dispose()
        if self._reader_engine is not None:
            self._reader_threads.shutdown()
            self._reader_engine.dispose()

    def _writer(self) -> sa.Connection:
        if self._writer_conn is None:
            self._writer_conn = self._writer_engine.connect()
        return self._writer_conn

    def _close_writer(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
        self._writer_engine.dispose()


def commit_batch(conn: sa.Connection, batch: list[_Job]) -> None:
    """Run a batch of writes in one transaction; the jobs' outcomes are set once it is over.

    Optimistically the whole batch runs without savepoints. If a job fails, the
    transaction is rolled back and the batch runs again with a savepoint per job, so
    that the failure is the failing job's alone. Jobs only touch the database, so
    running one again after a rollback is safe.
    """
    try:
        with conn.begin():
            for job in batch:
                job.result = job.work(conn)
        return
    except Exception as exc:
        if len(batch) == 1:
            batch[0].error = exc
            return
    try:
        with conn.begin():
            for job in batch:
                try:
                    with conn.begin_nested():
                        job.result = job.work(conn)
                except Exception as exc:  # the job's own failure, reported to it
                    job.error = exc
    except Exception as exc:
        for job in batch:
            if job.error is None:
                job.error = exc


class _GroupCommit:
    """Queues writes and commits them in batches, one transaction per batch.

    Each caller is answered only after the commit of the transaction holding its write,
    so an acknowledged write is durable; concurrent writers share one commit (and one
    fsync) instead of queueing for one each, and never contend for the same rows.
    `observe`, when given, is told how long each write took from its call to its answer.
    """

    def __init__(
        self,
        commit: Callable[[list[_Job]], Awaitable[None]],
        observe: WriteObserver | None = None,
    ) -> None:
        self._commit = commit
        self._observe = observe
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def write(self, work: Work[T]) -> T:
        if self._closed:
            raise StorageClosed()
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run())
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put_nowait(_Job(work, future))
        # The job runs even if its caller stops waiting (a cancelled caller cancels the
        # future, which the batch then leaves alone): its outcome is in the database.
        if self._observe is None:
            return await future
        start = time.perf_counter()
        try:
            return await future
        finally:
            self._observe(time.perf_counter() - start)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task

    async def _run(self) -> None:
        stop = False
        while not stop:
            job = await self._queue.get()
            batch: list[_Job] = []
            while job is not None:
                batch.append(job)
                if len(batch) >= _MAX_BATCH or self._queue.empty():
                    break
                job = self._queue.get_nowait()
            stop = job is None
            if batch:
                try:
                    await self._commit(batch)
                except Exception as exc:  # the connection itself failed
                    for failed in batch:
                        if failed.error is None:
                            failed.error = exc
                for done in batch:
                    if done.future.done():
                        continue
                    if done.error is not None:
                        done.future.set_exception(done.error)
                    else:
                        done.future.set_result(done.result)


# --- schema version --------------------------------------------------------------------


def _alembic_config() -> Config:
    config = Config()
    location = resources.files("buddycloud.storage") / "migrations"
    config.set_main_option("script_location", str(location))
    return config


def head_revision() -> str:
    """The schema version this code expects."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade_schema(conn: sa.Connection) -> None:
    """Bring the schema on `conn` to the head revision.

    Raises:
        SchemaVersionMismatch: the database has a revision this code does not know.
    """
    config = _alembic_config()
    config.attributes["connection"] = conn
    current = MigrationContext.configure(conn).get_current_revision()
    if current is not None and not _is_known(current):
        raise SchemaVersionMismatch(_newer_schema(current))
    command.upgrade(config, "head")


def check_schema(conn: sa.Connection) -> None:
    """Raises SchemaVersionMismatch unless the schema is at the head revision."""
    current = MigrationContext.configure(conn).get_current_revision()
    expected = head_revision()
    if current == expected:
        return
    if current is None:
        raise SchemaVersionMismatch(
            f"the database is empty (expected schema version {expected}): run `buddycloud migrate`"
        )
    if not _is_known(current):
        raise SchemaVersionMismatch(_newer_schema(current))
    raise SchemaVersionMismatch(
        f"the database schema is at version {current}, older than this server's "
        f"{expected}: run `buddycloud migrate`"
    )


def _is_known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _newer_schema(current: str) -> str:
    return (
        f"the database schema is at version {current}, which this server ({head_revision()}) "
        "does not know, a newer one: upgrade the server to the version that migrated it"
    )


# --- why a database cannot be opened ---------------------------------------------------

# PostgreSQL's SQLSTATE codes for the failures a person can fix.
_NO_DATABASE = "3D000"  # invalid_catalog_name
_BAD_PASSWORD = "28P01"  # invalid_password
_REFUSED_ROLE = "28000"  # invalid_authorization_specification
_NOT_ALLOWED = "42501"  # insufficient_privilege
# How long a connection attempt to PostgreSQL may take (asyncpg waits 60 s by default).
CONNECT_TIMEOUT_SECONDS = 10.0


def describe_failure(url: str, exc: BaseException) -> StorageUnavailable | None:
    """`exc`, raised opening or migrating the storage at `url`, as one line naming the URL
    (password hidden) and what to do; None when it is not a failure a person can fix."""
    shown = redact_url(url)
    if isinstance(exc, SchemaVersionMismatch):
        return SchemaVersionMismatch(f"{shown}: {exc}")
    parsed = parse_url(url)
    if isinstance(exc, sa.exc.DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
        detail = _first_line(exc.orig)
        if state == _NO_DATABASE:
            return StorageUnavailable(
                f"{shown}: the database {parsed.database!r} does not exist: create it (as "
                f"PostgreSQL's superuser: createdb -O {parsed.username or '<role>'} "
                f"{parsed.database}), then run `buddycloud migrate`"
            )
        if state in (_BAD_PASSWORD, _REFUSED_ROLE):
            return StorageUnavailable(
                f"{shown}: PostgreSQL refused to sign in as {parsed.username!r} ({detail}): "
                "check the user and password in [storage] url, and that pg_hba.conf "
                "lets that user connect from this host"
            )
        if state == _NOT_ALLOWED:
            return StorageUnavailable(
                f"{shown}: PostgreSQL refused {parsed.username!r} ({detail}): make the role "
                f"the database's owner (ALTER DATABASE {parsed.database} OWNER TO "
                f"{parsed.username}; on PostgreSQL 15 and later also ALTER SCHEMA public "
                f"OWNER TO {parsed.username})"
            )
        if parsed.get_backend_name() == "sqlite":
            return StorageUnavailable(
                f"{shown}: cannot open the SQLite database ({detail}): check that its "
                "directory exists and that this user may write there"
            )
        return StorageUnavailable(f"{shown}: the database failed: {detail}")
    if isinstance(exc, OSError | TimeoutError):
        if parsed.get_backend_name() == "sqlite":
            return StorageUnavailable(
                f"{shown}: cannot open the SQLite database ({_os_reason(exc)}): check that "
                "its directory exists and that this user may write there"
            )
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        return StorageUnavailable(
            f"{shown}: cannot reach PostgreSQL at {where} ({_os_reason(exc)}): check that "
            "it is running and listening there, and the host and port in [storage] url"
        )
    return None


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    # asyncpg's messages come wrapped as "<class '...'>: message".
    return text.rpartition(">: ")[2] or text


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f} s"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)  # asyncio's strerror repeats the address
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def migrate_url(url: str) -> None:
    """Create or upgrade the schema of the database at `url` (`buddycloud migrate`).

    Raises:
        StorageUnavailable: the database cannot be reached or opened, or its schema is
            newer than this code's; the message names the URL and what to do.
    """
    parse_url(url)  # a malformed URL is a ValueError, before anything is tried
    try:
        await _migrate_url(url)
    except (SchemaVersionMismatch, sa.exc.DBAPIError, OSError, TimeoutError) as exc:
        described = describe_failure(url, exc)
        if described is None:
            raise
        raise described from None


async def _migrate_url(url: str) -> None:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, begin="BEGIN IMMEDIATE", pool_size=1)

        def run() -> None:
            try:
                with engine.begin() as conn:
                    upgrade_schema(conn)
            finally:
                engine.dispose()

        await asyncio.to_thread(run)
        return
    async_engine = create_async_engine(
        parsed, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS}
    )
    try:
        async with async_engine.begin() as conn:
            await conn.run_sync(upgrade_schema)
    finally:
        await async_engine.dispose()


async def open_database(
    url: str, *, migrate: bool, observe_write: WriteObserver | None = None
) -> Database:
    """Connect to `url`, migrating first if asked, and check the schema version.

    `observe_write`, when given, is told how long each write took (metrics).

    Raises:
        ValueError: the URL is not a supported storage URL.
        SchemaVersionMismatch: the schema is missing or not the expected version.
        StorageUnavailable: the database cannot be reached or opened; the message names
            the URL (password hidden) and what to do.
    """
    parsed = parse_url(url)
    try:
        return await _open_database(parsed, migrate=migrate, observe_write=observe_write)
    except (SchemaVersionMismatch, sa.exc.DBAPIError, OSError, TimeoutError) as exc:
        described = describe_failure(url, exc)
        if described is None:
            raise
        raise described from None


async def _open_database(
    parsed: URL, *, migrate: bool, observe_write: WriteObserver | None
) -> Database:
    database: Database
    if parsed.get_backend_name() == "sqlite":
        database = SqliteDatabase(parsed, observe_write)
    else:
        database = PostgresDatabase(
            create_async_engine(
                parsed,
                pool_size=10,
                max_overflow=10,
                # Keyset pages compare against the cursor row: a generic plan cannot know how
                # selective that bound is and may sort a whole node, so plan each one.
                connect_args={
                    "server_settings": {"plan_cache_mode": "force_custom_plan"},
                    "timeout": CONNECT_TIMEOUT_SECONDS,
                },
            ),
            observe_write,
        )
    try:
        if migrate:
            await database.write(upgrade_schema)
        await database.read(check_schema)
    except BaseException:
        await database.close()
        raise
    return database
