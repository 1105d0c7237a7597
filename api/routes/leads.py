"""GET /v1/leads (a filtered page) and /v1/leads/{id} (current state), both from the
`leads` projection, and /v1/leads/{id}/events (the whole stream, from the log)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from api.cursors import bad_cursor, pack, unpack
from api.deadlines import DeadlineWords
from api.deps import ReadCaller, StoreDep, require
from api.errors import invalid_query
from api.lead_export import export_rows
from api.lead_query import DEFAULT_SORT, InvalidLeadQuery, parse_lead_query
from api.responses import KEYED, LeadEvents, answer, component, refused
from api.visibility import check_visible, visible_lead
from api.work_responses import LeadDetail, LeadPage
from domain.access import LeadScope
from domain.state import LeadState, LoggedEvent
from leadflow.bootstrap import Store
from leadflow.tracing import trace_id_of
from projections.leads import (
    SORT_COLUMNS,
    LeadFilters,
    LeadKey,
    LeadOrder,
    find_leads,
    key_of,
    sort_value_type,
)
from store.deadlines import deadlines_of, next_deadlines
from store.keys import Caller

router = APIRouter(prefix="/v1/leads", tags=["leads"], dependencies=[Depends(require("read"))])

FilterValues = Annotated[
    list[str] | None,
    Query(description="Repeat the parameter for several values: a lead matching any of them."),
]
TimeBound = Annotated[str | None, Query(max_length=40)]
LIST_ANSWERS = {
    200: {
        "content": {
            "application/json": {"schema": component(LeadPage.__name__)},
            "text/csv": {
                "schema": {"type": "string"},
                "example": "\ufefflead_id,name,company,email,phone,stage,...\r\n",
            },
        }
    },
    **refused(
        *KEYED, meanings={422: "A filter, `sort` or `cursor` is not valid: `details` names it."}
    ),
}


@router.get("", response_model=None, responses=LIST_ANSWERS)
async def list_leads(
    store: StoreDep,
    caller: ReadCaller,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Search: name, company or email containing it (any case), or a phone "
            "number containing its digits however either is formatted.",
        ),
    ] = None,
    owner: FilterValues = None,
    team: FilterValues = None,
    stage: FilterValues = None,
    source: FilterValues = None,
    region: FilterValues = None,
    channel: FilterValues = None,
    in_pool: bool | None = None,
    created_from: Annotated[
        str | None, Query(max_length=40, description="Inclusive: a date or date-time.")
    ] = None,
    created_to: Annotated[
        str | None,
        Query(
            max_length=40,
            description="A date (that whole day included) or date-time (exclusive).",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        Query(
            max_length=64,
            description="IANA time zone whose midnights the date bounds mean (default UTC).",
            examples=["Asia/Shanghai"],
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(
            max_length=40,
            description="One of " + ", ".join(SORT_COLUMNS) + "; `-` first for descending.",
        ),
    ] = DEFAULT_SORT,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> dict[str, Any] | Response:
    """Leads the caller may see matching the search and every given filter, in `sort` order
    (default newest first), `limit` at a time; pass `next_cursor` back as `cursor` for the
    next page (null: no more). `format=csv`: every such lead (at most 100,000) as CSV,
    without paging."""
    given = {
        "q": q,
        "owner": owner,
        "team": team,
        "stage": stage,
        "source": source,
        "region": region,
        "channel": channel,
        "in_pool": None if in_pool is None else str(in_pool).lower(),
        "created_from": created_from,
        "created_to": created_to,
        "tz": tz,
        "sort": sort,
    }
    values = {k: v if isinstance(v, list) else [v] for k, v in given.items() if v is not None}
    try:
        asked = parse_lead_query(values)
    except InvalidLeadQuery as invalid:
        raise invalid_query(
            *((f"/{name}", message) for name, message in invalid.problems)
        ) from None
    filters, order, scope = asked.filters, asked.order, caller.lead_scope
    if format_ == "csv":
        return StreamingResponse(
            export_rows(store, filters, order, scope),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="leads.csv"'},
        )
    after = None if cursor is None else _decode_cursor(cursor, filters, order)
    found = await run_in_threadpool(_find, store, filters, order, after, limit + 1, scope)
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        next_cursor = _encode_cursor(key_of(page[-1], order), filters, order)
    items = await run_in_threadpool(_with_next_deadlines, store, page)
    return {"items": items, "next_cursor": next_cursor}


def _with_next_deadlines(store: Store, page: list[LeadState]) -> list[dict[str, Any]]:
    """Each lead's body with its earliest running deadline in words' terms (one query)."""
    with store.engine.connect() as conn:
        earliest = next_deadlines(conn, [state.lead_id for state in page])
    words = DeadlineWords(store)
    return [
        {
            **lead_body(state),
            "next_deadline": (
                words.body(earliest[state.lead_id], state) if state.lead_id in earliest else None
            ),
        }
        for state in page
    ]


def _find(
    store: Store,
    filters: LeadFilters,
    order: LeadOrder,
    after: LeadKey | None,
    limit: int,
    scope: LeadScope,
) -> list[LeadState]:
    with store.engine.connect() as conn:
        return find_leads(conn, filters, after, limit, order=order, scope=scope)


def lead_body(state: LeadState) -> dict[str, Any]:
    """A lead as `GET /v1/leads/{id}` shows it."""
    body = asdict(state)
    body["tags"] = list(state.tags)
    body.pop("last_sequence")
    body["sequence"] = state.last_sequence
    return body


# A cursor is opaque to clients: base64url of the sort, the last lead's place in it and a
# digest of the filters and sort, so a cursor reused with others is refused, not misapplied.


def _query_digest(filters: LeadFilters, order: LeadOrder) -> str:
    canonical = json.dumps([filters.as_dict(), str(order)], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _encode_cursor(key: LeadKey, filters: LeadFilters, order: LeadOrder) -> str:
    return pack([order.sort, key.value, key.lead_id, _query_digest(filters, order)])


def _decode_cursor(cursor: str, filters: LeadFilters, order: LeadOrder) -> LeadKey:
    try:
        sort, value, lead_id, digest = unpack(cursor)
        if sort != order.sort or type(value) is not sort_value_type(sort):
            raise ValueError("a cursor of another sort")
        if isinstance(value, int) and not -(2**31) <= value < 2**31:
            raise ValueError("a number no lead holds")
        if sort in ("created_at", "last_activity_at"):
            # As `_encode_cursor` writes them: a time with its offset, one a UTC datetime can
            # hold (a crafted year 1 or 9999 overflowed in the query).
            after = datetime.fromisoformat(str(value))
            if after.tzinfo is None:
                raise ValueError("a cursor's time has an offset")
            value = after.astimezone(UTC).isoformat()
        key = LeadKey(value, str(UUID(lead_id)))
    except (ValueError, TypeError, OverflowError) as exc:
        raise bad_cursor() from exc
    if digest != _query_digest(filters, order):
        raise bad_cursor("this cursor was made for other filters: keep them the same")
    return key


NO_LEAD = refused(*KEYED, 404, meanings={404: "No such lead (`lead_not_found`)."})


@router.get("/{lead_id}", response_model=answer(LeadDetail), responses=NO_LEAD)
async def get_lead(lead_id: UUID, store: StoreDep, caller: ReadCaller) -> dict[str, Any]:
    """The lead's state from the `leads` projection; a lead the projector has not reached
    yet (just captured) is folded from the log instead, so it is never a 404 (but a lead
    outside a signed-in person's scope is). `deadlines`: its running timers, earliest
    first, each with what it will do (docs/working-leads.md)."""
    return await run_in_threadpool(_get_with_deadlines, store, caller, lead_id)


def _get_with_deadlines(store: Store, caller: Caller, lead_id: UUID) -> dict[str, Any]:
    state = visible_lead(store, caller, lead_id)
    with store.engine.connect() as conn:
        found = deadlines_of(conn, str(lead_id))
    words = DeadlineWords(store)
    return {**lead_body(state), "deadlines": [words.body(d, state) for d in found]}


@router.get("/{lead_id}/events", response_model=answer(LeadEvents), responses=NO_LEAD)
async def get_lead_events(lead_id: UUID, store: StoreDep, caller: ReadCaller) -> dict[str, Any]:
    """The lead's whole stream in order; each event posted through the API names its
    `actor`."""
    await run_in_threadpool(check_visible, store, caller, lead_id)
    events = await run_in_threadpool(store.event_log.lead_events, lead_id)
    return {"lead_id": str(lead_id), "events": [timeline_entry(e) for e in events]}


def timeline_entry(event: LoggedEvent) -> dict[str, Any]:
    """The event as the timeline shows it: its trace by id (`traceparent` also names the
    span, which is nobody's business here)."""
    entry = asdict(event)
    entry["trace_id"] = trace_id_of(entry.pop("traceparent"))
    return entry
