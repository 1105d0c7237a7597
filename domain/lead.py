"""The aggregates of the event log (eventsourcing): `Lead` and the small records that
make appends idempotent and identity resolution race-free.

Each lead is one stream; its events are facts in the past tense. One event class per
event type; `TYPE` is the public name (SPEC §4) shown by the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.state import Decision, LeadState, LoggedEvent, apply_event


class LeadEvent(Aggregate.Event):
    """Common shape of every event in a lead's stream."""

    TYPE: ClassVar[str]
    event_id: str
    occurred_at: datetime
    data: dict[str, Any]
    rule_id: str | None
    ruleset_version: int | None
    caused_by: str | None
    # A default: events stored before traces existed have none (`domain.state.LoggedEvent`).
    traceparent: str | None = None
    # Who posted it (issue #19); a default, as events stored before carry none.
    actor: dict[str, Any] | None = None

    def to_logged(self) -> LoggedEvent:
        return LoggedEvent(
            lead_id=str(self.originator_id),
            sequence=self.originator_version,
            event_id=self.event_id,
            type=self.TYPE,
            occurred_at=self.occurred_at.isoformat(),
            recorded_at=self.timestamp.isoformat(),
            data=self.data,
            rule_id=self.rule_id,
            ruleset_version=self.ruleset_version,
            caused_by=self.caused_by,
            traceparent=self.traceparent,
            actor=self.actor,
        )

    def apply(self, aggregate: Any) -> None:
        aggregate.state = apply_event(aggregate.state, self.to_logged())
        if self.caused_by is None:  # a posted event: its id is the client's
            aggregate.event_ids.add(self.event_id)


