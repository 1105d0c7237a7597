"""The `leads` read model: one row per lead, its current state (docs/analytics.md).

Each row is the lead's `LeadState` folded with the same pure `apply_event` as the `Lead`
aggregate, so it equals what `GET /v1/leads/{id}` reads from the log at the row's
`last_position`. The projector loads a page's rows, folds the page's events into them and
writes them back.

The typed columns are the stable schema analysts query. The fold continues from `state`,
the whole `LeadState` as JSON: a field the domain adds later is carried without a schema
change, and no value has to survive a round trip through a column type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, get_origin, get_type_hints

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    false,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from domain.access import EVERYTHING, LeadScope
from domain.state import LeadState, LoggedEvent, apply_event
from projections.base import LogEntry, TableProjection

NAME = "leads"

_JSON = JSON().with_variant(JSONB(), "postgresql")
# The columns a page of leads is filtered by; each has an index ending in the page order.
FILTERS = ("owner", "team", "stage", "in_pool", "source")
# LeadState fields stored as they are.
_PLAIN = (
    "lead_id",
    "stage",
    "owner",
    "team",
    "in_pool",
    "email",
    "phone",
    "name",
    "company",
    "source",
    "channel",
    "region",
    "industry",
    "company_size",
    "campaign_id",
    "form_id",
    "intent",
    "score",
    "attributes",
    "touch_count",
    "followups_count",
    "unsubscribed",
    "do_not_contact",
    "do_not_contact_reason",
    "ruleset_version",
    "variants",
    "open_tasks",
    "placed_by_rule",
    "placed_by_ruleset_version",
    "pool_reason",
    "last_sequence",
)
_LISTS = ("tags", "sequences")
_TIMES = ("created_at", "first_response_at", "last_activity_at")


def leads_table(metadata: MetaData, name: str = NAME) -> Table:
    """The `leads` table (or a copy of it under another name, for a rebuild)."""
    return Table(
        name,
        metadata,
        Column("lead_id", String(36), nullable=False),
        Column("stage", String(), nullable=False),
        Column("owner", String()),
        Column("team", String()),
        Column("in_pool", Boolean(), nullable=False),
        Column("email", String()),
        Column("phone", String()),
        Column("name", String()),
        Column("company", String()),
        Column("source", String()),
        Column("channel", String()),
        Column("region", String()),
        Column("industry", String()),
        Column("company_size", String()),
        Column("campaign_id", String()),
        Column("form_id", String()),
        Column("intent", String()),
        Column("score", Integer(), nullable=False),
        Column("tags", _JSON, nullable=False),
        Column("attributes", _JSON, nullable=False),
        Column("touch_count", Integer(), nullable=False),
        Column("followups_count", Integer(), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("first_response_at", DateTime(timezone=True)),
        Column("last_activity_at", DateTime(timezone=True)),
        Column("won_amount", Numeric(asdecimal=False)),
        Column("unsubscribed", Boolean(), nullable=False),
        Column("do_not_contact", Boolean(), nullable=False),
        Column("do_not_contact_reason", String()),
        Column("ruleset_version", Integer()),
        Column("variants", _JSON, nullable=False),
        Column("open_tasks", _JSON, nullable=False),
        Column("placed_by_rule", String()),
        Column("placed_by_ruleset_version", Integer()),
        Column("pool_reason", String()),
        Column("sequences", _JSON, nullable=False),
        Column("last_sequence", Integer(), nullable=False),
        Column("last_position", BigInteger(), nullable=False),
        Column("state", Text(), nullable=False),
        PrimaryKeyConstraint("lead_id", name=f"pk_{name}"),
        Index(f"ix_{name}_created_at", "created_at", "lead_id"),
        *(Index(f"ix_{name}_{column}", column, "created_at", "lead_id") for column in FILTERS),
    )


class LeadsProjection(TableProjection):
    """Keeps the `leads` table; `suffix` names a copy of it (a rebuild builds into one)."""

    table_name = NAME
    make_table = staticmethod(leads_table)

    def __init__(self, suffix: str = "") -> None:
        super().__init__(suffix)
        # Built once, not for every page.
        self._insert = insert(self.table)
        self._update = update(self.table).where(self.table.c.lead_id == bindparam("key"))

    def apply(self, conn: Connection, entries: Sequence[LogEntry[LoggedEvent]]) -> None:
        table = self.table
        lead_ids = list(dict.fromkeys(entry.event.lead_id for entry in entries))
        found = conn.execute(
            select(table.c.lead_id, table.c.state).where(table.c.lead_id.in_(lead_ids))
        )
        states = {lead_id: state_of(state) for lead_id, state in found}
        known = set(states)
        positions: dict[str, int] = {}
        for entry in entries:
            event = entry.event
            lead_id = event.lead_id
            state = states.get(lead_id) or LeadState(lead_id=lead_id)
            states[lead_id] = apply_event(state, event)
            positions[lead_id] = entry.position
        created = [row_of(states[i], positions[i]) for i in lead_ids if i not in known]
        changed = [row_of(states[i], positions[i]) for i in lead_ids if i in known]
        if created:
            conn.execute(self._insert, created)
        if changed:
            for row in changed:
                row["key"] = row.pop("lead_id")
            conn.execute(self._update, changed)


def row_of(state: LeadState, position: int) -> dict[str, Any]:
    """The `leads` row of a lead's state, folded up to log `position`."""
    row: dict[str, Any] = {name: getattr(state, name) for name in _PLAIN}
    for name in _LISTS:
        row[name] = list(getattr(state, name))
    for name in _TIMES:
        row[name] = _utc(getattr(state, name))
    row["won_amount"] = _amount(state.won_amount)
    row["last_position"] = position
    row["state"] = json.dumps({name: getattr(state, name) for name in _STATE_FIELDS})
    return row


