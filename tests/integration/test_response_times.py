"""Response times on leadflow's clock (docs/analytics.md, "Definitions"), in the
`assignments` read model on real SQLite: measured from when leadflow received the lead or
the hand-over, never from a time a client gave, and never negative, whatever the order and
the times of the captures, hand-overs and follow-ups (back-filled history included)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from domain.state import LoggedEvent
from projections.assignments import AssignmentsProjection
from projections.base import LogEntry

LEAD = "00000000-0000-4000-8000-000000000001"
RECEIVED = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


def event(
    sequence: int, type_: str, occurred: datetime, recorded: datetime, **data: Any
) -> LogEntry[LoggedEvent]:
    return LogEntry(
        sequence,
        LoggedEvent(
            lead_id=LEAD,
            sequence=sequence,
            event_id=f"e{sequence}",
            type=type_,
            occurred_at=occurred.isoformat(),
            recorded_at=recorded.isoformat(),
            data=data,
            rule_id="route" if type_ == "lead.assigned" else None,
        ),
    )


def project(engine: Engine, entries: list[LogEntry[LoggedEvent]]) -> AssignmentsProjection:
    projection = AssignmentsProjection()
    projection.metadata.drop_all(engine)
    projection.metadata.create_all(engine)
    with engine.begin() as conn:
        # One event a page, as a slow projector would see them, and the pages' edges.
        for entry in entries:
            projection.apply(conn, [entry])
    return projection


def response_times(engine: Engine, projection: AssignmentsProjection) -> list[float]:
    with engine.connect() as conn:
        firsts = conn.execute(select(projection.table.c.first_response_seconds)).scalars()
        since = conn.execute(select(projection.follow_ups.c.seconds_since_assignment)).scalars()
        return [float(s) for s in [*firsts, *since] if s is not None]


def test_a_claim_counts_from_when_leadflow_received_it(engine: Engine) -> None:
    # A claim posted with yesterday's time, received at 09:00; a call at 11:00.
    claimed = event(1, "lead.claimed", RECEIVED - timedelta(days=1), RECEIVED, rep_id="rep-a")
    called = event(2, "lead.followed_up", RECEIVED + timedelta(hours=2), RECEIVED, rep_id="rep-a")
    projection = project(engine, [claimed, called])
    assert response_times(engine, projection) == [7200.0, 7200.0]


def test_a_rule_assignment_counts_from_the_receipt_of_the_capture(engine: Engine) -> None:
    # The workflow decides at the capture's receipt (its recorded_at is the decision's
    # occurred_at), even if it wrote the decision down an hour later (Temporal was down).
    assigned = event(
        1, "lead.assigned", RECEIVED, RECEIVED + timedelta(hours=1), owner="rep-a", team="east"
    )
    called = event(
        2, "lead.followed_up", RECEIVED + timedelta(minutes=90), RECEIVED, rep_id="rep-a"
    )
    projection = project(engine, [assigned, called])
    assert response_times(engine, projection) == [5400.0, 5400.0]


def test_a_follow_up_before_the_receipt_counts_as_an_answer_at_once(engine: Engine) -> None:
    assigned = event(1, "lead.assigned", RECEIVED, RECEIVED, owner="rep-a", team="east")
    back_filled = event(
        2, "lead.followed_up", RECEIVED - timedelta(days=30), RECEIVED, rep_id="rep-a"
    )
    projection = project(engine, [assigned, back_filled])
    assert response_times(engine, projection) == [0.0, 0.0]


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["lead.assigned", "lead.claimed", "lead.reassigned", "lead.followed_up"]),
        instants,
        instants,
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps)
def test_every_response_time_is_at_least_zero(
    engine: Engine, history: list[tuple[str, datetime, datetime]]
) -> None:
    entries = [
        event(i, type_, occurred, recorded, owner="rep-a", team="east", rep_id="rep-b")
        for i, (type_, occurred, recorded) in enumerate(history, start=1)
    ]
    projection = project(engine, entries)
    times = response_times(engine, projection)
    assert all(seconds >= 0 for seconds in times), times
    # Each follow-up after the first hand-over has its time (none is dropped instead).
    kinds = [type_ for type_, _, _ in history]
    first_hand_over = next((i for i, k in enumerate(kinds) if k != "lead.followed_up"), None)
    answering = 0 if first_hand_over is None else kinds[first_hand_over:].count("lead.followed_up")
    with engine.connect() as conn:
        measured = conn.execute(
            select(projection.follow_ups.c.seconds_since_assignment).where(
                projection.follow_ups.c.seconds_since_assignment.is_not(None)
            )
        ).all()
    assert len(measured) == answering
