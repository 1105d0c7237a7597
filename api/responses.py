"""What each route answers, as pydantic models: the responses of the OpenAPI description.

The routes build their answers as dicts (or `JSONResponse`s) and keep doing so: a route
declares `response_model=answer(Model)`, which is `dict[str, Any]` at run time (validated
and serialised exactly as before, nothing added on the ingest path) and `Model` in the
description. `describe_api` adds the models' schemas (`MODELS`, and the reports' in
`api.report_responses`) to the document, and
the contract test (`tests/integration/test_fuzz_api.py`) checks real answers against them.

`refused(...)` declares the error envelope, `{"error": {code, message, details}}`
(`api.errors.error_body`), for the 4xx/5xx statuses a route can answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from store.keys import MAX_ROTATION_GRACE

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
LeadId = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Fraction = Annotated[float | None, Field(description="A fraction (0.625, not 62.5); null: 0/0.")]


def component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# The documents a client sends, as stored: described by their request schemas
# (`api.openapi_bodies`); under `allOf`, as pydantic resolves a bare `$ref` of a field.
RulesetDocument = Annotated[dict[str, Any], WithJsonSchema({"allOf": [component("Ruleset")]})]
DirectoryDocument = Annotated[dict[str, Any], WithJsonSchema(component("Directory"))]


class Answer(BaseModel):
    """A JSON object leadflow answers: every field is always present (null where it has no
    value), and no other."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# --- errors --------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """One thing wrong: a bad field (a JSON Pointer `path`, with `in` for a parameter), or
    from `/readyz` a component that is down."""

    model_config = ConfigDict(extra="allow")

    path: str | None = Field(None, examples=["/data/email"])
    message: str | None = Field(None, examples=["required: email or phone"])
    in_: Literal["path", "query", "header", "body"] | None = Field(None, alias="in")


class ErrorContent(Answer):
    code: str = Field(
        description="Stable, for programs: e.g. `invalid_event`, `unauthenticated`, "
        "`lead_not_in_pool`, `database_busy`.",
        examples=["invalid_event"],
    )
    message: str = Field(description="For people.", examples=["the event is not valid"])
    details: list[ErrorDetail]


class Error(Answer):
    """Every error leadflow answers (SPEC §9)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_event",
                        "message": "the event is not valid",
                        "details": [{"path": "/data/email", "message": "not an email address"}],
                    }
                }
            ]
        }
    )

    error: ErrorContent


