"""The quarantine: what failed for one lead, parked so that every other lead moves on.

Each stage of the flow that handles a lead's events on its own schedule — the delivery
of the log to workflows (`delivery`), each read model (`projection:<name>`) and the
lead's decisions (`decision`) — records here an event it could not handle, with the
error and how often it was tried. A follower then holds that stream's later events
(order per lead is kept) while every other stream goes on; it tries the stream again
with backoff (`retrying`) and, after `RetryPolicy.max_attempts` failures that are not
outages, parks it (`parked`) until an operator asks to `retry` or `skip` it
(`GET /v1/quarantine`, `leadflow quarantine`). Items are never deleted: a handled one is
`resolved` or `skipped`.

Followers change an item in the same transaction as the rows it guards (`Connection`
arguments), so a crash never leaves a held stream both applied and still held.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping

from domain.errors import Conflict, DomainError
from store.times import utc

RETRYING, PARKED = "retrying", "parked"
RETRY_REQUESTED, SKIP_REQUESTED = "retry_requested", "skip_requested"
RESOLVED, SKIPPED = "resolved", "skipped"
OPEN = (RETRYING, PARKED, RETRY_REQUESTED, SKIP_REQUESTED)
STATUSES = (*OPEN, RESOLVED, SKIPPED)

DELIVERY = "delivery"
DECISION = "decision"
PROJECTION_PREFIX = "projection:"

# An error's text is kept to this many characters: enough for a traceback's last lines.
MAX_ERROR_CHARS = 2000

metadata = MetaData()

quarantine = Table(
    "quarantine",
    metadata,
    Column("item_id", String(36), primary_key=True),
    Column("stage", String(120), nullable=False),
    # The log stream that failed: a lead's id, or a campaign's stream.
    Column("stream_id", String(36), nullable=False),
    Column("lead_id", String(36)),
    # Followers: the log position of the event that failed (the first one held).
    Column("position", BigInteger()),
    Column("event_id", String(200)),
    Column("event_type", String(100)),
    Column("sequence", Integer()),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("error", Text(), nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Index("ix_quarantine_stage_status", "stage", "status"),
    Index("ix_quarantine_lead", "lead_id"),
)


def projection_stage(name: str) -> str:
    return PROJECTION_PREFIX + name


class QuarantineItemNotFound(DomainError):
    code = "quarantine_item_not_found"


class QuarantineItemClosed(Conflict):
    code = "quarantine_item_closed"


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing stream is tried again on its own before it is parked: after
    `first_delay`, doubling up to `max_delay`; parked at the `max_attempts`-th failure
    that was not an outage (an outage — Temporal or the database away — is retried
    without end: it is nobody's event's fault)."""

    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=5)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure."""
        return min(self.first_delay * 2 ** max(attempts - 1, 0), self.max_delay)


@dataclass(frozen=True)
class FailedEvent:
    """The event a stage could not handle, and where it is in the log."""

    stream_id: str
    lead_id: str | None
    position: int | None
    event_id: str
    event_type: str
    sequence: int | None


@dataclass(frozen=True)
class QuarantineItem:
    item_id: str
    stage: str
    stream_id: str
    lead_id: str | None
    position: int | None
    event_id: str | None
    event_type: str | None
    sequence: int | None
    status: str
    attempts: int
    error: str
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime | None
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def as_json(self) -> dict[str, Any]:
        def time(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "item_id": self.item_id,
            "stage": self.stage,
            "lead_id": self.lead_id,
            "stream_id": self.stream_id,
            "position": self.position,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "sequence": self.sequence,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "first_failed_at": time(self.first_failed_at),
            "last_failed_at": time(self.last_failed_at),
            "next_attempt_at": time(self.next_attempt_at),
            "closed_at": time(self.closed_at),
        }


@dataclass(frozen=True)
class StageSummary:
    """What waits in the quarantine for one stage: open items by status, and the newest
    error among them (what an operator looks at first)."""

    open: dict[str, int]
    last_error: str | None
    last_failed_at: datetime | None

    @property
    def total(self) -> int:
        return sum(self.open.values())


def _item(row: RowMapping) -> QuarantineItem:
    values = dict(row)
    for name in ("first_failed_at", "last_failed_at", "next_attempt_at", "closed_at"):
        values[name] = utc(values[name])
    return QuarantineItem(**values)


def _error_text(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


class Quarantine:
    """The `quarantine` table."""

    def __init__(self, engine: Engine, policy: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or RetryPolicy()

    # -- what followers and workflows record ---------------------------------------------

    def open_items(self, conn: Connection, stage: str) -> dict[str, QuarantineItem]:
        """The stage's open items by stream: the streams it must hold."""
        rows = conn.execute(
            select(quarantine).where(quarantine.c.stage == stage, quarantine.c.status.in_(OPEN))
        ).mappings()
        return {row["stream_id"]: _item(row) for row in rows}

    def failed(
        self,
        conn: Connection,
        stage: str,
        event: FailedEvent,
        error: str,
        now: datetime,
        *,
        counted: bool = True,
        earlier: QuarantineItem | None = None,
    ) -> QuarantineItem:
        """Record that `event` failed at `stage`: a new item, or another failure of
        `earlier` (the stream's open item). `counted=False` for an outage: tried again
        later, never parked for it."""
        if earlier is None:
            attempts = 1 if counted else 0
            item_id = str(uuid.uuid4())
            first_failed_at = now
        else:
            attempts = earlier.attempts + (1 if counted else 0)
            item_id = earlier.item_id
            first_failed_at = earlier.first_failed_at
        parked = attempts >= self.policy.max_attempts
        values: dict[str, Any] = {
            "stage": stage,
            "stream_id": event.stream_id,
            "lead_id": event.lead_id,
            "position": event.position,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "sequence": event.sequence,
            "status": PARKED if parked else RETRYING,
            "attempts": attempts,
            "error": _error_text(error),
            "first_failed_at": first_failed_at,
            "last_failed_at": now,
            "next_attempt_at": None if parked else now + self.policy.delay(max(attempts, 1)),
            "closed_at": None,
        }
        if earlier is None:
            conn.execute(quarantine.insert().values(item_id=item_id, **values))
        else:
            conn.execute(update(quarantine).where(quarantine.c.item_id == item_id).values(**values))
        return QuarantineItem(item_id=item_id, **values)

    def park(
        self, stage: str, event: FailedEvent, error: str, attempts: int, now: datetime
    ) -> QuarantineItem:
        """Record an item that is parked at once (a decision the workflow gave up on, after
        its own retries). The stream's open item for the same event, if any (parked
        before, then retried by an operator), is parked again with the attempts added."""
        with self.engine.begin() as conn:
            found = (
                conn.execute(
                    select(quarantine).where(
                        quarantine.c.stage == stage,
                        quarantine.c.stream_id == event.stream_id,
                        quarantine.c.event_id == event.event_id,
                        quarantine.c.status.in_(OPEN),
                    )
                )
                .mappings()
                .first()
            )
            if found is not None:  # parked before, asked to retry, failed again
                item = _item(found)
                changes = {
                    "status": PARKED,
                    "attempts": item.attempts + attempts,
                    "error": _error_text(error),
                    "last_failed_at": now,
                }
                conn.execute(
                    update(quarantine).where(quarantine.c.item_id == item.item_id).values(**changes)
                )
                return QuarantineItem(**{**item.__dict__, **changes})
            item = QuarantineItem(
                item_id=str(uuid.uuid4()),
                stage=stage,
                stream_id=event.stream_id,
                lead_id=event.lead_id,
                position=event.position,
                event_id=event.event_id,
                event_type=event.event_type,
                sequence=event.sequence,
                status=PARKED,
                attempts=attempts,
                error=_error_text(error),
                first_failed_at=now,
                last_failed_at=now,
                next_attempt_at=None,
                closed_at=None,
            )
            conn.execute(quarantine.insert().values(**item.__dict__))
        return item

    def due(self, conn: Connection, stages: Collection[str], now: datetime) -> list[QuarantineItem]:
        """The items of `stages` to act on now, oldest first: retries whose time has come,
        and what an operator asked for. One query for every stage a follower serves."""
        rows = conn.execute(
            select(quarantine)
            .where(quarantine.c.stage.in_(stages), quarantine.c.status.in_(OPEN))
            .order_by(quarantine.c.first_failed_at)
        ).mappings()
        items = [_item(row) for row in rows]
        return [
            item
            for item in items
            if item.status in (RETRY_REQUESTED, SKIP_REQUESTED)
            or (
                item.status == RETRYING
                and item.next_attempt_at is not None
                and item.next_attempt_at <= now
            )
        ]

    def close(self, conn: Connection, item_id: str, status: str, now: datetime) -> None:
        """The item's stream was handled (`resolved`) or its event dropped (`skipped`)."""
        assert status in (RESOLVED, SKIPPED)
        conn.execute(
            update(quarantine)
            .where(quarantine.c.item_id == item_id)
            .values(status=status, closed_at=now, next_attempt_at=None)
        )

    def close_stage(self, conn: Connection, stage: str, now: datetime) -> None:
        """Close every open item of `stage`: what they guarded is gone (a read model's
        tables dropped)."""
        conn.execute(
            update(quarantine)
            .where(quarantine.c.stage == stage, quarantine.c.status.in_(OPEN))
            .values(status=RESOLVED, closed_at=now, next_attempt_at=None)
        )

    def rename_stage(self, conn: Connection, old: str, new: str, now: datetime) -> None:
        """Move open items from stage `old` to `new`, closing `new`'s open items (a rebuilt
        read model's items replace those of the tables it replaces)."""
        self.close_stage(conn, new, now)
        conn.execute(
            update(quarantine)
            .where(quarantine.c.stage == old, quarantine.c.status.in_(OPEN))
            .values(stage=new)
        )

    # -- what operators see and ask ------------------------------------------------------

    def get(self, item_id: str) -> QuarantineItem:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(quarantine).where(quarantine.c.item_id == item_id))
                .mappings()
                .first()
            )
        if row is None:
            raise QuarantineItemNotFound(f"no quarantine item {item_id}")
        return _item(row)

    def find(
        self,
        *,
        statuses: Sequence[str] = OPEN,
        stage: str | None = None,
        lead_id: str | None = None,
        limit: int = 100,
    ) -> list[QuarantineItem]:
        """Items with one of `statuses`, of `stage` and `lead_id` when given, oldest first."""
        query = select(quarantine).where(quarantine.c.status.in_(statuses))
        if stage is not None:
            query = query.where(quarantine.c.stage == stage)
        if lead_id is not None:
            query = query.where(quarantine.c.lead_id == lead_id)
        query = query.order_by(quarantine.c.first_failed_at, quarantine.c.item_id).limit(limit)
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query).mappings()]

    def forget_errors(self, lead_id: str) -> int:
        """Replace the error texts kept for a lead's items (an error may quote its data,
        e.g. a refused address) by `[erased]`; the items and their counts stay. How many."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(quarantine).where(quarantine.c.lead_id == lead_id).values(error="[erased]")
            )
        return int(changed.rowcount or 0)

    def counts(self) -> dict[str, int]:
        """How many items are open, by status (every open status, zeros included)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(quarantine.c.status, func.count())
                .where(quarantine.c.status.in_(OPEN))
                .group_by(quarantine.c.status)
            ).all()
        found = {status: int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in OPEN}

    def stages(self) -> dict[str, StageSummary]:
        """Per stage with open items: how many, by status, and the newest error among them."""
        open_items = quarantine.c.status.in_(OPEN)
        with self.engine.connect() as conn:
            counts = conn.execute(
                select(quarantine.c.stage, quarantine.c.status, func.count())
                .where(open_items)
                .group_by(quarantine.c.stage, quarantine.c.status)
            ).all()
            newest = (
                select(quarantine.c.stage, func.max(quarantine.c.last_failed_at).label("at"))
                .where(open_items)
                .group_by(quarantine.c.stage)
                .subquery()
            )
            errors = conn.execute(
                select(quarantine.c.stage, quarantine.c.error, quarantine.c.last_failed_at).join(
                    newest,
                    (quarantine.c.stage == newest.c.stage)
                    & (quarantine.c.last_failed_at == newest.c.at),
                )
            ).all()
        by_stage: dict[str, dict[str, int]] = {}
        for stage, status, count in counts:
            by_stage.setdefault(stage, dict.fromkeys(OPEN, 0))[status] = int(count)
        newest_error = {stage: (error, utc(at)) for stage, error, at in errors}
        return {
            stage: StageSummary(open, *newest_error.get(stage, (None, None)))
            for stage, open in by_stage.items()
        }

    def request(self, item_id: str, action: str) -> QuarantineItem:
        """An operator asks to `retry` or `skip` an open item; raises
        QuarantineItemNotFound, or QuarantineItemClosed when it was already handled."""
        status = {"retry": RETRY_REQUESTED, "skip": SKIP_REQUESTED}[action]
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(quarantine)
                .where(quarantine.c.item_id == item_id, quarantine.c.status.in_(OPEN))
                .values(status=status)
            )
        item = self.get(item_id)
        if changed.rowcount == 0:
            raise QuarantineItemClosed(f"quarantine item {item_id} is already {item.status}")
        return item

    def close_decision(self, item_id: str, status: str, now: datetime) -> None:
        """A parked decision was decided after all (`resolved`) or dropped (`skipped`)."""
        with self.engine.begin() as conn:
            self.close(conn, item_id, status, now)
