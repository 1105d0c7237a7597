"""Shadow decisions: what a version on trial decided beside the version that really decided,
one row per (trigger, other version), and the trial report read from them.

Measurements, not facts of a lead: they are not on the lead's stream (a lead's stream is
what happened to it, and folding it must never see what did not happen), so they live in a
table of their own, written in the same transaction as the real decisions' append (a
retried activity finds the row, as it finds the decisions) (docs/trials.md).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

# Example lead ids kept per row of the report.
EXAMPLES = 5
MAX_ERROR_CHARS = 2000

metadata = MetaData()

shadow_decisions = Table(
    "shadow_decisions",
    metadata,
    Column("cause_id", String(200), primary_key=True),
    Column("other_version", Integer(), primary_key=True),
    Column("lead_id", String(36), nullable=False),
    Column("trigger", String(120), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("mode", String(10), nullable=False),
    Column("version_used", Integer()),
    Column("agrees", Boolean(), nullable=False),
    # JSON lists of facts (`domain.trials.decision_facts`).
    Column("used_decisions", Text(), nullable=False),
    Column("other_decisions", Text(), nullable=False),
    # JSON lists of the rule ids that decided under each version.
    Column("used_rules", Text(), nullable=False),
    Column("other_rules", Text(), nullable=False),
    # Why the other version's evaluation failed (its decisions are then empty).
    Column("error", Text()),
    Index("ix_shadow_decisions_version", "other_version", "decided_at"),
    Index("ix_shadow_decisions_used", "version_used", "decided_at"),
)


@dataclass(frozen=True)
class ShadowDecision:
    lead_id: str
    cause_id: str
    trigger: str
    decided_at: datetime
    mode: str
    version_used: int | None
    other_version: int
    used_decisions: list[dict[str, Any]]
    other_decisions: list[dict[str, Any]]
    used_rules: list[str]
    other_rules: list[str]
    agrees: bool
    error: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "cause_id": self.cause_id,
            "other_version": self.other_version,
            "lead_id": self.lead_id,
            "trigger": self.trigger,
            "decided_at": self.decided_at.astimezone(UTC),
            "mode": self.mode,
            "version_used": self.version_used,
            "agrees": self.agrees,
            "used_decisions": json.dumps(self.used_decisions, default=str),
            "other_decisions": json.dumps(self.other_decisions, default=str),
            "used_rules": json.dumps(self.used_rules),
            "other_rules": json.dumps(self.other_rules),
            "error": None if self.error is None else self.error[:MAX_ERROR_CHARS],
        }


_checked: set[int] = set()


def record(connection: Connection, rows: list[ShadowDecision]) -> None:
    """Insert `rows` in the caller's transaction; a row already there (a retry) is kept."""
    if not rows:
        return
    engine_key = id(connection.engine)
    if engine_key not in _checked:
        # Migrations make the table (0007); a log opened on its own (a test's, a bench's)
        # makes it as the library makes its own tables.
        metadata.create_all(connection, checkfirst=True)
        _checked.add(engine_key)
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        insert(shadow_decisions).values([r.row() for r in rows]).on_conflict_do_nothing()
    )


