"""A ruleset in words (rules.describe): every action kind, every kind of change, names
from the directory, and an unknown rep shown by its id."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from domain.directory import Directory, parse_directory
from rules.describe import (
    NO_RULESET,
    describe_against,
    describe_changes,
    describe_ruleset,
)
from rules.describe_request import DescribeRequest, parse_describe_request
from rules.model import Ruleset
from rules.validation import InvalidRuleset, parse_ruleset
from store.rulebook import default_directory_document, default_ruleset_document

DIRECTORY = parse_directory(default_directory_document())


def ruleset(doc: dict[str, Any], directory: Directory | None = DIRECTORY) -> Ruleset:
    return parse_ruleset(doc, directory)


def one_rule(*actions: dict[str, Any], **rule: Any) -> dict[str, Any]:
    return {
        "name": "one",
        "timers": [{"id": "first_follow_up", "start_on": ["lead.assigned"], "after": "PT24H"}],
        "experiments": {"subject": {"variants": {"A": {"weight": 1}, "B": {"weight": 3}}}},
        "rules": [{"id": "r", "when": ["lead.captured"], "actions": list(actions), **rule}],
    }


def sentence(doc: dict[str, Any], directory: Directory | None = DIRECTORY) -> str:
    return describe_ruleset(ruleset(doc, directory), directory)[0]["sentence"]


def test_the_brief_s_rule_reads_as_a_sentence_with_the_rep_s_name() -> None:
    doc = one_rule(
        {"name": "assign_to_rep", "params": {"rep": "rep-east-1"}},
        {"name": "create_task", "params": {"task": "first_follow_up", "due_in": "PT24H"}},
        stop=True,
        conditions={
            "all": [
                {"name": "source", "operator": "equal_to", "value": "website"},
                {"name": "region", "operator": "equal_to", "value": "east"},
            ]
        },
    )
    assert sentence(doc) == (
        "When a lead arrives, if source is website and region is east: assign to Li Wei; "
        "create the task first follow up due in 24 hours. Stops further rules."
    )


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ({"name": "assign_to_rep", "params": {"rep": "rep-east-2"}}, "assign to Zhang Min"),
        (
            {"name": "assign_to_rep", "params": {"rep": "rep-east-2", "reassign": True}},
            "assign to Zhang Min, even if the lead already has an owner",
        ),
        (
            {"name": "assign_to_team", "params": {"team": "east", "strategy": "least_loaded"}},
            "assign to team East, to whoever has the fewest open leads",
        ),
        (
            {"name": "return_to_pool", "params": {"reason": "no_follow_up"}},
            "return the lead to the pool (reason: no follow up)",
        ),
        (
            {"name": "create_task", "params": {"task": "call", "due_in": "P1DT12H"}},
            "create the task call due in 1 day 12 hours",
        ),
        (
            {"name": "notify", "params": {"to": "manager", "template": "lead-reclaimed"}},
            "notify the lead's manager with the message lead-reclaimed",
        ),
        (
            {"name": "notify", "params": {"to": "rep:rep-west-1", "template": "lead-idle"}},
            "notify Wang Fang with the message lead-idle",
        ),
        (
            {
                "name": "notify",
                "params": {"to": "owner", "template": "lead-idle", "channel": "email"},
            },
            "notify the lead's owner with the message lead-idle by email",
        ),
        (
            {"name": "enroll_in_sequence", "params": {"sequence": "weekly-30d"}},
            "enrol in the sequence weekly-30d",
        ),
        ({"name": "exit_sequence", "params": {}}, "end every sequence"),
        (
            {"name": "exit_sequence", "params": {"sequence": "weekly-30d"}},
            "end the sequence weekly-30d",
        ),
        ({"name": "set_intent", "params": {"intent": "high"}}, "set the intent to high"),
        ({"name": "add_score", "params": {"points": 10}}, "add 10 points to the score"),
        ({"name": "add_score", "params": {"points": -3}}, "take 3 points off the score"),
        (
            {"name": "set_stage", "params": {"stage": "SQL"}},
            "move the lead to sales-qualified (SQL)",
        ),
        (
            {"name": "assign_variant", "params": {"experiment": "subject"}},
            "pick the lead's variant of the experiment subject",
        ),
        ({"name": "add_tag", "params": {"tag": "vip"}}, "tag the lead vip"),
    ],
)
def test_each_action_kind_reads_as_a_command(action: dict[str, Any], words: str) -> None:
    doc = one_rule(action)
    doc["sequences"] = default_ruleset_document()["sequences"]
    assert sentence(doc) == f"When a lead arrives: {words}."


def test_an_unknown_rep_is_shown_by_its_id() -> None:
    doc = one_rule({"name": "assign_to_rep", "params": {"rep": "rep-gone"}})
    # Without a directory the ruleset parses; the rep has no name to show.
    assert sentence(doc, None) == "When a lead arrives: assign to rep-gone."
    other = parse_directory({"teams": [], "reps": []})
    assert describe_ruleset(ruleset(doc, None), other)[0]["sentence"].endswith("rep-gone.")


def test_conditions_read_with_and_or_and_groups() -> None:
    doc = one_rule(
        {"name": "add_tag", "params": {"tag": "hot"}},
        when=["lead.captured", "email.opened"],
        conditions={
            "any": [
                {"name": "owner", "operator": "equal_to", "value": "rep-east-1"},
                {
                    "all": [
                        {"name": "hours_since_capture", "operator": "greater_than", "value": 48},
                        {"name": "has_phone", "operator": "is_false"},
                        {"name": "tags", "operator": "contains", "value": "vip"},
                        {"name": "attributes.budget", "operator": "non_empty"},
                    ]
                },
            ]
        },
    )
    assert sentence(doc) == (
        "When a lead arrives or an email is opened, if owner is Li Wei or (hours since capture "
        "is more than 48 and the lead has no phone number and tags include vip and attribute "
        "budget is not empty): tag the lead hot."
    )


def test_every_part_of_the_default_ruleset_gets_a_sentence() -> None:
    described = describe_ruleset(ruleset(default_ruleset_document()), DIRECTORY)
    subjects = {(d["subject"], d["id"]) for d in described}
    assert ("timer", "reclaim") in subjects and ("sequence", "weekly-30d") in subjects
    assert ("pool", "pool") in subjects
    by_id = {d["id"]: d["sentence"] for d in described}
    assert by_id["reclaim"].startswith("The reclaim timer runs out 48 hours after it starts.")
    assert "sends welcome at once, then article-1 after 7 days" in by_id["weekly-30d"]
    assert by_id["reclaim-48h"].startswith("When the reclaim timer runs out: return the lead")
    assert all("{" not in d["sentence"] for d in described)


def test_templates_and_experiments_read_in_words() -> None:
    doc = one_rule()
    doc["templates"] = {"hi": {"subject": "Hello {name}", "body": "x"}}
    described = {d["id"]: d["sentence"] for d in describe_ruleset(ruleset(doc), DIRECTORY)}
    assert described["hi"] == "The message hi has the subject “Hello {name}”."
    assert described["subject"] == "The experiment subject splits leads into A (25%) and B (75%)."


def changes(base: dict[str, Any], candidate: dict[str, Any]) -> list[dict[str, Any]]:
    return describe_changes(ruleset(base), ruleset(candidate), DIRECTORY)


def test_each_change_kind_with_specific_differences() -> None:
    base = default_ruleset_document()
    candidate = copy.deepcopy(base)
    [east] = [r for r in candidate["rules"] if r["id"] == "east-website"]
    east["actions"][0]["params"]["rep"] = "rep-east-2"
    east["priority"] = 120
    east["stop"] = False
    [reclaim] = [t for t in candidate["timers"] if t["id"] == "reclaim"]
    reclaim["after"] = "PT72H"
    candidate["rules"] = [r for r in candidate["rules"] if r["id"] != "idle-7d"]
    candidate["rules"].append(
        {
            "id": "vip",
            "when": ["lead.captured"],
            "actions": [{"name": "add_tag", "params": {"tag": "vip"}}],
        }
    )
    found = {(c["kind"], c["subject"], c["id"]): c for c in changes(base, candidate)}
    assert set(found) == {
        ("changed", "rule", "east-website"),
        ("changed", "timer", "reclaim"),
        ("removed", "rule", "idle-7d"),
        ("added", "rule", "vip"),
    }
    assert found["changed", "rule", "east-website"]["differences"] == [
        f"priority {base['rules'][1]['priority']} → 120",
        "no longer stops further rules",
        "assigns to Zhang Min instead of Li Wei",
    ]
    assert found["changed", "timer", "reclaim"]["differences"] == [
        "runs out after 72 hours instead of 48 hours"
    ]
    added, removed = found["added", "rule", "vip"], found["removed", "rule", "idle-7d"]
    assert added["before"] is None and added["after"] == "When a lead arrives: tag the lead vip."
    assert removed["after"] is None and removed["before"].startswith("When the idle timer")
    assert "Li Wei" in found["changed", "rule", "east-website"]["before"]


def test_differences_of_rules_sequences_experiments_and_the_pool() -> None:
    base = one_rule(
        {"name": "create_task", "params": {"task": "call", "due_in": "PT24H"}},
        {"name": "notify", "params": {"to": "owner", "template": "lead-idle"}},
    )
    base["sequences"] = {"s": {"steps": [{"wait": "PT0S", "template": "welcome"}]}}
    base["pool"] = {"claim_cooldown": "P2D", "daily_claim_limit": 20}
    candidate = copy.deepcopy(base)
    candidate["rules"][0]["actions"] = [
        {"name": "create_task", "params": {"task": "call", "due_in": "PT48H"}},
        {"name": "notify", "params": {"to": "manager", "template": "lead-idle"}},
        {"name": "add_score", "params": {"points": 5}},
    ]
    candidate["rules"][0]["stop"] = True
    candidate["rules"][0]["when"] = ["email.opened"]
    candidate["timers"][0]["cancel_on"] = ["lead.followed_up"]
    candidate["sequences"]["s"]["steps"].append({"wait": "P7D", "template": "article-1"})
    candidate["sequences"]["s"]["exit_on"] = ["lead.won"]
    candidate["experiments"]["subject"]["variants"]["B"]["weight"] = 1
    candidate["pool"] = {"daily_claim_limit": 5}
    found = {c["id"]: c["differences"] for c in changes(base, candidate)}
    assert found["r"] == [
        "now runs when an email is opened instead of when a lead arrives",
        "now stops further rules",
        "the task call is due in 48 hours instead of 24 hours",
        "notifies the lead's manager instead of the lead's owner",
        "now also does “add 5 points to the score”",
    ]
    assert found["first_follow_up"] == ["now also stops when a follow-up is logged"]
    assert found["s"][0] == "adds step 2: article-1 after 7 days"
    assert found["s"][1].startswith("no longer ends when a follow-up is logged, the lead unsub")
    assert found["subject"] == [
        "variant A gets 50% instead of 25%",
        "variant B gets 50% instead of 75%",
    ]
    assert found["pool"] == [
        "a former owner may claim a lead again at once instead of after 2 days",
        "a rep may claim 5 leads a day instead of 20",
    ]


def test_the_same_ruleset_changes_nothing() -> None:
    doc = default_ruleset_document()
    assert changes(doc, copy.deepcopy(doc)) == []


def test_a_describe_request_names_bad_fields_under_candidate() -> None:
    doc = one_rule({"name": "assign_to_rep", "params": {"rep": "rep-nobody"}})
    with pytest.raises(InvalidRuleset) as caught:
        parse_describe_request({"candidate": doc, "base_version": 0, "x": 1}, DIRECTORY)
    paths = {e.path for e in caught.value.errors}
    assert paths == {"/candidate/rules/0/actions/0/params/rep", "/base_version", "/x"}
    request = parse_describe_request({"candidate": default_ruleset_document()}, DIRECTORY)
    assert isinstance(request, DescribeRequest) and request.base_version is None


def test_against_no_active_version_every_part_is_added() -> None:
    answer = describe_against(NO_RULESET, None, ruleset(default_ruleset_document()), DIRECTORY)
    assert answer["base_version"] is None
    kinds = {(c["kind"], c["subject"]) for c in answer["changes"]}
    assert ("added", "rule") in kinds and ("added", "timer") in kinds
    assert all(c["kind"] != "removed" for c in answer["changes"])
    assert [s["subject"] for s in answer["base"]] == ["pool"]
    assert len(answer["candidate"]) == len(
        describe_ruleset(ruleset(default_ruleset_document()), DIRECTORY)
    )


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        (
            {},
            {"claim_cooldown": "PT12H"},
            "a former owner now waits 12 hours before claiming a lead again",
        ),
        (
            {"claim_cooldown": "P2D"},
            {"claim_cooldown": "P3D"},
            "a former owner waits 3 days instead of 2 days",
        ),
        ({"daily_claim_limit": 5}, {}, "a rep may claim any number of leads a day instead of 5"),
    ],
)
def test_pool_policy_differences(before: dict[str, Any], after: dict[str, Any], words: str) -> None:
    base, candidate = one_rule(), one_rule()
    base["pool"], candidate["pool"] = before, after
    [change] = changes(base, candidate)
    assert (change["subject"], change["differences"]) == ("pool", [words])
