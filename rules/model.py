"""The ruleset document (SPEC §5) as typed, immutable values, and ISO 8601 durations.

The models keep the document's shape, so a parsed ruleset dumps back (`by_alias`) to the
JSON that was published. They check types only: build them with
`rules.validation.parse_ruleset`, which reports every semantic error with its JSON Pointer.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints

MAX_DURATION = timedelta(days=3650)
_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]+)W)?(?:(?P<days>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?"
    r"(?:(?P<seconds>[0-9]+(?:[.,][0-9]+)?)S)?)?",
    re.ASCII,
)
_CALENDAR_UNITS = re.compile(r"P(?:[0-9]+[YM])", re.ASCII)
_SECONDS_PER = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60}


@functools.lru_cache(maxsize=1024)  # a ruleset has a handful; the lifecycle asks per timer
def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as `PT2S`, `PT24H`, `P7D`, `P1W` or `P1DT12H`.

    Years and months are rejected, not approximated: a month has no fixed length and a
    timer must fire after an exact time (write `P30D`). Only seconds may have a fraction.
    Raises ValueError with a message fit for a user; durations over ten years are
    rejected so that `now + duration` can never overflow.
    """
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT"):
        if _CALENDAR_UNITS.match(text):
            raise ValueError(
                f"{text!r}: years and months have no fixed length; use days or weeks (P30D)"
            )
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT24H, P7D or PT2S")
    parts = match.groupdict()
    seconds = Decimal(0)
    for unit, factor in _SECONDS_PER.items():
        if parts[unit] is not None:
            seconds += int(parts[unit]) * factor
    if parts["seconds"] is not None:
        seconds += Decimal(parts["seconds"].replace(",", "."))
    if seconds > Decimal(MAX_DURATION.days * 86400):
        raise ValueError(f"{text!r} is longer than ten years")
    return timedelta(microseconds=int(seconds * 1_000_000))


_UNITS = ("weeks", "days", "hours", "minutes", "seconds")


def duration_parts(text: str) -> list[tuple[str, str]]:
    """The units of a valid duration as written, largest first, zeros included:
    `P1DT12H` → `[("days", "1"), ("hours", "12")]`; a fraction of a second keeps its digits
    (with a dot). Raises ValueError like `parse_duration` for an invalid duration."""
    parse_duration(text)
    match = _DURATION.fullmatch(text)
    assert match is not None  # parse_duration accepted it
    parts = match.groupdict()
    return [(unit, parts[unit].replace(",", ".")) for unit in _UNITS if parts[unit] is not None]


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
DurationText = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(description="ISO 8601 duration without years or months: PT2S, PT24H, P7D, P1W"),
]

# `"business"`: count a duration in working time of the lead's team's calendar
# (docs/calendars.md); absent or null: wall-clock time.
BusinessClock = Literal["business"]
_BUSINESS_TIMER = (
    '"business": count `after` in working time of the calendar of the lead\'s team (its '
    "owner's team) when the timer starts or restarts (docs/calendars.md); absent or null: "
    "wall-clock time. A lead without a team, or whose team has no calendar, counts "
    "wall-clock time."
)

DEFAULT_EXIT_ON = (
    "lead.followed_up",
    "lead.unsubscribed",
    "email.replied",
    "email.bounced",
    "lead.won",
    "lead.lost",
)


class _Document(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Leaf(_Document):
    """One business-rules condition: `{"name", "operator", "value"}`. Operators that take
    no input (`non_empty`, `is_true`, `is_false`) ignore `value`, which may be left out."""

    name: str
    operator: str
    value: JsonValue = None


class AllOf(_Document):
    """True when every condition holds; `{"all": []}` is always true."""

    all_: list[Condition] = Field(alias="all")


class AnyOf(_Document):
    """True when at least one condition holds; `{"any": []}` is never true."""

    any_: list[Condition] = Field(alias="any")


Condition = AllOf | AnyOf | Leaf


def _always() -> AllOf:
    return AllOf(all=[])


class Timer(_Document):
    """A durable timer: started by `start_on`, cancelled by `cancel_on`, restarted by
    `restart_on` only while running; when it fires rules run for `timer.<id>`."""

    id: Id
    start_on: list[str] = []
    cancel_on: list[str] = []
    restart_on: list[str] = []
    after: DurationText
    calendar: BusinessClock | None = Field(None, description=_BUSINESS_TIMER)

    @property
    def delay(self) -> timedelta:
        return parse_duration(self.after)


class Action(_Document):
    """One action of the closed set in `rules.catalog.ACTIONS`, with its params."""

    name: str
    params: dict[str, JsonValue] = {}


class Rule(_Document):
    """Conditions over the lead's facts, evaluated for each trigger in `when`."""

    id: Id
    description: str | None = None
    when: list[str]
    priority: int = 0
    stop: bool = False
    conditions: Condition = Field(default_factory=_always)
    actions: list[Action] = []


class SequenceStep(_Document):
    """Send `template` once `wait` has passed since the previous step (or enrolment)."""

    wait: DurationText
    template: Id

    @property
    def delay(self) -> timedelta:
        return parse_duration(self.wait)


class Sequence(_Document):
    """A nurture sequence; any event in `exit_on` ends it for the lead."""

    steps: Annotated[list[SequenceStep], Field(min_length=1)]
    exit_on: list[str] = list(DEFAULT_EXIT_ON)


class Template(_Document):
    """A message with `{field}` placeholders; `subject_variants` overrides the subject for
    a lead in that experiment variant."""

    subject: str
    body: str
    subject_variants: dict[str, str] = {}


class Variant(_Document):
    weight: Annotated[int, Field(gt=0)]


class Experiment(_Document):
    """Variants with relative weights; a lead's variant is deterministic from its id."""

    variants: Annotated[dict[str, Variant], Field(min_length=1)]


class PoolPolicy(_Document):
    """Rules of the public pool: how long a former owner waits before re-claiming a lead,
    and how many leads a rep may claim per day (UTC). Unset: no limit."""

    claim_cooldown: DurationText | None = None
    daily_claim_limit: Annotated[int, Field(ge=0)] | None = None

    @property
    def cooldown(self) -> timedelta | None:
        return parse_duration(self.claim_cooldown) if self.claim_cooldown else None


class Ruleset(_Document):
    """One version of the rules: timers, rules, nurture sequences, templates, experiments."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str | None = None
    timers: list[Timer] = []
    rules: list[Rule] = []
    sequences: dict[str, Sequence] = {}
    templates: dict[str, Template] = {}
    experiments: dict[str, Experiment] = {}
    pool: PoolPolicy = PoolPolicy()


AllOf.model_rebuild()
AnyOf.model_rebuild()
Rule.model_rebuild()
