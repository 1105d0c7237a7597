"""The `assignments` read model: who held each lead, from when to when, how it ended, and
what they did with it; and `follow_ups`, every follow-up logged (docs/analytics.md).

One projection keeps both tables because a follow-up is measured against the assignment
it answered (seconds since it began) and an assignment's counters come from its
follow-ups: kept apart, each would have to read the other's table, which may lag.

An assignment begins with `lead.assigned` (a rule), `lead.claimed` (from the pool) or
`lead.reassigned` (a manual override), and ends with the next of those (`reassigned`),
`lead.released` (`released`: the rep gave it back) or `lead.returned_to_pool`
(`reclaimed`: a rule took it back). Winning or losing a lead does not end it.

Response times run on leadflow's clock, as SLA timers do: from `received_at`, when leadflow
received the lead or the hand-over (a rule's assignment is decided at the receipt of its
trigger, e.g. the capture's `recorded_at`; a claim or reassignment counts from its own
`recorded_at`, never from the `occurred_at` a client gave it), to the follow-up's
`occurred_at`. A follow-up dated before that (back-filled history) answered at once: 0 s,
never negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from domain.state import LoggedEvent
from projections.base import LogEntry, TableProjection
from store.times import utc

NAME = "assignments"
FOLLOW_UPS = "follow_ups"
# The timer whose firing before a follow-up means the first-follow-up SLA was missed.
SLA_TIMER = "first_follow_up"

_STARTS = {"lead.assigned": "assigned", "lead.claimed": "claimed", "lead.reassigned": "reassigned"}
_ENDS = {"lead.released": "released", "lead.returned_to_pool": "reclaimed"}


def assignments_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `assignments` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("lead_id", String(36), nullable=False),
        Column("sequence", Integer(), nullable=False),
        Column("owner", String(), nullable=False),
        Column("team", String()),
        Column("how", String(), nullable=False),
        Column("strategy", String()),
        Column("rule_id", String()),
        Column("ruleset_version", Integer()),
        Column("assigned_at", DateTime(timezone=True), nullable=False),
        # When leadflow received the lead or the hand-over: where response times start.
        # Null only in rows from before migration 0008 that a rebuild has not refolded.
        Column("received_at", DateTime(timezone=True)),
        Column("ended_at", DateTime(timezone=True)),
        Column("ended_how", String()),
        Column("end_reason", String()),
        Column("ended_by_rule", String()),
        Column("first_follow_up_at", DateTime(timezone=True)),
        Column("first_response_seconds", Numeric(asdecimal=False)),
        Column("followups_count", Integer(), nullable=False),
        Column("sla_missed_at", DateTime(timezone=True)),
        Column("won_at", DateTime(timezone=True)),
        Column("won_amount", Numeric(asdecimal=False)),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("lead_id", "sequence", name=f"pk_{name}"),
        Index(f"ix_{name}_owner_assigned_at", "owner", "assigned_at"),
        Index(f"ix_{name}_team_assigned_at", "team", "assigned_at"),
        Index(f"ix_{name}_won_at", "won_at"),
    )


def follow_ups_table(metadata: MetaData, name: str = FOLLOW_UPS) -> Table:
    """The `follow_ups` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("lead_id", String(36), nullable=False),
        Column("sequence", Integer(), nullable=False),
        Column("rep_id", String(), nullable=False),
        Column("kind", String()),
        Column("followed_up_at", DateTime(timezone=True), nullable=False),
        Column("is_first", Boolean(), nullable=False),
        Column("assignment_sequence", Integer()),
        Column("seconds_since_assignment", Numeric(asdecimal=False)),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("lead_id", "sequence", name=f"pk_{name}"),
        Index(f"ix_{name}_rep_id_followed_up_at", "rep_id", "followed_up_at"),
        Index(f"ix_{name}_followed_up_at", "followed_up_at"),
    )


@dataclass
class _Lead:
    """What the page needs of one lead: its open assignment, its latest one, whether it was
    ever followed up; and which assignment rows the page created or changed."""

    open: dict[str, Any] | None = None
    latest: dict[str, Any] | None = None
    followed_up: bool = False
    changed: list[dict[str, Any]] = field(default_factory=list)


