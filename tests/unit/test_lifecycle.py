"""The pure lifecycle step: each action of the closed set becomes the decided events a
user would see on the lead's stream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.directory import parse_directory
from domain.lifecycle import ActiveRuleset, step
from domain.state import LeadState
from rules.compile import compile_ruleset
from rules.validation import parse_ruleset

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIRECTORY = parse_directory(
    {
        "teams": [{"id": "east", "name": "East", "manager": "mgr", "director": "mgr"}],
        "reps": [
            {"id": "a", "name": "A", "email": "a@x.io", "team": "east", "capacity": 2},
            {"id": "b", "name": "B", "email": "b@x.io", "team": "east", "capacity": 2},
            {
                "id": "off",
                "name": "O",
                "email": "o@x.io",
                "team": "east",
                "capacity": 9,
                "active": False,
            },
        ],
        "people": [{"id": "mgr", "name": "M", "email": "m@x.io"}],
    }
)
LEAD = LeadState(
    lead_id="6f1c1b7e-2a5d-4c44-9a7b-0c1f5b1f0c11",
    last_sequence=1,
    email="ann@x.io",
    source="website",
    region="east",
    intent="low",
    touch_count=1,
    created_at=(NOW - timedelta(hours=3)).isoformat(),
)


@dataclass
class Loads:
    open: dict[str, int] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)

    def open_leads(self, rep_id: str) -> int:
        return self.open.get(rep_id, 0)

    def last_assigned(self, team_id: str) -> str | None:
        return self.last.get(team_id)


def ruleset(*rules: dict[str, Any], **extra: Any) -> ActiveRuleset:
    doc = {"name": "t", "rules": list(rules), **extra}
    parsed = parse_ruleset(doc, DIRECTORY)
    return ActiveRuleset(7, parsed, compile_ruleset(parsed))


def rule(rule_id: str, *actions: tuple[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "when": kw.pop("when", ["lead.captured"]),
        "conditions": kw.pop("conditions", {"all": []}),
        "actions": [{"name": n, "params": p} for n, p in actions],
        **kw,
    }


def decide(
    active: ActiveRuleset,
    state: LeadState = LEAD,
    loads: Loads | None = None,
    trigger: str = "lead.captured",
) -> list[tuple[str, dict[str, Any], str | None]]:
    result = step(state, trigger, active, DIRECTORY, loads or Loads(), NOW)
    return [(d.type, d.data, d.rule_id) for d in result.decisions]


def test_assign_to_rep_and_a_task_due_from_the_trigger_time() -> None:
    active = ruleset(
        rule(
            "r",
            ("assign_to_rep", {"rep": "a"}),
            ("create_task", {"task": "call", "due_in": "PT24H"}),
        )
    )
    assert decide(active) == [
        ("lead.assigned", {"owner": "a", "team": "east", "strategy": "rep"}, "r"),
        (
            "lead.task_created",
            {"task": "call", "due_at": (NOW + timedelta(hours=24)).isoformat()},
            "r",
        ),
    ]


def test_a_rep_who_cannot_take_the_lead_sends_it_to_the_pool() -> None:
    full = ruleset(rule("r", ("assign_to_rep", {"rep": "a"})))
    assert decide(full, loads=Loads(open={"a": 2})) == [
        ("lead.returned_to_pool", {"reason": "rep_unavailable", "previous_owner": None}, "r")
    ]
    inactive = ruleset(rule("r", ("assign_to_rep", {"rep": "off"})))
    assert decide(inactive)[0][1]["reason"] == "rep_unavailable"


def test_an_owned_lead_keeps_its_owner_unless_the_rule_says_reassign() -> None:
    owned = replace(LEAD, owner="a", team="east")
    assert decide(ruleset(rule("r", ("assign_to_rep", {"rep": "b"}))), owned) == []
    moved = decide(ruleset(rule("r", ("assign_to_rep", {"rep": "b", "reassign": True}))), owned)
    assert moved == [("lead.assigned", {"owner": "b", "team": "east", "strategy": "rep"}, "r")]


def test_team_round_robin_follows_the_rotation_and_skips_full_reps() -> None:
    active = ruleset(rule("r", ("assign_to_team", {"team": "east", "strategy": "round_robin"})))
    assert decide(active, loads=Loads(last={"east": "a"}))[0][1]["owner"] == "b"
    assert decide(active, loads=Loads(last={"east": "a"}, open={"b": 2}))[0][1]["owner"] == "a"
    result = step(LEAD, "lead.captured", active, DIRECTORY, Loads(last={"east": "a"}), NOW)
    assert result.rotations == [("east", "b")]
    nobody = decide(active, loads=Loads(open={"a": 2, "b": 2}))
    assert nobody == [
        ("lead.returned_to_pool", {"reason": "team_unavailable", "previous_owner": None}, "r")
    ]


def test_least_loaded() -> None:
    active = ruleset(rule("r", ("assign_to_team", {"team": "east", "strategy": "least_loaded"})))
    assert decide(active, loads=Loads(open={"a": 1, "b": 0}))[0][1]["owner"] == "b"


def test_a_capture_no_rule_assigns_goes_to_the_pool_as_unassigned() -> None:
    assert decide(ruleset()) == [
        ("lead.returned_to_pool", {"reason": "unassigned", "previous_owner": None}, None)
    ]
    # Other triggers leave an unowned lead alone.
    assert decide(ruleset(), trigger="lead.followed_up") == []


def test_priority_and_stop() -> None:
    active = ruleset(
        rule("low", ("add_tag", {"tag": "low"}), priority=1),
        rule("high", ("assign_to_rep", {"rep": "a"}), priority=10, stop=True),
    )
    assert [d[2] for d in decide(active)] == ["high"]


def test_scoring_intent_stage_tags_and_sequences() -> None:
    active = ruleset(
        rule(
            "r",
            ("add_score", {"points": 10}),
            ("add_score", {"points": -3}),
            ("set_intent", {"intent": "high"}),
            ("set_stage", {"stage": "MQL"}),
            ("add_tag", {"tag": "vip"}),
            ("add_tag", {"tag": "vip"}),
            ("enroll_in_sequence", {"sequence": "s"}),
            ("assign_to_rep", {"rep": "a"}),
        ),
        sequences={"s": {"steps": [{"wait": "PT0S", "template": "welcome"}]}},
    )
    assert [(t, d) for t, d, _ in decide(active)] == [
        ("lead.scored", {"score": 10, "delta": 10}),
        ("lead.scored", {"score": 7, "delta": -3}),
        ("lead.intent_set", {"intent": "high"}),
        ("lead.stage_changed", {"stage": "MQL", "from": "new"}),
        ("lead.tagged", {"tag": "vip"}),
        ("nurture.enrolled", {"sequence": "s"}),
        ("lead.assigned", {"owner": "a", "team": "east", "strategy": "rep"}),
    ]
    unsubscribed = replace(
        LEAD, owner="a", unsubscribed=True, do_not_contact=True, do_not_contact_reason="x"
    )
    # No enrolment after opt-out, and the log says why.
    assert decide(active, unsubscribed)[-2:] == [
        ("lead.tagged", {"tag": "vip"}, "r"),
        ("nurture.exited", {"sequence": "s", "reason": "do_not_contact"}, "r"),
    ]


def test_stages_never_go_back_and_exit_sequence() -> None:
    sql = replace(LEAD, stage="SQL", owner="a", sequences=("s",))
    active = ruleset(
        rule("r", ("set_stage", {"stage": "MQL"}), ("exit_sequence", {})),
        sequences={"s": {"steps": [{"wait": "PT0S", "template": "welcome"}]}},
    )
    assert decide(active, sql) == [("nurture.exited", {"sequence": "s", "reason": "rule"}, "r")]


def test_variants_are_deterministic_and_assigned_once() -> None:
    experiments = {"e": {"variants": {"A": {"weight": 1}, "B": {"weight": 1}}}}
    active = ruleset(rule("r", ("assign_variant", {"experiment": "e"})), experiments=experiments)
    first = decide(active)
    assert first == decide(active)
    assert first[0][0] == "experiment.variant_assigned" and first[0][1]["variant"] in {"A", "B"}
    assigned = replace(LEAD, variants={"e": "A"}, owner="a")
    assert decide(active, assigned) == []


def test_decided_events_trigger_rules_too() -> None:
    active = ruleset(
        rule("assign", ("assign_to_rep", {"rep": "a"})),
        rule("welcome-owner", ("add_tag", {"tag": "assigned"}), when=["lead.assigned"]),
    )
    assert [d[0] for d in decide(active)] == ["lead.assigned", "lead.tagged"]


def test_conditions_see_the_facts_of_the_lead() -> None:
    young = {
        "all": [
            {"name": "hours_since_capture", "operator": "less_than", "value": 4},
            {"name": "email_domain", "operator": "equal_to", "value": "x.io"},
        ]
    }
    active = ruleset(rule("r", ("add_tag", {"tag": "fresh"}), conditions=young))
    assert decide(active, replace(LEAD, owner="a"))[0][1] == {"tag": "fresh"}
    older = replace(LEAD, owner="a", created_at=(NOW - timedelta(hours=5)).isoformat())
    assert decide(active, older) == []


class BudgetSpent(Exception):
    """What a caller's checkpoint raises when its time for the decision is spent."""


