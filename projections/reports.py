"""The reports (SPEC §7): queries over the read models and the arithmetic on their results.

Every report reads projection tables only, through their indexes, and answers a `Report`:
flat rows (the same keys on every row, `columns`), plus summary values. The statistics
behind `/experiments` are pure functions below (no scipy: `math.erfc`).

Windows: `Window.start` inclusive, `Window.end` exclusive, both optional, in UTC. Leads are
selected by capture time (sources, funnel, follow-up efficiency, experiments and the
MQL→SQL rate of the KPIs), won deals by the time they were won, spend by the days of its
period (see `spend_by_period`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, MetaData, Select, and_, case, exists, func, select
from sqlalchemy.engine import Connection

from projections.assignments import assignments_table
from projections.campaigns import campaign_spend_table
from projections.experiments import experiment_assignments_table
from projections.leads import leads_table
from projections.nurture import nurture_messages_table
from projections.stages import lead_stages_table

_metadata = MetaData()
LEADS = leads_table(_metadata)
STAGES = lead_stages_table(_metadata)
ASSIGNMENTS = assignments_table(_metadata)
SPEND = campaign_spend_table(_metadata)
MESSAGES = nurture_messages_table(_metadata)
EXPERIMENTS = experiment_assignments_table(_metadata)

# The widest window a report takes: any history fits (events occur from 1970, spend
# periods end by 2100), and a bound converted to UTC and moved a day either way (the
# window's first and last days) stays within what a datetime holds.
EARLIEST_BOUND = datetime(1, 1, 2, tzinfo=UTC)
LATEST_BOUND = datetime(9999, 12, 31, tzinfo=UTC)

FUNNEL_STAGES = ("MQL", "SQL", "opportunity", "won")
METRICS = ("followed_up", *FUNNEL_STAGES, "email_opened", "email_clicked")
Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


# --- windows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A report's time range: `start` inclusive, `end` exclusive; None is unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def where(self, column: Any) -> list[ColumnElement[bool]]:
        """The conditions selecting `column` (a timestamp) inside the window. The bounds
        are given in UTC: SQLite keeps times as UTC text without an offset and compares
        them as text."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(column >= self.start.astimezone(UTC))
        if self.end is not None:
            conditions.append(column < self.end.astimezone(UTC))
        return conditions

    def first_day(self) -> date | None:
        """The first day whose start (00:00 UTC) is inside the window."""
        if self.start is None:
            return None
        start = self.start.astimezone(UTC)
        return start.date() if start.time() == time() else start.date() + timedelta(days=1)

    def last_day(self) -> date | None:
        """The last day whose start (00:00 UTC) is inside the window."""
        if self.end is None:
            return None
        end = self.end.astimezone(UTC)
        return end.date() - timedelta(days=1) if end.time() == time() else end.date()


def parse_bound(raw: str) -> datetime:
    """An RFC 3339 date (00:00 UTC that day) or date-time with an offset, from
    EARLIEST_BOUND to LATEST_BOUND, in UTC; raises ValueError saying what is accepted."""
    text = raw.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            "must be an RFC 3339 date (2026-03-01) or date-time with an offset "
            "(2026-03-01T09:00:00Z)"
        )
    # Compared before converting: year 1 or 9999 with an offset leaves datetime's range.
    if not EARLIEST_BOUND <= parsed <= LATEST_BOUND:
        raise ValueError(
            f"must be from {EARLIEST_BOUND.date().isoformat()} "
            f"to {LATEST_BOUND.date().isoformat()} (00:00 UTC)"
        )
    return parsed.astimezone(UTC)


