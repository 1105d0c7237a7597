"""The KPIs' marketing ROI from one definition (issue #19, metrics): what `kpis_report` costs
now that it computes spend and first-touch revenue with `campaign_returns` (the campaign-roi
report's function, reading each won deal of a campaign lead) against the KPI query it
replaced, measured in the same run over the same tables.

Run from the repository root (no Temporal needed):

    .venv/bin/python bench/reports.py [--leads N] [--reps R] [--postgres-url URL]

It fills the `leads`, `lead_stages` and `campaign_spend` read models directly (N leads over a
year, a fifth of them won, four in five of those from one of ten campaigns, a spend record
per campaign and month), then, interleaved rep by rep, times:

  - baseline: the KPI queries before (one SQL sum over every deal won in the window, the
    spend spread over its days, the funnel's counts): `previous_kpis` below;
  - `kpis_report`: the KPIs as served now;
  - `campaign_roi_report` by month: the campaign report, for scale.

Each over the whole history and over one month, in milliseconds (median of R); ratio =
kpis_report / baseline. PostgreSQL runs too when `--postgres-url` or
LEADFLOW_TEST_POSTGRES_URL names a server (a fresh database, dropped on the way out).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/reports.py`, this file's folder leads sys.path and bench/rules.py
# would shadow the `rules` package: the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from sqlalchemy import MetaData, create_engine, func, insert, select
from sqlalchemy.engine import Connection, Engine

from projections.campaigns import campaign_spend_table
from projections.leads import leads_table
from projections.reports import (
    Window,
    _spend_records,
    _won,
    campaign_roi_report,
    funnel_counts,
    kpis_report,
    spend_by_period,
)
from projections.stages import lead_stages_table

CAMPAIGNS = [f"campaign-{i}" for i in range(10)]
START = datetime(2025, 1, 1, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def previous_kpis(conn: Connection, window: Window) -> tuple[float, float, int, int]:
    """What the KPIs computed before: spend, one SQL sum of every deal won, the funnel."""
    spent = float(sum(spend_by_period(_spend_records(conn, window), window, "month").values()))
    won = _won(window).subquery()
    customers, revenue = conn.execute(
        select(func.count(), func.coalesce(func.sum(won.c.amount), 0))
    ).one()
    _, reached = funnel_counts(conn, window)
    return spent, float(revenue), int(customers), reached["SQL"]


def fill(engine: Engine, leads: int) -> None:
    metadata = MetaData()
    tables = (leads_table(metadata), lead_stages_table(metadata), campaign_spend_table(metadata))
    metadata.create_all(engine)
    lead_rows, stage_rows = [], []
    rng = random.Random(19)
    for i in range(leads):
        lead_id = f"{i:036d}"
        created = START + timedelta(minutes=rng.randrange(365 * 24 * 60))
        won = rng.random() < 0.2
        lead_rows.append(
            {
                "lead_id": lead_id,
                "stage": "won" if won else "new",
                "in_pool": False,
                "campaign_id": rng.choice(CAMPAIGNS) if rng.random() < 0.8 else None,
                "score": 0,
                "tags": [],
                "attributes": {},
                "touch_count": 1,
                "followups_count": 0,
                "created_at": created,
                "unsubscribed": False,
                "do_not_contact": False,
                "variants": {},
                "open_tasks": [],
                "sequences": [],
                "last_sequence": 1,
                "last_position": i,
                "state": "{}",
            }
        )
        if won:
            stage_rows.append(
                {
                    "lead_id": lead_id,
                    "stage": "won",
                    "entered_at": created + timedelta(days=rng.randrange(1, 30)),
                    "amount": rng.randrange(1_000, 2_000_000),
                    "currency": "CNY",
                    "sequence": 5,
                    "position": leads + i,
                }
            )
    spend_rows = [
        {
            "campaign_id": campaign,
            "sequence": month,
            "event_id": f"{campaign}-{month}",
            "amount": Decimal(rng.randrange(10_000, 500_000)),
            "currency": "CNY",
            "period_start": date(2025, month, 1),
            "period_end": (date(2025, month, 28)),
            "recorded_at": START,
            "position": 0,
        }
        for campaign in CAMPAIGNS
        for month in range(1, 13)
    ]
    with engine.begin() as conn:
        for table, rows in zip(tables, (lead_rows, stage_rows, spend_rows), strict=True):
            for chunk in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[chunk : chunk + 5000])


def timed(engine: Engine, run: Callable[[Connection], object]) -> float:
    with engine.connect() as conn:
        began = time.perf_counter()
        run(conn)
        return (time.perf_counter() - began) * 1000


def measure(engine: Engine, reps: int) -> None:
    windows = {
        "whole history": Window(zone=ZONE),
        "one month": Window(
            datetime(2025, 6, 1, tzinfo=ZONE), datetime(2025, 7, 1, tzinfo=ZONE), ZONE
        ),
    }
    for label, window in windows.items():
        runs: dict[str, Callable[[Connection], object]] = {
            "baseline (previous KPIs)": lambda conn, w=window: previous_kpis(conn, w),
            "kpis_report": lambda conn, w=window: kpis_report(conn, w),
            "campaign_roi_report (month)": lambda conn, w=window: campaign_roi_report(
                conn, w, "month"
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(reps):
            for name, run in runs.items():
                samples[name].append(timed(engine, run))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        baseline = medians["baseline (previous KPIs)"]
        print(f"  {label}:")
        for name, median in medians.items():
            print(f"    {name:30} {median:8.1f} ms   ratio {median / baseline:5.2f}")


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    name = f"bench_reports_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def run(url: str, label: str, leads: int, reps: int) -> None:
    engine = create_engine(url)
    try:
        began = time.perf_counter()
        fill(engine, leads)
        print(f"{label}: {leads:,} leads filled in {time.perf_counter() - began:.1f} s")
        measure(engine, reps)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--postgres-url", default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        run(f"sqlite:///{folder}/reports.sqlite", "SQLite", args.leads, args.reps)
    if args.postgres_url:
        with postgres_database(args.postgres_url) as url:
            run(
                url.replace("postgresql://", "postgresql+psycopg://", 1),
                "PostgreSQL",
                args.leads,
                args.reps,
            )


if __name__ == "__main__":
    main()
