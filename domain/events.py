"""The event catalogue (SPEC §4) and validation of posted events.

`parse_event` turns a posted JSON envelope into an `IncomingEvent` or raises `InvalidEvent`
listing every bad field by JSON Pointer. What it accepts stays within `domain.limits`, so
every hop behind the door can process it. Pure: the clock and the phone region come in as
arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.errors import FieldError, InvalidEvent, json_pointer
from domain.identity import DECIDED_ID_PREFIX, BadIdentity, normalise_email, normalise_phone
from domain.limits import (
    amount_fault,
    attributes_faults,
    event_data_fault,
    occurred_at_fault,
    period_date_fault,
    unsafe_values,
)

Intent = Literal["low", "medium", "high"]


def _bounded_amount(amount: Decimal) -> Decimal:
    fault = amount_fault(amount)
    if fault is not None:
        raise ValueError(fault)
    return amount


def _bounded_period_date(day: date) -> date:
    fault = period_date_fault(day)
    if fault is not None:
        raise ValueError(fault)
    return day


Amount = Annotated[Decimal, AfterValidator(_bounded_amount)]
PeriodDate = Annotated[date, AfterValidator(_bounded_period_date)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LeadCapturedData(_Data):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    source: str = Field(min_length=1, max_length=100)
    channel: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    industry: str | None = Field(default=None, max_length=100)
    company_size: str | None = Field(default=None, max_length=50)
    campaign_id: str | None = Field(default=None, max_length=100)
    form_id: str | None = Field(default=None, max_length=100)
    intent: Intent | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _normal_email(cls, raw: str | None) -> str | None:
        return None if raw is None else _identity(lambda: normalise_email(raw))

    @field_validator("phone")
    @classmethod
    def _normal_phone(cls, raw: str | None, info: ValidationInfo) -> str | None:
        region = (info.context or {}).get("phone_region", "CN")
        return None if raw is None else _identity(lambda: normalise_phone(raw, region))


def _identity(normalise: Callable[[], str]) -> str:
    try:
        return normalise()
    except BadIdentity as exc:
        raise ValueError(str(exc)) from exc


class LeadFollowedUpData(_Data):
    rep_id: str = Field(min_length=1, max_length=100)
    kind: Literal["call", "email", "meeting", "visit", "sms", "wechat"] | None = None
    note: str | None = Field(default=None, max_length=5000)


class RepActionData(_Data):
    rep_id: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=500)


class LeadClaimedData(_Data):
    rep_id: str = Field(min_length=1, max_length=100)


class LeadQualifiedData(_Data):
    stage: Literal["MQL", "SQL"]


class OpportunityOpenedData(_Data):
    amount: Amount | None = None


class LeadWonData(_Data):
    amount: Amount
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class LeadLostData(_Data):
    reason: str | None = Field(default=None, max_length=500)


class EmailTrackedData(_Data):
    message_id: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2000)


class EmailBouncedData(EmailTrackedData):
    # "hard": the address cannot receive mail (sets the lead's do-not-contact flag);
    # "soft": a passing failure. Absent, as on every bounce stored before `kind` existed,
    # it is soft: the flag is set only by what says it is permanent (docs/consent.md).
    kind: Literal["hard", "soft"] | None = None


class EmptyData(_Data):
    pass


class SpendRecordedData(_Data):
    campaign_id: str = Field(min_length=1, max_length=100)
    amount: Amount
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    period_start: PeriodDate | None = None
    period_end: PeriodDate | None = None

    @model_validator(mode="after")
    def _period_in_order(self) -> SpendRecordedData:
        if self.period_start and self.period_end and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


EXTERNAL_DATA: dict[str, type[_Data]] = {
    "lead.captured": LeadCapturedData,
    "lead.followed_up": LeadFollowedUpData,
    "lead.claimed": LeadClaimedData,
    "lead.reassigned": RepActionData,
    "lead.released": RepActionData,
    "lead.qualified": LeadQualifiedData,
    "lead.opportunity_opened": OpportunityOpenedData,
    "lead.won": LeadWonData,
    "lead.lost": LeadLostData,
    "email.opened": EmailTrackedData,
    "email.clicked": EmailTrackedData,
    "email.bounced": EmailBouncedData,
    "email.replied": EmailTrackedData,
    "lead.unsubscribed": EmptyData,
    "campaign.spend_recorded": SpendRecordedData,
}

DECIDED_TYPES = frozenset(
    {
        "lead.assigned",
        "lead.task_created",
        "lead.timer_fired",
        "lead.reminder_sent",
        "lead.returned_to_pool",
        "lead.stage_changed",
        "lead.scored",
        "nurture.enrolled",
        "nurture.email_sent",
        "nurture.exited",
        "experiment.variant_assigned",
        "notification.sent",
        "ruleset.published",
        "ruleset.activated",
        # Beyond SPEC §4's list, for actions whose effect must be a fact on the log:
        "lead.tagged",
        "lead.intent_set",
        "notification.queued",
        "directory.replaced",
    }
)

# Lead events an admin appends through `POST/DELETE /v1/leads/{id}/do-not-contact`
# (`domain.consent`), never through /v1/events: who did it comes from the caller's key.
ADMIN_TYPES = frozenset({"lead.do_not_contact_set", "lead.do_not_contact_lifted"})

# Events that belong to no lead.
LEADLESS_TYPES = frozenset({"campaign.spend_recorded"})


@dataclass(frozen=True)
class IncomingEvent:
    """A validated external event, ready to be appended."""

    type: str
    data: dict[str, Any]
    occurred_at: datetime
    event_id: str | None = None
    lead_id: UUID | None = None
    identities: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    # The W3C trace context it was appended in, when traces are on (`leadflow.tracing`).
    traceparent: str | None = None
    # Who posted it (`domain.state.LoggedEvent.actor`): set by the API, never from the body.
    actor: dict[str, Any] | None = None

    @property
    def is_capture(self) -> bool:
        return self.type == "lead.captured"


_ENVELOPE_KEYS = {"type", "lead_id", "event_id", "occurred_at", "data"}


def _parse_time(raw: object, now: datetime) -> datetime:
    if raw is None:
        return now
    if not isinstance(raw, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-01-31T09:00:00Z") from exc
    if parsed.tzinfo is None:
        raise ValueError("must include a time-zone offset (e.g. Z or +08:00)")
    # Checked before converting: year 1 or 9999 with an offset leaves datetime's range.
    fault = occurred_at_fault(parsed, now)
    if fault is not None:
        raise ValueError(fault)
    return parsed.astimezone(UTC)


def _json_safe(data: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = data.model_dump(mode="json", exclude_none=True)
    return dumped


def parse_event(body: object, *, now: datetime, phone_region: str) -> IncomingEvent:
    """Validate one posted envelope (a parsed JSON value); raise InvalidEvent naming every
    bad field. What it returns is within `domain.limits`: no NUL or lone surrogate in any
    string, only finite numbers, bounded amounts, times, attributes and encoded size."""
    if not isinstance(body, dict):
        raise InvalidEvent([FieldError("", "an event must be a JSON object")])
    # Text and numbers first, on their own: no field check then meets a value it cannot
    # handle, and no message echoes one.
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidEvent(unsafe)
    errors: list[FieldError] = []
    for key in body:
        if key not in _ENVELOPE_KEYS:
            errors.append(FieldError(json_pointer((key,)), "unknown field"))

    event_type = body.get("type")
    model: type[_Data] | None = None
    if not isinstance(event_type, str):
        errors.append(FieldError("/type", "required: the event type, e.g. lead.captured"))
    elif event_type in DECIDED_TYPES:
        errors.append(FieldError("/type", f"{event_type} is decided by leadflow, not posted"))
    elif event_type in ADMIN_TYPES:
        errors.append(
            FieldError("/type", f"{event_type} is set by an admin: /v1/leads/{{id}}/do-not-contact")
        )
    elif event_type not in EXTERNAL_DATA:
        errors.append(FieldError("/type", f"unknown event type {event_type!r}"))
    else:
        model = EXTERNAL_DATA[event_type]

    lead_id: UUID | None = None
    raw_lead = body.get("lead_id")
    if isinstance(event_type, str) and model is not None:
        if event_type == "lead.captured" and raw_lead is not None:
            errors.append(FieldError("/lead_id", "omit it: a capture's lead is found by identity"))
        elif event_type in LEADLESS_TYPES and raw_lead is not None:
            errors.append(FieldError("/lead_id", f"{event_type} belongs to no lead"))
        elif event_type != "lead.captured" and event_type not in LEADLESS_TYPES:
            if raw_lead is None:
                errors.append(FieldError("/lead_id", "required for this event type"))
            else:
                try:
                    lead_id = UUID(str(raw_lead))
                except ValueError:
                    errors.append(FieldError("/lead_id", "must be a lead id (UUID)"))

    event_id = body.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not 1 <= len(event_id) <= 200):
        errors.append(FieldError("/event_id", "must be a string of 1 to 200 characters"))
        event_id = None
    elif isinstance(event_id, str) and event_id.startswith(DECIDED_ID_PREFIX):
        errors.append(
            FieldError("/event_id", f"ids starting with {DECIDED_ID_PREFIX!r} are leadflow's own")
        )
        event_id = None

    try:
        occurred_at = _parse_time(body.get("occurred_at"), now)
    except ValueError as exc:
        errors.append(FieldError("/occurred_at", str(exc)))
        occurred_at = now

    data: dict[str, Any] = {}
    identities: dict[str, str] = {}
    raw_data = body.get("data", {})
    if not isinstance(raw_data, dict):
        errors.append(FieldError("/data", "must be a JSON object"))
    elif model is not None:
        if model is LeadCapturedData and not raw_data.get("email") and not raw_data.get("phone"):
            errors.append(FieldError("/data", "email or phone is required"))
        if model is LeadCapturedData and isinstance(raw_data.get("attributes"), dict):
            errors.extend(attributes_faults(raw_data["attributes"]))
        try:
            parsed = model.model_validate(raw_data, context={"phone_region": phone_region})
        except ValidationError as exc:
            for err in exc.errors():
                msg = str(err["msg"]).removeprefix("Value error, ")
                errors.append(FieldError(json_pointer(("data", *err["loc"])), msg))
        else:
            data = _json_safe(parsed)
            if isinstance(parsed, LeadCapturedData):
                identities = {k: data[k] for k in ("email", "phone") if k in data}
            too_big = event_data_fault(data)
            if too_big is not None:
                errors.append(too_big)

    if errors:
        raise InvalidEvent(errors)
    assert isinstance(event_type, str)
    canonical = {k: v for k, v in body.items() if k != "event_id"}
    return IncomingEvent(
        fingerprint=hashlib.sha256(
            json.dumps(canonical, sort_keys=True, default=str).encode()
        ).hexdigest(),
        type=event_type,
        data=data,
        occurred_at=occurred_at,
        event_id=event_id if isinstance(event_id, str) else None,
        lead_id=lead_id,
        identities=identities,
    )
