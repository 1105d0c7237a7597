"""What a rule may test, what it may do, and what may trigger it (SPEC §5).

Variables carry business-rules types, and each type allows exactly the operators
business-rules defines for it (`business_rules.operators`), with the same input kinds;
`matches_regex` takes a pattern in RE2 syntax (an unanchored search, run in linear time).
Actions are a closed set; each has a pydantic params model, and a parsed params model is
the decision handed to the lifecycle (`match action: case AssignToTeam(team=t): ...`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.json_schema import WithJsonSchema

from domain.events import ADMIN_TYPES, DECIDED_TYPES, EXTERNAL_DATA, LEADLESS_TYPES
from rules.model import BusinessClock, parse_duration

VariableType = Literal["string", "numeric", "boolean", "select"]
InputType = Literal["text", "numeric", "none", "select"]

OPERATORS: dict[VariableType, dict[str, InputType]] = {
    "string": {
        "equal_to": "text",
        "equal_to_case_insensitive": "text",
        "starts_with": "text",
        "ends_with": "text",
        "contains": "text",
        "matches_regex": "text",
        "non_empty": "none",
    },
    "numeric": {
        "equal_to": "numeric",
        "greater_than": "numeric",
        "greater_than_or_equal_to": "numeric",
        "less_than": "numeric",
        "less_than_or_equal_to": "numeric",
    },
    "boolean": {"is_true": "none", "is_false": "none"},
    "select": {"contains": "select", "does_not_contain": "select"},
}


@dataclass(frozen=True)
class Variable:
    """A fact about the lead that conditions can test."""

    name: str
    type: VariableType
    description: str


def _variables(*specs: tuple[str, VariableType, str]) -> dict[str, Variable]:
    return {name: Variable(name, type_, text) for name, type_, text in specs}


VARIABLES = _variables(
    ("source", "string", "where the lead came from (first touch), e.g. website"),
    ("channel", "string", "the capture channel, e.g. wechat, trade-show"),
    ("region", "string", "the lead's region, e.g. east"),
    ("industry", "string", "the lead's industry"),
    ("company_size", "string", "the company size band, e.g. 50-200"),
    ("intent", "string", "low, medium or high"),
    ("score", "numeric", "the lead score (add_score changes it)"),
    ("stage", "string", "new, MQL, SQL, opportunity, won or lost"),
    ("campaign_id", "string", "the campaign of the first touch"),
    ("form_id", "string", "the form of the first touch"),
    ("email_domain", "string", "the part of the email after @, e.g. example.com"),
    ("has_phone", "boolean", "the lead has a phone number"),
    ("do_not_contact", "boolean", "no marketing email may go to the lead (docs/consent.md)"),
    ("tags", "select", "the lead's tags (add_tag adds one); case-insensitive"),
    ("owner", "string", "the owning rep's id; empty when unowned"),
    ("team", "string", "the owning team's id; empty when none"),
    ("in_pool", "boolean", "the lead is in the public pool"),
    ("followups_count", "numeric", "how many follow-ups were recorded"),
    ("touch_count", "numeric", "how many times the lead was captured"),
    ("hours_since_capture", "numeric", "hours since the first capture, with fractions"),
)

# Families of variables named by a prefix and a key: `variant.<experiment>`, `attributes.<key>`.
VARIANT_PREFIX = "variant."
ATTRIBUTE_PREFIX = "attributes."
VARIABLE_FAMILIES = _variables(
    (VARIANT_PREFIX, "string", "the lead's variant in this experiment; empty before assignment"),
    (ATTRIBUTE_PREFIX, "string", "a capture attribute; non-strings as JSON text, e.g. 5000, true"),
)


def lookup_variable(name: str) -> Variable | None:
    """The variable a condition's `name` refers to, or None if there is none."""
    found = VARIABLES.get(name)
    if found is not None:
        return found
    for prefix, family in VARIABLE_FAMILIES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return Variable(name, family.type, family.description)
    return None


# Triggers: any event of a lead's stream, and `timer.<id>` of a declared timer. Spend,
# ruleset and directory events belong to no lead, so a rule naming them could never run.
_NOT_LEAD_EVENTS = LEADLESS_TYPES | {"ruleset.published", "ruleset.activated", "directory.replaced"}
LEAD_EVENT_TYPES = (frozenset(EXTERNAL_DATA) | ADMIN_TYPES | DECIDED_TYPES) - _NOT_LEAD_EVENTS
TIMER_TRIGGER_PREFIX = "timer."
# Recorded when a notification's delivery ends, by the delivery, after the decision step:
# a timer may start, restart or stop on them (the workflow plans its timers again once a
# delivery ends), but no rule can run for them.
DELIVERY_EVENT_TYPES = frozenset({"notification.sent", "nurture.email_sent"})
# Why a rule can never run for these triggers: what to write instead.
NOT_RULE_TRIGGERS = {
    "lead.timer_fired": "rules run for a fired timer as `timer.<id>`: name that instead",
    **{
        name: f"{name} is recorded when the delivery ends, outside the decision step: "
        "start a timer on it and write a rule for `timer.<id>`"
        for name in sorted(DELIVERY_EVENT_TYPES)
    },
}