def test_a_checkpoint_runs_before_each_rule_cascades_included_and_can_stop_the_step() -> None:
    active = ruleset(
        rule("assign", ("assign_to_rep", {"rep": "a"})),
        rule("welcome-owner", ("add_tag", {"tag": "assigned"}), when=["lead.assigned"]),
    )
    calls: list[None] = []
    result = step(
        LEAD,
        "lead.captured",
        active,
        DIRECTORY,
        Loads(),
        NOW,
        checkpoint=lambda: calls.append(None),
    )
    assert [d.type for d in result.decisions] == ["lead.assigned", "lead.tagged"]
    assert len(calls) == 2

    def spent_after_one() -> None:
        if calls:
            raise BudgetSpent
        calls.append(None)

    calls.clear()
    with pytest.raises(BudgetSpent):
        step(LEAD, "lead.captured", active, DIRECTORY, Loads(), NOW, checkpoint=spent_after_one)


def _bundled(name: str) -> Any:
    return json.loads(resources.files("rules").joinpath(name).read_text())


DEFAULT_DIRECTORY = parse_directory(_bundled("default_directory.json"))
_DEFAULT = parse_ruleset(_bundled("default_ruleset.json"), DEFAULT_DIRECTORY)
DEFAULT = ActiveRuleset(1, _DEFAULT, compile_ruleset(_DEFAULT))
REPS = ["rep-east-1", "rep-east-2", "rep-west-1", "rep-west-2"]

