"""A lead's current state as a pure fold over its stream, and the guards that keep
external events consistent with it (stages only move forward, claims only from the pool).

Shared by the API (guards at append time), `LeadWorkflow` (state kept from signals) and the
replay simulator. Deliberately free of I/O and of heavy imports: it runs inside the
Temporal workflow sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.errors import (
    DoNotContactUnchanged,
    LeadClosed,
    LeadNotInPool,
    NotLeadOwner,
    StageWouldMoveBackward,
)

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
    # The W3C trace context of the request that appended it (a decision: of its cause),
    # when traces were on; absent from events stored before traces existed.
    traceparent: str | None = None


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
    won_currency: str | None = None
    unsubscribed: bool = False
    # No marketing email (docs/consent.md): set by an unsubscribe, a hard bounce or an
    # admin, lifted only by an admin; why it was first set ("unsubscribed", "hard_bounce",
    # "admin"). `unsubscribed` stays the fact that the lead once asked.
    do_not_contact: bool = False
    do_not_contact_reason: str | None = None
    ruleset_version: int | None = None
    variants: dict[str, str] = field(default_factory=dict)
    open_tasks: dict[str, str] = field(default_factory=dict)  # task → due_at
    # Why the lead is where it is: the rule (and version) behind its owner or its pool stay.
    placed_by_rule: str | None = None
    placed_by_ruleset_version: int | None = None
    pool_reason: str | None = None
    former_owners: dict[str, str] = field(default_factory=dict)  # rep → when they lost it
    sequences: tuple[str, ...] = ()
    # Its personal data was erased (`lead.erased`): email, phone, name, company and
    # attributes read as unknown from then on (docs/erasure.md). What rules need of them
    # is kept apart, derived at capture: the email's domain, whether there is a phone.
    erased: bool = False
    email_domain: str | None = None
    has_phone: bool = False

    @property
    def open_owner(self) -> str | None:
        """The rep this lead counts against (capacity): owned, open, not in the pool."""
        if self.owner is None or self.in_pool or self.is_closed:
            return None
        return self.owner

    @property
    def is_closed(self) -> bool:
        return self.stage in CLOSED_STAGES


# The `lead.captured` fields a capture sets on its lead (its `attributes` are merged).
CAPTURE_FIELDS = (
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


def _domain_of(email: object) -> str | None:
    if not isinstance(email, str):
        return None
    _, at, domain = email.rpartition("@")
    return domain if at and domain else None


def _forward(state: LeadState, stage: str) -> str:
    return stage if STAGE_ORDER[stage] >= STAGE_ORDER[state.stage] else state.stage


def apply_event(state: LeadState, event: LoggedEvent) -> LeadState:
    """Fold one stored event into the state (callers drop events delivered twice)."""
    d = event.data
    changes: dict[str, Any] = {"last_sequence": max(state.last_sequence, event.sequence)}
    if event.ruleset_version is not None:
        changes["ruleset_version"] = event.ruleset_version
    match event.type:
        case "lead.captured":
            # A first capture sets every field; a later touch fills only what was unknown.
            first = state.touch_count == 0
            for name in CAPTURE_FIELDS:
                if name in d and (first or getattr(state, name) is None):
                    changes[name] = d[name]
            new_attributes = d.get("attributes", {})
            changes["attributes"] = (
                dict(new_attributes) if first else {**new_attributes, **state.attributes}
            )
            changes["touch_count"] = state.touch_count + 1
            domain = d.get("email_domain") or _domain_of(d.get("email"))
            if domain and (first or state.email_domain is None):
                changes["email_domain"] = domain
            if d.get("phone") or d.get("has_phone"):
                changes["has_phone"] = True
            changes["created_at"] = state.created_at or event.occurred_at
            changes["last_activity_at"] = event.occurred_at
        case "lead.followed_up":
            # A follow-up is what every open task asks for: it completes them.
            changes["open_tasks"] = {}
            changes["followups_count"] = state.followups_count + 1
            changes["first_response_at"] = state.first_response_at or event.occurred_at
            changes["last_activity_at"] = event.occurred_at
        case "lead.claimed" | "lead.reassigned":
            changes["owner"] = d["rep_id"]
            changes["in_pool"] = False
            changes["pool_reason"] = None
            changes["placed_by_rule"] = None
            changes["placed_by_ruleset_version"] = None
            changes["last_activity_at"] = event.occurred_at
        case "lead.assigned":
            changes["owner"] = d.get("owner")
            changes["team"] = d.get("team", state.team)
            changes["in_pool"] = False
            changes["pool_reason"] = None
            changes["placed_by_rule"] = event.rule_id
            changes["placed_by_ruleset_version"] = event.ruleset_version
        case "lead.released" | "lead.returned_to_pool":
            if state.owner:
                changes["former_owners"] = {**state.former_owners, state.owner: event.occurred_at}
            changes["owner"] = None
            changes["in_pool"] = True
            changes["open_tasks"] = {}
            changes["pool_reason"] = d.get("reason")
            changes["placed_by_rule"] = event.rule_id
            changes["placed_by_ruleset_version"] = event.ruleset_version
        case "lead.qualified" | "lead.stage_changed":
            changes["stage"] = _forward(state, d["stage"])
        case "lead.opportunity_opened":
            changes["stage"] = _forward(state, "opportunity")
        case "lead.won":
            changes["stage"] = "won"
            changes["won_amount"] = str(d.get("amount"))
            changes["won_currency"] = d.get("currency")
        case "lead.lost":
            changes["stage"] = "lost"
        case "lead.scored":
            changes["score"] = int(d.get("score", state.score))
        case "lead.unsubscribed":
            # Its sequences end by `nurture.exited` decisions, which the lifecycle makes.
            changes["unsubscribed"] = True
            changes.update(_no_contact(state, "unsubscribed"))
        case "lead.task_created":
            changes["open_tasks"] = {**state.open_tasks, d["task"]: d["due_at"]}
        case "lead.tagged":
            if d["tag"] not in state.tags:
                changes["tags"] = (*state.tags, d["tag"])
        case "lead.intent_set":
            changes["intent"] = d["intent"]
        case "experiment.variant_assigned":
            changes["variants"] = {**state.variants, d["experiment"]: d["variant"]}
        case "nurture.enrolled":
            if d["sequence"] not in state.sequences:
                changes["sequences"] = (*state.sequences, d["sequence"])
        case "nurture.exited":
            changes["sequences"] = tuple(q for q in state.sequences if q != d["sequence"])
        # Rare events last: a match tries its cases in order, and folds are hot (replay).
        case "email.bounced":
            if d.get("kind") == "hard":  # absent: soft (domain.events.EmailBouncedData)
                changes.update(_no_contact(state, "hard_bounce"))
        case "lead.do_not_contact_set":
            changes.update(_no_contact(state, "admin"))
        case "lead.do_not_contact_lifted":
            changes["do_not_contact"] = False
            changes["do_not_contact_reason"] = None
        case "lead.erased":
            changes.update(email=None, phone=None, name=None, company=None, attributes={})
            changes["erased"] = True
    return _changed(state, changes)


def _no_contact(state: LeadState, reason: str) -> dict[str, Any]:
    """The flag set, keeping the reason it was first set for."""
    return {"do_not_contact": True, "do_not_contact_reason": state.do_not_contact_reason or reason}


def _changed(state: LeadState, changes: dict[str, Any]) -> LeadState:
    """`dataclasses.replace(state, **changes)`, without re-running `__init__` over every
    field, which made a fold ~10x slower (BENCHMARKS.md). `LeadState` has no
    `__post_init__` and its fields are plain attributes, so a copy of the instance
    dictionary with the changes applied is the same value."""
    new = object.__new__(LeadState)
    values = new.__dict__
    values.update(state.__dict__)
    values.update(changes)
    return new


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
    elif event_type == "lead.do_not_contact_set" and state.do_not_contact:
        raise DoNotContactUnchanged(
            f"the lead is already on do-not-contact ({state.do_not_contact_reason})"
        )
    elif event_type == "lead.do_not_contact_lifted" and not state.do_not_contact:
        raise DoNotContactUnchanged("the lead is not on do-not-contact")
    elif event_type == "lead.released" and state.owner != data["rep_id"]:
        raise NotLeadOwner(f"{data['rep_id']} does not own this lead (owner: {state.owner})")
