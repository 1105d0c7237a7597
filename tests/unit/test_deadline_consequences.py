"""What a running timer will do when it fires, worded for people (domain.deadlines)."""

from __future__ import annotations

import json
from pathlib import Path

from domain.deadlines import consequences, kind_of
from domain.directory import parse_directory
from domain.state import LeadState
from domain.timers import RunningTimer
from rules.model import Ruleset

ROOT = Path(__file__).parents[2]
DIRECTORY = parse_directory(
    json.loads((ROOT / "rules" / "default_directory.json").read_text(encoding="utf-8"))
)
RULESET = Ruleset.model_validate(
    {
        "name": "consequences",
        "timers": [
            {"id": "first_follow_up", "start_on": ["lead.assigned"], "after": "PT24H"},
            {"id": "reclaim", "start_on": ["lead.assigned"], "after": "PT48H"},
        ],
        "rules": [
            {
                "id": "remind",
                "when": ["timer.first_follow_up"],
                "actions": [
                    {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}}
                ],
            },
            {
                "id": "escalate-vip",
                "when": ["timer.first_follow_up"],
                "priority": -1,
                "conditions": {
                    "all": [{"name": "intent", "operator": "equal_to", "value": "high"}]
                },
                "actions": [
                    {"name": "notify", "params": {"to": "director", "template": "lead-idle"}}
                ],
            },
            {
                "id": "reclaim-48h",
                "when": ["timer.reclaim"],
                "priority": 10,
                "stop": True,
                "actions": [
                    {"name": "return_to_pool", "params": {"reason": "no_follow_up_48h"}},
                    {"name": "notify", "params": {"to": "manager", "template": "lead-reclaimed"}},
                ],
            },
            {
                "id": "never-reached",
                "when": ["timer.reclaim"],
                "actions": [{"name": "add_tag", "params": {"tag": "late"}}],
            },
        ],
        "sequences": {
            "weekly": {"steps": [{"wait": "PT0S", "template": "welcome"}], "exit_on": []}
        },
    }
)
LEAD = LeadState(lead_id="l-1", owner="rep-east-1", team="east")


def timer(timer_id: str, step: int | None = None) -> RunningTimer:
    return RunningTimer(timer_id, "2026-12-08T06:00:00+00:00", "e-1", step)


def test_a_reminder_names_the_owner_and_a_conditional_rule_says_so() -> None:
    found = consequences(timer("first_follow_up"), RULESET, LEAD, DIRECTORY)
    assert [(c.rule_id, c.recipient, c.recipient_name, c.conditional) for c in found] == [
        ("remind", "rep-east-1", "Li Wei", False),
        ("escalate-vip", "dir-sales", "Sun Hui", True),
    ]


def test_a_reclaim_returns_to_the_pool_notifies_the_manager_and_stops() -> None:
    found = consequences(timer("reclaim"), RULESET, LEAD, DIRECTORY)
    assert [(c.action, c.reason, c.recipient_name) for c in found] == [
        ("return_to_pool", "no_follow_up_48h", None),
        ("notify", None, "Liu Yang"),
    ]


def test_a_claimed_lead_without_a_team_reaches_its_owners_manager() -> None:
    claimed = LeadState(lead_id="l-2", owner="rep-west-1")
    [_, notify] = consequences(timer("reclaim"), RULESET, claimed, DIRECTORY)
    assert (notify.recipient, notify.recipient_name) == ("mgr-west", "Zhao Lei")


def test_a_nurture_step_sends_its_template() -> None:
    step = timer("nurture:weekly", step=0)
    assert kind_of(step) == "nurture" and kind_of(timer("reclaim")) == "ruleset"
    [send] = consequences(step, RULESET, LEAD, DIRECTORY)
    assert (send.action, send.template) == ("send_email", "welcome")


def test_a_timer_no_rule_answers_does_nothing_and_no_ruleset_knows_nothing() -> None:
    assert consequences(timer("idle"), RULESET, LEAD, DIRECTORY) == []
    assert consequences(timer("reclaim"), None, LEAD, DIRECTORY) == []
