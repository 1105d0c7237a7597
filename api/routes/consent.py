"""POST /v1/leads/{id}/do-not-contact and /v1/leads/{id}/do-not-contact/lift (admin):
an admin sets or lifts a lead's do-not-contact flag (docs/consent.md).

Each appends one event (`lead.do_not_contact_set` / `lead.do_not_contact_lifted`, with
the reason and the admin key's id) through the same writer as /v1/events, so it reaches
the lead's workflow like any posted event: setting the flag ends its nurture sequences.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from api.deps import AdminBody, AdminCaller, WriterDep
from api.ingest_writer import GroupCommitter
from api.responses import KEYED, READS_BODY, EventAccepted, answer, refused
from api.sessions import actor_of
from domain.consent import DoNotContactRequest, do_not_contact_event
from leadflow.logs import annotate
from store.ingest import ItemRejected
from store.keys import Caller

router = APIRouter(prefix="/v1/leads", tags=["leads"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

REASON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": DoNotContactRequest.model_json_schema(),
                "example": {"reason": "asked on the phone not to be emailed"},
            }
        },
    }
}
REFUSALS = refused(
    *KEYED,
    *READS_BODY,
    404,
    409,
    meanings={
        404: "No such lead (`lead_not_found`).",
        409: "The flag is already so (`do_not_contact_unchanged`); nothing was appended.",
        422: "`reason` is missing or not valid (`invalid_request`), or the lead id is not one.",
    },
)


async def _append(
    lead_id: UUID, lift: bool, body: Any, caller: Caller, writer: GroupCommitter, key: str | None
) -> JSONResponse:
    event = do_not_contact_event(
        body, lead_id=lead_id, lift=lift, by=caller.key_id, now=datetime.now(UTC)
    )
    annotate(lead_id=str(lead_id))
    try:
        [result] = await writer.append([event], [key], scope=caller.key_id, actor=actor_of(caller))
    except ItemRejected as rejected:
        raise rejected.cause from None
    return JSONResponse(result.as_dict(), status_code=202)


@router.post(
    "/{lead_id}/do-not-contact",
    status_code=202,
    openapi_extra=REASON_BODY,
    response_model=answer(EventAccepted),
    responses=REFUSALS,
)
async def set_do_not_contact(
    lead_id: UUID,
    body: AdminBody,
    caller: AdminCaller,
    writer: WriterDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Put the lead on do-not-contact: no marketing email goes to it from now on (its
    running sequences end). Appends `lead.do_not_contact_set {reason, by}`."""
    return await _append(lead_id, False, body, caller, writer, idempotency_key)


@router.post(
    "/{lead_id}/do-not-contact/lift",
    status_code=202,
    openapi_extra=REASON_BODY,
    response_model=answer(EventAccepted),
    responses=REFUSALS,
)
async def lift_do_not_contact(
    lead_id: UUID,
    body: AdminBody,
    caller: AdminCaller,
    writer: WriterDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Lift the flag, whatever set it (an unsubscribe, a hard bounce, an admin): only
    with the lead's renewed consent. Appends `lead.do_not_contact_lifted {reason, by}`;
    rules may enrol the lead again at its next trigger."""
    return await _append(lead_id, True, body, caller, writer, idempotency_key)
