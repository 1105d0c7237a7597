"""Durable lead timers, planned purely (SPEC §5 `timers`).

A timer is started by an event in its `start_on` (restarted if already running),
cancelled by one in `cancel_on`, and restarted by one in `restart_on` only while it runs.
The workflow keeps the running timers and sleeps until the earliest is due; when one
fires, `lead.timer_fired` is recorded and rules run for `timer.<id>`. The replay simulator
plans timers with this same function.

A timer with `calendar: "business"` counts its `after` in working time of a calendar
(`domain.calendar`): the callers pass the calendar of the lead's team after the trigger's
decisions (`Directory.team_calendar`), or None, and then it counts wall-clock time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from domain.calendar import BusinessCalendar, add_business_time
from domain.state import LoggedEvent
from rules.catalog import DELIVERY_EVENT_TYPES
from rules.model import Ruleset, Sequence, Timer

NURTURE_PREFIX = "nurture:"
# Every event a CSV import appends has an id starting with this (then a hash of its row):
# its timers are planned as history's (`without_history`).
IMPORTED_ID_PREFIX = "import-"


@dataclass(frozen=True)
class RunningTimer:
    """A ruleset timer, or a nurture sequence's next step (`nurture:<sequence>`, `step`)."""

    timer_id: str
    due_at: str  # RFC 3339
    started_by: str  # id of the event that (re)started it: what `lead.timer_fired` answers
    step: int | None = None  # the nurture step it sends

    @property
    def sequence(self) -> str | None:
        return self.timer_id.removeprefix(NURTURE_PREFIX) if self.step is not None else None

    @cached_property  # read on every look for the next due timer
    def due(self) -> datetime:
        return datetime.fromisoformat(self.due_at)


def due_after(at: datetime, delay: timedelta, calendar: BusinessCalendar | None) -> datetime:
    """When `delay` has passed since `at`: working time of `calendar`, or wall-clock time
    without one."""
    if calendar is None:
        return at + delay
    return add_business_time(calendar, at, delay)


def timer_due(spec: Timer, at: datetime, calendar: BusinessCalendar | None) -> datetime:
    """When the timer `spec` started at `at` is due: a business timer counts in `calendar`
    (the lead's team's; None: wall clock), any other timer wall-clock time."""
    return due_after(at, spec.delay, calendar if spec.calendar == "business" else None)


def plan_timers(
    running: Mapping[str, RunningTimer],
    specs: Collection[Timer],
    happened: Iterable[tuple[str, str]],
    at: datetime,
    calendar: BusinessCalendar | None = None,
) -> dict[str, RunningTimer]:
    """The running timers after `happened` ((event type, event id), in order) at `at`;
    business timers count in `calendar`.

    For one event, cancellation comes before (re)starting, so an event listed in both
    restarts the timer.
    """
    timers = dict(running)
    # A running timer the active ruleset no longer declares is left as it is: it fires
    # once (its rules, if any, are the active version's). Timer ids are unique (validated).
    for event_type, event_id in happened:
        for spec in specs:
            if event_type in spec.cancel_on:
                timers.pop(spec.id, None)
            starts = event_type in spec.start_on
            restarts = event_type in spec.restart_on and spec.id in timers
            if starts or restarts:
                due = timer_due(spec, at, calendar).isoformat()
                timers[spec.id] = RunningTimer(spec.id, due, event_id)
    return timers


