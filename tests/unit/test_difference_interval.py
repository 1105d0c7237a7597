"""The experiments' interval for a difference of rates: Newcombe's hybrid score interval
(Newcombe 1998, method 10), against the paper's published examples and against statsmodels'
implementation, on edge cases (0/n, n/n, tiny n) and on any counts: always within [-1, 1]."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep

from projections.experiment_stats import difference_interval


def reference(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """statsmodels' Newcombe interval of x2/n2 - x1/n1 (it computes the first minus the
    second, so the groups go in swapped)."""
    low, high = confint_proportions_2indep(x2, n2, x1, n1, method="newcomb", compare="diff")
    return float(low), float(high)


# Newcombe (1998), Table II, method 10: the interval of p1 - p2 for (x1/n1, x2/n2).
PUBLISHED = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), PUBLISHED)
def test_the_published_examples(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    x1, n1, x2, n2 = counts
    # Ours is the variant (second) minus the control (first): p1 - p2 is ours with the
    # paper's first group as the variant.
    assert difference_interval(x2, n2, x1, n1) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    "counts",
    [
        (0, 1, 1, 1),
        (1, 1, 0, 1),
        (0, 5, 5, 5),
        (5, 5, 5, 5),
        (0, 3, 0, 3),
        (1, 2, 2, 3),
        (0, 100, 100, 100),
        (48, 80, 56, 70),
        (300, 1000, 330, 1000),
    ],
)
def test_edge_cases_match_statsmodels(counts: tuple[int, int, int, int]) -> None:
    assert difference_interval(*counts) == pytest.approx(reference(*counts), abs=1e-9)


@st.composite
def two_groups(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1 = draw(st.integers(min_value=1, max_value=500))
    n2 = draw(st.integers(min_value=1, max_value=500))
    return (
        draw(st.integers(min_value=0, max_value=n1)),
        n1,
        draw(st.integers(min_value=0, max_value=n2)),
        n2,
    )


@given(two_groups())
def test_any_counts_give_statsmodels_interval_within_minus_one_and_one(
    counts: tuple[int, int, int, int],
) -> None:
    interval = difference_interval(*counts)
    assert interval is not None
    low, high = interval
    x1, n1, x2, n2 = counts
    assert -1.0 <= low <= x2 / n2 - x1 / n1 <= high <= 1.0
    assert interval == pytest.approx(reference(*counts), abs=1e-9)


def test_an_empty_group_has_no_interval() -> None:
    assert difference_interval(0, 0, 1, 2) is None
    assert difference_interval(1, 2, 0, 0) is None