class Lead(Aggregate):
    """A lead's stream. The aggregate keeps the folded `LeadState`; rules live elsewhere."""

    class Captured(Aggregate.Created, LeadEvent):
        TYPE = "lead.captured"

        def apply(self, aggregate: Any) -> None:
            LeadEvent.apply(self, aggregate)

    class Touched(LeadEvent):
        """A later capture of the same identity: a new touch on the lead."""

        TYPE = "lead.captured"

    class FollowedUp(LeadEvent):
        TYPE = "lead.followed_up"

    class Claimed(LeadEvent):
        TYPE = "lead.claimed"

    class Reassigned(LeadEvent):
        TYPE = "lead.reassigned"

    class Released(LeadEvent):
        TYPE = "lead.released"

    class Qualified(LeadEvent):
        TYPE = "lead.qualified"

    class OpportunityOpened(LeadEvent):
        TYPE = "lead.opportunity_opened"

    class Won(LeadEvent):
        TYPE = "lead.won"

    class Lost(LeadEvent):
        TYPE = "lead.lost"

    class EmailOpened(LeadEvent):
        TYPE = "email.opened"

    class EmailClicked(LeadEvent):
        TYPE = "email.clicked"

    class EmailBounced(LeadEvent):
        TYPE = "email.bounced"

    class EmailReplied(LeadEvent):
        TYPE = "email.replied"

    class Unsubscribed(LeadEvent):
        TYPE = "lead.unsubscribed"

    # Appended for an admin (`domain.consent`), data {reason, by}: external, not decided.
    class DoNotContactSet(LeadEvent):
        TYPE = "lead.do_not_contact_set"

    class DoNotContactLifted(LeadEvent):
        TYPE = "lead.do_not_contact_lifted"

    # Decided by leadflow (rules and lifecycle); each carries rule_id, ruleset_version, caused_by.
    class Assigned(LeadEvent):
        TYPE = "lead.assigned"

    class TaskCreated(LeadEvent):
        TYPE = "lead.task_created"

    class TimerFired(LeadEvent):
        TYPE = "lead.timer_fired"

    class ReminderSent(LeadEvent):
        TYPE = "lead.reminder_sent"

    class ReturnedToPool(LeadEvent):
        TYPE = "lead.returned_to_pool"

    class StageChanged(LeadEvent):
        TYPE = "lead.stage_changed"

    class Scored(LeadEvent):
        TYPE = "lead.scored"

    class Tagged(LeadEvent):
        TYPE = "lead.tagged"

    class IntentSet(LeadEvent):
        TYPE = "lead.intent_set"

    class NurtureEnrolled(LeadEvent):
        TYPE = "nurture.enrolled"

    class NurtureEmailSent(LeadEvent):
        TYPE = "nurture.email_sent"

    class NurtureExited(LeadEvent):
        TYPE = "nurture.exited"

    class VariantAssigned(LeadEvent):
        TYPE = "experiment.variant_assigned"

    class NotificationQueued(LeadEvent):
        TYPE = "notification.queued"

    class NotificationSent(LeadEvent):
        TYPE = "notification.sent"

    class Erased(LeadEvent):
        """The lead's personal data was erased (its data key deleted): who asked, when.
        Carries no personal data itself."""

        TYPE = "lead.erased"

    def __init__(
        self,
        event_id: str,
        occurred_at: datetime,
        data: dict[str, Any],
        rule_id: str | None,
        ruleset_version: int | None,
        caused_by: str | None,
        traceparent: str | None = None,
        actor: dict[str, Any] | None = None,
    ) -> None:
        self.state = LeadState(lead_id=str(self.id))
        # The ids of the lead's posted events: unique in the stream (decisions name the
        # event they answer by its id).
        self.event_ids: set[str] = set()

    @classmethod
    def capture(
        cls,
        lead_id: UUID,
        event_id: str,
        occurred_at: datetime,
        data: dict[str, Any],
        traceparent: str | None = None,
        actor: dict[str, Any] | None = None,
    ) -> Lead:
        lead = cls._create(
            cls.Captured,
            id=lead_id,
            event_id=event_id,
            occurred_at=occurred_at,
            data=data,
            rule_id=None,
            ruleset_version=None,
            caused_by=None,
            traceparent=traceparent,
            actor=actor,
        )
        return lead

    def record(
        self,
        event_type: str,
        event_id: str,
        occurred_at: datetime,
        data: dict[str, Any],
        traceparent: str | None = None,
        actor: dict[str, Any] | None = None,
    ) -> LeadEvent:
        """Append an external event of `event_type` (already validated and guarded)."""
        self.trigger_event(
            EXTERNAL_LEAD_EVENTS[event_type],
            event_id=event_id,
            occurred_at=occurred_at,
            data=data,
            rule_id=None,
            ruleset_version=None,
            caused_by=None,
            traceparent=traceparent,
            actor=actor,
        )
        event = self.pending_events[-1]
        assert isinstance(event, LeadEvent)
        return event

    def erase(self, event_id: str, occurred_at: datetime, data: dict[str, Any]) -> LeadEvent:
        """Record that the lead's personal data was erased (`data`: who asked, why)."""
        self.trigger_event(
            Lead.Erased,
            event_id=event_id,
            occurred_at=occurred_at,
            data=data,
            rule_id=None,
            ruleset_version=None,
            caused_by=None,
        )
        event = self.pending_events[-1]
        assert isinstance(event, LeadEvent)
        return event

    def record_decision(
        self,
        decision: Decision,
        *,
        event_id: str,
        occurred_at: datetime,
        ruleset_version: int | None,
        caused_by: str,
        traceparent: str | None = None,
    ) -> LeadEvent:
        """Append an event decided by leadflow, with the rule and ruleset that made it (and
        the trace of the event that caused it)."""
        self.trigger_event(
            DECIDED_LEAD_EVENTS[decision.type],
            event_id=event_id,
            occurred_at=occurred_at,
            data=decision.data,
            rule_id=decision.rule_id,
            ruleset_version=ruleset_version,
            caused_by=caused_by,
            traceparent=traceparent,
        )
        event = self.pending_events[-1]
        assert isinstance(event, LeadEvent)
        return event


