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

An event a read model cannot take holds only its own stream (the quarantine): the page is
applied again stream by stream, that stream is held from that event on, and retried on its
own (`retry_due`).

Several projectors (in several projector processes) share the log by partitions
(`store.partitions`, leased by `store.leases`): each keeps a position per read model and
partition it holds (`projection:<name>/<partition>`) and applies only its partitions'
streams. Every row of a read model belongs to one stream, so partitions never write the
same row. A projector's partitions at one position are read and committed together, as
read models are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from domain.personal import ERASED_TYPE
from projections.base import (
    LogEntry,
    Page,
    Projection,
    entries_of,
    failed_event,
    read_page,
    start_tracking,
    stream_of,
    tracking_name,
)
from store.faults import is_database_outage
from store.log import EventLog
from store.log_watch import QUARANTINE_CHECK_SECONDS, Every, LogWatch, follow
from store.partitions import Partitions, partition_of
from store.positions import log_positions, positions_or_start, worth_moving
from store.quarantine import (
    RESOLVED,
    SKIP_REQUESTED,
    SKIPPED,
    Quarantine,
    QuarantineItem,
    projection_stage,
)
from store.sealing import forget_overwritten_pages

log = logging.getLogger(__name__)

PAGE_SIZE = 1000

PROJECTED = Counter(
    "leadflow_projection_events",
    "Log events a read model has taken (a page at a time, held streams' events included)",
    ["projection"],
)


@dataclass(frozen=True)
class Member:
    """A read model in one partition of the log: what has a tracking position."""

    projection: Projection
    partition: int
    name: str  # its tracking position's


def _count_projected(members: Sequence[Member], entries: Sequence[LogEntry[Any]]) -> None:
    for projection in {member.projection.name for member in members}:
        PROJECTED.labels(projection).inc(len(entries))


