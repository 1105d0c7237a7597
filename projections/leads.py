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
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
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
    func,
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
# The columns a page of leads is filtered by; each has an index ending in capture order.
FILTERS = ("owner", "team", "stage", "in_pool", "source", "region", "channel")
# The funnel's order: what sorting by stage means (`stage_rank`).
STAGES = ("new", "MQL", "SQL", "opportunity", "won", "lost")
# Each sort `GET /v1/leads` offers and the column it orders by (then `lead_id`); each has an
# index (docs/leads-search.md). The keys are never null, so a keyset compares plainly.
SORT_COLUMNS = {
    "created_at": "created_at",
    "name": "name_key",
    "company": "company_key",
    "stage": "stage_rank",
    "score": "score",
    "last_activity_at": "last_activity_at",
    "owner": "owner_key",
}
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
        # Derived for search and sorting (`search_keys`; migration 0008).
        Column("search_text", Text(), nullable=False, server_default=""),
        Column("name_key", String(), nullable=False, server_default=""),
        Column("company_key", String(), nullable=False, server_default=""),
        Column("owner_key", String(), nullable=False, server_default=""),
        Column("stage_rank", Integer(), nullable=False, server_default="0"),
        PrimaryKeyConstraint("lead_id", name=f"pk_{name}"),
        Index(f"ix_{name}_created_at", "created_at", "lead_id"),
        *(Index(f"ix_{name}_{column}", column, "created_at", "lead_id") for column in FILTERS),
        *(
            Index(f"ix_{name}_by_{sort}", column, "lead_id")
            for sort, column in SORT_COLUMNS.items()
            if sort != "created_at"
        ),
        # A narrow index a search scans instead of the wide rows (`_few_found`).
        Index(f"ix_{name}_search_scan", "search_text", "lead_id"),
        # PostgreSQL: a trigram index, so `LIKE '%…%'` is an index search. (SQLite makes a
        # plain index of it: alembic's comparison knows no index for one dialect only.)
        Index(
            f"ix_{name}_search",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
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
    row.update(search_keys(state.name, state.company, state.email, state.phone))
    row["owner_key"] = state.owner or ""
    row["stage_rank"] = stage_rank(state.stage)
    row["last_position"] = position
    row["state"] = json.dumps({name: getattr(state, name) for name in _STATE_FIELDS})
    return row


def search_keys(
    name: str | None, company: str | None, email: str | None, phone: str | None
) -> dict[str, str]:
    """The columns a search and a sort by name or company read: lower-cased name and
    company, and `search_text`, one line each of name, company, email and the phone's
    digits (empty once the lead is erased: its state holds none of them then)."""
    name_key, company_key = fold(name or ""), fold(company or "")
    lines = (name_key, company_key, fold(email or ""), digits_of(phone or ""))
    return {
        "name_key": name_key,
        "company_key": company_key,
        "search_text": "\n".join(lines) if any(lines) else "",
    }


def fold(text: str) -> str:
    """Text as searches compare it: lower case (Chinese has no case and stays as it is)."""
    return text.lower()


def digits_of(text: str) -> str:
    """The digits of a phone number however it is written ("+86 138-0013" → "86138")."""
    return "".join(c for c in text if c.isascii() and c.isdigit())


def stage_rank(stage: str) -> int:
    """A stage's place in the funnel (an unknown stage sorts last)."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


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
# A query that looks like a phone number (digits and the usual separators) also matches
# the phone's digits, whatever the formatting on either side.
_PHONE_LIKE = re.compile(r"[0-9+()\-.\s]*")
_MIN_PHONE_DIGITS = 3
_TIME_SORTS = ("created_at", "last_activity_at")
_NUMBER_SORTS = ("stage", "score")
# A search no index serves that finds at most this many leads reads them by id
# (`_few_found`); the shortest text PostgreSQL's trigram index can look for.
_FEW_MATCHES = 1000
_TRIGRAM = 3


@dataclass(frozen=True)
class LeadFilters:
    """What `GET /v1/leads` filters by. A tuple matches any of its values (empty: any
    value); None matches everything; `created_to` is exclusive; `q` is a search of name,
    company, email and phone (docs/leads-search.md)."""

    owner: tuple[str, ...] = ()
    team: tuple[str, ...] = ()
    stage: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    in_pool: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The filters as JSON values (times in RFC 3339)."""
        values = asdict(self)
        for name in ("created_from", "created_to"):
            if values[name] is not None:
                values[name] = values[name].isoformat()
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values.items()}


@dataclass(frozen=True)
class LeadOrder:
    """A page order: one of `SORT_COLUMNS`, ascending or descending, ties by lead id."""

    sort: str = "created_at"
    descending: bool = True

    @classmethod
    def parse(cls, text: str) -> LeadOrder:
        """`name` or `-name` (descending); ValueError naming the sorts for anything else."""
        sort = text.removeprefix("-")
        if sort not in SORT_COLUMNS:
            raise ValueError(f"sort by one of {', '.join(SORT_COLUMNS)}, with - for descending")
        return cls(sort, text.startswith("-"))

    def __str__(self) -> str:
        return f"-{self.sort}" if self.descending else self.sort


@dataclass(frozen=True)
class LeadKey:
    """A lead's place in a page order: its sort value (a time in RFC 3339 UTC, a number or
    text, as `key_of` gives it), then its id."""

    value: str | int
    lead_id: str


