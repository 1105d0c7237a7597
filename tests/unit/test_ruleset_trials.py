"""The pure side of ruleset trials (domain.trials): canary membership by lead id, which
versions a trigger is compared with, the facts two versions' decisions are compared by, the
canary share a request may ask for, and a replay deciding canary leads under the canary."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_replay import DEFAULT, DIRECTORY, History, active, moving_east_website_to

from domain.errors import InvalidDocument
from domain.state import Decision
from domain.timers import RunningTimer
from domain.trials import (
    CANARY,
    SHADOW,
    Trial,
    Trials,
    TrialTimeline,
    canary_point,
    comparisons,
    decision_facts,
    facts_agree,
    in_canary,
    parse_canary_share,
    ruleset_version_for,
)
from replay.simulator import RulesetTimeline, simulate
from rules.experiments import assign_variant

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD_IDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"lead-{i}")) for i in range(4000)]


def canary(share: float, version: int = 2, at: datetime = T0) -> Trial:
    return Trial(CANARY, version, at, "ops", share)


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5, 0.9])
def test_membership_is_close_to_the_share(share: float) -> None:
    inside = sum(in_canary(lead, T0.isoformat(), canary(share)) for lead in LEAD_IDS)
    # 4000 leads: the binomial's standard deviation is at most 0.8 points of share.
    assert abs(inside / len(LEAD_IDS) - share) < 0.03


@given(st.uuids(), st.floats(min_value=0.01, max_value=0.99))
def test_membership_is_a_function_of_the_lead_and_grows_with_the_share(
    lead: uuid.UUID, share: float
) -> None:
    created = T0.isoformat()
    first = in_canary(str(lead), created, canary(share))
    assert first == in_canary(str(lead), created, canary(share))
    # A lead in a canary stays in it when the share grows.
    if first:
        assert in_canary(str(lead), created, canary(min(0.999, share + 0.2)))


def test_canary_leads_are_not_the_leads_of_a_variant() -> None:
    inside = {lead for lead in LEAD_IDS if in_canary(lead, T0.isoformat(), canary(0.5))}
    variant_a = {
        lead
        for lead in LEAD_IDS
        if assign_variant(lead, "follow-up-process", {"A": 1, "B": 1}) == "A"
    }
    overlap = len(inside & variant_a) / len(inside)
    assert 0.4 < overlap < 0.6  # independent halves, not the same half


def test_only_leads_created_since_the_start_are_in_the_canary() -> None:
    everyone = canary(0.999999)
    lead = LEAD_IDS[0]
    assert canary_point(lead) < 0.999999
    assert not in_canary(lead, (T0 - timedelta(seconds=1)).isoformat(), everyone)
    assert in_canary(lead, T0.isoformat(), everyone)
    assert not in_canary(lead, None, everyone)
    assert ruleset_version_for(lead, T0.isoformat(), 1, Trials(canary=everyone)) == 2
    assert ruleset_version_for(lead, T0.isoformat(), 1, Trials()) == 1
    # A shadow never decides.
    shadow = Trial(SHADOW, 3, T0, "ops")
    assert ruleset_version_for(lead, T0.isoformat(), 1, Trials(shadow=shadow)) == 1


def test_what_a_trigger_is_compared_with() -> None:
    shadow, running = Trial(SHADOW, 3, T0, None), canary(0.5)
    both = Trials(shadow, running)
    assert comparisons(1, 1, Trials(shadow=shadow)) == [(SHADOW, 3)]
    assert comparisons(1, 1, Trials(canary=running)) == []  # not a canary lead
    assert comparisons(2, 1, Trials(canary=running)) == [(CANARY, 1)]
    assert comparisons(2, 1, both) == [(CANARY, 1), (SHADOW, 3)]
    # The shadow is the version that decided: nothing to compare it with.
    assert comparisons(3, 1, Trials(shadow=Trial(SHADOW, 3, T0, None))) == []


def test_facts_leave_out_ids_and_name_the_timers_started() -> None:
    before = {"idle": RunningTimer("idle", "2026-03-09T09:00:00+00:00", "e0")}
    after = {
        "reclaim": RunningTimer("reclaim", "2026-03-04T09:00:00+00:00", "e1"),
    }
    decided = [
        Decision("lead.assigned", {"owner": "rep-a", "team": "east", "strategy": "rep"}, "r1"),
        Decision("notification.queued", {"notification_id": "n-1", "to": "owner"}, "r1"),
    ]
    facts = decision_facts(decided, before, after)
    assert facts == [
        {"type": "lead.assigned", "owner": "rep-a", "strategy": "rep", "team": "east"},
        {"type": "notification.queued", "to": "owner"},
        {"type": "timer.started", "timer": "reclaim", "due_at": "2026-03-04T09:00:00+00:00"},
        {"type": "timer.stopped", "timer": "idle"},
    ]
    renamed = [Decision(d.type, {**d.data, "notification_id": "n-2"}, "r9") for d in decided]
    assert facts_agree(facts, decision_facts(renamed, before, after))
    moved = [Decision("lead.assigned", {"owner": "rep-b", "team": "east", "strategy": "rep"})]
    assert not facts_agree(facts, decision_facts(moved, before, after))
    later = {"reclaim": RunningTimer("reclaim", "2026-03-05T09:00:00+00:00", "e1")}
    assert not facts_agree(facts, decision_facts(decided, before, later))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"share": 0}, "/share"),
        ({"share": 1}, "/share"),
        ({"share": -0.5}, "/share"),
        ({"share": float("nan")}, "/share"),
        ({"share": "0.1"}, "/share"),
        ({"share": None}, "/share"),
        ({"share": False}, "/share"),
        ({"share": 0.1, "extra": 1}, "/extra"),
        ([0.1], ""),
    ],
)
def test_a_bad_share_names_its_field(body: object, path: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        parse_canary_share(body)
    assert path in [e.path for e in refused.value.errors]


def test_a_good_share() -> None:
    assert parse_canary_share({"share": 0.1}) == 0.1


def test_the_timeline_answers_the_trials_at_a_time() -> None:
    running = Trials(canary=canary(0.5))
    timeline = TrialTimeline([(T0 + timedelta(hours=2), Trials()), (T0, running)])
    assert timeline(T0 - timedelta(seconds=1)) == Trials()
    assert timeline(T0 + timedelta(hours=1)) == running
    assert timeline(T0 + timedelta(hours=3)) == Trials()
    assert timeline.versions == {2}


def test_a_replay_decides_canary_leads_under_the_canary_while_it_runs() -> None:
    moved = active(moving_east_website_to("rep-east-2"), 2, DIRECTORY)
    share = 0.5
    trial = canary(share, 2, T0)
    stopped_at = T0 + timedelta(hours=10)
    trials = TrialTimeline([(T0, Trials(canary=trial)), (stopped_at, Trials())])
    timeline = RulesetTimeline([(T0 - timedelta(days=1), DEFAULT)], trials, {2: moved})
    history = History()
    leads = LEAD_IDS[:12]
    for i, lead in enumerate(leads):
        history.capture(lead, T0 + timedelta(minutes=i), "east", "website")
    late = LEAD_IDS[100:104]
    for i, lead in enumerate(late):
        history.capture(lead, stopped_at + timedelta(minutes=i), "east", "website")
    run = simulate(history.events, timeline, DIRECTORY, until=stopped_at + timedelta(hours=1))
    for lead in leads:
        decided = run.leads[lead].decided
        expected = 2 if canary_point(lead) < share else 1
        assert {e.ruleset_version for e in decided} == {expected}
        assert run.leads[lead].state.owner == ("rep-east-2" if expected == 2 else "rep-east-1")
    for lead in late:
        assert run.leads[lead].state.owner == "rep-east-1"
    assert 0 < sum(canary_point(lead) < share for lead in leads) < len(leads)
