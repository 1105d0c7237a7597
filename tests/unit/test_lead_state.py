import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import LeadClosed, LeadNotInPool, NotLeadOwner, StageWouldMoveBackward
from domain.state import (
    STAGE_ORDER,
    LeadState,
    LoggedEvent,
    apply_event,
    check_external_event,
    fold,
    state_at_trigger,
)

LEAD = "lead-1"


def ev(sequence: int, type_: str, data: dict[str, Any] | None = None, at: str = "") -> LoggedEvent:
    when = at or f"2026-01-01T00:00:{sequence % 60:02d}+00:00"
    return LoggedEvent(LEAD, sequence, f"e{sequence}", type_, when, when, data or {})


def test_first_capture_sets_fields_and_later_touches_fill_only_gaps() -> None:
    state = fold(
        LEAD,
        [
            ev(1, "lead.captured", {"email": "a@x.io", "source": "web", "attributes": {"k": 1}}),
            ev(
                2,
                "lead.captured",
                {"phone": "+8613800138000", "source": "ads", "attributes": {"k": 2, "j": 3}},
            ),
        ],
    )
    assert state.source == "web"  # first touch keeps the source
    assert state.phone == "+8613800138000"
    assert state.attributes == {"k": 1, "j": 3}
    assert state.touch_count == 2
    assert state.created_at == "2026-01-01T00:00:01+00:00"


def test_follow_ups_count_and_the_first_sets_first_response() -> None:
    state = fold(
        LEAD,
        [
            ev(1, "lead.captured", {"email": "a@x.io", "source": "web"}),
            ev(2, "lead.followed_up", {"rep_id": "r"}, at="2026-01-02T00:00:00+00:00"),
            ev(3, "lead.followed_up", {"rep_id": "r"}, at="2026-01-03T00:00:00+00:00"),
        ],
    )
    assert state.followups_count == 2
    assert state.first_response_at == "2026-01-02T00:00:00+00:00"
    assert state.last_activity_at == "2026-01-03T00:00:00+00:00"


def test_pool_owner_and_stage_transitions() -> None:
    state = fold(
        LEAD,
        [
            ev(1, "lead.captured", {"email": "a@x.io", "source": "web"}),
            ev(2, "lead.assigned", {"owner": "rep-a", "team": "east"}),
            ev(3, "lead.returned_to_pool", {"reason": "no_follow_up_48h"}),
        ],
    )
    assert (state.owner, state.in_pool) == (None, True)
    state = apply_event(state, ev(4, "lead.claimed", {"rep_id": "rep-b"}))
    assert (state.owner, state.in_pool) == ("rep-b", False)
    state = apply_event(state, ev(5, "lead.qualified", {"stage": "SQL"}))
    state = apply_event(state, ev(6, "lead.won", {"amount": "100"}))
    assert (state.stage, state.won_amount) == ("won", "100")


EVENT_TYPES = st.sampled_from(
    [
        ("lead.captured", {"email": "a@x.io", "source": "web"}),
        ("lead.followed_up", {"rep_id": "r"}),
        ("lead.claimed", {"rep_id": "r"}),
        ("lead.released", {"rep_id": "r"}),
        ("lead.qualified", {"stage": "MQL"}),
        ("lead.qualified", {"stage": "SQL"}),
        ("lead.opportunity_opened", {}),
        ("lead.unsubscribed", {}),
    ]
)


@st.composite
def streams(draw: st.DrawFn) -> list[LoggedEvent]:
    kinds = draw(st.lists(EVENT_TYPES, min_size=1, max_size=30))
    return [ev(i + 1, t, d) for i, (t, d) in enumerate(kinds)]


DECISIONS = st.sampled_from(
    [
        ("lead.assigned", {"owner": "rep-a", "team": "east"}),
        ("lead.returned_to_pool", {"reason": "unassigned"}),
        ("lead.scored", {"score": 5}),
        ("lead.tagged", {"tag": "vip"}),
    ]
)


@given(streams(), st.data())
def test_the_state_at_a_trigger_does_not_depend_on_physical_interleaving(
    stream: list[LoggedEvent], data: st.DataObject
) -> None:
    """Decisions for a trigger may land after later posted events; the state a trigger
    is decided on must be the same as if everything had been serial."""
    serial: list[LoggedEvent] = []  # each trigger followed by its decisions
    groups: list[tuple[LoggedEvent, list[LoggedEvent]]] = []
    for trigger in stream:
        kinds = data.draw(st.lists(DECISIONS, max_size=2))
        decisions = [
            LoggedEvent(
                LEAD,
                0,
                f"d-{trigger.event_id}-{j}",
                t,
                trigger.occurred_at,
                trigger.occurred_at,
                d,
                "rule",
                1,
                trigger.event_id,
            )
            for j, (t, d) in enumerate(kinds)
        ]
        groups.append((trigger, decisions))
        serial += [trigger, *decisions]
    # Physical order: a group's decisions are appended some triggers later, but always
    # before the next group's decisions (the workflow decides triggers one at a time).
    physical: list[LoggedEvent] = []
    waiting: list[LoggedEvent] = []
    for trigger, decisions in groups:
        if waiting and data.draw(st.booleans()):
            physical += waiting
            waiting = []
        physical.append(trigger)
        physical += waiting
        waiting = decisions
    physical += waiting
    numbered = [dataclasses.replace(e, sequence=i + 1) for i, e in enumerate(physical)]
    by_id = {e.event_id: e for e in numbered}
    serial = [by_id[e.event_id] for e in serial]
    for trigger, _ in groups:
        at = state_at_trigger(LEAD, numbered, trigger.event_id)
        prefix = serial[: serial.index(by_id[trigger.event_id]) + 1]
        expected = fold(LEAD, prefix)
        assert dataclasses.replace(at, last_sequence=0) == dataclasses.replace(
            expected, last_sequence=0
        )


