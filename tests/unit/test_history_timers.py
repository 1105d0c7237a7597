"""`domain.timers.without_history`: an imported trigger starts no timer that would already
be past due counted from when it happened; other timers, and every timer of a posted
event however old, run from when leadflow received it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.state import LoggedEvent
from domain.timers import RunningTimer, plan_timers, without_history
from rules.model import Timer

RECEIVED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SPECS = [
    Timer(id="first_follow_up", start_on=["lead.captured"], after="PT24H"),
    Timer(id="idle", start_on=["lead.captured"], restart_on=["lead.captured"], after="P7D"),
]


def capture(
    happened: datetime, caused_by: str | None = None, event_id: str = "import-0123"
) -> LoggedEvent:
    return LoggedEvent(
        lead_id="l",
        sequence=2,
        event_id=event_id,
        type="lead.captured",
        occurred_at=happened.isoformat(),
        recorded_at=RECEIVED.isoformat(),
        caused_by=caused_by,
    )


def planned_after(trigger: LoggedEvent, before: dict[str, RunningTimer]) -> dict[str, RunningTimer]:
    planned = plan_timers(before, SPECS, [(trigger.type, trigger.event_id)], RECEIVED)
    return without_history(before, planned, trigger, RECEIVED)


def test_timers_of_a_live_event_run_from_receipt() -> None:
    timers = planned_after(capture(RECEIVED - timedelta(seconds=1)), {})
    assert {k: t.due for k, t in timers.items()} == {
        "first_follow_up": RECEIVED + timedelta(hours=24),
        "idle": RECEIVED + timedelta(days=7),
    }


def test_only_the_timers_already_past_due_from_when_it_happened_are_not_started() -> None:
    timers = planned_after(capture(RECEIVED - timedelta(days=2)), {})
    assert list(timers) == ["idle"]  # 24 h after two days ago is past; 7 days is not
    assert timers["idle"].due == RECEIVED + timedelta(days=7)  # from receipt
    assert planned_after(capture(RECEIVED - timedelta(days=400)), {}) == {}


def test_a_history_event_leaves_a_running_timer_as_it_was() -> None:
    running = {"idle": RunningTimer("idle", (RECEIVED + timedelta(days=1)).isoformat(), "x")}
    assert planned_after(capture(RECEIVED - timedelta(days=30)), running) == running


def test_decisions_and_fired_timers_are_never_history() -> None:
    fired = capture(RECEIVED - timedelta(days=30), caused_by="trigger")
    assert set(planned_after(fired, {})) == {"first_follow_up", "idle"}


def test_a_posted_event_however_old_has_its_timers_from_receipt() -> None:
    posted = capture(RECEIVED - timedelta(days=30), event_id="crm-sync-42")
    timers = planned_after(posted, {})
    assert timers["first_follow_up"].due == RECEIVED + timedelta(hours=24)
    assert set(timers) == {"first_follow_up", "idle"}
