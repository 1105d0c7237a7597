"""The `lead_stages` read model: every stage each lead entered, and when (docs/analytics.md).

A lead's first capture enters `new`; `lead.qualified`, `lead.stage_changed`,
`lead.opportunity_opened`, `lead.won` and `lead.lost` enter the stage they move the lead
to, by the same forward-only rule as the lead's state (`domain.state`). A stage is
entered once: an event that leaves the stage as it is adds no row. Stages a lead jumped
over (won straight from new) have no row; the funnel counts them as passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.engine import Connection

from domain.state import STAGE_ORDER, LoggedEvent
from projections.base import LogEntry, TableProjection

NAME = "lead_stages"


def lead_stages_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `lead_stages` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("lead_id", String(36), nullable=False),
        Column("stage", String(), nullable=False),
        Column("entered_at", DateTime(timezone=True), nullable=False),
        Column("from_stage", String()),
        Column("amount", Numeric(asdecimal=False)),
        Column("currency", String()),
        Column("rule_id", String()),
        Column("ruleset_version", Integer()),
        Column("sequence", Integer(), nullable=False),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("lead_id", "stage", name=f"pk_{name}"),
        Index(f"ix_{name}_stage_entered_at", "stage", "entered_at", "lead_id"),
    )


def stage_after(current: str, event: LoggedEvent) -> str:
    """The stage a lead in `current` is in after `event` (forward only; `won`/`lost` as
    the lead's state folds them)."""
    match event.type:
        case "lead.qualified" | "lead.stage_changed":
            target = str(event.data["stage"])
        case "lead.opportunity_opened":
            target = "opportunity"
        case "lead.won":
            return "won"
        case "lead.lost":
            return "lost"
        case _:
            return current
    return target if STAGE_ORDER[target] >= STAGE_ORDER[current] else current


class LeadStagesProjection(TableProjection):
    """Keeps `lead_stages`; `suffix` names a copy of it (a rebuild builds into one)."""

    table_name = NAME
    make_table = staticmethod(lead_stages_table)

    def apply(self, conn: Connection, entries: Sequence[LogEntry[LoggedEvent]]) -> None:
        table = self.table
        lead_ids = list(dict.fromkeys(entry.event.lead_id for entry in entries))
        # The stage a lead is in now is the one it entered last.
        current: dict[str, str] = {}
        entered: set[tuple[str, str]] = set()
        found = conn.execute(
            select(table.c.lead_id, table.c.stage)
            .where(table.c.lead_id.in_(lead_ids))
            .order_by(table.c.position)
        )
        for lead_id, stage in found:
            current[lead_id] = stage
            entered.add((lead_id, stage))
        rows: list[dict[str, Any]] = []
        for entry in entries:
            event = entry.event
            before = current.get(event.lead_id)
            if before is None:
                if event.type != "lead.captured":
                    continue  # no stream starts otherwise; nothing to anchor a stage to
                after = "new"
            else:
                after = stage_after(before, event)
                if after == before:
                    continue
            current[event.lead_id] = after
            # Only a closed lead can come back to a stage (won, then lost, then won): the
            # first time it entered it stands.
            if (event.lead_id, after) not in entered:
                entered.add((event.lead_id, after))
                rows.append(_row(event, entry.position, after, before))
        if rows:
            conn.execute(insert(table), rows)


def _row(event: LoggedEvent, position: int, stage: str, before: str | None) -> dict[str, Any]:
    amount = event.data.get("amount") if event.type != "lead.captured" else None
    return {
        "lead_id": event.lead_id,
        "stage": stage,
        "entered_at": datetime.fromisoformat(event.occurred_at).astimezone(UTC),
        "from_stage": before,
        "amount": None if amount is None else Decimal(str(amount)),
        "currency": event.data.get("currency") if event.type == "lead.won" else None,
        "rule_id": event.rule_id,
        "ruleset_version": event.ruleset_version,
        "sequence": event.sequence,
        "position": position,
    }
