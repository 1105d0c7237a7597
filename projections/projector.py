"""The projector: follows the log and keeps the read models up to date (SPEC §3.4, §7).

Each projection has its own tracking position in `log_positions` (follower
`projection:<name>`). A page of events goes into the view tables in the same transaction
as the position after it, and that transaction only commits if the position is still the
one the page was read from (compare-and-set). So a crash never loses or applies an event
twice, two projectors never interleave, and a page read before a rebuild's swap is read
again rather than applied to the wrong table.

Projections at the same position that read the same topics (the lead read models, once
caught up) share one read of a page and one transaction for it: every position is
compared-and-set first, in the projections' order, then every `apply`, then one commit
(with SQLite's `synchronous=FULL`, a commit is a WAL fsync). If one position moved, the
whole transaction rolls back and each member goes its own way; if one `apply` fails, no
member's position or table changes.

`rebuild` builds a projection into fresh tables (`<table>__rebuild`) from position 0 while
the live tables keep serving, then swaps them in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Index, MetaData, Table, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable, DropTable

from domain.identity import campaign_id_for
from domain.lead import LEAD_EVENT_CLASSES, Campaign
from domain.state import LoggedEvent
from store.faults import is_database_outage
from store.log import EventLog
from store.log_watch import LogWatch
from store.positions import log_positions
from store.quarantine import (
    RESOLVED,
    SKIP_REQUESTED,
    SKIPPED,
    FailedEvent,
    Quarantine,
    QuarantineItem,
    projection_stage,
)

log = logging.getLogger(__name__)

# Every event of a lead's stream, posted and decided.
LEAD_TOPICS: tuple[str, ...] = tuple(get_topic(cls) for cls in LEAD_EVENT_CLASSES)
# A campaign's spend records: the one kind of event that belongs to no lead.
SPEND_TOPICS: tuple[str, ...] = (get_topic(Campaign.SpendRecorded),)
SPEND_TYPE = Campaign.SpendRecorded.TYPE

PAGE_SIZE = 1000
# A rebuild has the log's whole history to go through: bigger pages write each lead's row
# fewer times, read fewer rows back and commit less often (10-25% less CPU for `leads`,
# BENCHMARKS.md).
REBUILD_PAGE_SIZE = 5000
REBUILD_SUFFIX = "__rebuild"


@dataclass(frozen=True)
class CampaignSpend:
    """One `campaign.spend_recorded` event as the projections read it."""

    campaign_id: str
    sequence: int  # its number in the campaign's stream
    event_id: str
    occurred_at: str  # RFC 3339
    data: dict[str, Any]


EventT = TypeVar("EventT", LoggedEvent, CampaignSpend)


@dataclass(frozen=True)
class LogEntry(Generic[EventT]):
    """One event and its position in the log: a lead's event (`LogEntry[LoggedEvent]`,
    what a projection reading `LEAD_TOPICS` gets) or a campaign's spend
    (`LogEntry[CampaignSpend]`, for `SPEND_TOPICS`)."""

    position: int
    event: EventT


class Projection(Protocol):
    """A read model the projector keeps: its tables and how a page of events changes them."""

    @property
    def name(self) -> str:
        """Unique among projections; also names its tracking position."""
        ...

    @property
    def topics(self) -> tuple[str, ...]:
        """The stored topics of the events it reads (`LEAD_TOPICS`, `SPEND_TOPICS`): its
        pages, and its lag, count only those."""
        ...

    @property
    def metadata(self) -> MetaData:
        """Its tables and their indexes."""
        ...

    def apply(self, conn: Connection, entries: Sequence[LogEntry[Any]]) -> None:
        """Fold a page of events of its `topics`, in log order, into the tables, inside
        `conn`'s transaction (which the projector commits together with the new position)."""
        ...


class TableProjection:
    """What every read model shares: its tables live in their own `MetaData`, named after
    `table_name` plus a suffix (a rebuild builds into a copy, `<table><REBUILD_SUFFIX>`),
    and it reads lead events unless it says otherwise. A subclass gives `table_name`,
    `make_table` (its table, under a given name) and `apply`."""

    table_name: ClassVar[str]
    topics: tuple[str, ...] = LEAD_TOPICS

    def __init__(self, suffix: str = "") -> None:
        self.name = self.table_name + suffix
        self.metadata = MetaData()
        self.table = self.make_table(self.metadata, self.name)

    @staticmethod
    def make_table(metadata: MetaData, name: str) -> Table:
        raise NotImplementedError