class NotReady(Error):
    """`/readyz` while the database does not answer: the error, and the checks."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "not_ready",
                        "message": "not ready: the database does not answer",
                        "details": [
                            {
                                "component": "database",
                                "status": "down",
                                "code": "database_unavailable",
                                "message": "the database cannot be reached",
                            }
                        ],
                    },
                    "checks": {"database": "down"},
                }
            ]
        }
    )

    checks: dict[str, Literal["up", "down"]]


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
_REFUSALS: dict[int, str] = {
    400: "The body is not strict JSON (`malformed_json`) or nests objects and arrays more "
    "than 64 deep (`json_too_deep`).",
    401: "No API key, or one that is unknown, revoked or expired (`unauthenticated`).",
    403: "The key lacks the scope this operation needs (`forbidden`).",
    404: "Not found.",
    409: "Refused: it contradicts what is already there.",
    413: "The body is over 1 MiB (`body_too_large`).",
    422: "A parameter or the body is not valid: `details` names each bad field.",
    429: "Too many failed authentications from this address "
    "(`too_many_failed_authentications`): wait `Retry-After` seconds.",
    503: "The database is busy or unavailable (`database_busy`, `database_unavailable`, "
    "`storage_full`): nothing was written; retry after `Retry-After` seconds.",
}
# Every operation can answer 422: a NUL in any path or query parameter is refused first.
KEYED = (401, 403, 422, 429, 503)  # any operation behind an API key
READS_BODY = (400, 413)  # any operation that reads a JSON body


def refused(*statuses: int, meanings: Mapping[int, str] | None = None) -> dict[int | str, Any]:
    """`responses=` declaring the error envelope for `statuses`, each with its meaning
    (`meanings` overriding the general one) and `Retry-After` where it is sent."""
    described: dict[int | str, Any] = {}
    for status in sorted(set(statuses)):
        response: dict[str, Any] = {
            "description": (meanings or {}).get(status, _REFUSALS[status]),
            "content": {"application/json": {"schema": component(Error.__name__)}},
        }
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        described[status] = response
    return described


def answer(*models: type[BaseModel]) -> Any:
    """A `response_model`: `dict[str, Any]` at run time, one of `models` in the description.
    A route returning a `JSONResponse` is not serialised at all."""
    refs = [component(model.__name__) for model in models]
    return Annotated[dict[str, Any], WithJsonSchema(refs[0] if len(refs) == 1 else {"anyOf": refs})]


# --- health --------------------------------------------------------------------------------


class Alive(Answer):
    status: Literal["ok"]


class Ready(Answer):
    """Ready: this API can append. `degraded` while Temporal or a worker is away (named in
    `checks`) or leads wait in the quarantine (`quarantine`: open items by status)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "checks": {"database": "up", "temporal": "down", "worker": "down"},
                    "quarantine": {
                        "retrying": 0,
                        "parked": 0,
                        "retry_requested": 0,
                        "skip_requested": 0,
                    },
                }
            ]
        }
    )

    status: Literal["ready", "degraded"]
    checks: dict[str, Literal["up", "down"]]
    quarantine: dict[str, int]


class ComponentError(Answer):
    """What last went wrong with a component: a fault's `code` where it has one, and when
    (`at`) for an error recorded in the quarantine."""

    message: str
    code: str | None
    at: Timestamp | None


class Component(Answer):
    """One component of the flow; the figures that do not apply to it are null."""

    name: str = Field(examples=["database", "temporal", "worker", "dispatcher", "decisions"])
    status: Literal["up", "down", "behind", "degraded"]
    position: int | None = Field(
        description="The log position a follower has read through (its slowest partition's)."
    )
    lag_events: int | None = Field(description="Events of its topics it has yet to handle.")
    lag_seconds: float | None = Field(description="How long the oldest of them has waited.")
    quarantined: int | None = Field(description="Its open items in the quarantine.")
    last_error: ComponentError | None


class FollowerPartition(Answer):
    """A partition of the log's followers (PostgreSQL: any number of projector processes
    share them by leases) and the process following it now."""

    group: str = Field(examples=["projector"])
    partition: int
    holder: str | None = Field(
        description="host:pid:nonce of the projector process holding it; null: nobody (it "
        "is taken over within the lease's length)",
        examples=["leads-2:4242:9f3a1c"],
    )
    expires_at: Timestamp | None
    lag_events: int | None = Field(
        description="The most events of this partition one of its followers (the dispatcher, "
        "each read model) has still to read."
    )


class FlowStatus(Answer):
    """`GET /v1/status`: every component, with its lag and its last error, and who follows
    the log."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "checked_at": "2026-12-06T08:00:00+00:00",
                    "log_position": 5120,
                    "components": [
                        {
                            "name": "dispatcher",
                            "status": "degraded",
                            "position": 5118,
                            "lag_events": 0,
                            "lag_seconds": 0.0,
                            "quarantined": 1,
                            "last_error": {
                                "message": "RPCError: blob size exceeds limit",
                                "code": None,
                                "at": "2026-12-06T07:59:58+00:00",
                            },
                        }
                    ],
                }
            ]
        }
    )

    status: Literal["ok", "degraded"]
    checked_at: Timestamp
    log_position: int
    components: list[Component]
    followers: list[FollowerPartition] = Field(
        default_factory=list,
        description="PostgreSQL: the followers' partitions and their holders; SQLite: none "
        "(one projector process follows alone).",
    )


# --- events --------------------------------------------------------------------------------


class EventAccepted(Answer):
    """The event is durable in the log (SPEC §4); a repeated key answers the same, with
    `duplicate: true`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "form-42",
                    "lead_id": "0b7e4a52-2c4e-5d8a-9f3e-6a1d2c3b4e5f",
                    "sequence": 1,
                    "new_lead": True,
                    "duplicate": False,
                }
            ]
        }
    )

    event_id: str = Field(description="The event's id: the one sent, or one leadflow made.")
    lead_id: LeadId | None = Field(description="null for an event of no lead (a spend).")
    sequence: int = Field(description="The event's number in its lead's (or campaign's) stream.")
    new_lead: bool
    duplicate: bool