def without_history(
    before: Mapping[str, RunningTimer],
    planned: Mapping[str, RunningTimer],
    trigger: LoggedEvent,
    at: datetime,
    specs: Collection[Timer] = (),
    calendar: BusinessCalendar | None = None,
) -> dict[str, RunningTimer]:
    """`planned` without the timers that `trigger`, an imported event received at `at`,
    started or restarted and that would already be past due counted from when it
    happened (its `occurred_at`): that part of the lead's life is history, and those
    timers are not started; a timer it restarted keeps running as before. Every other
    timer, and every timer of a posted event however old, runs from `at`, when leadflow
    received the event (docs/imports.md, "Timers"). A business timer of `specs` counts
    from `occurred_at` in `calendar` as `plan_timers` did from `at`."""
    if trigger.caused_by is not None or not trigger.event_id.startswith(IMPORTED_ID_PREFIX):
        return dict(planned)
    happened = datetime.fromisoformat(trigger.occurred_at)
    business = {spec.id: spec for spec in specs if spec.calendar == "business"}
    kept: dict[str, RunningTimer] = {}
    for timer_id, timer in planned.items():
        earlier = before.get(timer_id)
        spec = business.get(timer_id) if timer.step is None else None
        if spec is not None:
            positive = spec.delay.total_seconds() > 0
            past_due = timer_due(spec, happened, calendar) <= at
        else:
            delay = timer.due - at
            positive = delay.total_seconds() > 0
            past_due = happened + delay <= at
        if timer is not earlier and positive and past_due:
            if earlier is not None:
                kept[timer_id] = earlier
            continue
        kept[timer_id] = timer
    return kept


def fired_timer_data(timer: RunningTimer) -> dict[str, object]:
    """The data of the `lead.timer_fired` event that records `timer` firing."""
    data: dict[str, object] = {"timer": timer.timer_id, "due_at": timer.due_at}
    if timer.step is not None:
        data["step"] = timer.step
    return data


def next_due(running: Mapping[str, RunningTimer]) -> RunningTimer | None:
    """The timer that fires first (ties: by id, so the order is deterministic)."""
    if not running:
        return None
    return min(running.values(), key=lambda t: (t.due, t.timer_id))


def plan_sequences(
    running: Mapping[str, RunningTimer],
    sequences: Mapping[str, Sequence],
    happened: Iterable[tuple[str, str, dict[str, object]]],
    at: datetime,
    fired: RunningTimer | None = None,
) -> dict[str, RunningTimer]:
    """The nurture step timers after `happened` ((type, id, data) of each event, in order):
    enrolment schedules step 0, the step that just `fired` schedules the next one, and an
    exit (or the last step) ends the sequence's timer."""
    timers = dict(running)
    if fired is not None and fired.sequence is not None:
        timers.pop(fired.timer_id, None)
        spec = sequences.get(fired.sequence)
        following = (fired.step or 0) + 1
        if spec is not None and following < len(spec.steps):
            due = (at + spec.steps[following].delay).isoformat()
            timers[fired.timer_id] = RunningTimer(fired.timer_id, due, fired.started_by, following)
    for event_type, event_id, data in happened:
        sequence = str(data.get("sequence", ""))
        timer_id = NURTURE_PREFIX + sequence
        if event_type == "nurture.enrolled" and sequence in sequences:
            due = (at + sequences[sequence].steps[0].delay).isoformat()
            timers[timer_id] = RunningTimer(timer_id, due, event_id, 0)
        elif event_type == "nurture.exited":
            timers.pop(timer_id, None)
    return timers


def watches_deliveries(ruleset: Ruleset) -> bool:
    """Whether a timer of `ruleset` starts, restarts or stops on a delivery's events
    (recorded when a notification's delivery ends, after the decision step)."""
    return any(
        DELIVERY_EVENT_TYPES.intersection((*timer.start_on, *timer.cancel_on, *timer.restart_on))
        for timer in ruleset.timers
    )


def plan_deliveries(
    running: Mapping[str, RunningTimer],
    specs: Collection[Timer],
    delivered: Iterable[LoggedEvent],
    calendar: BusinessCalendar | None = None,
) -> dict[str, RunningTimer]:
    """The running timers after `delivered` (delivery events, in log order), each at the
    time it was recorded; business timers count in `calendar`."""
    timers = dict(running)
    for event in delivered:
        at = datetime.fromisoformat(event.recorded_at)
        timers = plan_timers(timers, specs, [(event.type, event.event_id)], at, calendar)
    return timers
