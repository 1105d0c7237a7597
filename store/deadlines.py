"""The lead deadlines table (issue #19): the running timers of each lead as the decisions
activity last returned them to the workflow, so the lead page and the lists can say when the
reminder, the reclaim or the next nurture email will happen without asking Temporal.

Written in the same transaction as the decided events (`store.decisions`) and by the
delivery path's re-planning (`activities.decisions.plan_deliveries`), replaced whole per
lead. Each row carries the lead's stream length the set was decided at (`sequence`): a set
decided at an earlier point of the stream never replaces a later one, and a retried
activity writes the same set again. A projection of the workflow's own data, not a fact of
the lead: it is not on the log (docs/working-leads.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    func,
    select,
)
from sqlalchemy.engine import Connection

from domain.timers import RunningTimer

metadata = MetaData()

lead_deadlines = Table(
    "lead_deadlines",
    metadata,
    Column("lead_id", String(36), nullable=False),
    Column("timer_id", String(200), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("started_by", String(200), nullable=False),
    Column("step", Integer()),
    Column("ruleset_version", Integer()),
    Column("sequence", BigInteger(), nullable=False),
    # The key's first column serves the reads by lead.
    PrimaryKeyConstraint("lead_id", "timer_id", name="pk_lead_deadlines"),
    Index("ix_lead_deadlines_due_at", "due_at"),
)


@dataclass(frozen=True)
class Deadline:
    """One running timer of a lead and the ruleset version that planned it."""

    lead_id: str
    timer: RunningTimer
    ruleset_version: int | None
    sequence: int

    @property
    def due(self) -> datetime:
        return self.timer.due


def replace(
    conn: Connection,
    lead_id: str,
    timers: Mapping[str, RunningTimer],
    *,
    sequence: int,
    ruleset_version: int | None,
) -> bool:
    """Make `timers` the lead's deadlines, decided when its stream held `sequence` events;
    nothing changes (False) when the stored ones were decided later."""
    stored = conn.execute(
        select(func.max(lead_deadlines.c.sequence)).where(lead_deadlines.c.lead_id == lead_id)
    ).scalar_one()
    if stored is not None and stored > sequence:
        return False
    conn.execute(delete(lead_deadlines).where(lead_deadlines.c.lead_id == lead_id))
    if timers:
        conn.execute(
            lead_deadlines.insert(),
            [
                {
                    "lead_id": lead_id,
                    "timer_id": timer_id,
                    "due_at": timer.due.astimezone(UTC),
                    "started_by": timer.started_by,
                    "step": timer.step,
                    "ruleset_version": ruleset_version,
                    "sequence": sequence,
                }
                for timer_id, timer in timers.items()
            ],
        )
    return True


def _deadline(row: object) -> Deadline:
    due_at: datetime = row.due_at  # type: ignore[attr-defined]
    if due_at.tzinfo is None:  # SQLite gives back naive UTC
        due_at = due_at.replace(tzinfo=UTC)
    return Deadline(
        lead_id=row.lead_id,  # type: ignore[attr-defined]
        timer=RunningTimer(
            timer_id=row.timer_id,  # type: ignore[attr-defined]
            due_at=due_at.isoformat(),
            started_by=row.started_by,  # type: ignore[attr-defined]
            step=row.step,  # type: ignore[attr-defined]
        ),
        ruleset_version=row.ruleset_version,  # type: ignore[attr-defined]
        sequence=row.sequence,  # type: ignore[attr-defined]
    )


def deadlines_of(conn: Connection, lead_id: str) -> list[Deadline]:
    """The lead's deadlines, earliest first."""
    rows = conn.execute(
        select(lead_deadlines)
        .where(lead_deadlines.c.lead_id == lead_id)
        .order_by(lead_deadlines.c.due_at, lead_deadlines.c.timer_id)
    )
    return [_deadline(row) for row in rows]


def next_deadlines(conn: Connection, lead_ids: Collection[str]) -> dict[str, Deadline]:
    """Each of `lead_ids`' earliest deadline (leads without one are left out): for lists."""
    if not lead_ids:
        return {}
    rows = conn.execute(
        select(lead_deadlines)
        .where(lead_deadlines.c.lead_id.in_(list(lead_ids)))
        .order_by(lead_deadlines.c.lead_id, lead_deadlines.c.due_at, lead_deadlines.c.timer_id)
    )
    found: dict[str, Deadline] = {}
    for row in rows:
        found.setdefault(row.lead_id, _deadline(row))
    return found