DECIDED_LEAD_EVENTS: dict[str, type[LeadEvent]] = {
    cls.TYPE: cls
    for cls in (
        Lead.Assigned,
        Lead.TaskCreated,
        Lead.TimerFired,
        Lead.ReminderSent,
        Lead.ReturnedToPool,
        Lead.StageChanged,
        Lead.Scored,
        Lead.Tagged,
        Lead.IntentSet,
        Lead.NurtureEnrolled,
        Lead.NurtureEmailSent,
        Lead.NurtureExited,
        Lead.VariantAssigned,
        Lead.NotificationQueued,
        Lead.NotificationSent,
    )
}

EXTERNAL_LEAD_EVENTS: dict[str, type[LeadEvent]] = {
    cls.TYPE: cls
    for cls in (
        Lead.Touched,
        Lead.FollowedUp,
        Lead.Claimed,
        Lead.Reassigned,
        Lead.Released,
        Lead.Qualified,
        Lead.OpportunityOpened,
        Lead.Won,
        Lead.Lost,
        Lead.EmailOpened,
        Lead.EmailClicked,
        Lead.EmailBounced,
        Lead.EmailReplied,
        Lead.Unsubscribed,
        Lead.DoNotContactSet,
        Lead.DoNotContactLifted,
    )
}

_EXTERNAL_CLASSES: tuple[type[LeadEvent], ...] = (Lead.Captured, *EXTERNAL_LEAD_EVENTS.values())
# Every event of a lead's stream, posted and decided.
LEAD_EVENT_CLASSES: tuple[type[LeadEvent], ...] = (
    *_EXTERNAL_CLASSES,
    *DECIDED_LEAD_EVENTS.values(),
    Lead.Erased,
)
# The stored topics of external lead events: what the dispatcher delivers to workflows.
EXTERNAL_LEAD_TOPICS = tuple(f"{cls.__module__}:{cls.__qualname__}" for cls in _EXTERNAL_CLASSES)


class IdentityIndex(Aggregate):
    """Maps one normalised email or phone to its lead; id = identity_index_id(kind, value)."""

    class Created(Aggregate.Created):
        lead_id: UUID

    def __init__(self, lead_id: UUID) -> None:
        self.lead_id = lead_id

    @classmethod
    def for_identity(cls, index_id: UUID, lead_id: UUID) -> IdentityIndex:
        return cls._create(cls.Created, id=index_id, lead_id=lead_id)


class IdempotencyRecord(Aggregate):
    """Remembers the answer given to a client-supplied event id, saved atomically with it."""

    class Created(Aggregate.Created):
        fingerprint: str
        event_id: str
        lead_id: UUID | None
        sequence: int
        new_lead: bool

    def __init__(
        self, fingerprint: str, event_id: str, lead_id: UUID | None, sequence: int, new_lead: bool
    ) -> None:
        self.fingerprint = fingerprint
        self.event_id = event_id
        self.lead_id = lead_id
        self.sequence = sequence
        self.new_lead = new_lead

    @classmethod
    def remember(
        cls,
        record_id: UUID,
        *,
        fingerprint: str,
        event_id: str,
        lead_id: UUID | None,
        sequence: int,
        new_lead: bool,
    ) -> IdempotencyRecord:
        return cls._create(
            cls.Created,
            id=record_id,
            fingerprint=fingerprint,
            event_id=event_id,
            lead_id=lead_id,
            sequence=sequence,
            new_lead=new_lead,
        )


class Campaign(Aggregate):
    """A marketing campaign's stream: what was spent on it, period by period."""

    class Registered(Aggregate.Created):
        campaign_id: str

    class SpendRecorded(Aggregate.Event):
        TYPE: ClassVar[str] = "campaign.spend_recorded"
        event_id: str
        occurred_at: datetime
        data: dict[str, Any]

    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id

    @classmethod
    def register(cls, stream_id: UUID, campaign_id: str) -> Campaign:
        return cls._create(cls.Registered, id=stream_id, campaign_id=campaign_id)

    def record_spend(self, event_id: str, occurred_at: datetime, data: dict[str, Any]) -> int:
        self.trigger_event(
            self.SpendRecorded, event_id=event_id, occurred_at=occurred_at, data=data
        )
        return self.version
