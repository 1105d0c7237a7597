"""The `campaign_spend` read model: every spend recorded on a campaign (docs/analytics.md).

Spend lives on each campaign's own stream (`campaign.spend_recorded`), not on a lead's,
so this projection reads `SPEND_TOPICS`. A record without a period covers the day it
occurred (UTC); one with only `period_start` or only `period_end` covers that one day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
)
from sqlalchemy.engine import Connection

from projections.base import SPEND_TOPICS, CampaignSpend, LogEntry, TableProjection

NAME = "campaign_spend"


def campaign_spend_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `campaign_spend` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("campaign_id", String(100), nullable=False),
        Column("sequence", Integer(), nullable=False),
        Column("event_id", String(200), nullable=False),
        Column("amount", Numeric(asdecimal=False), nullable=False),
        Column("currency", String(3)),
        Column("period_start", Date(), nullable=False),
        Column("period_end", Date(), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("campaign_id", "sequence", name=f"pk_{name}"),
        Index(f"ix_{name}_period_start", "period_start", "period_end"),
    )


class CampaignSpendProjection(TableProjection):
    """Keeps `campaign_spend`; `suffix` names a copy of it (a rebuild builds into one)."""

    table_name = NAME
    topics = SPEND_TOPICS
    make_table = staticmethod(campaign_spend_table)

    def apply(self, conn: Connection, entries: Sequence[LogEntry[CampaignSpend]]) -> None:
        rows = [_row(entry.event, entry.position) for entry in entries]
        if rows:
            conn.execute(insert(self.table), rows)


def _row(spend: CampaignSpend, position: int) -> dict[str, Any]:
    recorded_at = datetime.fromisoformat(spend.occurred_at).astimezone(UTC)
    start, end = spend.data.get("period_start"), spend.data.get("period_end")
    first = date.fromisoformat(str(start or end)) if (start or end) else recorded_at.date()
    last = date.fromisoformat(str(end or start)) if (start or end) else first
    return {
        "campaign_id": spend.campaign_id,
        "sequence": spend.sequence,
        "event_id": spend.event_id,
        "amount": Decimal(str(spend.data["amount"])),
        "currency": spend.data.get("currency"),
        "period_start": first,
        "period_end": last,
        "recorded_at": recorded_at,
        "position": position,
    }
