"""What a person's lead scope costs the lead list (issue #19, docs/access.md): a page of
`GET /v1/leads` as a key reads it (every lead; the baseline) against the same page read
through a rep's scope (own leads OR the pool) and a manager's (their teams OR own OR the
pool), over N leads in the `leads` table.

Run from the repository root:

    .venv/bin/python bench/lead_scope.py --leads 100000
    .venv/bin/python bench/lead_scope.py --leads 100000 --database-url postgresql://postgres@127.0.0.1:5432/test

The rows are written straight into a fresh `leads` table (the projection's own row format,
`projections.leads.row_of`): 40 reps in 8 teams, 10% of the leads in the pool. Each query
is the one the API runs (`projections.leads.find_leads`, first page of 50, then the page
after it), timed `--runs` times; p50 and p95 in milliseconds and each p95 as a ratio of
the key's, measured in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/lead_scope.py`, this file's folder leads sys.path and bench/rules.py
# would shadow the `rules` package: the repository root must come first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.environment import machine_info
from domain.access import EVERYTHING, LeadScope
from domain.state import LeadState
from leadflow.settings import Settings
from projections.leads import LeadFilters, find_leads, key_of, leads_table, row_of

TEAMS = [f"team-{t}" for t in range(8)]
REPS = [f"rep-{t}-{r}" for t in range(8) for r in range(5)]


def fill(engine: Engine, leads: int) -> None:
    table = leads_table(MetaData())
    table.metadata.drop_all(engine)
    table.metadata.create_all(engine)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    randomly = random.Random(19)
    rows = []
    for n in range(leads):
        rep = randomly.choice(REPS)
        pooled = randomly.random() < 0.1
        state = LeadState(
            lead_id=str(uuid.UUID(int=randomly.getrandbits(128))),
            owner=None if pooled else rep,
            team=rep.rsplit("-", 1)[0].replace("rep-", "team-"),
            in_pool=pooled,
            source="website",
            created_at=(start + timedelta(minutes=n)).isoformat(),
        )
        rows.append(row_of(state, n + 1))
        if len(rows) == 5000:
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def timed(engine: Engine, scope: LeadScope, runs: int) -> list[float]:
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        with engine.connect() as conn:
            page = find_leads(conn, LeadFilters(), None, 51, scope)
            find_leads(conn, LeadFilters(), key_of(page[49]), 51, scope)
        took.append((time.perf_counter() - began) * 1000 / 2)
    return took


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new PostgreSQL database on the server of `server_url`, dropped afterwards."""
    server = make_url(Settings(database_url=server_url).sqlalchemy_url)
    name = f"leadflow_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(fresh_database(args.database_url))
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scope-")))
            url = f"sqlite:///{folder / 'leads.db'}"
        engine = create_engine(url)
        stack.callback(engine.dispose)
        print(machine_info(["sqlalchemy"]))
        fill(engine, args.leads)
        scopes = {
            "key (every lead)": EVERYTHING,
            "rep (own + pool)": LeadScope(owners=frozenset({"rep-3-2"}), pool=True),
            "manager (2 teams + pool)": LeadScope(
                owners=frozenset({"rep-3-0"}), teams=frozenset(TEAMS[:2]), pool=True
            ),
            "rep, no pool": LeadScope(owners=frozenset({"rep-3-2"})),
        }
        results = {name: timed(engine, scope, args.runs) for name, scope in scopes.items()}
        base = statistics.quantiles(results["key (every lead)"], n=20)[18]
        print(f"{engine.dialect.name}, {args.leads} leads, page of 50, {args.runs} runs")
        print(f"{'caller':28} {'p50 ms':>8} {'p95 ms':>8} {'p95 / key':>10}")
        for name, took in results.items():
            p95 = statistics.quantiles(took, n=20)[18]
            print(f"{name:28} {statistics.median(took):8.2f} {p95:8.2f} {p95 / base:10.2f}")


if __name__ == "__main__":
    main()
