"""Telling a fault of the database (away, busy, full: everybody's problem, which passes)
from a fault of one event or of the code (which retrying the same thing will not fix)."""

from __future__ import annotations

from eventsourcing import persistence as eventsourcing_persistence
from sqlalchemy import exc as sqlalchemy_exc

_DATABASE_AWAY = (
    sqlalchemy_exc.OperationalError,
    sqlalchemy_exc.InterfaceError,
    sqlalchemy_exc.DisconnectionError,
    eventsourcing_persistence.OperationalError,
    eventsourcing_persistence.InterfaceError,
)


def is_database_outage(error: BaseException) -> bool:
    """Whether `error` says the database is away or busy, rather than that what was
    read or written is at fault."""
    return isinstance(error, _DATABASE_AWAY)
