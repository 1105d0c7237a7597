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


@given(streams(), st.data())
def test_redelivery_never_changes_the_state(stream: list[LoggedEvent], data: st.DataObject) -> None:
    """The dispatcher delivers at least once: replayed prefixes must be no-ops."""
    delivered: list[LoggedEvent] = []
    for i, event in enumerate(stream):
        replay_from = data.draw(st.integers(min_value=0, max_value=i))
        delivered.extend(stream[replay_from:i])  # a redelivered page
        delivered.append(event)
    state = LeadState(lead_id=LEAD)
    for event in delivered:
        state = apply_event(state, event)
    assert state == fold(LEAD, stream)


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
