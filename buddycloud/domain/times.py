"""ISO-8601 timestamps as the protocol uses them (XEP-0082)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from buddycloud.domain.errors import InvalidDate

# ProtoXEP example 7 writes `2014-04-18T10:46.100Z` (no seconds); accept that form too.
_NO_SECONDS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def parse_datetime(raw: str) -> datetime:
    """Parse an ISO-8601 date-time into an aware UTC datetime; naive times are UTC.

    Raises:
        InvalidDate: `raw` is not a date-time.
    """
    text = raw.strip()
    if not text or len(text) > 64:
        raise InvalidDate(f"not an ISO-8601 date-time: {raw[:64]!r}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        match = _NO_SECONDS.match(text)
        if not match:
            raise InvalidDate(f"not an ISO-8601 date-time: {raw[:64]!r}") from None
        fraction = match.group(2) or ""
        rebuilt = f"{match.group(1)}:00{fraction[:7]}{match.group(3) or ''}"
        try:
            value = datetime.fromisoformat(rebuilt)
        except ValueError:
            raise InvalidDate(f"not an ISO-8601 date-time: {raw[:64]!r}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 or 9999-12-31T23:59:59-01:00 fall outside the years
        # a datetime can hold once moved to UTC.
        raise InvalidDate(f"date-time out of range: {raw[:64]!r}") from None


def format_datetime(value: datetime) -> str:
    """`2014-01-01T00:00:00.000Z`: UTC with milliseconds, as in ProtoXEP example 13."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat ends in "+00:00" for UTC; it pads the year to four digits as well.
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"
