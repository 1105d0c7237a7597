"""Working leads (issue #19): `POST /v1/leads/reassign` (bulk reassignment, one
`lead.reassigned` per lead through the events writer) and `GET /v1/worklist` (a rep's open
leads, overdue first). docs/working-leads.md."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from api.acting import refusals_of
from api.cursors import bad_cursor, pack, unpack
from api.deadlines import DeadlineWords
from api.deps import IngestBody, IngestCaller, SettingsDep, StoreDep, WriterDep, require
from api.errors import ApiError, invalid_query
from api.ingest_writer import GroupCommitter
from api.openapi_bodies import reassign_body
from api.responses import KEYED, READS_BODY, answer, refused
from api.sessions import actor_of
from api.work_responses import Reassigned, Worklist
from domain.access import managed_teams
from domain.acting import NotPermitted
from domain.errors import DomainError, FieldError
from domain.events import IncomingEvent, parse_event
from domain.state import LeadState
from leadflow.bootstrap import Store
from projections.leads import open_leads_of
from store.deadlines import Deadline, next_deadlines
from store.ingest import ItemRejected
from store.keys import Caller

router = APIRouter(tags=["work"])

MAX_REASSIGN = 500
_REASSIGN_KEYS = {"lead_ids", "rep_id", "reason"}


def _invalid(errors: list[FieldError]) -> ApiError:
    return ApiError(
        422, "invalid_request", "the request is not valid", [e.as_dict() for e in errors]
    )


def _parse_reassign(body: Any) -> tuple[list[UUID], str, str | None]:
    """The leads, the rep and the reason of a bulk reassignment; 422 naming each bad field."""
    if not isinstance(body, dict):
        raise _invalid([FieldError("", "expected a JSON object")])
    errors = [FieldError(f"/{key}", "unknown field") for key in body if key not in _REASSIGN_KEYS]
    lead_ids: list[UUID] = []
    raw = body.get("lead_ids")
    if not isinstance(raw, list) or not raw:
        errors.append(FieldError("/lead_ids", "required: a list of 1 to 500 lead ids"))
    elif len(raw) > MAX_REASSIGN:
        errors.append(FieldError("/lead_ids", f"at most {MAX_REASSIGN} leads at once"))
    else:
        for index, item in enumerate(raw):
            try:
                lead_id = UUID(item) if isinstance(item, str) else None
            except ValueError:
                lead_id = None
            if lead_id is None:
                errors.append(FieldError(f"/lead_ids/{index}", "not a lead id (a UUID)"))
            elif lead_id in lead_ids:
                errors.append(FieldError(f"/lead_ids/{index}", "listed twice"))
            else:
                lead_ids.append(lead_id)
    rep_id = body.get("rep_id")
    if not isinstance(rep_id, str) or not 1 <= len(rep_id) <= 100:
        errors.append(FieldError("/rep_id", "required: a rep id of 1 to 100 characters"))
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 500):
        errors.append(FieldError("/reason", "a text of 1 to 500 characters"))
    if errors:
        raise _invalid(errors)
    assert isinstance(rep_id, str)
    return lead_ids, rep_id, reason


@router.post(
    "/v1/leads/reassign",
    openapi_extra=reassign_body(MAX_REASSIGN),
    response_model=answer(Reassigned),
    responses=refused(
        *KEYED,
        *READS_BODY,
        meanings={
            403: "The key lacks the `ingest` scope (`forbidden`), or the person signed in is "
            "a rep (`not_permitted`).",
            422: "The body is not valid (`invalid_request`): `details` names each bad field; "
            "nothing was appended.",
        },
    ),
)
async def reassign_leads(
    body: IngestBody,
    caller: IngestCaller,
    writer: WriterDep,
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Reassign each lead to `rep_id`: one `lead.reassigned` per lead, validated and
    appended as `POST /v1/events` appends it. A refused lead (`not_permitted`,
    `lead_not_found`, `lead_closed`, ...) does not stop the others; results are in order."""
    lead_ids, rep_id, reason = _parse_reassign(body)
    if caller.role == "rep":
        raise NotPermitted(FieldError("", "a rep may not reassign leads"))
    data: dict[str, Any] = (
        {"rep_id": rep_id} if reason is None else {"rep_id": rep_id, "reason": reason}
    )
    now = datetime.now(UTC)
    events = [
        parse_event(
            {"type": "lead.reassigned", "lead_id": str(lead_id), "data": data},
            now=now,
            phone_region=settings.phone_region,
        )
        for lead_id in lead_ids
    ]
    faults = await run_in_threadpool(refusals_of, store, caller, events)
    answers = await asyncio.gather(
        *(
            _reassign_one(caller, writer, event, fault)
            for event, fault in zip(events, faults, strict=True)
        )
    )
    return {"results": answers}


