"""The `experiment_assignments` read model: which variant of each experiment every lead
got, and when (docs/analytics.md). A lead keeps the first variant it was given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

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
    insert,
    select,
)
from sqlalchemy.engine import Connection

from domain.state import LoggedEvent
from projections.base import LogEntry, TableProjection

NAME = "experiment_assignments"


def experiment_assignments_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `experiment_assignments` table (or a copy under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("lead_id", String(36), nullable=False),
        Column("experiment", String(), nullable=False),
        Column("variant", String(), nullable=False),
        Column("assigned_at", DateTime(timezone=True), nullable=False),
        Column("rule_id", String()),
        Column("ruleset_version", Integer()),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("lead_id", "experiment", name=f"pk_{name}"),
        Index(f"ix_{name}_experiment_variant", "experiment", "variant", "lead_id"),
    )


class ExperimentAssignmentsProjection(TableProjection):
    """Keeps `experiment_assignments`; `suffix` names a copy of it (a rebuild builds into
    one)."""

    table_name = NAME
    make_table = staticmethod(experiment_assignments_table)

    def apply(self, conn: Connection, entries: Sequence[LogEntry[LoggedEvent]]) -> None:
        page = [e for e in entries if e.event.type == "experiment.variant_assigned"]
        if not page:
            return
        table = self.table
        lead_ids = list(dict.fromkeys(entry.event.lead_id for entry in page))
        seen = {
            (lead_id, experiment)
            for lead_id, experiment in conn.execute(
                select(table.c.lead_id, table.c.experiment).where(table.c.lead_id.in_(lead_ids))
            )
        }
        rows: list[dict[str, Any]] = []
        for entry in page:
            event = entry.event
            key = (event.lead_id, str(event.data["experiment"]))
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "lead_id": event.lead_id,
                    "experiment": key[1],
                    "variant": str(event.data["variant"]),
                    "assigned_at": datetime.fromisoformat(event.occurred_at).astimezone(UTC),
                    "rule_id": event.rule_id,
                    "ruleset_version": event.ruleset_version,
                    "position": entry.position,
                }
            )
        if rows:
            conn.execute(insert(table), rows)