def _duration(raw: object) -> timedelta:
    if isinstance(raw, timedelta):  # built in code rather than parsed from a document
        return raw
    if not isinstance(raw, str):
        raise ValueError("must be an ISO 8601 duration string such as PT24H")
    return parse_duration(raw)


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "type": "string",
            "format": "duration",
            "description": "ISO 8601 duration without years or months: PT2S, PT24H, P7D, P1W",
        }
    ),
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_RECIPIENT = re.compile(r"owner|manager|director|team|rep:\S+")


def _recipient(to: str) -> str:
    if not _RECIPIENT.fullmatch(to):
        raise ValueError("must be owner, manager, director, team or rep:<rep id>")
    return to


Recipient = Annotated[
    str,
    AfterValidator(_recipient),
    WithJsonSchema({"type": "string", "pattern": f"^({_RECIPIENT.pattern})$"}),
]


class ActionParams(BaseModel):
    """The validated params of one action; the subclass says which action."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    action: ClassVar[str]


class AssignToRep(ActionParams):
    """Make `rep` the owner (unless the lead has one and `reassign` is false); when the
    rep is inactive, unknown or at capacity the lead goes to the pool."""

    action = "assign_to_rep"
    rep: Id
    reassign: bool = False


class AssignToTeam(ActionParams):
    """Pick an active rep of `team` with room, by `strategy`; nobody → the pool."""

    action = "assign_to_team"
    team: Id
    strategy: Literal["round_robin", "least_loaded"]
    reassign: bool = False


class ReturnToPool(ActionParams):
    """Take the lead from its owner and put it in the public pool."""

    action = "return_to_pool"
    reason: Text


class CreateTask(ActionParams):
    """Open a task for the owner, due `due_in` after the trigger (`calendar: "business"`:
    `due_in` of working time of the lead's team's calendar, as a business timer counts)."""

    action = "create_task"
    task: Id
    due_in: Duration
    calendar: BusinessClock | None = Field(
        None,
        description='"business": `due_in` counts working time of the calendar of the '
        "lead's team, as a business timer does (docs/calendars.md); absent or null: "
        "wall-clock time.",
    )


class Notify(ActionParams):
    """Send `template` to the owner, the team's manager or director, the team's channel,
    or `rep:<id>`; `channel` is `email` or a directory channel id (default: email for a
    person, the team's channel for `team`)."""

    action = "notify"
    to: Recipient
    template: Id
    channel: Id | None = None

    @property
    def rep(self) -> str | None:
        """The rep id of a `rep:<id>` recipient."""
        return self.to.removeprefix("rep:") if self.to.startswith("rep:") else None


class EnrollInSequence(ActionParams):
    """Start the nurture `sequence` (no-op if already enrolled; a lead on do-not-contact or
    without an email address is not enrolled: `nurture.exited` says why)."""

    action = "enroll_in_sequence"
    sequence: Id


class ExitSequence(ActionParams):
    """End `sequence`, or every sequence when it is left out."""

    action = "exit_sequence"
    sequence: Id | None = None


class SetIntent(ActionParams):
    action = "set_intent"
    intent: Literal["low", "medium", "high"]


class AddScore(ActionParams):
    """Add `points` (negative to subtract) to the lead score."""

    action = "add_score"
    points: Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class SetStage(ActionParams):
    """Move the lead to `stage`; stages only move forward."""

    action = "set_stage"
    stage: Literal["MQL", "SQL", "opportunity", "won", "lost"]


class AssignVariant(ActionParams):
    """Give the lead its variant of `experiment`, deterministic from the lead id."""

    action = "assign_variant"
    experiment: Id


class AddTag(ActionParams):
    action = "add_tag"
    tag: Annotated[str, StringConstraints(min_length=1, max_length=100)]


ACTIONS: dict[str, type[ActionParams]] = {
    model.action: model
    for model in (
        AssignToRep,
        AssignToTeam,
        ReturnToPool,
        CreateTask,
        Notify,
        EnrollInSequence,
        ExitSequence,
        SetIntent,
        AddScore,
        SetStage,
        AssignVariant,
        AddTag,
    )
}
