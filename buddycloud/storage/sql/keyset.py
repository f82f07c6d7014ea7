"""Keyset paging: the condition that picks the rows past a cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


def beyond(
    columns: Sequence[sa.ColumnElement[Any]], values: Sequence[Any], *, less: bool
) -> sa.ColumnElement[bool]:
    """Rows strictly past `values` in the lexicographic order of `columns`.

    Written as `a <= x AND (a < x OR …)` rather than a row-value comparison so that the
    leading column bounds an index range on every backend.
    """
    column, value = columns[0], values[0]
    strict: sa.ColumnElement[bool] = column < value if less else column > value
    if len(columns) == 1:
        return strict
    loose: sa.ColumnElement[bool] = column <= value if less else column >= value
    return sa.and_(loose, sa.or_(strict, beyond(columns[1:], values[1:], less=less)))
