"""Statements compiled once and run on the driver's own connection.

SQLAlchemy spends far more time per execution than the database does on a one-row insert
or a primary-key lookup: cache lookup, parameter processing for every column, result
wrapping, events. The publish path runs a few such statements per item, so they are
compiled once here and then run straight on the DBAPI connection under the SQLAlchemy
connection, inside its transaction. The SQL, the type conversions (`UtcDateTime` and
the rest) and the error classes stay SQLAlchemy's: only the per-execution work is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """A statement compiled for one dialect, with its conversions."""

    def __init__(
        self, statement: sa.ClauseElement, dialect: Dialect, column_keys: list[str] | None
    ) -> None:
        if not dialect.positional:
            raise ValueError(f"{dialect.name}: a positional parameter style is needed")
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        names = compiled.positiontup
        assert names is not None
        self.sql = compiled.string
        self.dialect = dialect
        self.binds: list[tuple[str, _Processor]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ]
        self.columns: list[tuple[str, _Processor]] = []
        if isinstance(statement, sa.Select):
            self.columns = [
                (str(column.key), column.type.dialect_impl(dialect).result_processor(dialect, None))
                for column in statement.selected_columns
            ]


class Prepared:
    """One statement, compiled on first use for the dialect of the connection it runs on.

    Args:
        statement: a Core statement whose values are all bound parameters.
        column_keys: for an INSERT, the columns given at execution.
    """

    def __init__(self, statement: sa.ClauseElement, *, column_keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self._column_keys = list(column_keys) or None
        self._compiled: _Compiled | None = None

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled
        if compiled is None or compiled.dialect is not dialect:
            compiled = self._compiled = _Compiled(self.statement, dialect, self._column_keys)
        return compiled

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        """Run the statement in `conn`'s transaction; the DBAPI cursor is returned.

        Raises:
            sqlalchemy.exc.DBAPIError: the subclass SQLAlchemy would raise (IntegrityError…).
        """
        return self._execute(self._for(conn.dialect), conn, params)

    @staticmethod
    def _execute(compiled: _Compiled, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        values = tuple(
            params[name] if processor is None else processor(params[name])
            for name, processor in compiled.binds
        )
        dbapi = compiled.dialect.loaded_dbapi
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, values)
        except dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                compiled.sql, values, exc, dbapi.Error, dialect=compiled.dialect
            ) from exc
        return cursor

    def first(self, conn: sa.Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row of a SELECT as a dict of column key to converted value, or None."""
        compiled = self._for(conn.dialect)
        cursor = self._execute(compiled, conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            key: value if processor is None or value is None else processor(value)
            for (key, processor), value in zip(compiled.columns, row, strict=True)
        }

    def run(self, conn: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run a write; the number of rows it changed."""
        cursor = self.execute(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()