class RowsByKey:
    """A page's rows of a table with a one-column key: those already stored, read in one
    query, and those the page creates. The caller changes them in place, marks the stored
    ones it changed (`changed`), and `save` writes both back in two statements."""

    def __init__(self, conn: Connection, table: Table, key: str, keys: Sequence[str]) -> None:
        self.table = table
        self.key = key
        found = conn.execute(
            select(table).where(table.c[key].in_(list(dict.fromkeys(keys))))
        ).mappings()
        self.stored: dict[str, dict[str, Any]] = {row[key]: dict(row) for row in found}
        self.created: dict[str, dict[str, Any]] = {}
        self.changed: set[str] = set()

    def get(self, key: str) -> dict[str, Any] | None:
        """The row for `key`, stored or created by this page."""
        return self.stored.get(key) or self.created.get(key)

    def save(self, conn: Connection, mutable: Sequence[str]) -> None:
        """Insert the created rows; update the `mutable` columns of the changed ones."""
        table = self.table
        if self.created:
            conn.execute(insert(table), list(self.created.values()))
        if self.changed:
            params = [
                {**{name: self.stored[key][name] for name in mutable}, "key": key}
                for key in self.changed
            ]
            conn.execute(update(table).where(table.c[self.key] == bindparam("key")), params)


def tracking_name(projection: Projection) -> str:
    return f"projection:{projection.name}"


def read_entries(
    event_log: EventLog,
    position: int,
    limit: int,
    until: int | None = None,
    topics: tuple[str, ...] = LEAD_TOPICS,
) -> list[LogEntry[Any]]:
    """Up to `limit` events of `topics` after log `position` (and up to `until`), in log
    order."""
    notifications: Sequence[Notification] = event_log.recorder.select_notifications(
        start=position, limit=limit, stop=until, topics=topics, inclusive_of_start=False
    )
    return _entries_of(event_log, notifications)


def _entries_of(event_log: EventLog, notifications: Sequence[Notification]) -> list[LogEntry[Any]]:
    decode = event_log.logged_event_decoder.decode
    to_domain_event = event_log.mapper.to_domain_event
    entries: list[LogEntry[Any]] = []
    for notification in notifications:
        if notification.topic in SPEND_TOPICS:
            spend = to_domain_event(notification)
            assert isinstance(spend, Campaign.SpendRecorded)
            entries.append(LogEntry(notification.id, _spend_of(spend)))
        else:
            entries.append(LogEntry(notification.id, decode(notification)))
    return entries


def stream_of(entry: LogEntry[Any]) -> str:
    """The log stream an entry belongs to (what the quarantine holds): its lead, or its
    campaign's stream."""
    event = entry.event
    if isinstance(event, CampaignSpend):
        return str(campaign_id_for(event.campaign_id))
    return str(event.lead_id)


def _failed_event(entry: LogEntry[Any]) -> FailedEvent:
    event = entry.event
    if isinstance(event, CampaignSpend):
        return FailedEvent(
            stream_of(entry), None, entry.position, event.event_id, SPEND_TYPE, event.sequence
        )
    return FailedEvent(
        event.lead_id, event.lead_id, entry.position, event.event_id, event.type, event.sequence
    )


def _spend_of(event: Campaign.SpendRecorded) -> CampaignSpend:
    return CampaignSpend(
        campaign_id=str(event.data["campaign_id"]),
        sequence=event.originator_version,
        event_id=event.event_id,
        occurred_at=event.occurred_at.isoformat(),
        data=event.data,
    )


