"""Database faults: errors that say the database cannot serve right now, not that a request
or the code is wrong. One classifier for every process (API, dispatcher, projector,
activities), so each answers the same fault the same way: retry later, never give up.

Three causes, each with the time a client should wait before retrying:

- `database_busy`: another writer holds the database (SQLite busy beyond its timeout, a
  PostgreSQL lock or statement timeout, a serialization conflict, too many connections).
- `database_unavailable`: the database cannot be reached or refuses work (PostgreSQL down,
  restarting or read-only after a failover, the connection lost, SQLite's file unopenable
  or failing I/O).
- `storage_full`: the disk (or PostgreSQL's) is full.

Everything else, including the errors that SQLite also raises as `OperationalError` (no
such table, a syntax error), is not a fault: a bug or bad data, which retrying cannot heal.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import eventsourcing.persistence
import psycopg
import psycopg.errors
import sqlalchemy.exc

FaultCode = Literal["database_unavailable", "database_busy", "storage_full"]


@dataclass(frozen=True)
class DatabaseFault:
    """What is wrong with the database, as the API answers it (503 with `code`, `message`
    and a `Retry-After` of `retry_after` seconds)."""

    code: FaultCode
    message: str
    retry_after: int


DATABASE_BUSY = DatabaseFault(
    "database_busy", "the database is busy with other writers; retry shortly", retry_after=1
)
DATABASE_UNAVAILABLE = DatabaseFault(
    "database_unavailable", "the database cannot be reached; retry shortly", retry_after=5
)
STORAGE_FULL = DatabaseFault(
    "storage_full", "the database's storage is full; retry once space is freed", retry_after=60
)

# SQLite's primary result codes (the low byte of `sqlite_errorcode`, which may be extended).
_SQLITE_FAULTS = {
    sqlite3.SQLITE_BUSY: DATABASE_BUSY,
    sqlite3.SQLITE_LOCKED: DATABASE_BUSY,
    sqlite3.SQLITE_PROTOCOL: DATABASE_BUSY,  # WAL lock contention
    sqlite3.SQLITE_FULL: STORAGE_FULL,
    sqlite3.SQLITE_IOERR: DATABASE_UNAVAILABLE,
    sqlite3.SQLITE_CANTOPEN: DATABASE_UNAVAILABLE,
    sqlite3.SQLITE_READONLY: DATABASE_UNAVAILABLE,  # e.g. the file system remounted read-only
}

# psycopg has one class per SQLSTATE, all flat under OperationalError (with many that are
# bugs: routine exceptions, savepoint misuse, program limits), so the faults are listed.
_POSTGRES_FAULTS: dict[type[psycopg.Error], DatabaseFault] = {
    psycopg.errors.DiskFull: STORAGE_FULL,
    # The server is there but overloaded or contended.
    psycopg.errors.InsufficientResources: DATABASE_BUSY,
    psycopg.errors.OutOfMemory: DATABASE_BUSY,
    psycopg.errors.TooManyConnections: DATABASE_BUSY,
    psycopg.errors.ConfigurationLimitExceeded: DATABASE_BUSY,
    psycopg.errors.LockNotAvailable: DATABASE_BUSY,
    psycopg.errors.QueryCanceled: DATABASE_BUSY,  # statement_timeout
    psycopg.errors.TransactionRollback: DATABASE_BUSY,
    psycopg.errors.SerializationFailure: DATABASE_BUSY,
    psycopg.errors.DeadlockDetected: DATABASE_BUSY,
    # Connections failing, the server stopping or starting, a standby refusing writes.
    psycopg.errors.ConnectionException: DATABASE_UNAVAILABLE,
    psycopg.errors.ConnectionDoesNotExist: DATABASE_UNAVAILABLE,
    psycopg.errors.ConnectionFailure: DATABASE_UNAVAILABLE,
    psycopg.errors.SqlclientUnableToEstablishSqlconnection: DATABASE_UNAVAILABLE,
    psycopg.errors.SqlserverRejectedEstablishmentOfSqlconnection: DATABASE_UNAVAILABLE,
    psycopg.errors.TransactionResolutionUnknown: DATABASE_UNAVAILABLE,
    psycopg.errors.ConnectionTimeout: DATABASE_UNAVAILABLE,
    psycopg.errors.OperatorIntervention: DATABASE_UNAVAILABLE,
    psycopg.errors.AdminShutdown: DATABASE_UNAVAILABLE,
    psycopg.errors.CrashShutdown: DATABASE_UNAVAILABLE,
    psycopg.errors.CannotConnectNow: DATABASE_UNAVAILABLE,
    psycopg.errors.IdleSessionTimeout: DATABASE_UNAVAILABLE,
    psycopg.errors.SystemError: DATABASE_UNAVAILABLE,
    psycopg.errors.IoError: DATABASE_UNAVAILABLE,
    psycopg.errors.ReadOnlySqlTransaction: DATABASE_UNAVAILABLE,
}

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}

# Wrappers that say "the database failed" without saying how: a fault when no driver error
# beneath them tells otherwise.
_OPAQUE_OPERATIONAL = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
)


def database_fault(error: BaseException) -> DatabaseFault | None:
    """The database fault `error` stands for, or None when it is not one (a bug, bad data).

    Sees through the layers that wrap a driver's error: eventsourcing's persistence errors
    (`__cause__`), SQLAlchemy's (`.orig`) and any `__context__`. The driver's own error
    decides when there is one (sqlite3 by its result code, psycopg by its error class, one
    per SQLSTATE, an OSError by its errno); a connection SQLAlchemy found dead is always a
    fault.
    """
    chain = list(_chain(error))
    if any(isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated for e in chain):
        return DATABASE_UNAVAILABLE
    drivers = [e for e in chain if isinstance(e, (sqlite3.Error, psycopg.Error, OSError))]
    if drivers:
        return next((f for f in map(_driver_fault, drivers) if f is not None), None)
    if any(isinstance(e, sqlalchemy.exc.TimeoutError) for e in chain):
        return DATABASE_BUSY  # no connection free in the pool in time
    if any(isinstance(e, _OPAQUE_OPERATIONAL) for e in chain):
        return DATABASE_UNAVAILABLE
    return None


def _driver_fault(error: BaseException) -> DatabaseFault | None:
    """The fault one driver's (or the OS's) error stands for, by its code."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return None if code is None else _SQLITE_FAULTS.get(code & 0xFF)
    if isinstance(error, psycopg.Error):
        fault = _POSTGRES_FAULTS.get(type(error))
        # Without a SQLSTATE it was raised by the client: the connection failed or was lost.
        lost = error.sqlstate is None and isinstance(
            error, (psycopg.OperationalError, psycopg.InterfaceError)
        )
        return DATABASE_UNAVAILABLE if lost else fault
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return STORAGE_FULL
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and every error beneath it (`.orig`, `__cause__`, `__context__`), outermost
    first, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        for beneath in (orig, current.__cause__, current.__context__):
            if isinstance(beneath, BaseException):
                pending.append(beneath)


def is_database_outage(error: BaseException) -> bool:
    """Whether `error` is a database fault: everybody's problem, retried without counting
    it against a lead (the followers' and activities' `is_outage`)."""
    return database_fault(error) is not None