# --- the report shape --------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One report's answer: its rows (each with exactly `columns`) and summary values."""

    name: str
    window: Window
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "from": _iso(self.window.start),
            "to": _iso(self.window.end),
            "rows": self.rows,
            **self.extra,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, None when the denominator is 0."""
    return None if denominator == 0 else numerator / denominator


def roi(revenue: float, spend: float) -> float | None:
    """(revenue - spend) / spend, None when nothing was spent."""
    return None if spend == 0 else (revenue - spend) / spend


def _money(value: Decimal | float | None) -> float:
    return 0.0 if value is None else float(round(Decimal(str(value)), 2))


# --- statistics ------------------------------------------------------------------------


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
    """The Wald interval (95% by default) of x2/n2 - x1/n1; None when a group is empty."""
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    margin = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p2 - p1 - margin, p2 - p1 + margin


@dataclass(frozen=True)
class VariantCount:
    experiment: str
    variant: str
    n: int
    conversions: int


def experiment_rows(counts: Iterable[VariantCount]) -> list[dict[str, Any]]:
    """Per variant: its rate with a 95% Wilson interval and, against the experiment's first
    variant by name (the control), lift, p-value and the 95% CI of the difference."""
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
            row: dict[str, Any] = {
                "experiment": experiment,
                "variant": v.variant,
                "n": v.n,
                "conversions": v.conversions,
                "rate": rate,
                "rate_ci_low": None if interval is None else interval[0],
                "rate_ci_high": None if interval is None else interval[1],
                "lift": None,
                "p_value": None,
                "diff_ci_low": None,
                "diff_ci_high": None,
            }
            if v is not control:
                control_rate = ratio(control.conversions, control.n)
                if rate is not None and control_rate:
                    row["lift"] = (rate - control_rate) / control_rate
                row["p_value"] = two_proportion_p_value(
                    control.conversions, control.n, v.conversions, v.n
                )
                diff = difference_interval(control.conversions, control.n, v.conversions, v.n)
                if diff is not None:
                    row["diff_ci_low"], row["diff_ci_high"] = diff
            rows.append(row)
    return rows


def competition_ranks(scores: Sequence[tuple[float, int]]) -> list[int]:
    """Ranks of `scores` (already sorted best first): equal scores share a rank and the
    next rank skips past them (1, 1, 3)."""
    ranks: list[int] = []
    for i, score in enumerate(scores):
        ranks.append(ranks[-1] if i and score == scores[i - 1] else i + 1)
    return ranks


# --- periods and spend -----------------------------------------------------------------


def period_start(day: date, interval: str) -> date:
    """The first day of `day`'s period: the Monday of its ISO week, or the 1st of its month."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


@dataclass(frozen=True)
class SpendRecord:
    campaign_id: str
    amount: Decimal
    first_day: date
    last_day: date  # inclusive


def spend_by_period(
    records: Iterable[SpendRecord], window: Window, interval: str
) -> dict[tuple[str, date], Decimal]:
    """Spend per (campaign, period), each record spread evenly over the days of its period
    (inclusive) and counted for the days inside the window and the period they fall in."""
    first, last = window.first_day(), window.last_day()
    spent: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for record in records:
        days = (record.last_day - record.first_day).days + 1
        per_day = record.amount / days
        day = max(record.first_day, first) if first else record.first_day
        end = min(record.last_day, last) if last else record.last_day
        while day <= end:
            spent[(record.campaign_id, period_start(day, interval))] += per_day
            day += timedelta(days=1)
    return spent


def _spend_records(conn: Connection, window: Window) -> list[SpendRecord]:
    query = select(SPEND.c.campaign_id, SPEND.c.amount, SPEND.c.period_start, SPEND.c.period_end)
    first, last = window.first_day(), window.last_day()
    if last is not None:
        query = query.where(SPEND.c.period_start <= last)
    if first is not None:
        query = query.where(SPEND.c.period_end >= first)
    return [
        SpendRecord(campaign_id, Decimal(str(amount)), _day(start), _day(end))
        for campaign_id, amount, start, end in conn.execute(query)
    ]


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# --- the reports -----------------------------------------------------------------------