class BatchAccepted(Answer):
    """One result per event, in the order posted."""

    results: list[EventAccepted]


# --- leads ---------------------------------------------------------------------------------


class Lead(Answer):
    """A lead's current state (SPEC §7), and why it is where it is (`placed_by_rule`,
    `placed_by_ruleset_version`, `pool_reason`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lead_id": "0b7e4a52-2c4e-5d8a-9f3e-6a1d2c3b4e5f",
                    "sequence": 3,
                    "stage": "new",
                    "owner": "rep-east-1",
                    "team": "east",
                    "in_pool": False,
                    "email": "ann@example.com",
                    "phone": "+8613800138000",
                    "name": "Ann",
                    "company": None,
                    "source": "website",
                    "channel": None,
                    "region": "east",
                    "industry": None,
                    "company_size": None,
                    "campaign_id": None,
                    "form_id": None,
                    "intent": "high",
                    "score": 0,
                    "tags": [],
                    "attributes": {},
                    "touch_count": 1,
                    "followups_count": 0,
                    "created_at": "2026-03-01T09:00:00+00:00",
                    "first_response_at": None,
                    "last_activity_at": "2026-03-01T09:00:00+00:00",
                    "won_amount": None,
                    "won_currency": None,
                    "unsubscribed": False,
                    "do_not_contact": False,
                    "do_not_contact_reason": None,
                    "ruleset_version": 1,
                    "variants": {},
                    "open_tasks": {"first_follow_up": "2026-03-02T09:00:00+00:00"},
                    "placed_by_rule": "east-website",
                    "placed_by_ruleset_version": 1,
                    "pool_reason": None,
                    "former_owners": {},
                    "sequences": [],
                    "erased": False,
                    "email_domain": "example.com",
                    "has_phone": True,
                }
            ]
        }
    )

    lead_id: LeadId
    sequence: int = Field(description="The number of the last event folded into this state.")
    stage: Literal["new", "MQL", "SQL", "opportunity", "won", "lost"]
    owner: str | None
    team: str | None
    in_pool: bool
    email: str | None
    phone: str | None = Field(description="E.164.")
    name: str | None
    company: str | None
    source: str | None
    channel: str | None
    region: str | None
    industry: str | None
    company_size: str | None
    campaign_id: str | None
    form_id: str | None
    intent: str | None
    score: int
    tags: list[str]
    attributes: dict[str, Any]
    touch_count: int
    followups_count: int
    created_at: Timestamp | None
    first_response_at: Timestamp | None
    last_activity_at: Timestamp | None
    won_amount: str | None = Field(description="A decimal number, as text.")
    won_currency: str | None = Field(description="ISO 4217, as the win gave it (e.g. CNY).")
    unsubscribed: bool = Field(
        description="The lead once unsubscribed (a fact; see do_not_contact)."
    )
    do_not_contact: bool = Field(
        description="No marketing email goes to the lead (docs/consent.md)."
    )
    do_not_contact_reason: Literal["unsubscribed", "hard_bounce", "admin"] | None = Field(
        description="What first set the flag; null when it is not set."
    )
    ruleset_version: int | None
    variants: dict[str, str] = Field(description="Experiment → variant.")
    open_tasks: dict[str, Timestamp] = Field(description="Task → when it is due.")
    placed_by_rule: str | None
    placed_by_ruleset_version: int | None
    pool_reason: str | None
    former_owners: dict[str, Timestamp] = Field(description="Rep → when they lost the lead.")
    sequences: list[str] = Field(description="Nurture sequences the lead is enrolled in.")
    erased: bool = Field(default=False, description="Its personal data was erased.")
    email_domain: str | None = Field(
        default=None, description="Its email's domain, kept through an erasure (for rules)."
    )
    has_phone: bool = Field(default=False, description="It has a phone number (for rules).")


class LeadEvent(Answer):
    """One event of a lead's stream: external, or decided (with the rule behind it)."""

    lead_id: LeadId
    sequence: int
    event_id: str
    type: str = Field(examples=["lead.assigned"])
    occurred_at: Timestamp
    recorded_at: Timestamp
    data: dict[str, Any]
    rule_id: str | None
    ruleset_version: int | None
    caused_by: str | None = Field(description="The id of the event a decision answers.")
    trace_id: str | None = Field(
        default=None,
        description="The OpenTelemetry trace it was appended in (a decision: its cause's), "
        "when traces were on.",
        examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
    )
    actor: dict[str, Any] | None = Field(
        default=None,
        description="Who posted it: {kind: user, user_id, person_id, role} or "
        "{kind: key, key_id}; null for decisions and events posted before it was recorded.",
    )


