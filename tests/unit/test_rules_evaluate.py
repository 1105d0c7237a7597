import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.directory import parse_directory
from domain.state import LeadState
from rules.catalog import VARIABLES, AssignToRep, AssignToTeam, CreateTask, EnrollInSequence, Notify
from rules.compile import compile_ruleset
from rules.evaluate import evaluate, facts_for
from rules.validation import parse_ruleset

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALWAYS: dict[str, list[Any]] = {"all": []}
NEVER: dict[str, list[Any]] = {"any": []}


def load(name: str) -> Any:
    return json.loads(resources.files("rules").joinpath(name).read_text())


DEFAULT = compile_ruleset(
    parse_ruleset(load("default_ruleset.json"), parse_directory(load("default_directory.json")))
)


def captured(**fields: Any) -> LeadState:
    base = LeadState(lead_id="lead-1", touch_count=1, created_at="2026-03-01T12:00:00+00:00")
    return replace(base, **fields)


def fired_ids(state: LeadState, trigger: str = "lead.captured") -> list[str]:
    return [f.rule_id for f in evaluate(DEFAULT, trigger, facts_for(state, NOW, {}))]


rule_specs = st.lists(
    st.fixed_dictionaries(
        {
            "priority": st.integers(-3, 3),
            "stop": st.booleans(),
            "matches": st.booleans(),
            "when": st.lists(
                st.sampled_from(["lead.captured", "lead.followed_up"]), min_size=1, max_size=2
            ),
        }
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(rule_specs)
def test_rules_fire_by_priority_and_stop_ends_the_trigger(specs: list[dict[str, Any]]) -> None:
    doc = {
        "name": "generated",
        "rules": [
            {
                "id": f"r{i}",
                "when": spec["when"],
                "priority": spec["priority"],
                "stop": spec["stop"],
                "conditions": ALWAYS if spec["matches"] else NEVER,
                "actions": [{"name": "add_score", "params": {"points": i}}],
            }
            for i, spec in enumerate(specs)
        ],
    }
    compiled = compile_ruleset(parse_ruleset(doc, None))
    for trigger in ("lead.captured", "lead.followed_up"):
        # The reference: a stable sort by descending priority, then a linear scan.
        candidates = sorted(
            (i for i, spec in enumerate(specs) if trigger in spec["when"]),
            key=lambda i: -specs[i]["priority"],
        )
        expected: list[str] = []
        for i in candidates:
            if specs[i]["matches"]:
                expected.append(f"r{i}")
                if specs[i]["stop"]:
                    break
        fired = evaluate(compiled, trigger, {})
        assert [f.rule_id for f in fired] == expected
        assert all(f.actions[0].model_dump() == {"points": int(f.rule_id[1:])} for f in fired)
    assert evaluate(compiled, "timer.none", {}) == []


def test_a_rule_listing_a_trigger_twice_fires_once() -> None:
    doc = {"name": "x", "rules": [{"id": "a", "when": ["lead.captured", "lead.captured"]}]}
    assert [
        f.rule_id for f in evaluate(compile_ruleset(parse_ruleset(doc, None)), "lead.captured", {})
    ] == ["a"]


class BudgetSpent(Exception):
    """What a caller's checkpoint raises when its time for the decision is spent."""


def test_a_checkpoint_runs_before_each_rule_tested_and_can_stop_the_evaluation() -> None:
    facts = facts_for(captured(source="website", region="east", intent="low"), NOW, {})
    calls: list[None] = []
    fired = evaluate(DEFAULT, "lead.captured", facts, lambda: calls.append(None))
    # The nurture rule, then east-website, whose `stop` leaves the other three untested.
    assert [f.rule_id for f in fired] == ["low-intent-nurture", "east-website"]
    assert len(calls) == 2

    def spent_after_one() -> None:
        if calls:
            raise BudgetSpent
        calls.append(None)

    calls.clear()
    with pytest.raises(BudgetSpent):
        evaluate(DEFAULT, "lead.captured", facts, spent_after_one)


def test_default_ruleset_routes_east_website_leads_to_the_named_rep() -> None:
    fired = evaluate(
        DEFAULT, "lead.captured", facts_for(captured(source="website", region="east"), NOW, {})
    )
    assert fired == [
        (
            "east-website",
            (
                AssignToRep(rep="rep-east-1"),
                CreateTask(task="first_follow_up", due_in=timedelta(hours=24)),
            ),
        )
    ]


def test_default_ruleset_routes_by_region_and_nurtures_low_intent() -> None:
    assert fired_ids(captured(source="fair", region="east")) == ["east-team"]
    assert fired_ids(captured(source="website", region="west", intent="low")) == [
        "low-intent-nurture",
        "west-team",
    ]
    assert fired_ids(captured(source="ads")) == ["other-regions"]
    other = evaluate(
        DEFAULT, "lead.captured", facts_for(captured(region="north", intent="low"), NOW, {})
    )
    assert [f.actions[0] for f in other] == [
        EnrollInSequence(sequence="weekly-30d"),
        AssignToTeam(team="west", strategy="round_robin"),
    ]


def test_default_ruleset_leaves_a_repeat_capture_alone() -> None:
    assert fired_ids(captured(source="website", region="east", intent="low", touch_count=2)) == []


def test_default_ruleset_timers_remind_reclaim_and_idle() -> None:
    state = captured(owner="rep-east-2", team="east")
    assert evaluate(DEFAULT, "timer.first_follow_up", facts_for(state, NOW, {}))[0].actions == (
        Notify(to="owner", template="follow-up-overdue"),
    )
    assert fired_ids(state, "timer.reclaim") == ["reclaim-48h"]
    assert fired_ids(state, "timer.idle") == ["idle-7d"]


def test_facts_for_computes_every_variable() -> None:
    state = LeadState(
        lead_id="lead-1",
        email="ann@Example.com",
        phone="+8613800138000",
        source="website",
        region="east",
        intent="high",
        score=15,
        stage="MQL",
        tags=("vip", "expo"),
        owner="rep-east-1",
        team="east",
        touch_count=2,
        followups_count=1,
        attributes={"budget": 5000, "segment": "smb", "trial": True, "note": None, "dims": [1, 2]},
        created_at="2026-03-01T09:30:00Z",
    )
    facts = facts_for(state, NOW, {"subject-test": "B"})
    assert set(VARIABLES) <= set(facts)
    assert facts["email_domain"] == "Example.com"
    assert facts["has_phone"] is True and facts["in_pool"] is False
    assert facts["hours_since_capture"] == 26.5
    assert facts["tags"] == ("vip", "expo")
    assert facts["score"] == 15 and facts["touch_count"] == 2 and facts["followups_count"] == 1
    assert facts["variant.subject-test"] == "B"
    assert facts["attributes.budget"] == "5000"
    assert facts["attributes.segment"] == "smb"
    assert facts["attributes.trial"] == "true"
    assert facts["attributes.note"] is None
    assert facts["attributes.dims"] == "[1,2]"
    assert facts["industry"] is None and facts["campaign_id"] is None


def test_facts_for_a_lead_not_yet_captured() -> None:
    facts = facts_for(LeadState(lead_id="lead-1", email="no-at-sign"), NOW, {})
    assert facts["hours_since_capture"] == 0
    assert facts["email_domain"] is None and facts["has_phone"] is False
    assert facts["score"] == 0 and facts["stage"] == "new" and facts["owner"] is None


def test_hours_since_capture_never_goes_negative_and_accepts_naive_times() -> None:
    state = captured(created_at="2026-03-02T13:00:00")
    assert facts_for(state, NOW, {})["hours_since_capture"] == 0
    assert facts_for(state, datetime(2026, 3, 2, 14, 30), {})["hours_since_capture"] == 1.5


def test_a_rule_can_test_a_variant_and_an_attribute() -> None:
    doc = {
        "name": "x",
        "experiments": {"subject-test": {"variants": {"A": {"weight": 1}, "B": {"weight": 1}}}},
        "rules": [
            {
                "id": "big-b",
                "when": ["lead.captured"],
                "conditions": {
                    "all": [
                        {"name": "variant.subject-test", "operator": "equal_to", "value": "B"},
                        {
                            "name": "attributes.budget",
                            "operator": "matches_regex",
                            "value": "^[0-9]{4,}$",
                        },
                    ]
                },
            }
        ],
    }
    compiled = compile_ruleset(parse_ruleset(doc, None))
    state = captured(attributes={"budget": 5000})
    assert [
        f.rule_id
        for f in evaluate(compiled, "lead.captured", facts_for(state, NOW, {"subject-test": "B"}))
    ] == ["big-b"]
    assert evaluate(compiled, "lead.captured", facts_for(state, NOW, {"subject-test": "A"})) == []
    assert (
        evaluate(compiled, "lead.captured", facts_for(captured(), NOW, {"subject-test": "B"})) == []
    )
