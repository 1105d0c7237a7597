"""The `nurture_messages` read model: every nurture email sent, and how its recipient
engaged with it (docs/analytics.md).

`nurture.email_sent` adds the message; `email.opened`, `email.clicked`, `email.bounced`
and `email.replied` (posted by the tracking URLs or a mail system) set the time of the
first of each. Engagement with a message id leadflow did not record sending (another
system's email, or tracking that ran ahead of the record) makes a row without `sent_at`,
which the send fills in if it comes.
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
)
from sqlalchemy.engine import Connection

from domain.state import LoggedEvent
from projections.base import LogEntry, RowsByKey, TableProjection

NAME = "nurture_messages"
# Engagement event → the column holding its first time.
ENGAGEMENT = {
    "email.opened": "opened_at",
    "email.clicked": "clicked_at",
    "email.bounced": "bounced_at",
    "email.replied": "replied_at",
}
_SENT = ("nurture_sequence", "step", "template", "variant", "rule_id", "ruleset_version", "sent_at")
_MUTABLE = (*_SENT, *ENGAGEMENT.values())


def nurture_messages_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `nurture_messages` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("message_id", String(200), nullable=False),
        Column("lead_id", String(36), nullable=False),
        Column("nurture_sequence", String()),
        Column("step", Integer()),
        Column("template", String()),
        Column("variant", String()),
        Column("rule_id", String()),
        Column("ruleset_version", Integer()),
        Column("sent_at", DateTime(timezone=True)),
        Column("opened_at", DateTime(timezone=True)),
        Column("clicked_at", DateTime(timezone=True)),
        Column("bounced_at", DateTime(timezone=True)),
        Column("replied_at", DateTime(timezone=True)),
        Column("position", BigInteger(), nullable=False),
        PrimaryKeyConstraint("message_id", name=f"pk_{name}"),
        Index(f"ix_{name}_lead_id", "lead_id", "sent_at"),
        Index(f"ix_{name}_sent_at", "sent_at"),
        Index(f"ix_{name}_template_variant", "template", "variant", "sent_at"),
    )


class NurtureMessagesProjection(TableProjection):
    """Keeps `nurture_messages`; `suffix` names a copy of it (a rebuild builds into one)."""

    table_name = NAME
    make_table = staticmethod(nurture_messages_table)

    def apply(self, conn: Connection, entries: Sequence[LogEntry[LoggedEvent]]) -> None:
        page = [
            entry
            for entry in entries
            if entry.event.type == "nurture.email_sent" or entry.event.type in ENGAGEMENT
        ]
        if not page:
            return
        ids = [str(entry.event.data["message_id"]) for entry in page]
        rows = RowsByKey(conn, self.table, "message_id", ids)
        for entry in page:
            event = entry.event
            key = str(event.data["message_id"])
            at = datetime.fromisoformat(event.occurred_at).astimezone(UTC)
            row = rows.get(key)
            if row is None:
                row = rows.created[key] = _unknown(key, event.lead_id, entry.position)
            elif key in rows.stored:
                rows.changed.add(key)
            if event.type == "nurture.email_sent":
                if row["sent_at"] is None:
                    d = event.data
                    row.update(
                        nurture_sequence=d.get("sequence"),
                        step=d.get("step"),
                        template=d.get("template"),
                        variant=d.get("variant"),
                        rule_id=event.rule_id,
                        ruleset_version=event.ruleset_version,
                        sent_at=at,
                    )
            elif row[ENGAGEMENT[event.type]] is None:
                row[ENGAGEMENT[event.type]] = at
        rows.save(conn, _MUTABLE)


def _unknown(message_id: str, lead_id: str, position: int) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "lead_id": lead_id,
        **dict.fromkeys(_MUTABLE),
        "position": position,
    }
