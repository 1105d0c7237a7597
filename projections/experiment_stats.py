"""The statistics behind `/v1/reports/experiments` (docs/analytics.md, "Experiments"): pure
functions over counts, no scipy (`math.erfc`).

Each variant's rate has a 95% Wilson score interval; each variant is compared with the
experiment's control (its first variant by name) by the pooled two-proportion z-test and
the 95% interval of the difference of rates by Newcombe's hybrid score method (Newcombe
1998, method 10), which, built from the two Wilson intervals, always stays within [-1, 1].
A comparison with fewer than `min_sample` leads on either side says "not enough data"
(`enough_data: false`, no p-value, no interval) rather than a number nobody should act on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
# Leads per variant below which a comparison answers "not enough data" (the setting
# LEADFLOW_EXPERIMENT_MIN_SAMPLE; `min_sample` on the route).
DEFAULT_MIN_SAMPLE = 30

EXPERIMENT_COLUMNS = (
    "experiment",
    "variant",
    "n",
    "conversions",
    "rate",
    "rate_ci_low",
    "rate_ci_high",
    "enough_data",
    "lift",
    "p_value",
    "diff_ci_low",
    "diff_ci_high",
)


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, None when the denominator is 0."""
    return None if denominator == 0 else numerator / denominator


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None when n is 0."""
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of x2/n2 against x1/n1; None
    when a group is empty. Equal proportions of 0 or 1 (no variance) give 1.0."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x2 / n2 - x1 / n1) / se
    return math.erfc(abs(z) / math.sqrt(2))


def difference_interval(
    x1: int, n1: int, x2: int, n2: int, z: float = Z_95
) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (95% by default) of x2/n2 - x1/n1, from the Wilson
    intervals of both proportions; within [-1, 1]. None when a group is empty."""
    first, second = wilson_interval(x1, n1, z), wilson_interval(x2, n2, z)
    if first is None or second is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (low1, high1), (low2, high2) = first, second
    difference = p2 - p1
    low = difference - math.sqrt((p2 - low2) ** 2 + (high1 - p1) ** 2)
    high = difference + math.sqrt((high2 - p2) ** 2 + (p1 - low1) ** 2)
    # Mathematically inside [-1, 1]; the clamp only absorbs rounding at 0/n against n/n.
    return max(-1.0, low), min(1.0, high)


@dataclass(frozen=True)
class VariantCount:
    experiment: str
    variant: str
    n: int
    conversions: int


def experiment_rows(
    counts: Iterable[VariantCount], min_sample: int = DEFAULT_MIN_SAMPLE
) -> list[dict[str, Any]]:
    """Per variant: its rate with a 95% Wilson interval and, against the experiment's first
    variant by name (the control), lift, p-value and the 95% interval of the difference;
    `enough_data` is whether the variant (and, for a comparison, the control) has at least
    `min_sample` leads; without it the p-value and the interval are null."""
    by_experiment: dict[str, list[VariantCount]] = defaultdict(list)
    for count in counts:
        by_experiment[count.experiment].append(count)
    rows: list[dict[str, Any]] = []
    for experiment in sorted(by_experiment):
        variants = sorted(by_experiment[experiment], key=lambda c: c.variant)
        control = variants[0]
        for v in variants:
            interval = wilson_interval(v.conversions, v.n)
            rate = ratio(v.conversions, v.n)
            enough = v.n >= min_sample and control.n >= min_sample
            row: dict[str, Any] = {
                "experiment": experiment,
                "variant": v.variant,
                "n": v.n,
                "conversions": v.conversions,
                "rate": rate,
                "rate_ci_low": None if interval is None else interval[0],
                "rate_ci_high": None if interval is None else interval[1],
                "enough_data": enough,
                "lift": None,
                "p_value": None,
                "diff_ci_low": None,
                "diff_ci_high": None,
            }
            if v is not control:
                control_rate = ratio(control.conversions, control.n)
                if rate is not None and control_rate:
                    row["lift"] = (rate - control_rate) / control_rate
                diff = difference_interval(control.conversions, control.n, v.conversions, v.n)
                if enough and diff is not None:
                    row["p_value"] = two_proportion_p_value(
                        control.conversions, control.n, v.conversions, v.n
                    )
                    row["diff_ci_low"], row["diff_ci_high"] = diff
            rows.append(row)
    return rows
