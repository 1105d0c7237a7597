"""A `leads` row keeps the whole lead state: the projector continues every fold from it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import MetaData

from domain.state import LeadState
from projections.leads import leads_table, row_of, state_of

words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
maybe = st.none() | words
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(datetime.isoformat)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)

lead_states = st.builds(
    LeadState,
    lead_id=st.uuids().map(str),
    last_sequence=st.integers(1, 10_000),
    stage=st.sampled_from(["new", "MQL", "SQL", "opportunity", "won", "lost"]),
    owner=maybe,
    team=maybe,
    in_pool=st.booleans(),
    email=maybe,
    source=maybe,
    intent=st.sampled_from([None, "low", "medium", "high"]),
    score=st.integers(-1000, 1000),
    tags=st.lists(words, max_size=4, unique=True).map(tuple),
    attributes=st.dictionaries(words, json_values, max_size=4),
    touch_count=st.integers(0, 50),
    followups_count=st.integers(0, 50),
    created_at=instants,
    first_response_at=st.none() | instants,
    last_activity_at=st.none() | instants,
    won_amount=st.none() | st.decimals(0, 10**9, places=2).map(str),
    unsubscribed=st.booleans(),
    ruleset_version=st.none() | st.integers(1, 500),
    variants=st.dictionaries(words, words, max_size=3),
    open_tasks=st.dictionaries(words, instants, max_size=3),
    placed_by_rule=maybe,
    pool_reason=maybe,
    sequences=st.lists(words, max_size=3, unique=True).map(tuple),
)


@given(state=lead_states, position=st.integers(1, 2**40))
def test_a_row_gives_back_the_state_it_was_made_from(state: LeadState, position: int) -> None:
    row = row_of(state, position)
    assert state_of(row["state"]) == state
    assert set(row) == set(leads_table(MetaData()).c.keys())
    assert (row["lead_id"], row["owner"], row["tags"], row["last_position"]) == (
        state.lead_id,
        state.owner,
        list(state.tags),
        position,
    )
    assert row["created_at"] == datetime.fromisoformat(str(state.created_at))
    assert row["created_at"].tzinfo == UTC
    if state.won_amount is not None:
        assert row["won_amount"] == Decimal(state.won_amount)


def test_a_state_stored_by_another_version_of_leadflow_still_loads() -> None:
    state = LeadState(lead_id="l1", created_at="2026-01-01T00:00:00+00:00", tags=("vip",))
    stored = json.loads(row_of(state, 1)["state"])
    without_tags = {k: v for k, v in stored.items() if k != "tags"}
    assert state_of(json.dumps(without_tags)) == replace(state, tags=())
    assert state_of(json.dumps({**stored, "a_field_since_removed": 1})) == state
