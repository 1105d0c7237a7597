"""What every read model shares: the log's entries as read models see them (a lead's event
or a campaign's spend, with its position), the `Projection` protocol and its table base,
tracking positions, and how far behind the log each one is."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import MetaData, Table, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from domain.identity import campaign_id_for
from domain.lead import LEAD_EVENT_CLASSES, Campaign
from domain.state import LoggedEvent
from store.application import recorder_of
from store.log import EventLog
from store.partitions import Partitions
from store.positions import log_positions, positions_or_start, tracked_positions
from store.quarantine import (
    FailedEvent,
)

log = logging.getLogger(__name__)

# Every event of a lead's stream, posted and decided.
LEAD_TOPICS: tuple[str, ...] = tuple(get_topic(cls) for cls in LEAD_EVENT_CLASSES)
# A campaign's spend records: the one kind of event that belongs to no lead.
SPEND_TOPICS: tuple[str, ...] = (get_topic(Campaign.SpendRecorded),)
SPEND_TYPE = Campaign.SpendRecorded.TYPE


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


@dataclass(frozen=True)
class Page:
    """Events read after a position, and the position read through (`EventLog.read_through`:
    past other partitions' events too)."""

    entries: list[LogEntry[Any]]
    last: int


def read_page(
    event_log: EventLog,
    position: int,
    limit: int,
    until: int | None = None,
    topics: tuple[str, ...] = LEAD_TOPICS,
    partitions: Partitions | None = None,
) -> Page:
    """Up to `limit` events of `topics` (of `partitions`' streams) after log `position` and
    up to `until`, in log order."""
    notifications, last = event_log.read_through(position, limit, topics, until, partitions)
    return Page(entries_of(event_log, notifications), last)


def entries_of(event_log: EventLog, notifications: Sequence[Notification]) -> list[LogEntry[Any]]:
    decoder = event_log.logged_event_decoder
    decoder.load_keys(notifications)
    decode = decoder.decode
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


def failed_event(entry: LogEntry[Any]) -> FailedEvent:
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
    """The projection's tracking position (its slowest partition's, when the log is
    followed in partitions), None if it was never started."""
    positions = tracked_positions(conn, tracking_name(projection))
    if len(positions) > 1:
        positions.pop(None, None)  # what the partitions started from
    return min(positions.values()) if positions else None


def start_tracking(engine: Engine, name: str, starting_from: str | None = None) -> None:
    """A tracking position `name`, if there is none: `starting_from`'s position (the whole
    log's, for a partition's), else 0."""
    with engine.connect() as conn:
        exists = conn.execute(
            select(log_positions.c.follower).where(log_positions.c.follower == name)
        ).first()
        if exists is not None:
            return
        start = positions_or_start(conn, [name], starting_from)[0]
    # Another projector may start tracking it at the same moment: either row will do.
    with contextlib.suppress(IntegrityError), engine.begin() as conn:
        conn.execute(log_positions.insert().values(follower=name, position=start))


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int  # its slowest partition's
    lag: int  # events of its topics in the log after its positions, not yet applied

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "position": self.position, "lag": self.lag}


def projection_status(
    event_log: EventLog, engine: Engine, projections: Sequence[Projection], partitions: int
) -> tuple[int, list[ProjectionStatus]]:
    """The log's last position, and each projection's position and lag behind it (the log
    followed in `partitions`)."""
    statuses: list[ProjectionStatus] = []
    counted: Counted = {}
    with engine.connect() as conn:
        for projection in projections:
            lags = partition_lags(
                conn, event_log, tracking_name(projection), projection.topics, partitions, counted
            )
            statuses.append(ProjectionStatus(projection.name, *slowest_and_behind(lags)))
    return event_log.max_position(), statuses


@dataclass(frozen=True)
class PartitionLag:
    position: int
    events: int  # events of the follower's topics in its partition after `position`


def slowest_and_behind(lags: dict[int, PartitionLag]) -> tuple[int, int]:
    """A follower's lags folded: its slowest partition's position, and the events it has
    still to read in all of them."""
    return min(lag.position for lag in lags.values()), sum(lag.events for lag in lags.values())


Counted = dict[tuple[tuple[str, ...], int, int], int]


def partition_lags(
    conn: Connection,
    event_log: EventLog,
    follower: str,
    topics: tuple[str, ...],
    count: int,
    counted: Counted | None = None,
) -> dict[int, PartitionLag]:
    """`follower`'s position and lag in each of `count` partitions of the log (where it has
    not started on a partition: the whole log's position it will start from). `counted`
    keeps the counts made, for the next follower at the same positions."""
    tracked = tracked_positions(conn, follower)
    whole = tracked.get(None, 0)
    counted = {} if counted is None else counted
    lags: dict[int, PartitionLag] = {}
    for partition in range(count):
        position = whole if count == 1 else tracked.get(partition, whole)
        key = (topics, position, partition)
        if key not in counted:
            # Counted, not subtracted: other streams (identity indexes, workloads) share the
            # log's positions, so a caught-up follower may sit below the last one.
            only = Partitions.one_of(count, partition)
            counted[key] = events_after(conn, event_log, topics, position, partitions=only)
        lags[partition] = PartitionLag(position, counted[key])
    return lags


def events_after(
    conn: Connection,
    event_log: EventLog,
    topics: tuple[str, ...],
    position: int,
    until: int | None = None,
    partitions: Partitions | None = None,
) -> int:
    """How many events of `topics` (of `partitions`' streams) the log holds after
    `position` (and up to `until`): a range of its primary key."""
    recorder = recorder_of(event_log)
    events = recorder.events_record_cls.__table__
    query = (
        select(func.count())
        .select_from(events)
        .where(events.c.id > position, events.c.topic.in_(topics))
    )
    if until is not None:
        query = query.where(events.c.id <= until)
    if partitions is not None and not partitions.is_everything:
        query = query.where(recorder.in_partitions(partitions))
    return int(conn.execute(query).scalar_one())
