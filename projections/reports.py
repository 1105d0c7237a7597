"""The reports (SPEC §7): queries over the read models and the arithmetic on their results.

Every report reads projection tables only, through their indexes, and answers a `Report`:
flat rows (the same keys on every row, `columns`), plus summary values. What each number
counts is written once, in `projections.report_definitions` (served at
`/v1/reports/definitions`); the experiments' statistics are in `projections.experiment_stats`.

Windows: `Window.start` inclusive, `Window.end` exclusive, both optional, with the time zone
whose days they mean (a date bound is that zone's midnight; days, weeks and months of spend
and of won deals are that zone's). Leads are selected by capture time (sources, funnel,
follow-up efficiency, experiments and the MQL→SQL rate of the KPIs), won deals by the time
they were won, spend by the days of its period (see `spend_by_period`). Marketing ROI, of
the KPIs and of the campaign totals alike, is `campaign_returns` (one definition).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, MetaData, Select, and_, case, exists, func, select
from sqlalchemy.engine import Connection

from projections.assignments import assignments_table
from projections.campaigns import campaign_spend_table
from projections.experiment_stats import (
    DEFAULT_MIN_SAMPLE,
    EXPERIMENT_COLUMNS,
    VariantCount,
    experiment_rows,
    ratio,
)
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


# --- windows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A report's time range: `start` inclusive, `end` exclusive; None is unbounded.
    `zone` is the time zone whose calendar days the report counts in."""

    start: datetime | None = None
    end: datetime | None = None
    zone: tzinfo = UTC

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

    def day_of(self, instant: datetime) -> date:
        """The zone's calendar day of `instant` (naive: UTC, as SQLite gives it back)."""
        aware = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
        return aware.astimezone(self.zone).date()

    def first_day(self) -> date | None:
        """The first day whose start (00:00 in the zone) is inside the window."""
        if self.start is None:
            return None
        start = self.start.astimezone(self.zone)
        return start.date() if start.time() == time() else start.date() + timedelta(days=1)

    def last_day(self) -> date | None:
        """The last day whose start (00:00 in the zone) is inside the window."""
        if self.end is None:
            return None
        end = self.end.astimezone(self.zone)
        return end.date() - timedelta(days=1) if end.time() == time() else end.date()


def parse_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; raises ValueError saying what is accepted."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone, e.g. Asia/Shanghai") from exc


def parse_bound(raw: str, zone: tzinfo = UTC) -> datetime:
    """An RFC 3339 date (00:00 that day in `zone`) or date-time with an offset, from
    EARLIEST_BOUND to LATEST_BOUND, in UTC; raises ValueError saying what is accepted."""
    text = raw.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
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
            "time_zone": str(self.window.zone),
            "rows": self.rows,
            **self.extra,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def roi(revenue: float, spend: float) -> float | None:
    """(revenue - spend) / spend, None when nothing was spent."""
    return None if spend == 0 else (revenue - spend) / spend


def _money(value: Decimal | float | None) -> float:
    return 0.0 if value is None else float(round(Decimal(str(value)), 2))


# --- ranks ------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class CampaignReturns:
    """Spend and first-touch revenue per (campaign, period start; None: the whole window):
    the one definition of marketing ROI. Spend counts by the days of its period inside the
    window; revenue is the amount of each deal won in the window, credited to the campaign
    of the lead's first touch (`leads.campaign_id`) and to the period of the day it was
    won. Deals of leads without a campaign are not marketing's return and count nowhere."""

    periods: dict[tuple[str, date | None], tuple[Decimal, Decimal]]

    def per_campaign(self) -> dict[str, tuple[Decimal, Decimal]]:
        totals: dict[str, tuple[Decimal, Decimal]] = {}
        for (campaign_id, _), (spent, earned) in self.periods.items():
            before = totals.get(campaign_id, (Decimal(), Decimal()))
            totals[campaign_id] = (before[0] + spent, before[1] + earned)
        return dict(sorted(totals.items()))

    def overall(self) -> tuple[Decimal, Decimal]:
        """All campaigns' spend and revenue together."""
        spent = sum((s for s, _ in self.periods.values()), Decimal())
        earned = sum((e for _, e in self.periods.values()), Decimal())
        return spent, earned