def sources_report(conn: Connection, window: Window) -> Report:
    """Leads captured in the window, by source and channel."""
    query = (
        select(LEADS.c.source, LEADS.c.channel, func.count().label("count"))
        .where(*window.where(LEADS.c.created_at))
        .group_by(LEADS.c.source, LEADS.c.channel)
    )
    counts = [(source, channel, int(count)) for source, channel, count in conn.execute(query)]
    total = sum(count for _, _, count in counts)
    counts.sort(key=lambda c: (-c[2], c[0] or "", c[1] or ""))
    rows = [
        {"source": s, "channel": ch, "count": n, "share": ratio(n, total)} for s, ch, n in counts
    ]
    per_source: dict[str | None, int] = defaultdict(int)
    for source, _, count in counts:
        per_source[source] += count
    by_source = [
        {"source": source, "count": count, "share": ratio(count, total)}
        for source, count in sorted(per_source.items(), key=lambda i: (-i[1], i[0] or ""))
    ]
    return Report(
        "sources",
        window,
        ("source", "channel", "count", "share"),
        rows,
        {"by_source": by_source, "total": total},
    )


def _reached(stage: str) -> ColumnElement[bool]:
    """The lead (of LEADS) reached `stage` or a later one, won included (lost is not a
    stage reached: a lost lead counts up to where it got before)."""
    later = FUNNEL_STAGES[FUNNEL_STAGES.index(stage) :]
    return exists().where(STAGES.c.lead_id == LEADS.c.lead_id, STAGES.c.stage.in_(later))


def _as_count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def funnel_counts(conn: Connection, window: Window) -> tuple[int, dict[str, int]]:
    """Leads captured in the window, and how many of them reached each funnel stage."""
    # Stages only move forward, so an open or won lead's furthest stage is its stage now;
    # only a lost lead's is looked up in lead_stages (its highest rank). One pass over the
    # window's leads: a probe of lead_stages per lead cost PostgreSQL ~2 s over 100k leads.
    ranks = {stage: rank for rank, stage in enumerate(FUNNEL_STAGES, start=1)}
    lost_reached = (
        select(func.max(case(ranks, value=STAGES.c.stage, else_=0)))
        .where(STAGES.c.lead_id == LEADS.c.lead_id)
        .correlate(LEADS)
        .scalar_subquery()
    )
    furthest = case(
        (LEADS.c.stage == "lost", lost_reached), else_=case(ranks, value=LEADS.c.stage, else_=0)
    ).label("furthest")
    query = (
        select(furthest, func.count())
        .select_from(LEADS)
        .where(*window.where(LEADS.c.created_at))
        .group_by(furthest)
    )
    by_rank = {int(rank or 0): int(count) for rank, count in conn.execute(query)}
    reached = {
        stage: sum(n for r, n in by_rank.items() if r >= rank) for stage, rank in ranks.items()
    }
    return sum(by_rank.values()), reached


def funnel_rows(captured: int, reached: Mapping[str, int]) -> list[dict[str, Any]]:
    """One row per funnel stage: its count and the rate from the stage before (MQL's from
    the captured leads)."""
    rows: list[dict[str, Any]] = []
    previous = captured
    for stage in FUNNEL_STAGES:
        rows.append(
            {"stage": stage, "count": reached[stage], "step_rate": ratio(reached[stage], previous)}
        )
        previous = reached[stage]
    return rows


def funnel_report(conn: Connection, window: Window) -> Report:
    captured, reached = funnel_counts(conn, window)
    return Report(
        "funnel",
        window,
        ("stage", "count", "step_rate"),
        funnel_rows(captured, reached),
        {"captured": captured},
    )


def _won(window: Window) -> Select[Any]:
    """Deals won in the window: lead, first-touch campaign, amount, time won."""
    return (
        select(LEADS.c.campaign_id, STAGES.c.amount, STAGES.c.entered_at)
        .select_from(STAGES.join(LEADS, LEADS.c.lead_id == STAGES.c.lead_id))
        .where(STAGES.c.stage == "won", *window.where(STAGES.c.entered_at))
    )


def _utc_day(value: datetime) -> date:
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).date()