class AssignmentsProjection(TableProjection):
    """Keeps `assignments` and `follow_ups`; `suffix` names copies of them (a rebuild
    builds into those)."""

    table_name = NAME
    make_table = staticmethod(assignments_table)

    def __init__(self, suffix: str = "") -> None:
        super().__init__(suffix)
        self.follow_ups = follow_ups_table(self.metadata, FOLLOW_UPS + suffix)

    def apply(self, conn: Connection, entries: Sequence[LogEntry[LoggedEvent]]) -> None:
        wanted = {"lead.followed_up", "lead.timer_fired", "lead.won", *_STARTS, *_ENDS}
        page = [entry for entry in entries if entry.event.type in wanted]
        if not page:
            return
        leads = self._load(conn, list(dict.fromkeys(entry.event.lead_id for entry in page)))
        created: list[dict[str, Any]] = []
        follow_ups: list[dict[str, Any]] = []
        for entry in page:
            event, lead = entry.event, leads[entry.event.lead_id]
            at = _utc(event.occurred_at)
            if (event.type in _STARTS or event.type in _ENDS) and lead.open is not None:
                _end(lead, event, at, _ENDS.get(event.type, "reassigned"))
            if event.type in _STARTS:
                row = _start(event, entry.position, at, _received(event), lead.latest)
                created.append(row)
                lead.open = lead.latest = row
            elif event.type == "lead.followed_up":
                follow_ups.append(_follow_up(event, entry.position, at, lead))
                lead.followed_up = True
            elif event.type == "lead.timer_fired" and lead.open is not None:
                # The SLA is missed when its timer fires before the assignment's first
                # follow-up (the follow-up cancels it; a late firing after one is moot).
                open_ = lead.open
                missed = open_["first_follow_up_at"] is None and open_["sla_missed_at"] is None
                if event.data.get("timer") == SLA_TIMER and missed:
                    _change(lead, open_, sla_missed_at=at)
            elif event.type == "lead.won" and lead.open is not None:
                amount = event.data.get("amount")
                won_amount = None if amount is None else Decimal(str(amount))
                _change(lead, lead.open, won_at=at, won_amount=won_amount)
        if created:
            columns = self.table.c.keys()
            conn.execute(insert(self.table), [{c: row[c] for c in columns} for row in created])
        changed = [
            row
            for lead in leads.values()
            for row in {id(r): r for r in lead.changed}.values()
            if not row["_new"]
        ]
        if changed:
            table = self.table
            conn.execute(
                update(table).where(
                    and_(
                        table.c.lead_id == bindparam("key_lead_id"),
                        table.c.sequence == bindparam("key_sequence"),
                    )
                ),
                [_update_params(row) for row in changed],
            )
        if follow_ups:
            conn.execute(insert(self.follow_ups), follow_ups)

    def _load(self, conn: Connection, lead_ids: list[str]) -> dict[str, _Lead]:
        table = self.table
        leads = {lead_id: _Lead() for lead_id in lead_ids}
        found = conn.execute(
            select(table).where(table.c.lead_id.in_(lead_ids)).order_by(table.c.sequence)
        ).mappings()
        for stored in found:
            row = {**stored, "_new": False}
            lead = leads[row["lead_id"]]
            lead.latest = row
            if row["ended_at"] is None:
                lead.open = row
        seen = conn.execute(
            select(self.follow_ups.c.lead_id)
            .where(self.follow_ups.c.lead_id.in_(lead_ids))
            .distinct()
        ).scalars()
        for lead_id in seen:
            leads[lead_id].followed_up = True
        return leads


def _received(event: LoggedEvent) -> datetime:
    """When leadflow received the hand-over `event` starts: a decision is made at its
    trigger's receipt (its `occurred_at`); a posted event's receipt is its `recorded_at`."""
    return _utc(event.occurred_at if event.type == "lead.assigned" else event.recorded_at)


def _start(
    event: LoggedEvent,
    position: int,
    at: datetime,
    received: datetime,
    latest: dict[str, Any] | None,
) -> dict[str, Any]:
    d = event.data
    if event.type == "lead.assigned":
        owner, team = d.get("owner"), d.get("team")
    else:
        # A claim or a manual reassignment names only the rep; the lead stays with the team
        # its last assignment named, as the lead's own `team` does.
        owner, team = d["rep_id"], latest["team"] if latest is not None else None
    return {
        "lead_id": event.lead_id,
        "sequence": event.sequence,
        "owner": owner,
        "team": team,
        "how": _STARTS[event.type],
        "strategy": d.get("strategy"),
        "rule_id": event.rule_id,
        "ruleset_version": event.ruleset_version,
        "assigned_at": at,
        "received_at": received,
        "ended_at": None,
        "ended_how": None,
        "end_reason": None,
        "ended_by_rule": None,
        "first_follow_up_at": None,
        "first_response_seconds": None,
        "followups_count": 0,
        "sla_missed_at": None,
        "won_at": None,
        "won_amount": None,
        "position": position,
        "_new": True,
    }


def _end(lead: _Lead, event: LoggedEvent, at: datetime, how: str) -> None:
    assert lead.open is not None
    reason = event.data.get("reason")
    _change(lead, lead.open, ended_at=at, ended_how=how, end_reason=reason)
    lead.open["ended_by_rule"] = event.rule_id
    lead.open = None


def _follow_up(event: LoggedEvent, position: int, at: datetime, lead: _Lead) -> dict[str, Any]:
    answered = lead.open
    since = None
    if answered is not None:
        # Never negative: a back-filled follow-up (an import, history posted late) may
        # have happened before leadflow received the lead and assigned it; it answered
        # the lead at once (docs/imports.md).
        clock = answered["received_at"] or answered["assigned_at"]
        since = max(0.0, (at - utc(clock)).total_seconds())
        changes: dict[str, Any] = {"followups_count": answered["followups_count"] + 1}
        if answered["first_follow_up_at"] is None:
            changes.update(first_follow_up_at=at, first_response_seconds=since)
        _change(lead, answered, **changes)
    return {
        "lead_id": event.lead_id,
        "sequence": event.sequence,
        "rep_id": event.data["rep_id"],
        "kind": event.data.get("kind"),
        "followed_up_at": at,
        "is_first": not lead.followed_up,
        "assignment_sequence": None if answered is None else answered["sequence"],
        "seconds_since_assignment": since,
        "position": position,
    }


def _change(lead: _Lead, row: dict[str, Any], **values: Any) -> None:
    row.update(values)
    lead.changed.append(row)


_MUTABLE = (
    "ended_at",
    "ended_how",
    "end_reason",
    "ended_by_rule",
    "first_follow_up_at",
    "first_response_seconds",
    "followups_count",
    "sla_missed_at",
    "won_at",
    "won_amount",
)


def _update_params(row: dict[str, Any]) -> dict[str, Any]:
    params = {name: row[name] for name in _MUTABLE}
    params["key_lead_id"] = row["lead_id"]
    params["key_sequence"] = row["sequence"]
    return params


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)