class LeadEvents(Answer):
    lead_id: LeadId
    events: list[LeadEvent]


# --- rulesets and the directory ------------------------------------------------------------


class RuleVocabulary(Answer):
    """What a rule builder can use (SPEC §5)."""

    variables: list[dict[str, Any]] = Field(
        description="name, type, description, operators (and a `pattern` for families)."
    )
    operators: dict[str, list[dict[str, str]]] = Field(
        description="Per variable type: name, label and input type of each operator."
    )
    actions: list[dict[str, Any]] = Field(
        description="name, description and the JSON schema of its params."
    )
    triggers: dict[str, Any]
    builtin_templates: list[str]
    ruleset: dict[str, Any] = Field(description="The JSON schema of a ruleset document.")
    labels: dict[str, Any] = Field(
        description="Words for people: `events` (triggers; `timer.<id>` with `{id}`), "
        "`variables` (families with `{key}`), `operators` per type, `actions`, `params` per "
        "action, `values` per param kind, `durations` (unit: [singular, plural])."
    )


class FieldProblem(Answer):
    path: str = Field(examples=["/rules/1/conditions/all/0/name"])
    message: str = Field(examples=["unknown variable 'colour'"])


class RulesetValidation(Answer):
    valid: bool
    errors: list[FieldProblem]


class RulesetPublished(Answer):
    version: int


class RulesetSummary(Answer):
    version: int
    name: str
    published_by: str | None = Field(description="The name of the key that published it.")
    published_at: Timestamp
    active: bool
    mode: Literal["active", "shadow", "canary"] | None = Field(
        description="How the version runs now: active, on trial (shadow or canary), or not "
        "at all (null)."
    )


class RulesetVersions(Answer):
    active_version: int | None
    rulesets: list[RulesetSummary]


class PublishedRuleset(RulesetSummary):
    ruleset: RulesetDocument


class NoActiveRuleset(Answer):
    version: None
    ruleset: None


class RulesetActivated(Answer):
    active_version: int


# --- notifications, projections ------------------------------------------------------------


class PublicHoliday(Answer):
    date: Day
    name: str = Field(description="The package's English name where it has one.")


class MakeUpWorkday(Answer):
    date: Day
    hours_of: Literal["mon"] = Field(description="Whose hours the day is worked with.")