def campaign_roi_report(conn: Connection, window: Window, interval: str) -> Report:
    """Spend and first-touch revenue per campaign and period, and their ROI."""
    spend = spend_by_period(_spend_records(conn, window), window, interval)
    revenue: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for campaign_id, amount, won_at in conn.execute(
        _won(window).where(LEADS.c.campaign_id.is_not(None))
    ):
        key = (campaign_id, period_start(_utc_day(won_at), interval))
        revenue[key] += Decimal(str(amount or 0))
    rows: list[dict[str, Any]] = []
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for campaign_id, start in sorted({*spend, *revenue}):
        spent, earned = (
            spend.get((campaign_id, start), Decimal()),
            revenue.get((campaign_id, start), Decimal()),
        )
        rows.append(
            {
                "campaign_id": campaign_id,
                "period_start": start.isoformat(),
                "spend": _money(spent),
                "revenue": _money(earned),
                "roi": roi(float(earned), float(spent)),
            }
        )
        before = totals.get(campaign_id, (Decimal(), Decimal()))
        totals[campaign_id] = (before[0] + spent, before[1] + earned)
    return Report(
        "campaign-roi",
        window,
        ("campaign_id", "period_start", "spend", "revenue", "roi"),
        rows,
        {
            "interval": interval,
            "totals": [
                {
                    "campaign_id": campaign_id,
                    "spend": _money(spent),
                    "revenue": _money(earned),
                    "roi": roi(float(earned), float(spent)),
                }
                for campaign_id, (spent, earned) in totals.items()
            ],
        },
    )


def leaderboard_report(conn: Connection, window: Window) -> Report:
    """Deals won in the window per rep (the owner when it was won) and per team, ranked."""
    won = window.where(ASSIGNMENTS.c.won_at)
    amount = func.coalesce(func.sum(ASSIGNMENTS.c.won_amount), 0)
    reps = conn.execute(
        select(ASSIGNMENTS.c.owner, ASSIGNMENTS.c.team, func.count(), amount)
        .where(ASSIGNMENTS.c.won_at.is_not(None), *won)
        .group_by(ASSIGNMENTS.c.owner, ASSIGNMENTS.c.team)
    ).all()
    teams = conn.execute(
        select(ASSIGNMENTS.c.team, ASSIGNMENTS.c.team, func.count(), amount)
        .where(ASSIGNMENTS.c.won_at.is_not(None), ASSIGNMENTS.c.team.is_not(None), *won)
        .group_by(ASSIGNMENTS.c.team)
    ).all()
    rows: list[dict[str, Any]] = []
    for level, found in (("rep", reps), ("team", teams)):
        ordered = sorted(
            ((id_, team, int(count), _money(total)) for id_, team, count, total in found),
            key=lambda r: (-r[3], -r[2], r[0], r[1] or ""),
        )
        ranks = competition_ranks([(r[3], r[2]) for r in ordered])
        rows += [
            {
                "level": level,
                "id": id_,
                "team": team,
                "won_count": count,
                "won_amount": total,
                "rank": rank,
            }
            for (id_, team, count, total), rank in zip(ordered, ranks, strict=True)
        ]
    return Report(
        "leaderboard", window, ("level", "id", "team", "won_count", "won_amount", "rank"), rows
    )