def rows_for(
    connection: Connection,
    version: int,
    since: datetime | None = None,
    until: datetime | None = None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Every row that compares `version` with another: as the shadow (`other_version`) or as
    the canary that decided (`version_used`, mode canary), decided in [since, until); with
    `mode`, only as that."""
    table = shadow_decisions
    as_shadow = and_(table.c.other_version == version, table.c.mode == "shadow")
    as_canary = and_(table.c.version_used == version, table.c.mode == "canary")
    wanted = {"shadow": as_shadow, "canary": as_canary}.get(mode or "", as_shadow | as_canary)
    query = select(table).where(wanted)
    if since is not None:
        query = query.where(table.c.decided_at >= since.astimezone(UTC))
    if until is not None:
        query = query.where(table.c.decided_at < until.astimezone(UTC))
    return [dict(row) for row in connection.execute(query.order_by(table.c.decided_at)).mappings()]


def _assignment(facts: list[dict[str, Any]]) -> tuple[str | None, str | None] | None:
    """(owner, team) of the trigger's last assignment, ("(pool)", None) for a return to the
    pool, None when it neither assigned nor pooled."""
    outcome: tuple[str | None, str | None] | None = None
    for fact in facts:
        if fact["type"] == "lead.assigned":
            outcome = (fact.get("owner"), fact.get("team"))
        elif fact["type"] == "lead.returned_to_pool":
            outcome = ("(pool)", None)
    return outcome


def _kinds(facts: list[dict[str, Any]], kind: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for fact in facts:
        if fact["type"] == kind:
            if kind == "lead.returned_to_pool":
                counts[str(fact.get("reason"))] += 1
            else:
                counts[f"{fact.get('to')}: {fact.get('template')}"] += 1
    return counts


def trial_report(rows: list[dict[str, Any]], version: int) -> dict[str, Any]:
    """What `version` changed, read from its rows: triggers compared, agreeing and not;
    disagreements by trigger and by rule; assignment moves (from the deciding version's
    owner to the trial version's) with example leads; pool returns and notifications the
    trial version gains or loses; evaluations that failed."""
    by_trigger: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    moves: dict[tuple[str | None, str | None], list[str]] = {}
    pool: dict[str, list[int]] = {}
    notes: dict[str, list[int]] = {}
    failures = 0
    agreeing = 0
    leads: set[str] = set()
    for row in rows:
        leads.add(row["lead_id"])
        used = json.loads(row["used_decisions"])
        other = json.loads(row["other_decisions"])
        # Seen from the trial version: "before" is what the version it is compared with
        # decided, "after" what the trial version decided (or would have).
        if row["mode"] == "canary":
            before, after = other, used
            before_rules, after_rules = (
                json.loads(row["other_rules"]),
                json.loads(row["used_rules"]),
            )
        else:
            before, after = used, other
            before_rules, after_rules = (
                json.loads(row["used_rules"]),
                json.loads(row["other_rules"]),
            )
        if row["error"]:
            failures += 1
        if row["agrees"]:
            agreeing += 1
            continue
        by_trigger[row["trigger"]] += 1
        for rule in sorted(set(before_rules) ^ set(after_rules)) or ["(same rules)"]:
            by_rule[rule] += 1
        was, becomes = _assignment(before), _assignment(after)
        if was != becomes:
            key = (was[0] if was else None, becomes[0] if becomes else None)
            moves.setdefault(key, []).append(row["lead_id"])
        for kind, into in (("lead.returned_to_pool", pool), ("notification.queued", notes)):
            b, a = _kinds(before, kind), _kinds(after, kind)
            for name in b.keys() | a.keys():
                counted = into.setdefault(name, [0, 0])
                counted[0] += b[name]
                counted[1] += a[name]
    compared = len(rows)
    return {
        "version": version,
        "triggers_compared": compared,
        "agreeing": agreeing,
        "disagreeing": compared - agreeing,
        "failures": failures,
        "leads": len(leads),
        "by_trigger": [{"trigger": t, "count": n} for t, n in sorted(by_trigger.items())],
        "by_rule": [{"rule_id": r, "count": n} for r, n in sorted(by_rule.items())],
        "assignment_moves": [
            {
                "from_owner": from_owner,
                "to_owner": to_owner,
                "count": len(lead_ids),
                "example_lead_ids": list(dict.fromkeys(lead_ids))[:EXAMPLES],
            }
            for (from_owner, to_owner), lead_ids in sorted(
                moves.items(), key=lambda item: (-len(item[1]), str(item[0]))
            )
        ],
        "pool_returns": _gained_lost(pool, "reason"),
        "notifications": _gained_lost(notes, "notification"),
    }


def _gained_lost(counts: dict[str, list[int]], name: str) -> list[dict[str, Any]]:
    return [
        {name: key, "before": before, "after": after, "change": after - before}
        for key, (before, after) in sorted(counts.items())
        if before != after
    ]