class PublicHolidays(Answer):
    """A country's days off and make-up working days in a year, from the `holidays` package,
    shaped as a directory calendar's `holidays` and `workdays` (docs/calendars.md)."""

    country: str = Field(examples=["CN"])
    year: int = Field(examples=[2027])
    holidays: list[PublicHoliday]
    workdays: list[MakeUpWorkday]


class Notification(Answer):
    lead_id: LeadId
    notification_id: str
    to: str | None = Field(description="Whom the rule addressed (e.g. `owner`, `manager`).")
    recipient: str | None
    channel: str | None
    template: str | None
    rule_id: str | None
    ruleset_version: int | None
    status: Literal["queued", "sent", "recorded", "failed", "skipped"]
    reason: str | None
    deliveries: int
    queued_at: Timestamp
    sent_at: Timestamp | None


class Notifications(Answer):
    items: list[Notification]


class ProjectionStatus(Answer):
    name: str
    position: int = Field(
        description="The log position it has read through (its slowest partition's, when "
        "projector processes share the log in partitions)."
    )
    lag: int = Field(description="Events of its kinds it has still to apply.")


class Projections(Answer):
    log_position: int
    projections: list[ProjectionStatus]


# --- replays, quarantine, keys -------------------------------------------------------------


class ReplayQueued(Answer):
    replay_id: str
    status: Literal["queued"]


class ReplayCancelled(Answer):
    replay_id: str
    status: Literal["cancelled", "cancelling"]


class ReplayProgress(Answer):
    done: int
    total: int | None


class Replay(Answer):
    replay_id: str
    status: Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]
    progress: ReplayProgress
    created_at: Timestamp
    finished_at: Timestamp | None
    request: dict[str, Any] = Field(description="The question asked, as posted.")
    result: dict[str, Any] | None = Field(
        description="Once succeeded: the report `leadflow replay --format json` prints; "
        "its `summary` says it in sentences with names."
    )
    error: str | None


class QuarantineItem(Answer):
    item_id: str
    stage: str = Field(examples=["decision", "delivery", "projection:leads"])
    lead_id: str | None
    stream_id: str
    position: int | None
    event_id: str | None
    event_type: str | None
    sequence: int | None
    status: Literal[
        "retrying", "parked", "retry_requested", "skip_requested", "resolved", "skipped"
    ]
    attempts: int
    error: str
    first_failed_at: Timestamp
    last_failed_at: Timestamp
    next_attempt_at: Timestamp | None
    closed_at: Timestamp | None


class Quarantine(Answer):
    items: list[QuarantineItem]
    counts: dict[str, int] = Field(description="Open items by status.")


Scope = Literal["ingest", "read", "admin"]


class ApiKey(Answer):
    """One secret of a key: never the key or its hash."""

    key_id: str = Field(examples=["key_Ab12Cd34Ef56"])
    name: str | None
    scopes: list[Scope]
    prefix: str | None = Field(description="The key's first characters, to recognise it.")
    status: Literal["active", "expiring", "expired", "revoked"]
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None
    expires_at: Timestamp | None = Field(
        description="An old secret's end after a rotation "
        f"(at most {int(MAX_ROTATION_GRACE.total_seconds())} s later)."
    )


class IssuedApiKey(ApiKey):
    key: str = Field(description="The plain key: shown in this answer only.")


class ApiKeys(Answer):
    keys: list[ApiKey]


MODELS: list[type[BaseModel]] = [
    Error,
    NotReady,
    Alive,
    Ready,
    FlowStatus,
    EventAccepted,
    BatchAccepted,
    LeadEvents,
    RuleVocabulary,
    RulesetValidation,
    RulesetPublished,
    RulesetVersions,
    PublishedRuleset,
    NoActiveRuleset,
    RulesetActivated,
    PublicHolidays,
    Notifications,
    Projections,
    ReplayQueued,
    ReplayCancelled,
    Replay,
    QuarantineItem,
    Quarantine,
    ApiKeys,
    IssuedApiKey,
]