def find_leads(
    conn: Connection,
    filters: LeadFilters,
    after: LeadKey | None,
    limit: int,
    *,
    order: LeadOrder = LeadOrder(),
    scope: LeadScope = EVERYTHING,
) -> list[LeadState]:
    """Up to `limit` leads matching `filters` that `scope` may see, in `order`, after
    `after`."""
    table = _LIVE
    query = select(table.c.state).where(*filter_clauses(table, filters))
    if filters.q:
        found = _few_found(conn, table, filters.q)
        if found is not None:
            query = query.where(table.c.lead_id.in_(found))
    allowed = scope_clause(table, scope)
    if allowed is not None:
        query = query.where(allowed)
    column = table.c[SORT_COLUMNS[order.sort]]
    if after is not None:
        value = _utc(str(after.value)) if order.sort in _TIME_SORTS else after.value
        place = tuple_(column, table.c.lead_id)
        key = tuple_(literal(value, column.type), literal(after.lead_id, table.c.lead_id.type))
        query = query.where(place < key if order.descending else place > key)
    if order.descending:
        query = query.order_by(column.desc(), table.c.lead_id.desc())
    else:
        query = query.order_by(column, table.c.lead_id)
    return [state_of(stored) for stored in conn.execute(query.limit(limit)).scalars()]


def filter_clauses(table: Table, filters: LeadFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters` on a `leads` table."""
    clauses: list[ColumnElement[bool]] = []
    for name in ("owner", "team", "stage", "source", "region", "channel"):
        values: tuple[str, ...] = getattr(filters, name)
        if len(values) == 1:
            clauses.append(table.c[name] == values[0])
        elif values:
            clauses.append(table.c[name].in_(values))
    if filters.in_pool is not None:
        clauses.append(table.c.in_pool == filters.in_pool)
    if filters.created_from is not None:
        clauses.append(table.c.created_at >= filters.created_from.astimezone(UTC))
    if filters.created_to is not None:
        clauses.append(table.c.created_at < filters.created_to.astimezone(UTC))
    if filters.q:
        clauses.append(search_clause(table, filters.q))
    return clauses


def _few_found(conn: Connection, table: Table, q: str) -> list[str] | None:
    """The ids of the leads `q` finds when they are few (at most _FEW_MATCHES) and no index
    searches for them; else None.

    SQLite cannot index `LIKE '%…%'`, nor can PostgreSQL's trigram index look for fewer than
    three characters (a two-character Chinese name): left to itself the database walks the
    sort's index and reads each wide row until a page is full, which is quick when matches
    are many and reads the whole table when they are few (a phone number on SQLite: 0.8 s
    over 100,000 leads). One pass over the narrow `search_text, lead_id` index finds them
    instead; few, they are then read by id and sorted, many, the walk fills a page soon
    (bench/lead_search.py)."""
    needles = needles_of(q)
    if conn.dialect.name == "postgresql" and min(len(n) for n in needles) >= _TRIGRAM:
        return None
    if conn.dialect.name == "sqlite":
        # `instr` is a plain substring test: LIKE's ASCII case folding costs 4x more here.
        contains = or_(*(func.instr(table.c.search_text, needle) > 0 for needle in needles))
    else:
        contains = search_clause(table, q)
    query = select(table.c.lead_id).where(contains).limit(_FEW_MATCHES + 1)
    found = list(conn.execute(query).scalars())
    return found if len(found) <= _FEW_MATCHES else None


def search_clause(table: Table, q: str) -> ColumnElement[bool]:
    """Leads whose name, company or email contains `q` (any case), or whose phone's digits
    contain the digits of a `q` written like a phone number."""
    return or_(
        *(table.c.search_text.like(_contains(needle), escape="\\") for needle in needles_of(q))
    )


def needles_of(q: str) -> list[str]:
    """What a search looks for in `search_text`: the folded text, and its digits when it
    looks like a phone number."""
    needles = {fold(q.strip())}
    digits = digits_of(q)
    if len(digits) >= _MIN_PHONE_DIGITS and _PHONE_LIKE.fullmatch(q):
        needles.add(digits)
    return sorted(needles)


def _contains(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def scope_clause(table: Table, scope: LeadScope) -> ColumnElement[bool] | None:
    """The leads `scope` allows, as a WHERE condition on a `leads` table: owned by one of its
    owners, of one of its teams, or (with `pool`) in the pool; None for every lead."""
    if scope.everything:
        return None
    allowed: list[ColumnElement[bool]] = []
    if scope.owners:
        allowed.append(table.c.owner.in_(sorted(scope.owners)))
    if scope.teams:
        allowed.append(table.c.team.in_(sorted(scope.teams)))
    if scope.pool:
        allowed.append(table.c.in_pool == true())
    return or_(*allowed) if allowed else false()


def key_of(state: LeadState, order: LeadOrder = LeadOrder()) -> LeadKey:
    """The lead's place in `order`: the value its row holds in the sort's column."""
    value: str | int
    match order.sort:
        case "created_at" | "last_activity_at":
            stored = _utc(getattr(state, order.sort))
            assert stored is not None  # set by the capture that made the row
            value = stored.isoformat()
        case "name" | "company":
            value = search_keys(state.name, state.company, None, None)[f"{order.sort}_key"]
        case "stage":
            value = stage_rank(state.stage)
        case "score":
            value = state.score
        case _:
            value = state.owner or ""
    return LeadKey(value, state.lead_id)


def sort_value_type(sort: str) -> type:
    """What a cursor's value must be for `sort`: text (times too) or a number."""
    return int if sort in _NUMBER_SORTS else str


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
