"""The limit on failed authentications per client address: refused exactly while the
address's last 20 failures all lie within the last 60 s, and told when it may try again."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from api.auth_failures import FailedAuthentications


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Gaps between successive failures, in whole seconds (exact arithmetic at the boundaries).
gaps = st.lists(st.integers(min_value=0, max_value=20), max_size=60)


@given(gaps, st.integers(min_value=0, max_value=120))
def test_an_address_is_refused_exactly_while_20_failures_lie_within_the_window(
    failure_gaps: list[int], wait: int
) -> None:
    clock = Clock()
    failures = FailedAuthentications(limit=20, window_seconds=60, clock=clock)
    times = []
    for gap in failure_gaps:
        clock.now += gap
        failures.record("10.0.0.1")
        times.append(clock.now)
    clock.now += wait

    recent = [t for t in times[-20:] if clock.now - t < 60]
    retry_after = failures.retry_after("10.0.0.1")
    if len(recent) == 20:
        assert retry_after == math.ceil(times[-20] + 60 - clock.now)
        assert 1 <= retry_after <= 60
        clock.now += retry_after
        assert failures.retry_after("10.0.0.1") is None
    else:
        assert retry_after is None
    assert failures.retry_after("10.0.0.2") is None


def test_failures_from_one_address_do_not_refuse_another() -> None:
    clock = Clock()
    failures = FailedAuthentications(limit=20, window_seconds=60, clock=clock)
    for _ in range(20):
        failures.record("10.0.0.1")
    assert failures.retry_after("10.0.0.1") == 60
    assert failures.retry_after("10.0.0.2") is None
    clock.now += 59.5
    assert failures.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert failures.retry_after("10.0.0.1") is None
