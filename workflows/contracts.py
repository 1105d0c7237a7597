"""What LeadWorkflow and its activities exchange: the activities' names, their inputs and
results, and the signals' payloads. Plain dataclasses over the pure core, so the workflow
module imports no I/O library: the worker registers the implementations
(`activities.decisions`, `activities.notifications`) under these names."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.state import LeadState, LoggedEvent
from domain.timers import RunningTimer

# Local activities of the decisions (`activities.decisions.DecisionActivities`).
DECIDE = "decide"
FIRE_TIMER = "fire_timer"
PLAN_DELIVERIES = "plan_deliveries"
PARK_DECISION = "park_decision"
CLOSE_PARKED_DECISION = "close_parked_decision"
# The delivery of one queued notification (`activities.notifications`).
SEND_NOTIFICATION = "send_notification"


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
    # The ruleset's timers start, restart or stop on a delivery's events: the workflow
    # plans its timers again when a delivery ends (`plan_deliveries`).
    watches_deliveries: bool = False


@dataclass
class DeliveriesInput:
    """Deliveries that ended (their `notification.queued` ids) and the running timers."""

    lead_id: str
    notification_ids: list[str]
    timers: dict[str, RunningTimer]


@dataclass
class ParkInput:
    """A trigger whose decisions failed `attempts` times: what the quarantine shows."""

    lead_id: str
    trigger: str  # the event type, or `timer.<id>`
    cause_id: str  # the triggering event's id (for a timer: `timer:<id>:<due_at>`)
    sequence: int | None
    error: str
    attempts: int


@dataclass
class CloseParkedInput:
    item_id: str
    skipped: bool  # the operator skipped the trigger (else it was decided after all)


# The workflow's retry policy allows this many attempts; the last one records the failure.
MAX_ATTEMPTS = 6
# The type of the error a delivery's last attempt ends with when its destination was still
# busy (all its deliveries in flight in this worker): the workflow schedules it again.
DESTINATION_BUSY = "DestinationBusy"


@dataclass
class SendInput:
    lead_id: str
    notification_id: str  # the event id of its `notification.queued`
    # Set by workflows that schedule the delivery again when its last attempt found the
    # destination busy; without it (earlier workflows) that attempt records a failure.
    rescheduled_when_busy: bool = False


@dataclass
class OperatorAction:
    """An operator's word on a parked decision (`POST /v1/quarantine/{id}/retry|skip`)."""

    item_id: str
    action: str  # "retry" | "skip"