def follow_up_efficiency_report(conn: Connection, window: Window) -> Report:
    """Per rep and per team, over the assignments of leads captured in the window."""
    a = ASSIGNMENTS
    within_sla = and_(a.c.first_follow_up_at.is_not(None), a.c.sla_missed_at.is_(None))
    measures = (
        func.count(func.distinct(a.c.lead_id)),
        func.count(),
        func.avg(a.c.first_response_seconds),
        func.coalesce(func.sum(a.c.followups_count), 0),
        _as_count(within_sla),
        _as_count(a.c.ended_how == "reclaimed"),
    )
    joined = a.join(LEADS, LEADS.c.lead_id == a.c.lead_id)
    in_window = window.where(LEADS.c.created_at)
    reps = conn.execute(
        select(a.c.owner, a.c.team, *measures)
        .select_from(joined)
        .where(*in_window)
        .group_by(a.c.owner, a.c.team)
    ).all()
    teams = conn.execute(
        select(a.c.team, a.c.team, *measures)
        .select_from(joined)
        .where(a.c.team.is_not(None), *in_window)
        .group_by(a.c.team)
    ).all()
    rows: list[dict[str, Any]] = []
    for level, found in (("rep", reps), ("team", teams)):
        for id_, team, leads, held, avg_seconds, followups, within, reclaimed in sorted(
            found, key=lambda r: (r[0], r[1] or "")
        ):
            rows.append(
                {
                    "level": level,
                    "id": id_,
                    "team": team,
                    "leads": int(leads),
                    "avg_first_response_seconds": None
                    if avg_seconds is None
                    else float(avg_seconds),
                    "avg_followups_per_lead": ratio(int(followups), int(leads)),
                    "within_sla_share": ratio(int(within), int(held)),
                    "reclaimed": int(reclaimed),
                }
            )
    return Report(
        "follow-up-efficiency",
        window,
        (
            "level",
            "id",
            "team",
            "leads",
            "avg_first_response_seconds",
            "avg_followups_per_lead",
            "within_sla_share",
            "reclaimed",
        ),
        rows,
    )


def kpis_report(conn: Connection, window: Window) -> Report:
    """Spend (by its period), new customers and revenue (by the time won), and the ratios
    of them; the MQL→SQL rate of the leads captured in the window."""
    spent = float(sum(spend_by_period(_spend_records(conn, window), window, "month").values()))
    won = _won(window).subquery()
    customers, revenue = conn.execute(
        select(func.count(), func.coalesce(func.sum(won.c.amount), 0))
    ).one()
    customers, revenue = int(customers), float(revenue)
    _, reached = funnel_counts(conn, window)
    cac = ratio(spent, customers)
    ltv = ratio(revenue, customers)
    row = {
        "spend": _money(spent),
        "new_customers": customers,
        "revenue": _money(revenue),
        "cac": cac,
        "ltv": ltv,
        "ltv_to_cac": None if ltv is None or not cac else ltv / cac,
        "mql_to_sql_rate": ratio(reached["SQL"], reached["MQL"]),
        "marketing_roi": roi(revenue, spent),
    }
    return Report("kpis", window, tuple(row), [row])


def _converted(metric: str) -> ColumnElement[bool]:
    if metric == "followed_up":
        return LEADS.c.followups_count > 0
    if metric in FUNNEL_STAGES:
        return _reached(metric)
    engaged = MESSAGES.c.opened_at if metric == "email_opened" else MESSAGES.c.clicked_at
    return exists().where(MESSAGES.c.lead_id == LEADS.c.lead_id, engaged.is_not(None))


def experiments_report(conn: Connection, window: Window, metric: str) -> Report:
    """Per experiment variant, over the leads captured in the window: how many converted
    by `metric`, and each variant against the experiment's control."""
    e = EXPERIMENTS
    query = (
        select(e.c.experiment, e.c.variant, func.count(), _as_count(_converted(metric)))
        .select_from(e.join(LEADS, LEADS.c.lead_id == e.c.lead_id))
        .where(*window.where(LEADS.c.created_at))
        .group_by(e.c.experiment, e.c.variant)
    )
    counts = [
        VariantCount(experiment, variant, int(n), int(converted))
        for experiment, variant, n, converted in conn.execute(query)
    ]
    return Report(
        "experiments",
        window,
        (
            "experiment",
            "variant",
            "n",
            "conversions",
            "rate",
            "rate_ci_low",
            "rate_ci_high",
            "lift",
            "p_value",
            "diff_ci_low",
            "diff_ci_high",
        ),
        experiment_rows(counts),
        {"metric": metric},
    )
