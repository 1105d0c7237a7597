"""What following the log in partitions costs the read models: one projector following the
whole log, against the same projector holding every one of 8 partitions, and against two
projectors holding 4 each (what two projector processes do between them), on the same log
in the same run.

Run from the repository root (no Temporal needed):

    .venv/bin/python bench/partitions.py [--events N] [--reps R] [--backend sqlite|postgres]
        [--postgres-url URL]

It builds the log bench/projections.py builds (~5 events per lead, identity indexes,
campaign spend), then, rep by rep and in turn, projects it from the start into fresh copies
of every read model (`projections(<suffix>)`: tables and positions of their own) with
`Projector.catch_up`: the live projector's loop, a page at a time, every read model at
once. Reported: events per CPU second of this process plus the database server's (on
PostgreSQL), the median of the reps, and the ratio to the whole log. Two projectors run one
after the other here (the sum is the CPU both processes would spend); each reads only its
partitions' events (selected in the query), so what they add is the second pass's fixed
costs: queries, commits.
Target: every partitioned arrangement >= 0.9x the whole log's events per CPU second.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/partitions.py`: the repository root first (bench/rules.py would
# shadow the `rules` package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack

from rich.table import Table

from bench.environment import machine_info
from bench.latency import PostgresServer, postmaster_of
from bench.projections import (
    MEASURED_PACKAGES,
    build_log,
    console,
    opened,
    postgres_settings,
    sqlite_settings,
)
from leadflow.bootstrap import Store, projections
from projections.projector import Projector
from store.partitions import Partitions

TARGET = 0.9
ARRANGEMENTS: dict[str, list[Partitions]] = {
    "whole log (1 projector)": [Partitions.whole()],
    "8 partitions, 1 projector": [Partitions.of(8, range(8))],
    "8 partitions, 2 projectors": [Partitions.of(8, range(4)), Partitions.of(8, range(4, 8))],
}


def database_cpu(store: Store) -> Callable[[], float]:
    """The database server's CPU seconds so far (SQLite: in this process, none apart)."""
    if store.engine.dialect.name != "postgresql":
        return lambda: 0.0
    with store.engine.connect() as conn:
        backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    postmaster = postmaster_of(backend)
    if postmaster is None:
        raise RuntimeError("the PostgreSQL server is not on this machine: its CPU is unseen")
    return PostgresServer(postmaster, []).cpu_seconds


def project(store: Store, followers: list[Partitions], suffix: str) -> tuple[float, float]:
    """Every read model from the start of the log into fresh tables, by `followers` in
    turn; (wall seconds, CPU seconds of this process and the server)."""
    fresh = projections(suffix)
    with store.engine.begin() as conn:
        for projection in fresh:
            projection.metadata.create_all(conn)
    server = database_cpu(store)
    cpu0, wall0 = time.process_time() + server(), time.perf_counter()
    for partitions in followers:
        Projector(store.event_log, store.engine, fresh, partitions=partitions).catch_up()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() + server() - cpu0
    with store.engine.begin() as conn:
        for projection in fresh:
            projection.metadata.drop_all(conn)
    return wall, cpu


Runs = dict[str, list[tuple[float, float]]]


def run(store: Store, events: int, reps: int) -> tuple[int, Runs]:
    """The log's events (those of the read models' topics), and each arrangement's runs."""
    shape = build_log(store, events)
    console.log(f"log built: {shape.leads:,} leads, {shape.lead_events:,} lead events")
    project(store, [Partitions.whole()], "__warm")
    results: Runs = {name: [] for name in ARRANGEMENTS}
    for rep in range(reps):
        for number, (name, followers) in enumerate(ARRANGEMENTS.items()):
            wall, cpu = project(store, followers, f"__r{rep}a{number}")
            results[name].append((wall, cpu))
            console.log(f"rep {rep + 1}/{reps} {name}: {wall:.2f} s, {cpu:.2f} CPU s")
    return shape.lead_events + shape.other_events, results


def report(events: int, results: Runs, backend: str) -> None:
    table = Table(title=f"Projecting {events:,} events into every read model ({backend})")
    for column in ("arrangement", "wall s", "CPU s", "events / CPU s", "ratio"):
        table.add_column(column, justify="left" if column == "arrangement" else "right")
    rates = {
        name: statistics.median(events / cpu for _, cpu in runs) for name, runs in results.items()
    }
    base = rates[next(iter(rates))]
    for name, runs in results.items():
        target = "" if name.startswith("whole") else f" (target >= {TARGET}x)"
        table.add_row(
            name,
            f"{statistics.median(wall for wall, _ in runs):.2f}",
            f"{statistics.median(cpu for _, cpu in runs):.2f}",
            f"{rates[name]:,.0f}",
            f"{rates[name] / base:.2f}x{target}",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="lead events [50,000]")
    parser.add_argument("--reps", type=int, default=3, help="repetitions, median [3]")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = parser.parse_args(argv)
    console.print(machine_info(MEASURED_PACKAGES))
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        settings = stack.enter_context(
            postgres_settings(Path(tmp), args.postgres_url)
            if args.backend == "postgres"
            else sqlite_settings(Path(tmp))
        )
        store = stack.enter_context(opened(settings))
        report(*run(store, args.events, args.reps), args.backend)


if __name__ == "__main__":
    main()