def _move(conn: Connection, members: Sequence[Member], position: int, last: int) -> bool:
    """Move each member's position from `position` to `last` (compare-and-set), inside
    `conn`'s transaction; False, with the transaction rolled back, if one had moved."""
    # The positions' update comes first: it takes their row locks (PostgreSQL) or the
    # write lock (SQLite) before any table is touched, as a rebuild's swap does.
    moved = conn.execute(
        update(log_positions)
        .where(
            log_positions.c.follower.in_([member.name for member in members]),
            log_positions.c.position == position,
        )
        .values(position=last)
    )
    if moved.rowcount != len(members):
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
    """Keeps `projections` up to date with the log, a page at a time (in `partitions` of
    it: by default the whole log)."""

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
        quarantine_check_seconds: float = QUARANTINE_CHECK_SECONDS,
        partitions: Partitions | None = None,
    ) -> None:
        self.event_log = event_log
        self.engine = engine
        self.projections = list(projections)
        self.page_size = page_size
        self.poll_seconds = poll_seconds
        # Where an event a read model cannot take is recorded: the same database.
        self.quarantine = quarantine or Quarantine(engine)
        self.is_outage = is_outage
        self.quarantine_check_seconds = quarantine_check_seconds
        self.partitions = partitions or Partitions.whole()
        self.members = [
            self._member(projection, partition)
            for projection in self.projections
            for partition in sorted(self.partitions.held)
        ]
        self._tracked: set[str] = set()

    def _member(self, projection: Projection, partition: int) -> Member:
        name = self.partitions.tracking_name(tracking_name(projection), partition)
        return Member(projection, partition, name)

    def _track(self, member: Member) -> None:
        if member.name not in self._tracked:
            start_tracking(self.engine, member.name, tracking_name(member.projection))
            self._tracked.add(member.name)

    def _position(self, conn: Connection, member: Member) -> int:
        found = conn.execute(
            select(log_positions.c.position).where(log_positions.c.follower == member.name)
        ).scalar_one()
        return int(found)

    def project_page(self, projection: Projection, until: int | None = None) -> int:
        """Apply the next page of events (up to log position `until`) to `projection` (the
        whole log); returns how many it applied (0: it is caught up)."""
        return self._project_page(self._member(projection, 0), until)

    def _project_page(self, member: Member, until: int | None = None) -> int:
        self._track(member)
        while True:
            with self.engine.connect() as conn:
                position = self._position(conn, member)
            page = self._read([member], position, until)
            if not worth_moving(position, len(page.entries), page.last):
                return 0
            if self._apply_together([member], position, page):
                return len(page.entries)
            # Its position moved while the page was read (another projector, a rebuild's
            # swap): nothing was written; read again from where it is now.
            log.info("projection %s moved on from %d; reading again", member.name, position)

    def _read(self, members: Sequence[Member], position: int, until: int | None = None) -> Page:
        """The next page after `position` of `members`' topics (they share them) in their
        partitions."""
        partitions = None
        if not self.partitions.is_whole:
            partitions = Partitions.of(self.partitions.count, {m.partition for m in members})
        topics = members[0].projection.topics
        return read_page(self.event_log, position, self.page_size, until, topics, partitions)

    def _apply_together(self, members: Sequence[Member], position: int, page: Page) -> bool:
        """Apply `page` to every one of `members` (all at `position`) in one transaction;
        False, with nothing written, if any member's position moved."""
        entries, last = page.entries, page.last
        with self.engine.connect() as conn:
            if not _move(conn, members, position, last):
                return False
            if not entries:  # only other partitions' events: the positions move past them
                conn.commit()
                return True
            shares = self._shares(members, entries)
            held = self._held(conn, shares)
            try:
                for projection, share in shares.items():
                    if share:
                        projection.apply(conn, _unheld(share, held[projection.name]))
            except Exception as error:
                if self.is_outage(error):
                    raise
                # An event some read model cannot take: nothing of the page is kept, and it
                # is applied again stream by stream, that event's stream held back.
                conn.rollback()
                log.warning("projecting a page failed (%s); isolating the stream", error)
                return self._apply_isolating(members, position, page)
            conn.commit()
        _count_projected(members, entries)
        self._after_erasures(entries)
        log.debug("%d projection(s): %d events up to %d", len(shares), len(entries), last)
        return True

    def _shares(
        self, members: Sequence[Member], entries: list[LogEntry[Any]]
    ) -> dict[Projection, list[LogEntry[Any]]]:
        """Each projection among `members` and the entries of its members' partitions."""
        partitions: dict[Projection, set[int]] = {}
        for member in members:
            partitions.setdefault(member.projection, set()).add(member.partition)
        count = self.partitions.count
        if count == 1 or len({frozenset(wanted) for wanted in partitions.values()}) == 1:
            # The page holds only these partitions' events (`_read`).
            return {projection: entries for projection in partitions}
        of = [partition_of(stream_of(entry), count) for entry in entries]
        return {
            projection: [entry for entry, p in zip(entries, of, strict=True) if p in wanted]
            for projection, wanted in partitions.items()
        }

    def _held(
        self, conn: Connection, projections: Iterable[Projection]
    ) -> dict[str, dict[str, QuarantineItem]]:
        """Each projection's streams held in quarantine, by stream."""
        return {
            projection.name: self.quarantine.open_items(conn, projection_stage(projection.name))
            for projection in projections
        }

    def _apply_isolating(self, members: Sequence[Member], position: int, page: Page) -> bool:
        """`_apply_together`, one stream at a time: a stream whose event a member cannot
        take is recorded in the quarantine (in the same transaction) and held from that
        event on; every other stream is applied. When a projection fails on every stream
        of the page, the fault is its own (a bug, a missing table), not a lead's: that
        error is raised and nothing is written, as before isolation."""
        entries, last = page.entries, page.last
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            if not _move(conn, members, position, last):
                return False
            shares = self._shares(members, entries)
            held = self._held(conn, shares)
            for projection, share in shares.items():
                streams: dict[str, list[LogEntry[Any]]] = {}
                for entry in _unheld(share, held[projection.name]):
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
        _count_projected(members, entries)
        self._after_erasures(entries)
        return True

    def _after_erasures(self, entries: Sequence[LogEntry[Any]]) -> None:
        """Once a page that blanked an erased lead's rows is committed, no copy of the
        rows as they were may stay in SQLite's write-ahead log (docs/erasure.md)."""
        if any(getattr(entry.event, "type", None) == ERASED_TYPE for entry in entries):
            forget_overwritten_pages(self.engine)

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
            failed_event(entry),
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
            extra={"lead_id": item.lead_id} if item.lead_id else None,
        )
        return item

    def retry_due(self) -> int:
        """Apply again, in order, the held events of each stream (of this projector's
        partitions) whose retry is due (or that an operator asked to retry or skip);
        returns how many streams were tried."""
        by_stage = {projection_stage(p.name): p for p in self.projections}
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            due = self.quarantine.due(conn, by_stage, now)
        mine = [item for item in due if self.partitions.holds(item.stream_id)]
        for item in mine:
            self._retry(by_stage[item.stage], item, now)
        return len(mine)

    def _retry(self, projection: Projection, item: QuarantineItem, now: datetime) -> None:
        assert item.position is not None
        skip = item.status == SKIP_REQUESTED
        count = self.partitions.count
        member = self._member(projection, partition_of(item.stream_id, count))
        self._track(member)
        with self.engine.connect() as conn:
            # Taking the position's lock first, as every page does: no page of this
            # projection commits between reading the held events and applying them.
            up_to = self._position(conn, member)
            if not _move(conn, [member], up_to, up_to):
                return
            notifications = self.event_log.stream_notifications(
                UUID(item.stream_id), item.position, up_to, projection.topics
            )
            held = entries_of(self.event_log, notifications)
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
        """One page for each projection (in each partition); returns how many events were
        applied in all.

        Projections (and partitions) at the same position that read the same topics (the
        read models of lead events, once caught up) share one read of the page and one
        transaction: reading and decoding the log, and committing, cost more than most
        `apply`s."""
        for member in self.members:
            self._track(member)
        with self.engine.connect() as conn:
            # Every member is tracked (just above): none falls back to a start.
            positions = positions_or_start(conn, [m.name for m in self.members], None)
        groups: dict[tuple[int, tuple[str, ...]], list[Member]] = {}
        for member, position in zip(self.members, positions, strict=True):
            groups.setdefault((position, member.projection.topics), []).append(member)
        applied = 0
        for (position, _), members in groups.items():
            page = self._read(members, position)
            if not worth_moving(position, len(page.entries), page.last):
                continue
            if self._apply_together(members, position, page):
                applied += len(page.entries) * len({member.projection for member in members})
                continue
            # One of them moved since the positions were read (another projector, a
            # rebuild's swap): nothing was written; each goes on from where it is now.
            for member in members:
                if self._apply_together([member], position, self._read([member], position)):
                    applied += len(page.entries)
                else:
                    applied += self._project_page(member)
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
        number of commits. An outage is retried with backoff (`store.log_watch.follow`).
        Held streams whose retry is due are looked for every `quarantine_check_seconds`."""
        check_quarantine = Every(self.quarantine_check_seconds)

        async def step() -> int:
            applied = await asyncio.to_thread(self.project_once)
            if check_quarantine():
                await asyncio.to_thread(self.retry_due)
            # Fewer than a page in all: every projection read up to the end of the log (a
            # page each), so there is nothing more until the watch says so.
            return applied

        await follow(
            step,
            stop,
            watch or LogWatch(self.poll_seconds),
            page_size=self.page_size,
            what="projecting",
            batch_seconds=batch_seconds,
        )