@given(streams())
def test_stages_only_move_forward(stream: list[LoggedEvent]) -> None:
    state = LeadState(lead_id=LEAD)
    for event in stream:
        after = apply_event(state, event)
        assert STAGE_ORDER[after.stage] >= STAGE_ORDER[state.stage]
        state = after


def test_guards() -> None:
    sql = LeadState(lead_id=LEAD, stage="SQL", owner="rep-a")
    with pytest.raises(StageWouldMoveBackward):
        check_external_event(sql, "lead.qualified", {"stage": "MQL"})
    check_external_event(sql, "lead.qualified", {"stage": "SQL"})
    check_external_event(sql, "lead.opportunity_opened", {})
    with pytest.raises(LeadNotInPool):
        check_external_event(sql, "lead.claimed", {"rep_id": "rep-b"})
    check_external_event(LeadState(lead_id=LEAD, in_pool=True), "lead.claimed", {"rep_id": "b"})
    with pytest.raises(NotLeadOwner):
        check_external_event(sql, "lead.released", {"rep_id": "rep-b"})
    check_external_event(sql, "lead.released", {"rep_id": "rep-a"})
    won = LeadState(lead_id=LEAD, stage="won")
    for closed_type, data in (
        ("lead.lost", {}),
        ("lead.won", {"amount": 1}),
        ("lead.qualified", {"stage": "SQL"}),
    ):
        with pytest.raises(LeadClosed):
            check_external_event(won, closed_type, data)


def test_a_fold_sets_only_the_states_fields_and_leaves_earlier_states_alone() -> None:
    def decided(sequence: int, type_: str, data: dict[str, Any]) -> LoggedEvent:
        at = f"2026-01-01T01:00:{sequence:02d}+00:00"
        return LoggedEvent(LEAD, sequence, f"d{sequence}", type_, at, at, data, "r1", 7, "e1")

    stream = [
        ev(1, "lead.captured", {"email": "a@x.io", "source": "web", "attributes": {"k": 1}}),
        decided(2, "lead.assigned", {"owner": "rep-a", "team": "east"}),
        decided(3, "lead.task_created", {"task": "first_follow_up", "due_at": "T+24h"}),
        decided(4, "experiment.variant_assigned", {"experiment": "x", "variant": "B"}),
        decided(5, "nurture.enrolled", {"sequence": "weekly"}),
        decided(6, "lead.tagged", {"tag": "vip"}),
        decided(7, "lead.scored", {"score": 12}),
        ev(8, "lead.followed_up", {"rep_id": "rep-a"}),
        decided(9, "lead.returned_to_pool", {"reason": "idle_7d"}),
        ev(10, "lead.claimed", {"rep_id": "rep-b"}),
        ev(11, "lead.qualified", {"stage": "SQL"}),
        decided(12, "nurture.exited", {"sequence": "weekly"}),
        ev(13, "lead.unsubscribed", {}),
        ev(14, "lead.won", {"amount": "2.5"}),
        # Personal data gone; what rules need of it (the email's domain) stays.
        ev(15, "lead.erased", {"erased_by": "key_x"}),
    ]
    names = {f.name for f in dataclasses.fields(LeadState)}
    state = LeadState(lead_id=LEAD)
    for event in stream:
        before = copy.deepcopy(state)
        after = apply_event(state, event)
        assert state == before, event.type
        assert set(vars(after)) == names, event.type
        state = after
    assert state == LeadState(
        lead_id=LEAD,
        last_sequence=15,
        stage="won",
        owner="rep-b",
        team="east",
        email=None,
        email_domain="x.io",
        erased=True,
        source="web",
        score=12,
        tags=("vip",),
        attributes={},
        touch_count=1,
        followups_count=1,
        created_at="2026-01-01T00:00:01+00:00",
        first_response_at="2026-01-01T00:00:08+00:00",
        last_activity_at="2026-01-01T00:00:10+00:00",
        won_amount="2.5",
        unsubscribed=True,
        do_not_contact=True,
        do_not_contact_reason="unsubscribed",
        ruleset_version=7,
        variants={"x": "B"},
        open_tasks={},
        former_owners={"rep-a": "2026-01-01T01:00:09+00:00"},
    )