leads = st.builds(
    LeadState,
    lead_id=st.uuids().map(str),
    last_sequence=st.integers(1, 50),
    stage=st.sampled_from(["new", "MQL", "SQL", "opportunity", "won", "lost"]),
    # Unowned first captures are common, so that assignments are too.
    owner=st.sampled_from([None, None, None, None, *REPS, "rep-gone"]),
    team=st.none() | st.sampled_from(["east", "west"]),
    in_pool=st.booleans(),
    email=st.none() | st.just("ann@example.com"),
    source=st.none() | st.sampled_from(["website", "wechat", "trade-show"]),
    region=st.none() | st.sampled_from(["east", "west", "north"]),
    intent=st.none() | st.sampled_from(["low", "medium", "high"]),
    touch_count=st.sampled_from([1, 1, 1, 0, 2]),
    followups_count=st.integers(0, 3),
    created_at=st.none() | st.just((NOW - timedelta(hours=30)).isoformat()),
    unsubscribed=st.booleans(),
    do_not_contact=st.booleans(),
    sequences=st.sampled_from([(), ("weekly-30d",)]),
)
triggers = st.sampled_from(
    [
        "lead.captured",
        "lead.followed_up",
        "lead.won",
        "email.replied",
        "timer.first_follow_up",
        "timer.reclaim_warning",
        "timer.reclaim",
        "timer.idle",
    ]
)
workloads = st.builds(
    Loads,
    open=st.dictionaries(st.sampled_from(REPS), st.integers(0, 31)),
    last=st.dictionaries(st.sampled_from(["east", "west"]), st.sampled_from(REPS)),
)


@settings(max_examples=300, deadline=None)
@given(leads, triggers, workloads)
def test_a_checkpoint_that_never_raises_changes_no_decision(
    lead: LeadState, trigger: str, loads: Loads
) -> None:
    calls: list[None] = []
    watched = step(
        lead, trigger, DEFAULT, DEFAULT_DIRECTORY, loads, NOW, checkpoint=lambda: calls.append(None)
    )
    assert watched == step(lead, trigger, DEFAULT, DEFAULT_DIRECTORY, loads, NOW)
    if DEFAULT.compiled.rules_for(trigger):
        assert calls  # it was asked, and answering changed nothing
