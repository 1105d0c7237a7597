"""A lead's current state as a pure fold over its stream, and the guards that keep
external events consistent with it (stages only move forward, claims only from the pool).

Shared by the API (guards at append time), `LeadWorkflow` (state kept from signals) and the
replay simulator. Deliberately free of I/O and of heavy imports: it runs inside the
Temporal workflow sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from domain.errors import LeadClosed, LeadNotInPool, NotLeadOwner, StageWouldMoveBackward

STAGE_ORDER = {"new": 0, "MQL": 1, "SQL": 2, "opportunity": 3, "won": 4, "lost": 4}
CLOSED_STAGES = frozenset({"won", "lost"})


@dataclass(frozen=True)
class LoggedEvent:
    """One event as stored in a lead's stream; what the dispatcher delivers to the workflow.

    Times are RFC 3339 strings so the record crosses Temporal's JSON converter unchanged.
    """

    lead_id: str
    sequence: int
    event_id: str
    type: str
    occurred_at: str
    recorded_at: str
    data: dict[str, Any] = field(default_factory=dict)
    rule_id: str | None = None
    ruleset_version: int | None = None
    caused_by: str | None = None


@dataclass(frozen=True)
class Decision:
    """A decided event before it is appended: its type, payload and the rule that made it
    (None for what the lifecycle does by itself)."""

    type: str
    data: dict[str, Any]
    rule_id: str | None = None


@dataclass(frozen=True)
class LeadState:
    """Everything leadflow knows about a lead now, derived only from its events."""

    lead_id: str
    last_sequence: int = 0
    stage: str = "new"
    owner: str | None = None
    team: str | None = None
    in_pool: bool = False
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    company: str | None = None
    source: str | None = None
    channel: str | None = None
    region: str | None = None
    industry: str | None = None
    company_size: str | None = None
    campaign_id: str | None = None
    form_id: str | None = None
    intent: str | None = None
    score: int = 0
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    touch_count: int = 0
    followups_count: int = 0
    created_at: str | None = None
    first_response_at: str | None = None
    last_activity_at: str | None = None
    won_amount: str | None = None
    unsubscribed: bool = False
    ruleset_version: int | None = None
    variants: dict[str, str] = field(default_factory=dict)
    open_tasks: dict[str, str] = field(default_factory=dict)  # task → due_at
    # Why the lead is where it is: the rule (and version) behind its owner or its pool stay.
    placed_by_rule: str | None = None
    placed_by_ruleset_version: int | None = None
    pool_reason: str | None = None
    former_owners: dict[str, str] = field(default_factory=dict)  # rep → when they lost it
    sequences: tuple[str, ...] = ()

    @property
    def open_owner(self) -> str | None:
        """The rep this lead counts against (capacity): owned, open, not in the pool."""
        if self.owner is None or self.in_pool or self.is_closed:
            return None
        return self.owner

    @property
    def is_closed(self) -> bool:
        return self.stage in CLOSED_STAGES


_CAPTURE_FIELDS = (
    "email",
    "phone",
    "name",
    "company",
    "source",
    "channel",
    "region",
    "industry",
    "company_size",
    "campaign_id",
    "form_id",
    "intent",
)


def _forward(state: LeadState, stage: str) -> str:
    return stage if STAGE_ORDER[stage] >= STAGE_ORDER[state.stage] else state.stage


def apply_event(state: LeadState, event: LoggedEvent) -> LeadState:
    """Fold one stored event into the state (callers drop events delivered twice)."""
    s = replace(state, last_sequence=max(state.last_sequence, event.sequence))
    d = event.data
    if event.ruleset_version is not None:
        s = replace(s, ruleset_version=event.ruleset_version)
    match event.type:
        case "lead.captured":
            # A first capture sets every field; a later touch fills only what was unknown.
            first = s.touch_count == 0
            updates = {
                name: d[name]
                for name in _CAPTURE_FIELDS
                if name in d and (first or getattr(s, name) is None)
            }
            new_attributes = d.get("attributes", {})
            attributes = dict(new_attributes) if first else {**new_attributes, **s.attributes}
            s = replace(
                s,
                **updates,
                attributes=attributes,
                touch_count=s.touch_count + 1,
                created_at=s.created_at or event.occurred_at,
                last_activity_at=event.occurred_at,
            )
        case "lead.followed_up":
            # A follow-up is what every open task asks for: it completes them.
            s = replace(
                s,
                open_tasks={},
                followups_count=s.followups_count + 1,
                first_response_at=s.first_response_at or event.occurred_at,
                last_activity_at=event.occurred_at,
            )
        case "lead.claimed" | "lead.reassigned":
            s = replace(
                s,
                owner=d["rep_id"],
                in_pool=False,
                pool_reason=None,
                placed_by_rule=None,
                placed_by_ruleset_version=None,
                last_activity_at=event.occurred_at,
            )
        case "lead.assigned":
            s = replace(
                s,
                owner=d.get("owner"),
                team=d.get("team", s.team),
                in_pool=False,
                pool_reason=None,
                placed_by_rule=event.rule_id,
                placed_by_ruleset_version=event.ruleset_version,
            )
        case "lead.released" | "lead.returned_to_pool":
            former = {**s.former_owners, s.owner: event.occurred_at} if s.owner else s.former_owners
            s = replace(
                s,
                former_owners=former,
                owner=None,
                in_pool=True,
                open_tasks={},
                pool_reason=d.get("reason"),
                placed_by_rule=event.rule_id,
                placed_by_ruleset_version=event.ruleset_version,
            )
        case "lead.qualified" | "lead.stage_changed":
            s = replace(s, stage=_forward(s, d["stage"]))
        case "lead.opportunity_opened":
            s = replace(s, stage=_forward(s, "opportunity"))
        case "lead.won":
            s = replace(s, stage="won", won_amount=str(d.get("amount")))
        case "lead.lost":
            s = replace(s, stage="lost")
        case "lead.scored":
            s = replace(s, score=int(d.get("score", s.score)))
        case "lead.unsubscribed":
            # Its sequences end by `nurture.exited` decisions, which the lifecycle makes.
            s = replace(s, unsubscribed=True)
        case "lead.task_created":
            s = replace(s, open_tasks={**s.open_tasks, d["task"]: d["due_at"]})
        case "lead.tagged":
            if d["tag"] not in s.tags:
                s = replace(s, tags=(*s.tags, d["tag"]))
        case "lead.intent_set":
            s = replace(s, intent=d["intent"])
        case "experiment.variant_assigned":
            s = replace(s, variants={**s.variants, d["experiment"]: d["variant"]})
        case "nurture.enrolled":
            if d["sequence"] not in s.sequences:
                s = replace(s, sequences=(*s.sequences, d["sequence"]))
        case "nurture.exited":
            s = replace(s, sequences=tuple(q for q in s.sequences if q != d["sequence"]))
    return s


def fold(lead_id: str, events: list[LoggedEvent]) -> LeadState:
    """The state after every event of a stream, in order."""
    state = LeadState(lead_id=lead_id)
    for event in events:
        state = apply_event(state, event)
    return state


def is_trigger(event: LoggedEvent) -> bool:
    """Triggers are what rules run for: external events and fired timers. Every other
    event is a decision, `caused_by` the trigger it answers."""
    return event.caused_by is None or event.type == "lead.timer_fired"


def state_at_trigger(lead_id: str, events: list[LoggedEvent], trigger_id: str) -> LeadState:
    """The lead as the lifecycle saw it when `trigger_id` arrived: every earlier trigger
    followed by its decisions, then the trigger itself.

    The stream's physical order can differ (an event posted while the previous one was
    being decided lands before those decisions); this logical order does not, so the
    decisions for a trigger depend only on the log, in the workflow and in a replay.
    """
    decisions: dict[str, list[LoggedEvent]] = {}
    for event in events:
        if not is_trigger(event) and event.caused_by is not None:
            decisions.setdefault(event.caused_by, []).append(event)
    state = LeadState(lead_id=lead_id)
    for event in events:
        if not is_trigger(event):
            continue
        state = apply_event(state, event)
        if event.event_id == trigger_id:
            return state
        for decision in decisions.get(event.event_id, []):
            state = apply_event(state, decision)
    raise ValueError(f"trigger {trigger_id} is not in lead {lead_id}'s stream")


def check_external_event(state: LeadState, event_type: str, data: dict[str, Any]) -> None:
    """Raise a Conflict if appending this external event would contradict the lead's state."""
    if event_type == "lead.qualified" or event_type == "lead.opportunity_opened":
        target = data.get("stage", "opportunity")
        if state.is_closed:
            raise LeadClosed(f"lead is already {state.stage}; it cannot move to {target}")
        if STAGE_ORDER[target] < STAGE_ORDER[state.stage]:
            raise StageWouldMoveBackward(
                f"stages only move forward: lead is {state.stage}, cannot go back to {target}"
            )
    elif event_type in ("lead.won", "lead.lost"):
        if state.is_closed:
            raise LeadClosed(f"lead is already {state.stage}")
    elif event_type == "lead.claimed":
        if not state.in_pool:
            raise LeadNotInPool("only a lead in the public pool can be claimed")
    elif event_type == "lead.released" and state.owner != data["rep_id"]:
        raise NotLeadOwner(f"{data['rep_id']} does not own this lead (owner: {state.owner})")
