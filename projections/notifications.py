"""The `notifications` read model: every notification leadflow decided to send, and what
became of it (docs/analytics.md).

`notification.queued` (a rule's `notify`, or a nurture step's email) adds the row;
each `notification.sent` (one per recipient: delivered, recorded in the outbox, failed
or skipped) updates it. A `notification.sent` with no queued notification before it (an
older stream) makes its own row. `lead.erased` blanks the lead's recipients and reasons.
"""

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
    select,
    update,
)
from sqlalchemy.engine import Connection

from domain.personal import ERASED_TYPE
from domain.state import LoggedEvent
from projections.base import LogEntry, RowsByKey, TableProjection
from store.times import utc

NAME = "notifications"
_TYPES = ("notification.queued", "notification.sent")
_MUTABLE = ("status", "recipient", "deliveries", "sent_at", "reason")


def notifications_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `notifications` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("notification_id", String(200), nullable=False),
        Column("lead_id", String(36), nullable=False),
        Column("to", String()),
        Column("channel", String()),
        Column("template", String()),
        Column("nurture_sequence", String()),
        Column("rule_id", String()),
        Column("ruleset_version", Integer()),
        Column("queued_at", DateTime(timezone=True), nullable=False),
        Column("status", String(), nullable=False),
        Column("recipient", String()),
        Column("deliveries", Integer(), nullable=False),
        Column("sent_at", DateTime(timezone=True)),
        Column("reason", String()),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("notification_id", name=f"pk_{name}"),
        Index(f"ix_{name}_lead_id_queued_at", "lead_id", "queued_at"),
        Index(f"ix_{name}_template_queued_at", "template", "queued_at"),
        Index(f"ix_{name}_status_queued_at", "status", "queued_at"),
    )


class NotificationsProjection(TableProjection):
    """Keeps `notifications`; `suffix` names a copy of it (a rebuild builds into one)."""

    table_name = NAME
    make_table = staticmethod(notifications_table)

    def apply(self, conn: Connection, entries: Sequence[LogEntry[LoggedEvent]]) -> None:
        self._apply_notifications(conn, [e for e in entries if e.event.type in _TYPES])
        erased = [e.event.lead_id for e in entries if e.event.type == ERASED_TYPE]
        if erased:
            # Who a lead's notifications reached (its own address, for nurture email) and
            # why a delivery failed (a refusal quotes the address) are its personal data.
            conn.execute(
                update(self.table)
                .where(self.table.c.lead_id.in_(erased))
                .values(recipient=None, reason=None)
            )

    def _apply_notifications(self, conn: Connection, page: list[LogEntry[LoggedEvent]]) -> None:
        if not page:
            return
        ids = [_notification_id(entry.event) for entry in page]
        rows = RowsByKey(conn, self.table, "notification_id", ids)
        for entry in page:
            event = entry.event
            key = _notification_id(event)
            at = datetime.fromisoformat(event.occurred_at).astimezone(UTC)
            row = rows.get(key)
            if row is None:
                row = rows.created[key] = _queued(event, key, at, entry.position)
            if event.type == "notification.sent":
                row.update(
                    status=event.data.get("status"),
                    recipient=event.data.get("recipient"),
                    deliveries=row["deliveries"] + 1,
                    sent_at=row["sent_at"] or at,
                    reason=event.data.get("reason"),
                )
                if key in rows.stored:
                    rows.changed.add(key)
        rows.save(conn, _MUTABLE)


def _notification_id(event: LoggedEvent) -> str:
    if event.type == "notification.sent":
        return str(event.data.get("notification_id") or event.event_id)
    return event.event_id


def _queued(event: LoggedEvent, key: str, at: datetime, position: int) -> dict[str, Any]:
    d = event.data
    return {
        "notification_id": key,
        "lead_id": event.lead_id,
        "to": d.get("to"),
        "channel": d.get("channel"),
        "template": d.get("template"),
        "nurture_sequence": d.get("sequence"),
        "rule_id": event.rule_id,
        "ruleset_version": event.ruleset_version,
        "queued_at": at,
        "status": "queued",
        "recipient": None,
        "deliveries": 0,
        "sent_at": None,
        "reason": None,
        "position": position,
    }


# --- reading -------------------------------------------------------------------------

_LIVE = notifications_table(MetaData())


def find_notifications(conn: Connection, lead_id: str) -> list[dict[str, Any]]:
    """Every notification decided for a lead, oldest first, with what became of it: what
    `GET /v1/notifications?lead_id=` answers."""
    rows = conn.execute(
        select(_LIVE)
        .where(_LIVE.c.lead_id == lead_id)
        .order_by(_LIVE.c.queued_at, _LIVE.c.position)
    ).mappings()
    return [
        {
            "lead_id": row["lead_id"],
            "notification_id": row["notification_id"],
            "to": row["to"],
            "recipient": row["recipient"],
            "channel": row["channel"],
            "template": row["template"],
            "rule_id": row["rule_id"],
            "ruleset_version": row["ruleset_version"],
            "status": row["status"],
            "reason": row["reason"],
            "deliveries": row["deliveries"],
            "queued_at": utc(row["queued_at"]).isoformat(),
            "sent_at": None if row["sent_at"] is None else utc(row["sent_at"]).isoformat(),
        }
        for row in rows
    ]