def position_of(conn: Connection, projection: Projection) -> int | None:
    """The projection's tracking position, None if it was never started."""
    found = conn.execute(
        select(log_positions.c.position).where(
            log_positions.c.follower == tracking_name(projection)
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _start_tracking(engine: Engine, projection: Projection) -> None:
    with engine.connect() as conn:
        if position_of(conn, projection) is not None:
            return
    # Another projector may start tracking it at the same moment: either row will do.
    with contextlib.suppress(IntegrityError), engine.begin() as conn:
        conn.execute(log_positions.insert().values(follower=tracking_name(projection), position=0))


def _move(conn: Connection, members: Sequence[Projection], position: int, last: int) -> bool:
    """Move each member's position from `position` to `last` (compare-and-set), inside
    `conn`'s transaction; False, with the transaction rolled back, if one had moved."""
    # The positions' updates come first: they take their row locks (PostgreSQL) or the
    # write lock (SQLite) before any table is touched, as a rebuild's swap does, and always
    # in the same order, so two projectors wait rather than deadlock.
    for projection in members:
        moved = conn.execute(
            update(log_positions)
            .where(
                log_positions.c.follower == tracking_name(projection),
                log_positions.c.position == position,
            )
            .values(position=last)
        )
        if moved.rowcount != 1:
            conn.rollback()
            return False
    return True


def _unheld(
    entries: Sequence[LogEntry[Any]], held: Mapping[str, QuarantineItem]
) -> Sequence[LogEntry[Any]]:
    """The entries of streams that are not held (all of them, in the usual case)."""
    if not held:
        return entries
    return [entry for entry in entries if stream_of(entry) not in held]


class Projector:
    """Keeps `projections` up to date with the log, a page at a time."""

    def __init__(
        self,
        event_log: EventLog,
        engine: Engine,
        projections: Sequence[Projection],
        *,
        page_size: int = PAGE_SIZE,
        poll_seconds: float = 0.2,
        quarantine: Quarantine | None = None,
        is_outage: Callable[[BaseException], bool] = is_database_outage,
    ) -> None:
        self.event_log = event_log
        self.engine = engine
        self.projections = list(projections)
        self.page_size = page_size
        self.poll_seconds = poll_seconds
        # Where an event a read model cannot take is recorded: the same database.
        self.quarantine = quarantine or Quarantine(engine)
        self.is_outage = is_outage
        self._tracked: set[str] = set()

    def _track(self, projection: Projection) -> None:
        if projection.name not in self._tracked:
            _start_tracking(self.engine, projection)
            self._tracked.add(projection.name)

    def project_page(self, projection: Projection, until: int | None = None) -> int:
        """Apply the next page of events (up to log position `until`) to `projection`;
        returns how many it applied (0: it is caught up)."""
        self._track(projection)
        while True:
            with self.engine.connect() as conn:
                position = position_of(conn, projection) or 0
            entries = read_entries(
                self.event_log, position, self.page_size, until, projection.topics
            )
            if not entries:
                return 0
            if self._apply_together([projection], position, entries):
                return len(entries)
            # Its position moved while the page was read (another projector, a rebuild's
            # swap): nothing was written; read again from where it is now.
            log.info("projection %s moved on from %d; reading again", projection.name, position)

    def _apply_together(
        self, members: Sequence[Projection], position: int, entries: list[LogEntry[Any]]
    ) -> bool:
        """Apply `entries` to every one of `members` (all at `position`) in one
        transaction; False, with nothing written, if any member's position moved."""
        last = entries[-1].position
        with self.engine.connect() as conn:
            if not _move(conn, members, position, last):
                return False
            held = self._held(conn, members)
            try:
                for projection in members:
                    projection.apply(conn, _unheld(entries, held[projection.name]))
            except Exception as error:
                if self.is_outage(error):
                    raise
                # An event some read model cannot take: nothing of the page is kept, and it
                # is applied again stream by stream, that event's stream held back.
                conn.rollback()
                log.warning("projecting a page failed (%s); isolating the stream", error)
                return self._apply_isolating(members, position, entries)
            conn.commit()
        log.debug("%d projection(s): %d events up to %d", len(members), len(entries), last)
        return True

    def _held(
        self, conn: Connection, members: Sequence[Projection]
    ) -> dict[str, dict[str, QuarantineItem]]:
        """Each member's streams held in quarantine, by stream."""
        return {
            projection.name: self.quarantine.open_items(conn, projection_stage(projection.name))
            for projection in members
        }

    def _apply_isolating(
        self, members: Sequence[Projection], position: int, entries: list[LogEntry[Any]]
    ) -> bool:
        """`_apply_together`, one stream at a time: a stream whose event a member cannot
        take is recorded in the quarantine (in the same transaction) and held from that
        event on; every other stream is applied. When a member fails on every stream of
        the page, the fault is its own (a bug, a missing table), not a lead's: that error
        is raised and nothing is written, as before isolation."""
        last = entries[-1].position
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            if not _move(conn, members, position, last):
                return False
            held = self._held(conn, members)
            for projection in members:
                streams: dict[str, list[LogEntry[Any]]] = {}
                for entry in _unheld(entries, held[projection.name]):
                    streams.setdefault(stream_of(entry), []).append(entry)
                failures = [
                    failure
                    for stream in streams.values()
                    if (failure := self._apply_stream(conn, projection, stream)) is not None
                ]
                if failures and len(failures) == len(streams):
                    conn.rollback()
                    raise failures[0][1]
                for failure in failures:
                    self._record(conn, projection, *failure, now)
            conn.commit()
        return True

    def _apply_stream(
        self, conn: Connection, projection: Projection, stream: Sequence[LogEntry[Any]]
    ) -> tuple[LogEntry[Any], BaseException] | None:
        """Apply one stream's entries, in order, inside `conn`'s transaction; on a failure
        that is not an outage, keep the entries before the one that failed and return it
        with its error (nothing after it is applied)."""
        try:
            with conn.begin_nested():
                projection.apply(conn, stream)
            return None
        except Exception as error:
            if self.is_outage(error):
                raise
        for entry in stream:
            try:
                with conn.begin_nested():
                    projection.apply(conn, [entry])
            except Exception as error:
                if self.is_outage(error):
                    raise
                return entry, error
        raise AssertionError("a stream failed as a whole but not event by event")

    def _record(
        self,
        conn: Connection,
        projection: Projection,
        entry: LogEntry[Any],
        error: BaseException,
        now: datetime,
        earlier: QuarantineItem | None = None,
    ) -> QuarantineItem:
        item = self.quarantine.failed(
            conn,
            projection_stage(projection.name),
            _failed_event(entry),
            f"{type(error).__name__}: {error}",
            now,
            earlier=earlier,
        )
        log.warning(
            "projection %s: stream %s held at position %d (%s after %d attempt(s)): %s",
            projection.name,
            item.stream_id,
            entry.position,
            item.status,
            item.attempts,
            item.error,
        )
        return item

    def retry_due(self) -> int:
        """Apply again, in order, the held events of each stream whose retry is due (or
        that an operator asked to retry or skip); returns how many streams were tried."""
        tried = 0
        for projection in self.projections:
            now = datetime.now(UTC)
            with self.engine.connect() as conn:
                due = self.quarantine.due(conn, projection_stage(projection.name), now)
            for item in due:
                self._retry(projection, item, now)
                tried += 1
        return tried

    def _retry(self, projection: Projection, item: QuarantineItem, now: datetime) -> None:
        assert item.position is not None
        skip = item.status == SKIP_REQUESTED
        with self.engine.connect() as conn:
            # Taking the position's lock first, as every page does: no page of this
            # projection commits between reading the held events and applying them.
            up_to = position_of(conn, projection) or 0
            if not _move(conn, [projection], up_to, up_to):
                return
            notifications = self.event_log.stream_notifications(
                UUID(item.stream_id), item.position, up_to, projection.topics
            )
            held = _entries_of(self.event_log, notifications)
            if skip:
                held = [entry for entry in held if entry.position != item.position]
            failure = self._apply_stream(conn, projection, held)
            if failure is None:
                self.quarantine.close(conn, item.item_id, SKIPPED if skip else RESOLVED, now)
            elif skip or failure[0].position != item.position:
                # Past the event that failed before: that one is done with.
                self.quarantine.close(conn, item.item_id, SKIPPED if skip else RESOLVED, now)
                self._record(conn, projection, *failure, now)
            else:
                self._record(conn, projection, *failure, now, earlier=item)
            conn.commit()

    def project_once(self) -> int:
        """One page for each projection; returns how many events were applied in all.

        Projections at the same position that read the same topics (the read models of
        lead events, once caught up) share one read of the page and one transaction:
        reading and decoding the log, and committing, cost more than most `apply`s."""
        for projection in self.projections:
            self._track(projection)
        with self.engine.connect() as conn:
            positions = [(p, position_of(conn, p) or 0) for p in self.projections]
        groups: dict[tuple[int, tuple[str, ...]], list[Projection]] = {}
        for projection, position in positions:
            groups.setdefault((position, projection.topics), []).append(projection)
        applied = 0
        for (position, topics), members in groups.items():
            entries = read_entries(self.event_log, position, self.page_size, None, topics)
            if not entries:
                continue
            if self._apply_together(members, position, entries):
                applied += len(entries) * len(members)
                continue
            # One of them moved since the positions were read (another projector, a
            # rebuild's swap): nothing was written; each goes on from where it is now.
            for projection in members:
                if self._apply_together([projection], position, entries):
                    applied += len(entries)
                else:
                    applied += self.project_page(projection)
        return applied

    def catch_up(self) -> int:
        """Project until every projection has applied every event in the log now."""
        total = 0
        while applied := self.project_once():
            total += applied
        return total

    async def run_forever(
        self, stop: asyncio.Event, watch: LogWatch | None = None, *, batch_seconds: float = 0.0
    ) -> None:
        """Project until `stop` is set: whenever `watch` says the log grew, and at the latest
        every `watch.poll_seconds` (without a watch: every `poll_seconds`). After a change it
        waits `batch_seconds` more, so a burst of appends is projected in one pass: the read
        models may lag that much, and the projector's work grows with time, not with the
        number of commits. On a failure, log it, back off and retry the page."""
        watch = watch or LogWatch(self.poll_seconds)
        backoff = self.poll_seconds
        while not stop.is_set():
            seen = watch.changes  # taken before the read: a later append ends the wait below
            try:
                applied = await asyncio.to_thread(self.project_once)
                await asyncio.to_thread(self.retry_due)
                backoff = self.poll_seconds
            except Exception as exc:
                log.warning("projecting failed (%s); retrying in %.1fs", exc, backoff)
                log.debug("projection failure", exc_info=True)
                backoff = min(backoff * 2, 5.0)
                await _sleep_or_stop(stop, backoff)
                continue
            # Fewer than a page in all: every projection read up to the end of the log (a
            # page each), so there is nothing more until the watch says so.
            if applied < self.page_size:
                await watch.wait(seen, stop)
                await _sleep_or_stop(stop, batch_seconds)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    lag: int  # events of its topics in the log after `position`, not yet applied

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "position": self.position, "lag": self.lag}


def projection_status(
    event_log: EventLog, engine: Engine, projections: Sequence[Projection]
) -> tuple[int, list[ProjectionStatus]]:
    """The log's last position, and each projection's position and lag behind it."""
    statuses: list[ProjectionStatus] = []
    with engine.connect() as conn:
        for projection in projections:
            position = position_of(conn, projection) or 0
            # Counted, not subtracted: other streams (identity indexes, workloads) share the
            # log's positions, so a caught-up projection usually sits below the last one.
            lag = events_after(conn, event_log, projection.topics, position)
            statuses.append(ProjectionStatus(projection.name, position, lag))
    return event_log.max_position(), statuses


def events_after(
    conn: Connection,
    event_log: EventLog,
    topics: tuple[str, ...],
    position: int,
    until: int | None = None,
) -> int:
    """How many events of `topics` the log holds after `position` (and up to `until`): a
    range of its primary key."""
    recorder = event_log.recorder
    assert isinstance(recorder, SQLAlchemyApplicationRecorder)
    events = recorder.events_record_cls.__table__
    query = (
        select(func.count())
        .select_from(events)
        .where(events.c.id > position, events.c.topic.in_(topics))
    )
    if until is not None:
        query = query.where(events.c.id <= until)
    return int(conn.execute(query).scalar_one())


# --- rebuild ---------------------------------------------------------------------------

OnProgress = Callable[[int, int], None]


def rebuild(
    event_log: EventLog,
    engine: Engine,
    live: Projection,
    building: Projection,
    *,
    page_size: int = REBUILD_PAGE_SIZE,
    progress: OnProgress | None = None,
) -> int:
    """Replay the log from its start into `building` (the same projection, its tables
    named differently), then swap its tables in for `live`'s in one transaction. `live`
    keeps serving reads and being projected meanwhile. `progress(done, total)` is called
    after every page. Returns how many events were replayed."""
    _drop_tables(engine, building)
    try:
        with engine.begin() as conn:
            for table in building.metadata.sorted_tables:
                # Indexes other than the primary key come after the bulk load: cheaper.
                # (SQLite cannot rename an index, so there they are made in the swap.)
                conn.execute(CreateTable(table))
        projector = Projector(event_log, engine, [building], page_size=page_size)
        # Up to where the log ends now, then once more up to where it ends then: bounded,
        # so a rebuild finishes however fast events arrive. The live projector carries on
        # from the swapped-in position.
        target = event_log.max_position()
        with engine.connect() as conn:
            total = events_after(conn, event_log, live.topics, 0, target)
        done = 0
        while applied := projector.project_page(building, until=target):
            done += applied
            if progress is not None:
                progress(done, max(total, done))
        if engine.dialect.name != "sqlite":
            with engine.begin() as conn:
                for table in building.metadata.sorted_tables:
                    for index in table.indexes:
                        index.create(conn)
        target = event_log.max_position()
        while applied := projector.project_page(building, until=target):
            done += applied
        _swap(engine, live, building)
    except BaseException:
        _drop_tables(engine, building)
        raise
    if progress is not None:
        progress(done, done)
    log.info("rebuilt projection %s from %d events", live.name, done)
    return done


def _drop_tables(engine: Engine, projection: Projection) -> None:
    with engine.begin() as conn:
        for table in reversed(projection.metadata.sorted_tables):
            conn.execute(DropTable(table, if_exists=True))
        conn.execute(
            log_positions.delete().where(log_positions.c.follower == tracking_name(projection))
        )
        # What an abandoned build held guarded tables that are gone now.
        Quarantine(engine).close_stage(conn, projection_stage(projection.name), datetime.now(UTC))


def _swap(engine: Engine, live: Projection, building: Projection) -> None:
    """Put `building`'s tables (caught up to its position) in place of `live`'s, and move
    `live`'s position to that position, atomically."""
    quote = engine.dialect.identifier_preparer.quote
    _start_tracking(engine, live)
    with engine.begin() as conn:
        # The position first, as every projector transaction does: a live page in flight
        # finishes before the swap (its rows are dropped with the old table) or re-reads.
        built = position_of(conn, building) or 0
        conn.execute(
            update(log_positions)
            .where(log_positions.c.follower == tracking_name(live))
            .values(position=built)
        )
        pairs = zip(live.metadata.sorted_tables, building.metadata.sorted_tables, strict=True)
        for old, new in pairs:
            conn.execute(DropTable(old, if_exists=True))
            conn.execute(text(f"ALTER TABLE {quote(new.name)} RENAME TO {quote(old.name)}"))
            if engine.dialect.name == "sqlite":
                for index in old.indexes:
                    index.create(conn)
            else:
                for old_index, new_index in _index_pairs(old, new):
                    conn.execute(
                        text(f"ALTER INDEX {quote(new_index)} RENAME TO {quote(old_index)}")
                    )
        conn.execute(
            log_positions.delete().where(log_positions.c.follower == tracking_name(building))
        )
        # The built tables' held streams are held in the live ones now; what the replaced
        # tables held went with them.
        Quarantine(engine).rename_stage(
            conn, projection_stage(building.name), projection_stage(live.name), datetime.now(UTC)
        )


def _index_pairs(old: Table, new: Table) -> list[tuple[str, str]]:
    """(live name, building name) of each index, the primary key's included (PostgreSQL
    names its constraint after its index, and a name is unique in a schema)."""

    def key(index: Index) -> tuple[str, ...]:
        return tuple(column.name for column in index.columns)

    building = {key(index): str(index.name) for index in new.indexes}
    pairs = [(str(index.name), building[key(index)]) for index in old.indexes]
    if old.primary_key.name and new.primary_key.name:
        pairs.append((str(old.primary_key.name), str(new.primary_key.name)))
    return pairs
