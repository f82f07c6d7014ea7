"""Open the storage named by a URL: the one place that picks a concrete backend."""

from __future__ import annotations

from buddycloud.storage.base import Storage, WriteObserver


async def open_storage(
    url: str, *, migrate: bool = False, observe_write: WriteObserver | None = None
) -> Storage:
    """Open the storage at `url` and check that its schema is the expected version.

    Args:
        url: `sqlite:///path/to/file.db` (the parent directory is created),
            `sqlite:///:memory:` (one connection, for tests) or
            `postgresql://user@host:port/database`.
        migrate: create or upgrade the schema first, as `buddycloud migrate` does.
        observe_write: called with the seconds each write took, from its call until its
            commit was acknowledged (the server's metrics); cheap, never raising.

    Raises:
        ValueError: the URL is malformed or its scheme is not supported.
        SchemaVersionMismatch: the database is empty or at another schema version and
            `migrate` is false.
    """
    # Imported here so that importing this module does not pull SQLAlchemy in.
    from buddycloud.storage.sql.database import open_database
    from buddycloud.storage.sql.store import SqlStorage

    return SqlStorage(await open_database(url, migrate=migrate, observe_write=observe_write))


async def migrate(url: str) -> None:
    """Create the schema of an empty database at `url`, or upgrade it to this version.

    Running it on an up-to-date database changes nothing.

    Raises:
        ValueError: the URL is malformed or its scheme is not supported.
        SchemaVersionMismatch: the database is at a version newer than this code.
    """
    from buddycloud.storage.sql.database import migrate_url

    await migrate_url(url)
