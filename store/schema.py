"""leadflow's own tables (API keys, follower positions, the quarantine, replays, read
models) and how a database gets them: the alembic revisions in `store/migrations/versions`,
run under a lock so that processes starting at once upgrade a database once.

Every process checks the database's revision as it opens the store: one query when the
database is at head. Behind head it upgrades (unless told not to: then it refuses to start,
naming `leadflow migrate`). A database leadflow set up before it had migrations (tables made
by `create_all`, no `alembic_version`) is adopted by the first revision, which keeps the
tables it finds and creates the missing ones.

The event log's tables (`leadflow_events` and the library's) are eventsourcing's: its
recorder creates them, and no revision here touches them. They are created inside the same
lock when a process upgrades, so two processes never race to create them either.
"""

from __future__ import annotations

import fcntl
import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# The advisory lock PostgreSQL processes take around an upgrade (any constant no other part
# of leadflow uses).
SCHEMA_LOCK = 0x6C66_7363_6865  # "lfsche"
# SQLite: a file beside the database, locked (flock) around an upgrade.
LOCK_FILE_SUFFIX = ".schema-lock"


class SchemaNotCurrent(Exception):
    """The database is not at the revision this leadflow needs, and may not be upgraded here."""


class DatabaseBehind(SchemaNotCurrent):
    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"the database is at schema revision {current or 'none'}, this leadflow needs "
            f"{head}: run `leadflow migrate` (LEADFLOW_AUTO_MIGRATE is off)"
        )


class DatabaseAhead(SchemaNotCurrent):
    def __init__(self, current: str, head: str) -> None:
        super().__init__(
            f"the database is at schema revision {current}, which this leadflow (head {head}) "
            "does not know: a newer leadflow upgraded it; run that release"
        )


class UnknownTarget(SchemaNotCurrent):
    """`leadflow migrate --to` named no revision, or one behind the database's."""


@dataclass(frozen=True)
class Migrated:
    """What an upgrade did: the database's revision before and after (None: no revision)."""

    before: str | None
    after: str | None


def _config(connection: Connection | None = None) -> Config:
    """alembic's configuration, built here (no alembic.ini): the migrations shipped in the
    package and, for a command, the connection it runs on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def revisions() -> tuple[str, ...]:
    """Every revision, oldest first (read from the package once per process)."""
    scripts = ScriptDirectory.from_config(_config())
    return tuple(script.revision for script in reversed(list(scripts.walk_revisions())))


def head() -> str:
    """The revision this leadflow's tables are at once upgraded."""
    return revisions()[-1]


def current_revision(engine: Engine) -> str | None:
    """The database's revision, in one query; None when it has none (a fresh database, or one
    set up before leadflow had migrations)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        # None only for a database without the version table; any other failure (an
        # unreachable database, say) is raised.
        if not inspect(engine).has_table("alembic_version"):
            return None
    # The table is there now: another process starting at the same moment created it
    # between the two looks (its upgrade committed). Read it again; a failure now is real.
    with engine.connect() as conn:
        revision: str | None = conn.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar()
        return revision


@contextmanager
def schema_ready(engine: Engine, *, upgrade: bool) -> Iterator[None]:
    """Make sure the database is at head before the body runs: at head, nothing more than the
    version query; behind it, upgrade under the schema lock (held while the body runs, so the
    body may create tables too) or, without `upgrade`, raise DatabaseBehind. DatabaseAhead
    when a newer leadflow has upgraded it."""
    current = current_revision(engine)
    if current == head():
        yield
        return
    if current is not None and current not in revisions():
        raise DatabaseAhead(current, head())
    if not upgrade:
        raise DatabaseBehind(current, head())
    with migrated(engine):
        yield


@contextmanager
def migrated(engine: Engine, to: str = "head") -> Iterator[Migrated]:
    """Upgrade the database to `to` (a revision, or head) under the schema lock, held while
    the body runs. Upgrading to the revision it is at does nothing; UnknownTarget for a
    revision behind it or unknown, DatabaseAhead as `schema_ready`."""
    with schema_lock(engine):
        yield _upgrade(engine, to)


def _upgrade(engine: Engine, to: str) -> Migrated:
    """Upgrade in one transaction (all or nothing, on SQLite too: DDL is transactional there
    once a transaction is open, which the driver does not do for DDL by itself)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        before = MigrationContext.configure(conn).get_current_revision()
        known = revisions()
        if before is not None and before not in known:
            raise DatabaseAhead(before, head())
        if before is not None and to in known[: known.index(before)]:
            raise UnknownTarget(
                f"the database is at {before}, past {to}: leadflow does not downgrade (restore "
                "the backup taken before the upgrade)"
            )
        try:
            command.upgrade(_config(conn), to)
        except CommandError as refused:
            message = f"cannot upgrade from {before or 'none'} to {to}: {refused}"
            raise UnknownTarget(message) from None
        after = MigrationContext.configure(conn).get_current_revision()
        conn.commit()
    if after != before:
        log.info("upgraded the database's schema from %s to %s", before or "none", after)
    return Migrated(before, after)


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Held by one process at a time per database: PostgreSQL's advisory lock on a connection
    of its own (released if the process dies); SQLite, a file lock beside the database file
    (an in-memory database has one process)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            conn.execute(select(func.pg_advisory_lock(SCHEMA_LOCK)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(SCHEMA_LOCK)))
                conn.commit()
        return
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    assert url.database is not None
    lock_file = Path(url.database + LOCK_FILE_SUFFIX)
    with lock_file.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