def campaign_returns(
    conn: Connection, window: Window, interval: str | None = None
) -> CampaignReturns:
    """The window's spend and first-touch revenue per campaign and week or month (periods
    of `window.zone`), or without an `interval` per campaign over the whole window, the
    revenue then summed by the database. The same deals and spend either way: the totals
    agree (tests/integration/test_report_meaning.py)."""
    deals = _won(window).where(LEADS.c.campaign_id.is_not(None)).subquery()
    revenue: dict[tuple[str, date | None], Decimal] = defaultdict(Decimal)
    spend: dict[tuple[str, date | None], Decimal] = defaultdict(Decimal)
    records = _spend_records(conn, window)
    if interval is None:
        for (campaign_id, _), amount in spend_by_period(records, window, "month").items():
            spend[(campaign_id, None)] += amount
        for campaign_id, amount in conn.execute(
            select(deals.c.campaign_id, func.sum(deals.c.amount)).group_by(deals.c.campaign_id)
        ):
            revenue[(campaign_id, None)] += Decimal(str(amount or 0))
    else:
        for (campaign_id, start), amount in spend_by_period(records, window, interval).items():
            spend[(campaign_id, start)] += amount
        for campaign_id, amount, won_at in conn.execute(select(deals)):
            key = (campaign_id, period_start(window.day_of(won_at), interval))
            revenue[key] += Decimal(str(amount or 0))
    keys = sorted({*spend, *revenue}, key=lambda k: (k[0], k[1] or date.min))
    return CampaignReturns(
        {key: (spend.get(key, Decimal()), revenue.get(key, Decimal())) for key in keys}
    )


def _returns(campaign_id: str | None, spent: Decimal, earned: Decimal) -> dict[str, Any]:
    row: dict[str, Any] = {} if campaign_id is None else {"campaign_id": campaign_id}
    # ROI of the amounts as shown (to the cent): the same however they were summed.
    spend, revenue = _money(spent), _money(earned)
    return {**row, "spend": spend, "revenue": revenue, "roi": roi(revenue, spend)}


def campaign_roi_report(conn: Connection, window: Window, interval: str) -> Report:
    """Spend and first-touch revenue per campaign and period, and their ROI; per campaign
    and over all campaigns (`overall`, the KPIs' marketing ROI) for the whole window."""
    returns = campaign_returns(conn, window, interval)
    rows = [
        {
            "campaign_id": campaign_id,
            "period_start": start.isoformat() if start else None,
            **_returns(None, spent, earned),
        }
        for (campaign_id, start), (spent, earned) in returns.periods.items()
    ]
    return Report(
        "campaign-roi",
        window,
        ("campaign_id", "period_start", "spend", "revenue", "roi"),
        rows,
        {
            "interval": interval,
            "totals": [
                _returns(campaign_id, spent, earned)
                for campaign_id, (spent, earned) in returns.per_campaign().items()
            ],
            "overall": _returns(None, *returns.overall()),
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
    of them; the MQL→SQL rate of the leads captured in the window; marketing ROI as the
    campaign-roi report's `overall` (`campaign_returns`)."""
    spent, campaign_revenue = campaign_returns(conn, window).overall()
    won = _won(window).subquery()
    customers, revenue = conn.execute(
        select(func.count(), func.coalesce(func.sum(won.c.amount), 0))
    ).one()
    customers, revenue = int(customers), float(revenue)
    _, reached = funnel_counts(conn, window)
    cac = ratio(float(spent), customers)
    ltv = ratio(revenue, customers)
    row = {
        "spend": _money(spent),
        "new_customers": customers,
        "revenue": _money(revenue),
        "campaign_revenue": _money(campaign_revenue),
        "cac": cac,
        "ltv": ltv,
        "ltv_to_cac": None if ltv is None or not cac else ltv / cac,
        "mql_to_sql_rate": ratio(reached["SQL"], reached["MQL"]),
        "marketing_roi": roi(_money(campaign_revenue), _money(spent)),
    }
    return Report("kpis", window, tuple(row), [row])


def _converted(metric: str) -> ColumnElement[bool]:
    if metric == "followed_up":
        return LEADS.c.followups_count > 0
    if metric in FUNNEL_STAGES:
        return _reached(metric)
    engaged = MESSAGES.c.opened_at if metric == "email_opened" else MESSAGES.c.clicked_at
    return exists().where(MESSAGES.c.lead_id == LEADS.c.lead_id, engaged.is_not(None))


def experiments_report(
    conn: Connection, window: Window, metric: str, min_sample: int = DEFAULT_MIN_SAMPLE
) -> Report:
    """Per experiment variant, over the leads captured in the window: how many converted
    by `metric`, and each variant against the experiment's control (`experiment_stats`)."""
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
        EXPERIMENT_COLUMNS,
        experiment_rows(counts, min_sample),
        {"metric": metric, "min_sample": min_sample},
    )
