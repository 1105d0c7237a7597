"""GET /v1/leads (a filtered page) and /v1/leads/{id} (current state), both from the
`leads` projection, and /v1/leads/{id}/events (the whole stream, from the log)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from api.deadlines import DeadlineWords
from api.deps import ReadCaller, StoreDep, require
from api.errors import ApiError
from api.responses import KEYED, LeadEvents, LeadPage, answer, refused
from api.visibility import check_visible, visible_lead
from api.work_responses import LeadDetail
from domain.access import LeadScope
from domain.state import LeadState, LoggedEvent
from leadflow.bootstrap import Store
from leadflow.tracing import trace_id_of
from projections.leads import LeadFilters, LeadKey, find_leads, key_of
from store.deadlines import deadlines_of
from store.keys import Caller

router = APIRouter(prefix="/v1/leads", tags=["leads"], dependencies=[Depends(require("read"))])

Stage = Literal["new", "MQL", "SQL", "opportunity", "won", "lost"]
FilterValue = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get(
    "",
    response_model=answer(LeadPage),
    responses=refused(
        *KEYED, meanings={422: "A filter is not valid, or `cursor` is not one this API made."}
    ),
)
async def list_leads(
    store: StoreDep,
    caller: ReadCaller,
    owner: FilterValue = None,
    team: FilterValue = None,
    stage: Stage | None = None,
    in_pool: bool | None = None,
    source: FilterValue = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> dict[str, Any]:
    """Leads matching every given filter, oldest capture first, `limit` at a time; pass
    `next_cursor` back as `cursor` for the next page (null: no more). A person signed in
    sees only the leads their role allows (docs/access.md)."""
    filters = LeadFilters(owner=owner, team=team, stage=stage, in_pool=in_pool, source=source)
    after = None if cursor is None else _decode_cursor(cursor, filters)
    found = await run_in_threadpool(_find, store, filters, after, limit + 1, caller.lead_scope)
    page = found[:limit]
    next_cursor = _encode_cursor(key_of(page[-1]), filters) if len(found) > limit else None
    return {"items": [lead_body(state) for state in page], "next_cursor": next_cursor}


def _find(
    store: Store, filters: LeadFilters, after: LeadKey | None, limit: int, scope: LeadScope
) -> list[LeadState]:
    with store.engine.connect() as conn:
        return find_leads(conn, filters, after, limit, scope)


def lead_body(state: LeadState) -> dict[str, Any]:
    """A lead as `GET /v1/leads/{id}` shows it."""
    body = asdict(state)
    body["tags"] = list(state.tags)
    body.pop("last_sequence")
    body["sequence"] = state.last_sequence
    return body


# A cursor is opaque to clients: base64url of the last lead's place in the page order and a
# digest of the filters, so a cursor reused with other filters is refused, not misapplied.


def _filters_digest(filters: LeadFilters) -> str:
    canonical = json.dumps(filters.as_dict(), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _encode_cursor(key: LeadKey, filters: LeadFilters) -> str:
    raw = json.dumps([key.created_at, key.lead_id, _filters_digest(filters)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, filters: LeadFilters) -> LeadKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, lead_id, digest = json.loads(raw)
        # As `_encode_cursor` writes them: a time with its offset, one a UTC datetime can
        # hold (a crafted year 1 or 9999 overflowed in the query), and a lead id.
        after = datetime.fromisoformat(created_at)
        if after.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        key = LeadKey(after.astimezone(UTC).isoformat(), str(UUID(lead_id)))
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise _bad_cursor("not a cursor from this API: pass next_cursor back unchanged") from exc
    if digest != _filters_digest(filters):
        raise _bad_cursor("this cursor was made for other filters: keep them the same")
    return key


def _bad_cursor(message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_request",
        "the request is not valid",
        [{"path": "/cursor", "message": message, "in": "query"}],
    )


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
