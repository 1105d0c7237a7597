"""A lead's whole lifecycle on a virtual clock: events in, decisions and fired timers out.

The same pure pieces `LeadWorkflow` drives through its activities — `lifecycle.step`,
`timers.plan_timers`, `timers.plan_sequences`, `state.apply_event` — composed without
Temporal or a database, so unit tests (and the replay simulator) can run weeks of a
lead's life in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.directory import Directory
from domain.lifecycle import ActiveRuleset, Workloads, step
from domain.state import LeadState, LoggedEvent, apply_event
from domain.timers import (
    RunningTimer,
    fired_timer_data,
    next_due,
    plan_deliveries,
    plan_sequences,
    plan_timers,
    without_history,
)


@dataclass
class LeadMachine:
    lead_id: str
    active: ActiveRuleset
    directory: Directory
    workloads: Workloads
    state: LeadState = field(init=False)
    timers: dict[str, RunningTimer] = field(default_factory=dict)
    log: list[LoggedEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = LeadState(lead_id=self.lead_id)

    def _append(
        self,
        type_: str,
        data: dict[str, Any],
        at: datetime,
        rule_id: str | None = None,
        caused_by: str | None = None,
    ) -> LoggedEvent:
        event = self._record(type_, data, at.isoformat(), rule_id, caused_by)
        self.state = apply_event(self.state, event)
        return event

    def _record(
        self,
        type_: str,
        data: dict[str, Any],
        when: str,
        rule_id: str | None,
        caused_by: str | None,
    ) -> LoggedEvent:
        """Add an event that happened `when` (RFC 3339) to the log, without folding it."""
        sequence = len(self.log) + 1
        event = LoggedEvent(
            lead_id=self.lead_id,
            sequence=sequence,
            event_id=f"{self.lead_id}#{sequence}",
            type=type_,
            occurred_at=when,
            recorded_at=when,
            data=data,
            rule_id=rule_id,
            ruleset_version=self.active.version if caused_by else None,
            caused_by=caused_by,
        )
        self.log.append(event)
        return event

    def _decide(
        self, trigger: str, cause: LoggedEvent, at: datetime, fired: RunningTimer | None
    ) -> list[LoggedEvent]:
        result = step(self.state, trigger, self.active, self.directory, self.workloads, at, fired)
        when = at.isoformat()
        decided = [
            self._record(d.type, d.data, when, d.rule_id, cause.event_id) for d in result.decisions
        ]
        # The step folded its decisions as they are recorded here, one after the other.
        self.state = result.state
        happened = [cause, *decided]
        timers = {k: v for k, v in self.timers.items() if fired is None or k != fired.timer_id}
        specs = self.active.ruleset.timers
        # Business timers count in the calendar of the owner's team (else the lead's team)
        # after the decisions.
        calendar = self.directory.lead_calendar(self.state.owner, self.state.team)
        planned = plan_timers(timers, specs, [(e.type, e.event_id) for e in happened], at, calendar)
        timers = without_history(timers, planned, cause, at, specs, calendar)
        self.timers = plan_sequences(
            timers,
            self.active.ruleset.sequences,
            [(e.type, e.event_id, e.data) for e in happened],
            at,
            fired,
        )
        if self.active.watches_deliveries:
            delivered = self._deliver(decided, cause, when)
            self.timers = plan_deliveries(self.timers, specs, delivered, calendar)
            decided += delivered
        return decided

    def _deliver(
        self, decided: list[LoggedEvent], cause: LoggedEvent, when: str
    ) -> list[LoggedEvent]:
        """What the deliveries of the decided notifications record, as if each were
        delivered at once: `notification.sent`, and for a nurture email to a lead that
        can get one (an email address, not on do-not-contact), `nurture.email_sent` (only
        needed when timers watch them)."""
        delivered: list[LoggedEvent] = []
        for queued in decided:
            if queued.type != "notification.queued":
                continue
            sent = {"notification_id": queued.event_id, "status": "sent"}
            delivered.append(self._record("notification.sent", sent, when, None, cause.event_id))
            to_lead = queued.data.get("to") == "lead"
            if to_lead and self.state.email and not self.state.do_not_contact:
                email = {"notification_id": queued.event_id, **queued.data}
                delivered.append(
                    self._record("nurture.email_sent", email, when, None, cause.event_id)
                )
        return delivered

    def take(self, event: LoggedEvent) -> LoggedEvent:
        """Append a recorded external event as it is (its id and times kept, so facts such
        as `hours_since_capture` match), numbered in this machine's log, without deciding."""
        own = LoggedEvent(
            lead_id=event.lead_id,
            sequence=len(self.log) + 1,
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            data=event.data,
            rule_id=event.rule_id,
            ruleset_version=event.ruleset_version,
            caused_by=event.caused_by,
        )
        self.log.append(own)
        self.state = apply_event(self.state, own)
        return own

    def decide(self, event: LoggedEvent, at: datetime) -> list[LoggedEvent]:
        """The decisions for an external event already appended (`take`), at `at`."""
        return self._decide(event.type, event, at, None)

    def fire(self, due: RunningTimer) -> list[LoggedEvent]:
        """Fire one running timer at its due time: `lead.timer_fired` and its decisions."""
        fired = self._append(
            "lead.timer_fired", fired_timer_data(due), due.due, None, due.started_by
        )
        return [fired, *self._decide(f"timer.{due.timer_id}", fired, due.due, due)]

    def receive(self, type_: str, data: dict[str, Any], at: datetime) -> list[LoggedEvent]:
        """An external event at `at` (timers due before it fire first); returns every event
        appended, the external one first."""
        fired = self.advance(at)
        event = self._append(type_, data, at)
        return [*fired, event, *self.decide(event, at)]

    def advance(self, until: datetime) -> list[LoggedEvent]:
        """Fire, in order, every timer due at or before `until`; returns what they appended."""
        appended: list[LoggedEvent] = []
        while (due := next_due(self.timers)) is not None and due.due <= until:
            appended += self.fire(due)
        return appended
