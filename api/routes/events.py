"""POST /v1/events and /v1/events/batch: validate, authenticate, append (SPEC §3.1, §4).

The append is the commit point: 202 means the event is durable in the log; any 4xx means
nothing was appended. Delivery to the workflow happens after, from the log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from api.acting import check_acting
from api.deps import IngestBody, IngestCaller, SettingsDep, StoreDep, WriterDep
from api.errors import ApiError
from api.openapi_bodies import EVENT_BODY, batch_body
from api.responses import KEYED, READS_BODY, BatchAccepted, EventAccepted, answer, refused
from api.sessions import actor_of
from domain.errors import FieldError, InvalidEvent
from domain.events import IncomingEvent, parse_event
from leadflow.logs import annotate
from store.ingest import ItemRejected

router = APIRouter(prefix="/v1/events", tags=["events"])

MAX_BATCH = 1000

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


# The answers are `JSONResponse`s, built as before: the models only describe them.
REFUSALS = refused(
    *KEYED,
    *READS_BODY,
    404,
    409,
    meanings={
        403: "The key lacks the `ingest` scope (`forbidden`), or a person signed in may not "
        "post this event on this lead (`not_permitted`, naming the field: docs/working-leads.md).",
        404: "`lead_id` names no lead (`lead_not_found`).",
        409: "The lead's state refuses the event (`lead_not_in_pool`, `rep_at_capacity`, "
        "`lead_closed`, `stage_would_move_backward`, ...) or the key was used for another "
        "payload (`idempotency_key_reused`); nothing was appended.",
        422: "The event is not valid (`invalid_event`): `details` names each bad field.",
    },
)


@router.post(
    "",
    status_code=202,
    openapi_extra=EVENT_BODY,
    response_model=answer(EventAccepted),
    responses=REFUSALS,
)
async def post_event(
    body: IngestBody,
    caller: IngestCaller,
    writer: WriterDep,
    store: StoreDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    event = parse_event(body, now=datetime.now(UTC), phone_region=settings.phone_region)
    await check_acting(store, caller, [event])
    key = event.event_id or idempotency_key
    try:
        # Keys are the sending API key's own: another integration's `form-42` is another.
        [result] = await writer.append([event], [key], scope=caller.key_id, actor=actor_of(caller))
    except ItemRejected as rejected:
        raise rejected.cause from None
    if result.lead_id is not None:
        annotate(lead_id=str(result.lead_id))
    return JSONResponse(result.as_dict(), status_code=202)


@router.post(
    "/batch",
    status_code=202,
    openapi_extra=batch_body(MAX_BATCH),
    response_model=answer(BatchAccepted),
    responses={
        **REFUSALS,
        413: {
            **REFUSALS[413],
            "description": f"The body is over 1 MiB (`body_too_large`) or holds over {MAX_BATCH} "
            "events (`batch_too_large`).",
        },
    },
)
async def post_batch(
    body: IngestBody,
    caller: IngestCaller,
    writer: WriterDep,
    store: StoreDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise InvalidEvent([FieldError("/events", "required: a list of events")])
    items: list[Any] = body["events"]
    if len(items) > MAX_BATCH:
        raise ApiError(413, "batch_too_large", f"a batch holds at most {MAX_BATCH} events")
    now = datetime.now(UTC)
    events: list[IncomingEvent] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            events.append(parse_event(item, now=now, phone_region=settings.phone_region))
        except InvalidEvent as invalid:
            errors.extend(invalid.prefixed(f"/events/{index}").errors)
    if errors:
        raise InvalidEvent(errors)
    await check_acting(store, caller, events, prefix="/events")
    # The batch's Idempotency-Key K stands for "K/<index>" on each item without an event_id.
    keys = [
        e.event_id or (f"{idempotency_key}/{i}" if idempotency_key else None)
        for i, e in enumerate(events)
    ]
    results = await writer.append(events, keys, scope=caller.key_id, actor=actor_of(caller))
    return JSONResponse({"results": [r.as_dict() for r in results]}, status_code=202)
