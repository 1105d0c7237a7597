"""The SQL under the event log: eventsourcing_sqlalchemy's recorder with leadflow's own
statements (one multi-row insert, Core reads built once), and the factory and datastore
that give it to the log (`PERSISTENCE_MODULE=store.recorder:LogFactory`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    Notification,
    StoredEvent,
)
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Select, Text, bindparam, cast, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.faults import DATABASE_BUSY, database_fault
from store.partitions import Partitions

log = logging.getLogger(__name__)


class LogRecorder(SQLAlchemyApplicationRecorder):
    """eventsourcing_sqlalchemy's recorder (same table, lock, NOTIFY and notification ids),
    writing with one multi-row `INSERT ... RETURNING id` (SQLAlchemy Core) instead of the ORM
    unit of work: 3-5x less CPU per row, the biggest cost of a batch. Also reads many
    streams in one query. Statements are built once: building and hashing a statement per
    call cost more than running it on SQLite."""

    def __init__(self, datastore: SQLAlchemyDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        table = self.events_record_cls.__table__
        self._insert = insert(table).returning(table.c.id)
        self._selects: dict[int, Select[Any]] = {}
        self._stream_selects: dict[tuple[bool, bool, bool, bool], Select[Any]] = {}
        self._stream_version = select(func.max(table.c.originator_version)).where(
            table.c.originator_id == bindparam("stream_id")
        )

    def stream_version(self, originator_id: UUID) -> int | None:
        """The version of a stream's last event (None: no events), read from the primary
        key alone: how a reader tells whether what it decoded earlier is still current."""
        with self.transaction(commit=False) as session:
            found = (
                session.connection()
                .execute(self._stream_version, {"stream_id": originator_id})
                .scalar_one_or_none()
            )
        return None if found is None else int(found)

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        rows = [
            {
                "originator_id": e.originator_id,
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": e.state,
            }
            for e in stored_events
        ]
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            # The library's lock (so ids commit in the order they are given) and NOTIFY
            # (delivered at commit), sent in one round trip instead of two.
            table_name = self.events_table_name
            if self.schema_name is not None:
                table_name = f"{self.schema_name}.{table_name}"
            connection.exec_driver_sql(
                f"LOCK TABLE {table_name} IN EXCLUSIVE MODE; NOTIFY {self.channel_name}"
            )
        else:
            self._lock_table(session)
        # One writer at a time (the lock above; SQLite's single writer) numbers the rows in
        # the order given, so sorting gives each event its id. Asking SQLAlchemy for that
        # order (`sort_by_parameter_order`) costs 1.3-3x more per row.
        return sorted(connection.execute(self._insert, rows).scalars())

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """The library's `select_events` (one stream's events, by version), with a Core
        statement built once per shape instead of an ORM query per call: every aggregate
        read and fast-forward comes here (~10% of the worker's CPU went to building and
        running those queries)."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        statement = self._stream_selects.get(shape)
        if statement is None:
            statement = self._stream_selects[shape] = self._stream_select(*shape)
        params = {"stream_id": originator_id, "gt": gt, "lte": lte, "limit": limit}
        with self.transaction(commit=False) as session:
            rows = session.connection().execute(statement, params)
            return [
                StoredEvent(
                    originator_id=row.originator_id,
                    originator_version=row.originator_version,
                    topic=row.topic,
                    state=bytes(row.state),
                )
                for row in rows
            ]

    def _stream_select(self, gt: bool, lte: bool, desc: bool, limit: bool) -> Select[Any]:
        table = self.events_record_cls.__table__
        version = table.c.originator_version
        statement = select(table.c.originator_id, version, table.c.topic, table.c.state).where(
            table.c.originator_id == bindparam("stream_id")
        )
        if gt:
            statement = statement.where(version > bindparam("gt"))
        if lte:
            statement = statement.where(version <= bindparam("lte"))
        statement = statement.order_by(version.desc() if desc else version)
        if limit:
            statement = statement.limit(bindparam("limit"))
        return statement

    def select_streams(self, originator_ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """The stored events of each given stream that has any, in order."""
        streams: dict[UUID, list[StoredEvent]] = {}
        with self.transaction(commit=False) as session:
            connection = session.connection()
            for start in range(0, len(originator_ids), _IDS_PER_QUERY):
                chunk = list(originator_ids[start : start + _IDS_PER_QUERY])
                # Padded to a power of two (repeating an id): a handful of statements.
                size = 1 << (len(chunk) - 1).bit_length()
                chunk += chunk[-1:] * (size - len(chunk))
                params = {f"id{i}": stream_id for i, stream_id in enumerate(chunk)}
                for row in connection.execute(self._select_of(size), params):
                    streams.setdefault(row.originator_id, []).append(
                        StoredEvent(
                            originator_id=row.originator_id,
                            originator_version=row.originator_version,
                            topic=row.topic,
                            state=bytes(row.state),
                        )
                    )
        return streams

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
        partitions: Partitions | None = None,
    ) -> list[Notification]:
        """The library's notification read (same rows, same order), as one Core statement:
        its ORM query built an object per row and cost 2-3x as much, the biggest share of a
        projection rebuild's reading. With `partitions`: only their streams' events."""
        table = self.events_record_cls.__table__
        query = self._notifications()
        if start is not None:
            query = query.where(table.c.id >= start if inclusive_of_start else table.c.id > start)
        if stop is not None:
            query = query.where(table.c.id <= stop)
        if topics:
            query = query.where(table.c.topic.in_(topics))
        if partitions is not None and not partitions.is_everything:
            query = query.where(self.in_partitions(partitions))
        return self._read_notifications(query.order_by(table.c.id).limit(limit))

    def in_partitions(self, partitions: Partitions) -> ColumnElement[bool]:
        """Where the events of `partitions`' streams are: by the last byte of their stream
        id (`store.partitions.partition_of`), which PostgreSQL stores as a UUID and SQLite
        as 16 bytes."""
        column = self.events_record_cls.__table__.c.originator_id
        assert self.datastore.engine is not None
        if self.datastore.engine.dialect.name == "postgresql":
            last = func.right(cast(column, Text), 2)
        else:
            last = func.lower(func.hex(func.substr(column, 16, 1)))
        return last.in_(partitions.last_bytes())

    def select_stream_notifications(
        self, originator_id: UUID, start: int, stop: int, topics: Sequence[str]
    ) -> list[Notification]:
        """One stream's notifications of `topics` with ids from `start` to `stop`."""
        table = self.events_record_cls.__table__
        query = self._notifications().where(
            table.c.originator_id == originator_id,
            table.c.id >= start,
            table.c.id <= stop,
            table.c.topic.in_(topics),
        )
        return self._read_notifications(query.order_by(table.c.id))

    def _notifications(self) -> Select[Any]:
        table = self.events_record_cls.__table__
        return select(
            table.c.id,
            table.c.originator_id,
            table.c.originator_version,
            table.c.topic,
            table.c.state,
        )

    def _read_notifications(self, query: Select[Any]) -> list[Notification]:
        with self.transaction(commit=False) as session:
            rows = session.connection().execute(query).all()
        return [
            Notification(
                id=id_,
                originator_id=originator_id,
                originator_version=originator_version,
                topic=topic,
                state=bytes(state),
            )
            for id_, originator_id, originator_version, topic, state in rows
        ]

    def _select_of(self, size: int) -> Select[Any]:
        statement = self._selects.get(size)
        if statement is None:
            table = self.events_record_cls.__table__
            ids = [bindparam(f"id{i}", type_=table.c.originator_id.type) for i in range(size)]
            statement = (
                select(
                    table.c.originator_id,
                    table.c.originator_version,
                    table.c.topic,
                    table.c.state,
                )
                .where(table.c.originator_id.in_(ids))
                .order_by(table.c.originator_id, table.c.originator_version)
            )
            self._selects[size] = statement
        return statement