def state_of(stored: str) -> LeadState:
    """The lead's state kept in a row's `state` column."""
    values = json.loads(stored)
    # Fields the state no longer has are dropped; fields it gained take their defaults
    # (until a rebuild folds them from the log).
    known = {name: values[name] for name in _STATE_FIELDS if name in values}
    for name in _TUPLE_FIELDS:
        if name in known:
            known[name] = tuple(known[name])
    if "do_not_contact" not in values and values.get("unsubscribed"):
        # Folded before the flag existed, when only an unsubscribe set it.
        known["do_not_contact"] = True
        known["do_not_contact_reason"] = "unsubscribed"
    return LeadState(**known)


_STATE_FIELDS = tuple(f.name for f in fields(LeadState))
_TUPLE_FIELDS = tuple(
    name for name, hint in get_type_hints(LeadState).items() if get_origin(hint) is tuple
)


def _utc(value: str | None) -> datetime | None:
    # Given in UTC: SQLite keeps no offset, PostgreSQL's timestamptz converts.
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _amount(value: str | None) -> Decimal | None:
    try:
        return None if value is None else Decimal(value)
    except InvalidOperation:
        return None


# --- reading -------------------------------------------------------------------------

_LIVE = leads_table(MetaData())


@dataclass(frozen=True)
class LeadFilters:
    """What `GET /v1/leads` filters by; None matches every value."""

    owner: str | None = None
    team: str | None = None
    stage: str | None = None
    in_pool: bool | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FILTERS}


@dataclass(frozen=True)
class LeadKey:
    """A lead's place in the page order: by capture time, then id."""

    created_at: str
    lead_id: str


def find_leads(
    conn: Connection,
    filters: LeadFilters,
    after: LeadKey | None,
    limit: int,
    scope: LeadScope = EVERYTHING,
) -> list[LeadState]:
    """Up to `limit` leads matching `filters` within `scope`, in page order, after `after`."""
    table = _LIVE
    query = select(table.c.state)
    visible = scope_clause(table, scope)
    if visible is not None:
        query = query.where(visible)
    for name, value in filters.as_dict().items():
        if value is not None:
            query = query.where(table.c[name] == value)
    if after is not None:
        query = query.where(
            tuple_(table.c.created_at, table.c.lead_id)
            > tuple_(
                literal(_utc(after.created_at), table.c.created_at.type),
                literal(after.lead_id, table.c.lead_id.type),
            )
        )
    query = query.order_by(table.c.created_at, table.c.lead_id).limit(limit)
    return [state_of(stored) for stored in conn.execute(query).scalars()]


def scope_clause(table: Table, scope: LeadScope) -> ColumnElement[bool] | None:
    """The condition selecting the leads in `scope` (None: every lead): owned by one of its
    owners, of one of its teams, or (with `pool`) in the pool. Each arm has its index
    (`ix_leads_owner`, `_team`, `_in_pool`), so the database combines them in one query."""
    if scope.everything:
        return None
    arms: list[ColumnElement[bool]] = []
    if scope.owners:
        arms.append(table.c.owner.in_(sorted(scope.owners)))
    if scope.teams:
        arms.append(table.c.team.in_(sorted(scope.teams)))
    if scope.pool:
        arms.append(table.c.in_pool == true())
    return or_(*arms) if arms else false()


def key_of(state: LeadState) -> LeadKey:
    assert state.created_at is not None
    return LeadKey(state.created_at, state.lead_id)


def find_lead(conn: Connection, lead_id: str) -> LeadState | None:
    """The lead's state as the `leads` table has it; None if the projector has not seen
    the lead yet."""
    stored = conn.execute(select(_LIVE.c.state).where(_LIVE.c.lead_id == lead_id)).scalar()
    return None if stored is None else state_of(stored)


def open_leads_of(conn: Connection, owner: str) -> list[LeadState]:
    """Every open lead `owner` holds (not won or lost, not in the pool), in no set order:
    a rep's worklist (bounded by the rep's capacity)."""
    # A pooled lead has no owner: filtering on the pool flag too made SQLite's planner pick
    # the flag's index (nine rows in ten) over the owner's (bench/worklist.py).
    query = select(_LIVE.c.state).where(
        _LIVE.c.owner == owner, _LIVE.c.stage.not_in(("won", "lost"))
    )
    states = (state_of(stored) for stored in conn.execute(query).scalars())
    return [state for state in states if not state.in_pool]
