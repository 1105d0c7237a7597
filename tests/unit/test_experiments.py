from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.experiments import assign_variant


def test_the_same_lead_always_gets_the_same_variant() -> None:
    weights = {"A": 50, "B": 50}
    first = [assign_variant(f"lead-{i}", "subject-test", weights) for i in range(200)]
    again = [assign_variant(f"lead-{i}", "subject-test", {"B": 50, "A": 50}) for i in range(200)]
    assert first == again
    assert set(first) == {"A", "B"}


@given(
    st.text(max_size=40),
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(1, 100), min_size=1, max_size=6),
    st.data(),
)
def test_reordering_the_weights_changes_nothing(
    lead_id: str, weights: dict[str, int], data: st.DataObject
) -> None:
    reordered = dict(data.draw(st.permutations(list(weights.items()))))
    variant = assign_variant(lead_id, "exp", weights)
    assert variant in weights
    assert assign_variant(lead_id, "exp", reordered) == variant


@pytest.mark.parametrize(
    "weights", [{"A": 50, "B": 50}, {"A": 70, "B": 20, "C": 10}, {"control": 1, "new": 3}]
)
def test_shares_follow_the_weights_over_many_leads(weights: dict[str, int]) -> None:
    counts = Counter(
        assign_variant(f"lead-{i:05d}", "follow-up-process", weights) for i in range(10_000)
    )
    total = sum(weights.values())
    for variant, weight in weights.items():
        assert abs(counts[variant] / 10_000 - weight / total) < 0.02


def test_experiments_split_leads_independently() -> None:
    both = Counter(
        (
            assign_variant(f"lead-{i}", "one", {"A": 1, "B": 1}),
            assign_variant(f"lead-{i}", "two", {"A": 1, "B": 1}),
        )
        for i in range(10_000)
    )
    assert all(abs(n / 10_000 - 0.25) < 0.02 for n in both.values())


@pytest.mark.parametrize("weights", [{}, {"A": 0}, {"A": 1, "B": -1}])
def test_weights_must_be_positive(weights: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="positive weights"):
        assign_variant("lead-1", "exp", weights)
