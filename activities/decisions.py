"""The decisions activity: evaluate the active ruleset for a trigger and append the
decided events to the lead's stream, in one local activity (one Temporal round trip).

All I/O is here; the deciding itself is the pure `domain.lifecycle.step`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from temporalio import activity

from domain.state import LeadState, LoggedEvent
from leadflow.eventlog import EventLog
from leadflow.rulebook import Rulebook

log = logging.getLogger(__name__)


@dataclass
class DecideInput:
    lead_id: str
    trigger: str  # an event type, or timer.<id>
    cause_id: str  # the triggering event's id: decided events are `caused_by` it
    at: str  # RFC 3339: when the trigger happened (recorded), the decisions' `now`


@dataclass
class DecideResult:
    decided: list[LoggedEvent]
    state: LeadState  # the lead after the decisions, folded from its whole stream


class DecisionActivities:
    def __init__(self, event_log: EventLog, rulebook: Rulebook) -> None:
        self.event_log = event_log
        self.rulebook = rulebook

    @activity.defn(name="decide")
    def decide(self, input: DecideInput) -> DecideResult:
        """The decided events for this trigger, appended (or found, on a retry)."""
        decided, state = self.event_log.decide(
            UUID(input.lead_id),
            input.trigger,
            input.cause_id,
            datetime.fromisoformat(input.at),
            self.rulebook.active(),
            self.rulebook.directory(),
        )
        log.info(
            "lead %s: %s → %s",
            input.lead_id,
            input.trigger,
            ", ".join(e.type for e in decided) or "no decisions",
        )
        return DecideResult(decided, state)
