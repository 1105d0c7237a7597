"""The worklist and the list's next deadlines over a large `leads` table (issue #19, part
"work"): what `GET /v1/worklist` and `store.deadlines.next_deadlines` cost against the
plain owner page of `GET /v1/leads?owner=` (the baseline), measured in the same run.

Run from the repository root:

    .venv/bin/python bench/worklist.py --leads 100000
    .venv/bin/python bench/worklist.py --leads 20000 --backend sqlite

It fills the `leads` read model and `lead_deadlines` directly (N leads over `--reps` reps,
a tenth in the pool, a tenth won, two running timers per open lead), then for `--samples`
random reps times: the baseline page (`find_leads`, owner filter, 50 rows), the worklist
(`api.routes.work._worklist`: the owner's open leads, their next deadlines, the order, the
words of 50), and `next_deadlines` for a page of 50 lead ids. PostgreSQL runs when
`--postgres-url` or LEADFLOW_TEST_POSTGRES_URL names a server.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import itertools
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from api.routes.work import _worklist
from bench.environment import machine_info
from bench.projections import opened, postgres_settings, sqlite_settings
from domain.state import LeadState
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from projections.leads import LeadFilters, LeadsProjection, find_leads, row_of
from store.deadlines import lead_deadlines, next_deadlines

console = Console()
MEASURED_PACKAGES = ("sqlalchemy", "psycopg")
START = datetime(2026, 1, 1, tzinfo=UTC)


def fill(store: Store, leads: int, reps: int) -> list[str]:
    """N leads over `reps` reps in the read model, with two deadlines per open lead; the
    rep ids."""
    rep_ids = [f"rep-{i}" for i in range(reps)]
    table = LeadsProjection().table
    rng = random.Random(7)
    batch: list[dict[str, object]] = []
    timers: list[dict[str, object]] = []
    with store.engine.begin() as conn:
        for n in range(leads):
            at = START + timedelta(minutes=n)
            pooled, won = n % 10 == 0, n % 10 == 1
            state = LeadState(
                lead_id=str(uuid.UUID(int=n + 1)),
                stage="won" if won else rng.choice(["new", "MQL", "SQL", "opportunity"]),
                owner=None if pooled else rep_ids[n % reps],
                team="east",
                in_pool=pooled,
                name=f"Lead {n}",
                company=f"Company {n % 997}",
                created_at=at.isoformat(),
                last_activity_at=(at + timedelta(hours=rng.randint(0, 400))).isoformat(),
                last_sequence=2,
            )
            batch.append(row_of(state, n + 1))
            if not (pooled or won) and n % 3:
                for timer, hours in (("first_follow_up", 24), ("reclaim", 48)):
                    timers.append(
                        {
                            "lead_id": state.lead_id,
                            "timer_id": timer,
                            "due_at": at + timedelta(hours=hours + rng.randint(0, 500)),
                            "started_by": f"e-{n}",
                            "step": None,
                            "ruleset_version": None,
                            "sequence": 2,
                        }
                    )
            if len(batch) >= 5000:
                conn.execute(table.insert(), batch)
                if timers:
                    conn.execute(lead_deadlines.insert(), timers)
                batch, timers = [], []
        if batch:
            conn.execute(table.insert(), batch)
        if timers:
            conn.execute(lead_deadlines.insert(), timers)
    if store.engine.dialect.name == "postgresql":
        # What autovacuum does a moment after a bulk load: the planner's statistics.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return rep_ids


def timed(run: Callable[[], object], samples: int) -> list[float]:
    run()  # warm
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(store: Store, leads: int, reps: int, samples: int) -> dict[str, list[float]]:
    rep_ids = fill(store, leads, reps)
    rng = random.Random(11)
    chosen = [rng.choice(rep_ids) for _ in range(samples)]
    picks = itertools.cycle(chosen)

    def baseline() -> object:
        with store.engine.connect() as conn:
            return find_leads(conn, LeadFilters(owner=next(picks)), None, 51)

    def worklist() -> object:
        return _worklist(store, next(picks), None, 50)

    def deadlines() -> object:
        with store.engine.connect() as conn:
            page = find_leads(conn, LeadFilters(owner=next(picks)), None, 50)
            return next_deadlines(conn, [lead.lead_id for lead in page])

    return {
        "owner page (baseline)": timed(baseline, samples),
        "worklist": timed(worklist, samples),
        "owner page + next_deadlines": timed(deadlines, samples),
    }


def report(name: str, results: dict[str, list[float]], leads: int, reps: int) -> None:
    table = Table(
        title=f"{name}: {leads} leads, {reps} reps (~{leads * 8 // 10 // reps} open each)"
    )
    for column in ("query", "p50 ms", "p95 ms", "p95 / baseline p95"):
        table.add_column(column, justify="right" if column != "query" else "left")
    base = statistics.quantiles(results["owner page (baseline)"], n=20)[18]
    for query, times in results.items():
        p95 = statistics.quantiles(times, n=20)[18]
        table.add_row(query, f"{statistics.median(times):.2f}", f"{p95:.2f}", f"{p95 / base:.2f}")
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL"))
    args = parser.parse_args(argv)
    console.print(f"[bold]Machine:[/] {machine_info(MEASURED_PACKAGES)}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as tmp:
        for name in backends:
            setup: contextlib.AbstractContextManager[Settings]
            if name == "postgres":
                if not args.postgres_url:
                    console.print("[yellow]postgres skipped: give --postgres-url[/]")
                    continue
                setup = postgres_settings(Path(tmp), args.postgres_url)
            else:
                setup = sqlite_settings(Path(tmp))
            try:
                with setup as settings, opened(settings) as store:
                    console.log(f"{name}: filling {args.leads} leads")
                    results = measure(store, args.leads, args.reps, args.samples)
                report(name, results, args.leads, args.reps)
            except psycopg.OperationalError as exc:
                console.print(f"[yellow]{name} skipped: PostgreSQL unreachable ({exc})[/]")


if __name__ == "__main__":
    main()
