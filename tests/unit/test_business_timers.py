"""Business timers on the virtual clock: a `calendar: "business"` timer (and a task's
`due_in`) counts working time of the lead's team's calendar, in `LeadMachine` and so in
the replay simulator; a team without a calendar counts wall-clock time."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from domain.directory import Directory, parse_directory
from domain.lifecycle import ActiveRuleset
from domain.machine import LeadMachine
from domain.state import LoggedEvent
from domain.timers import plan_timers, without_history
from replay.simulator import fixed, simulate
from rules.compile import compile_ruleset
from rules.model import Timer
from rules.validation import parse_ruleset, validate_ruleset

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Friday 17:00 in Shanghai; the default calendar works 09:00-12:00 and 13:30-18:00.
FRIDAY_17 = datetime(2026, 12, 4, 17, 0, tzinfo=SHANGHAI)
# 24 working hours: Friday 1 h, Monday to Wednesday 7.5 h each, then Thursday 09:00-09:30.
THURSDAY_0930 = datetime(2026, 12, 10, 9, 30, tzinfo=SHANGHAI)
DIRECTORY_DOC: dict[str, Any] = json.loads(
    resources.files("rules").joinpath("default_directory.json").read_text()
)
DIRECTORY = parse_directory(DIRECTORY_DOC)

RULESET: dict[str, Any] = {
    "name": "business hours",
    "timers": [
        {
            "id": "first_follow_up",
            "start_on": ["lead.assigned"],
            "cancel_on": ["lead.followed_up"],
            "after": "PT24H",
            "calendar": "business",
        },
        {"id": "wall", "start_on": ["lead.assigned"], "after": "PT24H"},
    ],
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "actions": [
                {"name": "assign_to_rep", "params": {"rep": "rep-east-1"}},
                {
                    "name": "create_task",
                    "params": {"task": "call", "due_in": "PT24H", "calendar": "business"},
                },
            ],
        },
        {
            "id": "remind",
            "when": ["timer.first_follow_up"],
            "actions": [
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}}
            ],
        },
    ],
}


class NoLoad:
    def open_leads(self, rep_id: str) -> int:
        return 0

    def last_assigned(self, team_id: str) -> str | None:
        return None


def active(document: dict[str, Any], directory: Directory) -> ActiveRuleset:
    ruleset = parse_ruleset(document, directory)
    return ActiveRuleset(1, ruleset, compile_ruleset(ruleset))


def captured(directory: Directory = DIRECTORY) -> LeadMachine:
    machine = LeadMachine("lead-1", active(RULESET, directory), directory, NoLoad())
    capture = {"email": "ann@x.io", "source": "website"}
    machine.receive("lead.captured", capture, FRIDAY_17.astimezone(UTC))
    return machine


def fired(machine: LeadMachine) -> dict[str, datetime]:
    return {
        str(e.data["timer"]): datetime.fromisoformat(str(e.data["due_at"]))
        for e in machine.log
        if e.type == "lead.timer_fired"
    }


def test_a_business_timer_fires_after_24_working_hours_of_the_team_s_calendar() -> None:
    machine = captured()
    assert machine.state.team == "east"
    running = machine.timers
    assert running["first_follow_up"].due == THURSDAY_0930
    assert running["wall"].due == FRIDAY_17 + timedelta(hours=24)  # Saturday 17:00
    [task] = [e for e in machine.log if e.type == "lead.task_created"]
    assert datetime.fromisoformat(str(task.data["due_at"])) == THURSDAY_0930

    machine.advance(THURSDAY_0930 - timedelta(seconds=1))
    assert set(fired(machine)) == {"wall"}
    machine.advance(THURSDAY_0930)
    assert fired(machine) == {
        "wall": FRIDAY_17 + timedelta(hours=24),
        "first_follow_up": THURSDAY_0930,
    }
    assert any(e.type == "lead.reminder_sent" for e in machine.log)


def test_a_team_without_a_calendar_counts_wall_clock_time() -> None:
    document = copy.deepcopy(DIRECTORY_DOC)
    for team in document["teams"]:
        team["calendar"] = None
    machine = captured(parse_directory(document))
    assert machine.timers["first_follow_up"].due == FRIDAY_17 + timedelta(hours=24)


def test_only_business_is_a_timer_calendar() -> None:
    document = copy.deepcopy(RULESET)
    document["timers"][0]["calendar"] = "office"
    document["rules"][0]["actions"][1]["params"]["calendar"] = "office"
    paths = {e.path for e in validate_ruleset(document, DIRECTORY)}
    assert paths == {"/timers/0/calendar", "/rules/0/actions/1/params/calendar"}


def test_the_replay_of_a_business_timer_fires_at_the_calendar_s_due() -> None:
    at = FRIDAY_17.astimezone(UTC).isoformat()
    history = [
        LoggedEvent(
            lead_id="lead-1",
            sequence=1,
            event_id="lead-1/1",
            type="lead.captured",
            occurred_at=at,
            recorded_at=at,
            data={"email": "ann@x.io", "source": "website"},
        )
    ]
    wall = copy.deepcopy(RULESET)
    del wall["timers"][0]["calendar"]

    def first_follow_ups(document: dict[str, Any], until: datetime) -> list[Any]:
        outcome = simulate(history, fixed(active(document, DIRECTORY)), DIRECTORY, until=until)
        return [
            e.data["due_at"]
            for e in outcome.leads["lead-1"].decided
            if e.type == "lead.timer_fired" and e.data["timer"] == "first_follow_up"
        ]

    assert first_follow_ups(RULESET, THURSDAY_0930) == [THURSDAY_0930.astimezone(UTC).isoformat()]
    assert first_follow_ups(RULESET, THURSDAY_0930 - timedelta(seconds=1)) == []
    saturday = (FRIDAY_17 + timedelta(hours=24)).astimezone(UTC)
    assert first_follow_ups(wall, THURSDAY_0930) == [saturday.isoformat()]


def test_an_imported_trigger_counts_its_history_in_working_time() -> None:
    specs = [
        Timer(id="sla", start_on=["lead.captured"], after="PT24H", calendar="business"),
        Timer(id="wall", start_on=["lead.captured"], after="PT24H"),
    ]
    calendar = DIRECTORY.team_calendar("east")
    received = datetime(2026, 12, 8, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)  # Tuesday

    def planned(happened: datetime) -> dict[str, datetime]:
        trigger = LoggedEvent(
            lead_id="l",
            sequence=1,
            event_id="import-1",
            type="lead.captured",
            occurred_at=happened.isoformat(),
            recorded_at=received.isoformat(),
        )
        started = plan_timers({}, specs, [(trigger.type, trigger.event_id)], received, calendar)
        kept = without_history({}, started, trigger, received, specs, calendar)
        return {timer_id: timer.due for timer_id, timer in kept.items()}

    # Friday 17:00 to Tuesday 10:00 is 65 hours but 9.5 working hours: the SLA runs (from
    # receipt), the wall-clock timer would be past due and is not started.
    assert planned(FRIDAY_17) == {"sla": datetime(2026, 12, 11, 11, 30, tzinfo=SHANGHAI)}
    # Twenty days earlier, both are history.
    assert planned(FRIDAY_17 - timedelta(days=20)) == {}


def test_a_claim_counts_in_the_claiming_rep_s_team_calendar() -> None:
    # The west team works whole weekdays; a lead in the pool (no team) claimed by a west
    # rep on Friday at 17:00 is due 24 working hours later in west's calendar: Monday 17:00.
    document = copy.deepcopy(DIRECTORY_DOC)
    whole_days = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    document["calendars"].append(
        {"id": "all-day", "time_zone": "Asia/Shanghai", "hours": whole_days}
    )
    document["teams"][1]["calendar"] = "all-day"
    directory = parse_directory(document)
    claimable = copy.deepcopy(RULESET)
    claimable["timers"][0]["start_on"] = ["lead.claimed"]
    claimable["timers"][0]["id"] = "sla"
    claimable["rules"] = []
    machine = LeadMachine("lead-1", active(claimable, directory), directory, NoLoad())
    at = FRIDAY_17.astimezone(UTC)
    machine.receive("lead.captured", {"email": "ann@x.io", "source": "website"}, at)
    assert machine.state.in_pool and machine.state.team is None
    machine.receive("lead.claimed", {"rep_id": "rep-west-1"}, at)
    assert machine.timers["sla"].due == datetime(2026, 12, 7, 17, 0, tzinfo=SHANGHAI)


def test_a_business_timer_started_by_a_delivery_counts_in_the_calendar_too() -> None:
    # "No reply within 8 working hours of the owner's notification": started when the
    # notification is delivered (planned by `plan_deliveries`), after the capture's decisions.
    document = copy.deepcopy(RULESET)
    document["timers"] = [
        {
            "id": "no_reply",
            "start_on": ["notification.sent"],
            "after": "PT8H",
            "calendar": "business",
        }
    ]
    document["rules"] = [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "actions": [
                {"name": "assign_to_rep", "params": {"rep": "rep-east-1"}},
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}},
            ],
        }
    ]
    machine = LeadMachine("lead-1", active(document, DIRECTORY), DIRECTORY, NoLoad())
    machine.receive(
        "lead.captured", {"email": "a@x.io", "source": "web"}, FRIDAY_17.astimezone(UTC)
    )
    assert "notification.sent" in {e.type for e in machine.log}
    # Friday 17:00-18:00, Monday 09:00-12:00 and 13:30-17:30.
    assert machine.timers["no_reply"].due == datetime(2026, 12, 7, 17, 30, tzinfo=SHANGHAI)
