"""An admin's change to a lead's do-not-contact flag, as an event on the lead's stream.

`POST /v1/leads/{id}/do-not-contact` and `.../do-not-contact/lift` take `{"reason"}`; the
event carries the reason and who did it (the admin key's id), so every change of the flag
is a fact on the log with its author (docs/consent.md). Pure: the time comes in.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.errors import FieldError, InvalidDocument, json_pointer
from domain.events import IncomingEvent
from domain.limits import unsafe_values

SET = "lead.do_not_contact_set"
LIFTED = "lead.do_not_contact_lifted"


class InvalidDoNotContact(InvalidDocument):
    code = "invalid_request"
    what = "request"


class DoNotContactRequest(BaseModel):
    """The body of both routes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why (kept on the log with the change), e.g. asked by phone on 1 Dec.",
    )


def do_not_contact_event(
    body: object, *, lead_id: UUID, lift: bool, by: str, now: datetime
) -> IncomingEvent:
    """The event that sets (or, `lift`, lifts) the flag of `lead_id` for the admin key
    `by`; raises InvalidDoNotContact naming each bad field by JSON Pointer."""
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidDoNotContact(unsafe)
    if not isinstance(body, dict):
        raise InvalidDoNotContact([FieldError("", 'must be a JSON object: {"reason": "..."}')])
    try:
        request = DoNotContactRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidDoNotContact(
            [
                FieldError(json_pointer(err["loc"]), str(err["msg"]).removeprefix("Value error, "))
                for err in exc.errors()
            ]
        ) from None
    event_type = LIFTED if lift else SET
    data = {"reason": request.reason, "by": by}
    canonical = {"type": event_type, "lead_id": str(lead_id), "data": data}
    return IncomingEvent(
        type=event_type,
        data=data,
        occurred_at=now,
        lead_id=lead_id,
        fingerprint=hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest(),
    )
