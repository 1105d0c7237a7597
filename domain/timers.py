"""Durable lead timers, planned purely (SPEC §5 `timers`).

A timer is started by an event in its `start_on` (restarted if already running),
cancelled by one in `cancel_on`, and restarted by one in `restart_on` only while it runs.
The workflow keeps the running timers and sleeps until the earliest is due; when one
fires, `lead.timer_fired` is recorded and rules run for `timer.<id>`. The replay simulator
plans timers with this same function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rules.model import Timer


@dataclass(frozen=True)
class RunningTimer:
    timer_id: str
    due_at: str  # RFC 3339
    started_by: str  # id of the event that (re)started it: what `lead.timer_fired` answers

    @property
    def due(self) -> datetime:
        return datetime.fromisoformat(self.due_at)


def plan_timers(
    running: Mapping[str, RunningTimer],
    specs: Iterable[Timer],
    happened: Iterable[tuple[str, str]],
    at: datetime,
) -> dict[str, RunningTimer]:
    """The running timers after `happened` ((event type, event id), in order) at `at`.

    For one event, cancellation comes before (re)starting, so an event listed in both
    restarts the timer.
    """
    timers = dict(running)
    by_id = {spec.id: spec for spec in specs}
    # A running timer the active ruleset no longer declares is left as it is: it fires
    # once (its rules, if any, are the active version's).
    for event_type, event_id in happened:
        for spec in by_id.values():
            if event_type in spec.cancel_on:
                timers.pop(spec.id, None)
            starts = event_type in spec.start_on
            restarts = event_type in spec.restart_on and spec.id in timers
            if starts or restarts:
                due = (at + spec.delay).isoformat()
                timers[spec.id] = RunningTimer(spec.id, due, event_id)
    return timers


def next_due(running: Mapping[str, RunningTimer]) -> RunningTimer | None:
    """The timer that fires first (ties: by id, so the order is deterministic)."""
    if not running:
        return None
    return min(running.values(), key=lambda t: (t.due, t.timer_id))
