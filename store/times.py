"""Times read back from leadflow's tables: every time is stored in UTC, and SQLite hands a
`DateTime(timezone=True)` value back without its offset (PostgreSQL keeps it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def utc(value: datetime) -> datetime: ...


@overload
def utc(value: None) -> None: ...


def utc(value: datetime | None) -> datetime | None:
    """`value` as an aware UTC time (None stays None)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
