"""The arithmetic behind the reports, against values computed by hand or published."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from projections.experiment_stats import (
    VariantCount,
    difference_interval,
    experiment_rows,
    two_proportion_p_value,
    wilson_interval,
)
from projections.reports import (
    SpendRecord,
    Window,
    competition_ranks,
    funnel_rows,
    parse_bound,
    period_start,
    roi,
    spend_by_period,
)


def test_wilson_interval_matches_the_published_values() -> None:
    # 8 of 10 at 95%: (0.4902, 0.9433), e.g. Newcombe (1998), Table I.
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    # 0 of 10: the lower bound is 0 and the upper (z²/n)/(1+z²/n) = 0.2775.
    low, high = wilson_interval(0, 10) or (None, None)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.2775, abs=5e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=5e-5)
    assert wilson_interval(0, 0) is None


def test_two_proportion_z_test_p_value() -> None:
    # 45/100 against 55/100: pooled 0.5, se 0.0707, z = 1.4142, p = erfc(1) = 0.1573.
    assert two_proportion_p_value(45, 100, 55, 100) == pytest.approx(0.157299, abs=1e-6)
    # Symmetric in which group is which.
    assert two_proportion_p_value(55, 100, 45, 100) == pytest.approx(0.157299, abs=1e-6)
    # 30/200 against 50/200: pooled 0.2, se 0.04, z = 2.5, p = 0.01242.
    assert two_proportion_p_value(30, 200, 50, 200) == pytest.approx(0.012419, abs=1e-6)
    # No variance at all: nothing tells the groups apart.
    assert two_proportion_p_value(0, 10, 0, 20) == 1.0
    assert two_proportion_p_value(1, 0, 1, 5) is None


def test_each_variant_is_compared_with_the_first_by_name() -> None:
    rows = experiment_rows(
        [
            VariantCount("subject", "B", 200, 50),
            VariantCount("subject", "A", 200, 30),
            VariantCount("cta", "red", 40, 0),
            VariantCount("cta", "blue", 40, 0),
        ]
    )
    assert [(r["experiment"], r["variant"]) for r in rows] == [
        ("cta", "blue"),
        ("cta", "red"),
        ("subject", "A"),
        ("subject", "B"),
    ]
    blue, red, a, b = rows
    assert (a["rate"], a["lift"], a["p_value"], a["diff_ci_low"]) == (0.15, None, None, None)
    assert b["rate"] == 0.25
    assert b["lift"] == pytest.approx(2 / 3)
    assert b["p_value"] == pytest.approx(0.012419, abs=1e-6)
    assert (b["diff_ci_low"], b["diff_ci_high"]) == pytest.approx(
        difference_interval(30, 200, 50, 200)
    )
    # Wilson, 50/200: (0.25 + 0.0096) / 1.0192 ± 1.96 x sqrt(0.0009375 + 0.000024) / 1.0192.
    assert (b["rate_ci_low"], b["rate_ci_high"]) == pytest.approx((0.1951, 0.3143), abs=5e-5)
    # A control that never converts has no lift.
    assert (red["lift"], red["p_value"]) == (None, 1.0)
    assert blue["n"] == 40
    assert all(row["enough_data"] for row in rows)


def test_a_variant_below_the_minimum_sample_has_no_p_value_or_interval() -> None:
    rows = experiment_rows(
        [
            VariantCount("subject", "A", 30, 3),
            VariantCount("subject", "B", 29, 20),
            VariantCount("subject", "C", 30, 12),
        ],
        min_sample=30,
    )
    a, b, c = rows
    assert a["enough_data"] and c["enough_data"]
    assert (b["enough_data"], b["p_value"], b["diff_ci_low"], b["diff_ci_high"]) == (
        False,
        None,
        None,
        None,
    )
    # Its rate and lift are still what was seen.
    assert (b["rate"], b["lift"]) == (pytest.approx(20 / 29), pytest.approx((20 / 29 - 0.1) / 0.1))
    assert c["p_value"] is not None and c["diff_ci_low"] is not None
    # A control below the minimum leaves every comparison without a p-value.
    small_control = experiment_rows(
        [VariantCount("x", "A", 10, 1), VariantCount("x", "B", 100, 50)], min_sample=30
    )
    assert [(r["enough_data"], r["p_value"]) for r in small_control] == [
        (False, None),
        (False, None),
    ]


def test_ties_share_a_rank_and_the_next_rank_skips() -> None:
    assert competition_ranks([(900, 3), (500, 1), (500, 1), (100, 2)]) == [1, 2, 2, 4]
    assert competition_ranks([(5, 1), (5, 1), (3, 1)]) == [1, 1, 3]
    # Equal amounts are told apart by the count.
    assert competition_ranks([(500, 2), (500, 1)]) == [1, 2]
    assert competition_ranks([]) == []


def test_funnel_step_rates_are_over_the_stage_before() -> None:
    rows = funnel_rows(8, {"MQL": 4, "SQL": 1, "opportunity": 0, "won": 0})
    assert rows == [
        {"stage": "MQL", "count": 4, "step_rate": 0.5},
        {"stage": "SQL", "count": 1, "step_rate": 0.25},
        {"stage": "opportunity", "count": 0, "step_rate": 0.0},
        {"stage": "won", "count": 0, "step_rate": None},
    ]
    assert funnel_rows(0, dict.fromkeys(("MQL", "SQL", "opportunity", "won"), 0))[0] == {
        "stage": "MQL",
        "count": 0,
        "step_rate": None,
    }


def test_roi_is_null_without_spend() -> None:
    assert roi(150.0, 100.0) == 0.5
    assert roi(0.0, 100.0) == -1.0
    assert roi(10.0, 0.0) is None


def test_periods_start_on_the_iso_monday_or_the_first_of_the_month() -> None:
    assert period_start(date(2026, 3, 1), "week") == date(2026, 2, 23)  # a Sunday
    assert period_start(date(2026, 3, 2), "week") == date(2026, 3, 2)  # a Monday
    assert period_start(date(2026, 3, 31), "month") == date(2026, 3, 1)


def test_spend_is_spread_over_its_days_and_cut_to_the_window() -> None:
    # 70 over Mon 30 March - Sun 5 April: 10 a day, 2 days in March, 5 in April.
    record = SpendRecord("spring", Decimal(70), date(2026, 3, 30), date(2026, 4, 5))
    assert spend_by_period([record], Window(), "month") == {
        ("spring", date(2026, 3, 1)): Decimal(20),
        ("spring", date(2026, 4, 1)): Decimal(50),
    }
    assert spend_by_period([record], Window(), "week") == {("spring", date(2026, 3, 30)): 70}
    # From 31 March 12:00: that day started before the window, so only April's days count.
    window = Window(datetime(2026, 3, 31, 12, tzinfo=UTC), datetime(2026, 4, 4, tzinfo=UTC))
    assert spend_by_period([record], window, "month") == {("spring", date(2026, 4, 1)): 30}


def test_bounds_are_dates_or_date_times_with_an_offset() -> None:
    assert parse_bound("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_bound("2026-03-01T09:00:00+08:00") == datetime(2026, 3, 1, 1, tzinfo=UTC)
    assert parse_bound("2026-03-01T09:00:00Z") == datetime(2026, 3, 1, 9, tzinfo=UTC)
    for bad in ("2026-03-01T09:00:00", "yesterday", "2026-13-01", ""):
        with pytest.raises(ValueError, match="RFC 3339"):
            parse_bound(bad)
    # The window's first and last days, a day either side of a bound, are datetimes too.
    assert parse_bound("0001-01-02") == datetime(1, 1, 2, tzinfo=UTC)
    assert parse_bound("9999-12-31T00:00:00Z") == datetime(9999, 12, 31, tzinfo=UTC)
    for out_of_range in ("0001-01-01", "0001-01-02T00:30:00+01:00", "9999-12-31T23:59:59-05:00"):
        with pytest.raises(ValueError, match="from 0001-01-02 to 9999-12-31"):
            parse_bound(out_of_range)