async def _reassign_one(
    caller: Caller, writer: GroupCommitter, event: IncomingEvent, fault: FieldError | None
) -> dict[str, Any]:
    """One lead's reassignment: refused when the person may not, else appended alone (the
    writer commits the leads' appends together, each all or nothing on its own)."""
    lead_id = str(event.lead_id)
    if fault is not None:
        return _refused(lead_id, NotPermitted(fault))
    try:
        [appended] = await writer.append(
            [event], [None], scope=caller.key_id, actor=actor_of(caller)
        )
    except ItemRejected as rejected:
        return _refused(lead_id, rejected.cause)
    except DomainError as refusal:
        return _refused(lead_id, refusal)
    return {
        "lead_id": lead_id,
        "status": "reassigned",
        "event_id": appended.event_id,
        "error": None,
    }


def _refused(lead_id: str, error: DomainError) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "status": "refused",
        "event_id": None,
        "error": {"code": error.code, "message": error.message},
    }


# --- the worklist --------------------------------------------------------------------------

WorklistKey = tuple[int, str, str]  # (0 with a deadline / 1 without, UTC time, lead id)


def _utc(moment: str | None) -> str:
    return "" if moment is None else datetime.fromisoformat(moment).astimezone(UTC).isoformat()


def worklist_key(state: LeadState, deadline: Deadline | None) -> WorklistKey:
    """A lead's place on the worklist: by next deadline (past due first), then the leads
    without one by last activity, oldest first."""
    if deadline is not None:
        return (0, _utc(deadline.timer.due_at), state.lead_id)
    return (1, _utc(state.last_activity_at or state.created_at), state.lead_id)


def _owner_for(caller: Caller, owner: str | None, store: Store) -> str:
    """Whose worklist: `owner`, or the person signed in; refuses what their role may not."""
    if owner is None:
        if caller.role is None:
            raise invalid_query(("/owner", "an API key must name the owner"))
        if caller.person_id is None:
            raise invalid_query(("/owner", "you are not a person of the directory: name the owner"))
        return caller.person_id
    if caller.role in (None, "director", "admin") or owner == caller.person_id:
        return owner
    if caller.role == "manager":
        directory = store.rulebook.directory()
        rep = directory.rep(owner)
        if rep is not None and rep.team in managed_teams(caller.person_id, directory):
            return owner
    raise NotPermitted(
        FieldError("/owner", f"a {caller.role} may see only their own worklist or their reps'")
    )


def _encode_cursor(key: WorklistKey, owner: str) -> str:
    return pack([*key, owner])


def _decode_cursor(cursor: str, owner: str) -> WorklistKey:
    try:
        rank, moment, lead_id, for_owner = unpack(cursor)
        if rank not in (0, 1) or not isinstance(moment, str) or not isinstance(lead_id, str):
            raise ValueError("not a worklist place")
    except (ValueError, TypeError) as exc:
        raise bad_cursor() from exc
    if for_owner != owner:
        raise bad_cursor("this cursor was made for another owner")
    return (rank, moment, lead_id)


def _worklist(
    store: Store, owner: str, after: WorklistKey | None, limit: int
) -> tuple[list[dict[str, Any]], WorklistKey | None]:
    with store.engine.connect() as conn:
        leads = open_leads_of(conn, owner)
        deadlines = next_deadlines(conn, [lead.lead_id for lead in leads])
    placed = sorted((worklist_key(lead, deadlines.get(lead.lead_id)), lead) for lead in leads)
    if after is not None:
        placed = [(key, lead) for key, lead in placed if key > after]
    page = placed[:limit]
    words = DeadlineWords(store)
    items = []
    for _, lead in page:
        deadline = deadlines.get(lead.lead_id)
        items.append(
            {
                "lead_id": lead.lead_id,
                "name": lead.name,
                "company": lead.company,
                "stage": lead.stage,
                "owner": owner,
                "last_activity_at": lead.last_activity_at,
                "next_deadline": None if deadline is None else words.body(deadline, lead),
            }
        )
    return items, (page[-1][0] if len(placed) > limit else None)


@router.get(
    "/v1/worklist",
    response_model=answer(Worklist),
    dependencies=[Depends(require("read"))],
    responses=refused(
        *KEYED,
        meanings={
            403: "The key lacks the `read` scope (`forbidden`), or a person asks for a "
            "worklist their role may not see (`not_permitted`).",
            422: "`owner` is missing for an API key, or a parameter or `cursor` is not valid.",
        },
    ),
)
async def worklist(
    store: StoreDep,
    caller: Annotated[Caller, Depends(require("read"))],
    owner: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> dict[str, Any]:
    """`owner`'s open leads (not won or lost, not in the pool), overdue first: by next
    deadline, then those without one by last activity (oldest first); `limit` at a time."""
    owner = await run_in_threadpool(_owner_for, caller, owner, store)
    after = None if cursor is None else _decode_cursor(cursor, owner)
    items, last = await run_in_threadpool(_worklist, store, owner, after, limit)
    next_cursor = None if last is None else _encode_cursor(last, owner)
    return {"owner": owner, "items": items, "next_cursor": next_cursor}