# How long a store waits to switch a SQLite file to WAL while another holds it (the busy
# timeout of its writes is 5 s too).
WAL_SWITCH_SECONDS = 5.0

# A power of two, well under SQLite's and PostgreSQL's limits on parameters per statement.
_IDS_PER_QUERY = 512


class LogDatastore(SQLAlchemyDatastore):
    """eventsourcing_sqlalchemy's datastore, whose PostgreSQL engine tests a pooled connection
    before lending it (`pool_pre_ping`, as the store's own engine does): after PostgreSQL
    restarts, the next transaction gets a new connection instead of failing on a dead one.
    (A SQLite file's connections do not die, and the ping would cost every transaction.)"""

    def __init__(self, *, url: str | None = None, **kwargs: Any) -> None:
        if url is not None and not url.startswith("sqlite"):
            kwargs["pool_pre_ping"] = True
        super().__init__(url=url, **kwargs)

    def init_sqlite_wal_mode(self) -> None:
        """Put a SQLite file in WAL mode, as the library does on the first transaction, but
        wait for a store opening the same file at that moment: switching the journal mode
        needs the file to itself, and SQLite answers "database is locked" at once instead
        of waiting its busy timeout. Tries for up to `WAL_SWITCH_SECONDS`."""
        deadline = time.monotonic() + WAL_SWITCH_SECONDS
        while True:
            try:
                super().init_sqlite_wal_mode()
                return
            except Exception as error:
                if database_fault(error) is not DATABASE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


class LogFactory(SQLAlchemyFactory):
    """eventsourcing_sqlalchemy with `LogRecorder` and `LogDatastore` (topic
    `store.log:LogFactory`)."""

    datastore_class = LogDatastore
    application_recorder_class = LogRecorder

    def close(self) -> None:
        """Closes the log's connections (the library leaves its engine's pool open until
        the engine is collected: a PostgreSQL session stayed behind each closed store)."""
        if isinstance(self.datastore.engine, Engine):
            self.datastore.engine.dispose()
        super().close()
