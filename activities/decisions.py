"""The decisions activities: evaluate the active ruleset for a trigger (an event, or a
timer that fired) and append the decided events to the lead's stream, each in one local
activity (one Temporal round trip).

All I/O is here; the deciding itself is the pure `domain.lifecycle.step`, and timers are
planned by the pure `domain.timers.plan_timers`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from temporalio import activity

from domain.state import LeadState, LoggedEvent
from domain.timers import RunningTimer
from leadflow.eventlog import Decided, EventLog
from leadflow.rulebook import Rulebook

log = logging.getLogger(__name__)


@dataclass
class DecideInput:
    lead_id: str
    trigger: str  # the event type rules run for
    cause_id: str  # the triggering event's id: decided events are `caused_by` it
    at: str  # RFC 3339: when the trigger happened (recorded), the decisions' `now`
    timers: dict[str, RunningTimer] = field(default_factory=dict)  # running before it


@dataclass
class FireTimerInput:
    lead_id: str
    timer: RunningTimer
    timers: dict[str, RunningTimer]  # every running timer, the firing one included


@dataclass
class DecideResult:
    decided: list[LoggedEvent]
    state: LeadState  # the lead after the decisions, folded from its whole stream
    timers: dict[str, RunningTimer]  # running after the trigger and its decisions


class DecisionActivities:
    def __init__(self, event_log: EventLog, rulebook: Rulebook) -> None:
        self.event_log = event_log
        self.rulebook = rulebook
        # One decision at a time per worker: concurrent ones collide on the few rep
        # workload and team rotation streams every assignment writes and retry from
        # scratch (measured: 12 → 18 leads/s end to end with this lock; BENCHMARKS.md).
        self._deciding = threading.Lock()

    @activity.defn(name="decide")
    def decide(self, input: DecideInput) -> DecideResult:
        """The decided events for this trigger, appended (or found, on a retry)."""
        # The active ruleset and the directory are read before taking the lock: two reads
        # less in the one-at-a-time part, which bounds the worker's decisions per second.
        ruleset, directory = self.rulebook.active(), self.rulebook.directory()
        with self._deciding:
            decided = self.event_log.decide(
                UUID(input.lead_id),
                input.trigger,
                input.cause_id,
                datetime.fromisoformat(input.at),
                ruleset,
                directory,
                input.timers,
            )
        return self._result(input.lead_id, input.trigger, decided)

    @activity.defn(name="fire_timer")
    def fire_timer(self, input: FireTimerInput) -> DecideResult:
        """Record `lead.timer_fired` and the decisions of the rules for `timer.<id>`."""
        ruleset, directory = self.rulebook.active(), self.rulebook.directory()
        with self._deciding:
            decided = self.event_log.fire_timer(
                UUID(input.lead_id), input.timer, ruleset, directory, input.timers
            )
        return self._result(input.lead_id, f"timer.{input.timer.timer_id}", decided)

    @staticmethod
    def _result(lead_id: str, trigger: str, decided: Decided) -> DecideResult:
        log.info(
            "lead %s: %s → %s",
            lead_id,
            trigger,
            ", ".join(e.type for e in decided.events) or "no decisions",
        )
        return DecideResult(decided.events, decided.state, decided.timers)
