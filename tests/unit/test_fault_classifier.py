"""`store.faults.database_fault` on the errors real databases raise: each fault is named
whatever layer wraps it (eventsourcing, SQLAlchemy), and errors that retrying cannot heal (a
missing table, bad SQL) are not faults, though SQLite raises them as OperationalError too."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import eventsourcing.persistence
import pytest
import sqlalchemy.exc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from domain.events import IncomingEvent, parse_event
from leadflow.settings import Settings
from store.faults import (
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    STORAGE_FULL,
    DatabaseFault,
    database_fault,
)
from store.log import open_event_log

POSTGRES_ENV = "LEADFLOW_TEST_POSTGRES_URL"


def raised(action: Callable[[], object]) -> BaseException:
    """The error `action` raises (the test fails if it raises none)."""
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def capture(email: str) -> list[IncomingEvent]:
    return [
        parse_event(
            {"type": "lead.captured", "data": {"email": email, "source": "website"}},
            now=datetime.now(UTC),
            phone_region="CN",
        )
    ]


# --- SQLite -------------------------------------------------------------------------------


def test_a_write_while_another_connection_holds_sqlite_is_busy(tmp_path: Path) -> None:
    db = tmp_path / "leadflow.db"
    log = open_event_log(f"sqlite:///{db}?timeout=0.1")
    log.append(capture("bob@x.io"), [None])
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        error = raised(lambda: log.append(capture("ann@x.io"), [None]))
    finally:
        holder.close()
        log.close()
    # What the API meets: eventsourcing's error over SQLAlchemy's over sqlite3's.
    assert isinstance(error, eventsourcing.persistence.OperationalError)
    assert database_fault(error) == DATABASE_BUSY


def test_sqlite_busy_straight_from_the_driver(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        error = raised(lambda: writer.execute("CREATE TABLE t (x)"))
    finally:
        writer.close()
        holder.close()
    assert database_fault(error) == DATABASE_BUSY


def test_a_full_sqlite_database_is_storage_full(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")

    def fill() -> None:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x)"))
        # The page limit stands in for the disk: SQLite answers SQLITE_FULL as it does
        # for a full disk (the API test fills a real one, where mounting is allowed).
        with engine.begin() as conn:
            conn.execute(text("PRAGMA max_page_count = 3"))
            for _ in range(100):
                conn.execute(text("INSERT INTO t VALUES (randomblob(2000))"))

    error = raised(fill)
    engine.dispose()
    assert isinstance(error, sqlalchemy.exc.OperationalError)
    assert database_fault(error) == STORAGE_FULL


def test_a_database_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    error = raised(lambda: engine.connect())
    assert database_fault(error) == DATABASE_UNAVAILABLE


def test_a_read_only_database_is_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    error = raised(lambda: reader.execute("INSERT INTO t VALUES (1)"))
    reader.close()
    assert database_fault(error) == DATABASE_UNAVAILABLE


def test_sqlite_operational_errors_that_are_bugs_are_not_faults(tmp_path: Path) -> None:
    log = open_event_log(f"sqlite:///{tmp_path / 'leadflow.db'}")
    engine = create_engine(f"sqlite:///{tmp_path / 'leadflow.db'}")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE leadflow_events"))
    missing_table = raised(lambda: log.max_position())
    bad_sql = raised(run(engine, "SELEC 1"))
    log.close()
    engine.dispose()
    # eventsourcing wraps "no such table" as its OperationalError: the driver's word decides.
    assert isinstance(missing_table, eventsourcing.persistence.OperationalError)
    assert database_fault(missing_table) is None
    assert database_fault(bad_sql) is None


def test_no_connection_free_in_the_pool_in_time_is_busy(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'x.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    with engine.connect():
        error = raised(lambda: engine.connect())
    engine.dispose()
    assert isinstance(error, sqlalchemy.exc.TimeoutError)
    assert database_fault(error) == DATABASE_BUSY


# --- the disk and other errors ------------------------------------------------------------


def test_a_full_disk_is_storage_full() -> None:
    def write() -> None:
        with open("/dev/full", "wb") as device:  # Linux: every write fails with ENOSPC
            device.write(b"lead")

    assert database_fault(raised(write)) == STORAGE_FULL


@pytest.mark.parametrize(
    "action",
    [
        lambda: Path("/no/such/file").read_bytes(),
        lambda: int("seven"),
        lambda: {}["key"],
    ],
)
def test_errors_that_are_not_the_database_are_not_faults(action: Callable[[], object]) -> None:
    assert database_fault(raised(action)) is None


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def postgres() -> Iterator[Engine]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    engine = create_engine(Settings(database_url=base).sqlalchemy_url)
    yield engine
    engine.dispose()


def run(engine: Engine, *statements: str) -> Callable[[], None]:
    def execute() -> None:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    return execute


def raise_sqlstate(engine: Engine, condition: str) -> BaseException:
    """The error PostgreSQL itself sends for `condition` (a PL/pgSQL condition name)."""
    block = f"DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{condition}'; END $$"
    return raised(run(engine, block))


def test_postgresql_refusing_connections_is_unavailable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # a port nothing listens on
        port = unused.getsockname()[1]
    settings = Settings(database_url=f"postgresql://postgres@127.0.0.1:{port}/test")
    engine = create_engine(settings.sqlalchemy_url, pool_pre_ping=True)
    error = raised(lambda: engine.connect())
    assert database_fault(error) == DATABASE_UNAVAILABLE
    # The log's own engine: eventsourcing wraps what SQLAlchemy raised.
    assert database_fault(raised(lambda: open_event_log(settings.sqlalchemy_url))) == (
        DATABASE_UNAVAILABLE
    )


def test_a_connection_postgresql_ended_is_unavailable(postgres: Engine) -> None:
    conn = postgres.connect()
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    run(postgres, f"SELECT pg_terminate_backend({pid})")()
    error = raised(lambda: conn.execute(text("SELECT 1")))
    conn.close()
    assert isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated
    assert database_fault(error) == DATABASE_UNAVAILABLE


def test_postgresql_lock_and_statement_timeouts_are_busy(postgres: Engine) -> None:
    key = 4242_0001
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with postgres.connect() as conn:
            conn.execute(text(f"SELECT pg_advisory_lock({key})"))
            held.set()
            release.wait(10)
            conn.execute(text(f"SELECT pg_advisory_unlock({key})"))

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        lock_wait = raised(
            run(postgres, "SET lock_timeout = '50ms'", f"SELECT pg_advisory_lock({key})")
        )
    finally:
        release.set()
        holder.join()
    slow = raised(run(postgres, "SET statement_timeout = '50ms'", "SELECT pg_sleep(5)"))
    assert database_fault(lock_wait) == DATABASE_BUSY
    assert database_fault(slow) == DATABASE_BUSY


def test_a_read_only_postgresql_is_unavailable(postgres: Engine) -> None:
    # What a standby answers a write after a failover.
    error = raised(run(postgres, "SET TRANSACTION READ ONLY", "CREATE TEMPORARY TABLE t (x int)"))
    assert database_fault(error) == DATABASE_UNAVAILABLE


@pytest.mark.parametrize(
    ("condition", "fault"),
    [
        ("disk_full", STORAGE_FULL),
        ("too_many_connections", DATABASE_BUSY),
        ("out_of_memory", DATABASE_BUSY),
        ("serialization_failure", DATABASE_BUSY),
        ("deadlock_detected", DATABASE_BUSY),
        ("admin_shutdown", DATABASE_UNAVAILABLE),
        ("cannot_connect_now", DATABASE_UNAVAILABLE),
        ("io_error", DATABASE_UNAVAILABLE),
        # OperationalError in psycopg too, but retrying cannot heal them.
        ("program_limit_exceeded", None),
        ("object_not_in_prerequisite_state", None),
        ("raise_exception", None),
    ],
)
def test_postgresql_errors_by_their_sqlstate(
    postgres: Engine, condition: str, fault: DatabaseFault | None
) -> None:
    assert database_fault(raise_sqlstate(postgres, condition)) == fault


def test_postgresql_errors_that_are_bugs_are_not_faults(postgres: Engine) -> None:
    assert database_fault(raised(run(postgres, "SELECT * FROM no_such_table"))) is None
    assert database_fault(raised(run(postgres, "SELECT 1 / 0"))) is None


# --- wrapping never changes the verdict ---------------------------------------------------

WRAPPERS: list[type[Exception]] = [
    eventsourcing.persistence.PersistenceError,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
    RuntimeError,
]


def wrapped(error: BaseException, layers: list[tuple[type[Exception], bool]]) -> BaseException:
    """`error` raised again inside each layer: `raise Wrapper(...) from error` when the
    flag says so, else raised while handling it (only `__context__` links them)."""
    for wrapper, explicit in layers:
        try:
            try:
                raise error
            except BaseException as inner:
                if explicit:
                    raise wrapper(str(inner)) from inner
                raise wrapper(str(inner))  # noqa: B904 - the implicit chain is the case
        except Exception as outer:
            error = outer
    return error


@pytest.fixture(scope="module")
def driver_errors(tmp_path_factory: pytest.TempPathFactory) -> list[BaseException]:
    """Real errors of each verdict, from the driver up."""
    db = tmp_path_factory.mktemp("faults") / "x.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(db, timeout=0, isolation_level=None)
    busy = raised(lambda: writer.execute("CREATE TABLE t (x)"))
    holder.close()
    writer.close()
    missing = raised(lambda: sqlite3.connect(":memory:").execute("SELECT * FROM nope"))
    engine = create_engine(f"sqlite:///{db.parent / 'no-such-dir' / 'x.db'}")
    unopenable = raised(lambda: engine.connect())

    def write_to_full_device() -> None:
        with open("/dev/full", "wb") as device:
            device.write(b"lead")

    return [busy, missing, unopenable, raised(write_to_full_device)]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    index=st.integers(min_value=0, max_value=3),
    layers=st.lists(st.tuples(st.sampled_from(WRAPPERS), st.booleans()), max_size=4),
)
def test_wrapping_an_error_never_changes_its_verdict(
    driver_errors: list[BaseException], index: int, layers: list[tuple[type[Exception], bool]]
) -> None:
    error = driver_errors[index]
    assert database_fault(wrapped(error, layers)) == database_fault(error)
