"""What-if replay throughput against the library's own read of the same events, same store.

Run from the repository root (no Temporal needed):

    .venv/bin/python bench/replay.py [--events N] [--reps R] [--postgres-url URL]

It builds a log of N events (default 100,000) on a fresh SQLite file, and on a fresh
PostgreSQL database too when `--postgres-url` or LEADFLOW_TEST_POSTGRES_URL is given: a
realistic history of captures, repeat touches, follow-ups, qualifications, opportunities,
wins and losses, email opens and unsubscribes over 60 days, with the decisions
(assignments, tasks, fired timers, reminders, reclaims, nurture emails, notifications) the
workflows would have written, made by the same pure lifecycle the replay runs and appended
through the log's own mapper and recorder in time order.

Then, interleaved for R reps, it measures

  a) the library's read: `notification_log.select` of the external lead events in pages
     of 1000, each deserialised with the application's mapper (what any reader pays);
  b) the replay: `replay.whatif.answer` (what `leadflow replay` and `POST /v1/replays`
     run) with a candidate that moves the east website leads to another rep: read the
     history, replay it under the baseline (in a forked child) and under the candidate
     (in this process) at once, summarise each run, diff;
  c) the same replay in one process (`parallel_from=None`: the runs one after the other),

and prints them in events per second, the ratios b/a and c/a (target >= 0.3; b uses two
cores against the library's one), the CPU ratios (this process's CPU seconds plus its
children's), and where the replay's time goes, step by step and process by process, from
one extra run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/replay.py`, this file's folder leads sys.path and bench/rules.py would
# shadow the `rules` package: the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import copy
import os
import random
import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import psycopg
from eventsourcing.utils import get_topic
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from bench.environment import machine_info
from domain.lead import DECIDED_LEAD_EVENTS, EXTERNAL_LEAD_EVENTS, EXTERNAL_LEAD_TOPICS, Lead
from domain.lifecycle import ActiveRuleset
from domain.state import LoggedEvent
from leadflow.bootstrap import Store, open_store
from leadflow.settings import Settings
from replay.diff import changed_rules, compare, summarise
from replay.simulator import (
    cycle_collection_paused,
    fixed,
    log_horizon,
    recorded_history,
    ruleset_timeline,
    select_history,
    simulate,
)
from replay.whatif import PARALLEL_FROM_EVENTS, WhatIf, answer, replay_runs
from rules.compile import compile_ruleset
from rules.validation import parse_ruleset
from store.rulebook import default_ruleset_document

TARGET_RATIO = 0.3
PAGE = 1000
START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
DAYS = 60
BENCH_NAMESPACE = UUID("8f1d3c52-4a7e-4f0b-9d2c-6a5b1e0f7c11")

console = Console(width=None if sys.stdout.isatty() else 132)

# Their versions are printed with the results.
MEASURED_PACKAGES = ("eventsourcing", "eventsourcing-sqlalchemy")


# --- the history ----------------------------------------------------------------------------


def external_history(leads: int, seed: int = 7) -> list[LoggedEvent]:
    """What clients would have posted for `leads` leads captured over `DAYS` days, in time
    order: every lead is captured, most are followed up (some only after the 24 h reminder
    or the 48 h reclaim), some qualify and move on to won or lost, low-intent ones open
    emails or unsubscribe, a few come back (a repeat capture)."""
    rng = random.Random(seed)
    span = timedelta(days=DAYS).total_seconds()
    events: list[tuple[datetime, str, str, dict[str, Any]]] = []
    for n in range(leads):
        lead = str(uuid5(BENCH_NAMESPACE, f"lead-{n}"))
        at = START + timedelta(seconds=span * n / leads + rng.uniform(0, 30))
        region = rng.choice(["east", "east", "west", "west", "south", None])
        source = rng.choice(["website", "website", "fair", "ads", "referral"])
        intent = rng.choice(["low", "medium", "high"])
        capture = {"email": f"lead{n}@example.com", "source": source, "intent": intent}
        if region is not None:
            capture["region"] = region
        events.append((at, lead, "lead.captured", capture))
        t = at
        if rng.random() < 0.85:
            # Mostly within the day; some after the reminder, some after the reclaim.
            t += timedelta(hours=rng.choice([2, 6, 20, 30, 50]) * rng.uniform(0.5, 1.0))
            rep = rng.choice(["rep-east-1", "rep-east-2", "rep-west-1", "rep-west-2"])
            events.append((t, lead, "lead.followed_up", {"rep_id": rep, "kind": "call"}))
            for _ in range(rng.choice([0, 1, 1, 2])):
                t += timedelta(days=rng.uniform(1, 9))
                events.append((t, lead, "lead.followed_up", {"rep_id": rep, "kind": "email"}))
            if rng.random() < 0.5:
                t += timedelta(hours=rng.uniform(1, 48))
                events.append((t, lead, "lead.qualified", {"stage": "MQL"}))
                if rng.random() < 0.5:
                    t += timedelta(days=rng.uniform(1, 5))
                    events.append((t, lead, "lead.qualified", {"stage": "SQL"}))
                    t += timedelta(days=rng.uniform(1, 5))
                    amount = rng.randrange(1_000, 50_000)
                    events.append((t, lead, "lead.opportunity_opened", {"amount": amount}))
                    t += timedelta(days=rng.uniform(2, 10))
                    if rng.random() < 0.4:
                        events.append((t, lead, "lead.won", {"amount": amount}))
                    else:
                        events.append((t, lead, "lead.lost", {"reason": "price"}))
        if intent == "low" and rng.random() < 0.5:
            t = at + timedelta(hours=rng.uniform(1, 100))
            events.append((t, lead, "email.opened", {"message_id": f"m-{n}"}))
            if rng.random() < 0.3:
                t += timedelta(days=rng.uniform(1, 10))
                events.append((t, lead, "lead.unsubscribed", {}))
        if rng.random() < 0.05:
            t = at + timedelta(days=rng.uniform(1, 20))
            events.append((t, lead, "lead.captured", {**capture, "source": "ads"}))
    events.sort(key=lambda e: e[0])
    sequences: dict[str, int] = {}
    history = []
    for at, lead, type_, data in events:
        sequences[lead] = sequences.get(lead, 0) + 1
        seq = sequences[lead]
        history.append(
            LoggedEvent(
                lead_id=lead,
                sequence=seq,
                event_id=f"{lead}/{seq}",
                type=type_,
                occurred_at=at.isoformat(),
                recorded_at=at.isoformat(),
                data=data,
            )
        )
    return history


def decided_log(store: Store, leads: int, limit: int) -> list[LoggedEvent]:
    """Every lead's stream as the workflows would have written it (external events and
    the decisions under the built-in ruleset), in time order, cut at `limit` events."""
    history = external_history(leads)
    rulebook = store.rulebook
    until = datetime.fromisoformat(history[-1].recorded_at)
    run = simulate(history, ruleset_timeline(rulebook), rulebook.directory(), until=until)
    order = {lead: i for i, lead in enumerate(run.leads)}
    everything = [e for lead in run.leads.values() for e in lead.log]
    # A trigger's decisions share its time: lead order, then stream order, keeps them after it.
    everything.sort(key=lambda e: (e.recorded_at, order[e.lead_id], e.sequence))
    return everything[:limit]


def event_of(logged: LoggedEvent) -> Any:
    """The stored domain event for one logged event (what `Lead` would have recorded)."""
    fields: dict[str, Any] = {
        "originator_id": UUID(logged.lead_id),
        "originator_version": logged.sequence,
        "timestamp": datetime.fromisoformat(logged.recorded_at),
        "event_id": logged.event_id,
        "occurred_at": datetime.fromisoformat(logged.occurred_at),
        "data": logged.data,
        "rule_id": logged.rule_id,
        "ruleset_version": logged.ruleset_version,
        "caused_by": logged.caused_by,
    }
    if logged.sequence == 1:
        return Lead.Captured(originator_topic=get_topic(Lead), **fields)
    if logged.caused_by is not None:  # decided (a fired timer too)
        return DECIDED_LEAD_EVENTS[logged.type](**fields)
    return EXTERNAL_LEAD_EVENTS[logged.type](**fields)


def build_log(store: Store, events: int) -> tuple[int, int]:
    """Fill the store with a history of `events` events; (events, of which external)."""
    store.rulebook.install_defaults(START - timedelta(days=1))
    leads = events // 9  # ~9 events per lead with this mix; the log is cut at `events`
    log = decided_log(store, leads, events)
    while len(log) < events:
        leads = leads * 5 // 4
        log = decided_log(store, leads, events)
    mapper, recorder = store.event_log.mapper, store.event_log.recorder
    for start in range(0, len(log), 5000):
        page = log[start : start + 5000]
        recorder.insert_events([mapper.to_stored_event(event_of(e)) for e in page])
    external = sum(1 for e in log if e.caused_by is None)
    return len(log), external


# --- what is measured -----------------------------------------------------------------------


@dataclass(frozen=True)
class Took:
    """Wall-clock and CPU seconds (of this process and its children: the replay's forked
    child) of one measurement. On a busy machine the CPU seconds move much less than the
    wall clock; on PostgreSQL they leave out the server's share of a read (so the
    library's read looks cheaper by CPU)."""

    wall: float
    cpu: float


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been joined."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


@contextlib.contextmanager
def timed() -> Iterator[list[Took]]:
    took: list[Took] = []
    wall, cpu = time.perf_counter(), time.process_time() + children_cpu()
    yield took
    used = time.process_time() + children_cpu() - cpu
    took.append(Took(time.perf_counter() - wall, used))


def library_read(store: Store, topics: tuple[str, ...] = ()) -> tuple[Took, int]:
    """How long selecting and deserialising every event of the log (or those of `topics`)
    with the library's notification log and mapper takes, and how many there were."""
    log = store.event_log
    count, position = 0, 1
    with timed() as took:
        while True:
            notifications = log.notification_log.select(position, PAGE, topics=topics)
            if not notifications:
                break
            for notification in notifications:
                log.mapper.to_domain_event(notification)
            count += len(notifications)
            position = notifications[-1].id + 1
    return took[0], count


def candidate(store: Store) -> WhatIf:
    document = copy.deepcopy(default_ruleset_document())
    [rule] = [r for r in document["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = "rep-east-2"
    return WhatIf(parse_ruleset(document, store.rulebook.directory()))


def replay(store: Store, question: WhatIf, parallel_from: int | None) -> tuple[Took, int]:
    """How long the whole what-if takes, and how many leads change owner."""
    with timed() as took:
        diff = answer(question, store.event_log, store.rulebook, parallel_from=parallel_from)
    return took[0], len(diff.assignments)


def phases(store: Store, question: WhatIf) -> dict[str, float]:
    """Where one replay's time goes: `answer`'s steps timed one by one (with the cyclic
    collector paused as `answer` pauses it). The runs once as `answer` makes them, the
    baseline in a forked child while the candidate runs here (wall, and each process's
    CPU), and once one after the other, to see what each run and its summary cost."""
    with cycle_collection_paused():
        return _phases(store, question)


def _phases(store: Store, question: WhatIf) -> dict[str, float]:
    rulebook, log = store.rulebook, store.event_log
    directory = rulebook.directory()
    active = ActiveRuleset(None, question.candidate, compile_ruleset(question.candidate))
    timings: dict[str, float] = {}
    t = time.process_time()
    baseline_for = ruleset_timeline(rulebook)
    history = select_history(recorded_history(log))
    now = log_horizon(log)
    timings["read the history (parent CPU)"] = time.process_time() - t
    wall, t, child = time.perf_counter(), time.process_time(), children_cpu()
    before, after = replay_runs(history, baseline_for, fixed(active), directory, now, parallel=True)
    timings["both runs at once (wall)"] = time.perf_counter() - wall
    timings["  candidate run + summary (parent CPU)"] = time.process_time() - t
    timings["  baseline run + summary + send (child CPU)"] = children_cpu() - child
    t = time.process_time()
    compare(before, after, changed_rules(rulebook.active().ruleset, question.candidate))
    timings["diff (parent CPU)"] = time.process_time() - t
    # The same runs one after the other, in this process.
    for name, ruleset_for in (("baseline", baseline_for), ("candidate", fixed(active))):
        t = time.process_time()
        run = simulate(history, ruleset_for, directory, until=now)
        timings[f"one process: {name} run"] = time.process_time() - t
        t = time.process_time()
        summarise(run)
        timings[f"one process: {name} summary"] = time.process_time() - t
        del run  # its events: freed before the next run, as `replay_runs` frees them
    return timings


# --- backends and the run -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    backend: str
    events: int  # in the log (the replay's decisions re-derive all but the few rulebook ones)
    external: int  # of which posted by clients: what the replay reads
    build_seconds: float
    read_log: list[Took]  # per rep: the library reads the whole log
    read_external: list[Took]  # per rep: the library reads the external events
    replay: list[Took]  # per rep: the what-if, baseline in a child process
    replay_one_process: list[Took]  # per rep: the what-if, both runs in this process
    changed: int
    phases: dict[str, float]


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database, dropped WITH (FORCE) on the way out."""
    admin = make_url(admin_url).set(drivername="postgresql")
    name = f"bench_replay_{os.getpid()}_{secrets.token_hex(3)}"
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def measure(name: str, settings: Settings, events: int, reps: int) -> Result:
    store = open_store(settings)
    try:
        started = time.perf_counter()
        built, external = build_log(store, events)
        build_seconds = time.perf_counter() - started
        question = candidate(store)
        read_log: list[Took] = []
        read_external: list[Took] = []
        replays: list[Took] = []
        one_process: list[Took] = []
        changed = 0
        for _ in range(reps):
            took, count = library_read(store)
            assert count == store.event_log.max_position(), count
            read_log.append(took)
            took, count = library_read(store, EXTERNAL_LEAD_TOPICS)
            assert count == external, (count, external)
            read_external.append(took)
            took, changed = replay(store, question, PARALLEL_FROM_EVENTS)
            replays.append(took)
            took, unchanged = replay(store, question, None)
            assert unchanged == changed, (unchanged, changed)
            one_process.append(took)
        return Result(
            name,
            built,
            external,
            build_seconds,
            read_log,
            read_external,
            replays,
            one_process,
            changed,
            phases(store, question),
        )
    finally:
        store.close()


def ratios(reads: list[Took], replays: list[Took]) -> tuple[float, float]:
    """The medians of replay rate / read rate over the reps, by wall clock and by CPU."""
    pairs = list(zip(reads, replays, strict=True))
    wall = statistics.median(read.wall / replayed.wall for read, replayed in pairs)
    cpu = statistics.median(read.cpu / replayed.cpu for read, replayed in pairs)
    return wall, cpu


def report(results: list[Result]) -> None:
    table = Table(title="Replay vs the library's read of the same events (median of reps)")
    columns = (
        "backend",
        "events",
        "library read/s",
        "replay/s",
        "ratio",
        "CPU ratio",
        "one process: replay/s",
        "ratio",
        "CPU ratio",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for r in results:
        rows = (
            ("whole log", r.events, r.read_log),
            ("external only", r.external, r.read_external),
        )
        for label, count, reads in rows:
            wall, cpu = ratios(reads, r.replay)
            one_wall, one_cpu = ratios(reads, r.replay_one_process)
            table.add_row(
                r.backend,
                f"{count:,} ({label})",
                f"{count / statistics.median(t.wall for t in reads):,.0f}",
                f"{count / statistics.median(t.wall for t in r.replay):,.0f}",
                f"{wall:.2f}x",
                f"{cpu:.2f}x",
                f"{count / statistics.median(t.wall for t in r.replay_one_process):,.0f}",
                f"{one_wall:.2f}x",
                f"{one_cpu:.2f}x",
            )
    console.print(table)
    console.print(
        f"Target: ratio >= {TARGET_RATIO}x. whole log: the replay re-derives every event of "
        "the log from the external ones (twice: baseline and candidate) while the library "
        "reads them all once; external only: the replay's input against the library "
        "reading just that input. Rates are wall-clock; the replay runs its baseline in a "
        "forked child (two cores) against the library's single-threaded read; 'one process' "
        "is the same replay with both runs in this process. CPU ratio uses the CPU seconds "
        "of this process and its child, steadier on a busy machine."
    )
    for r in results:
        console.print(
            f"{r.backend}: log built in {r.build_seconds:.1f}s; {r.changed} leads change "
            "owner under the candidate; where one replay's time goes (seconds):"
        )
        shared = [(k, v) for k, v in r.phases.items() if not k.startswith("one process: ")]
        alone = [(k, v) for k, v in r.phases.items() if k.startswith("one process: ")]
        console.print(
            "  as `answer` runs it: " + ", ".join(f"{k.strip()} {v:.2f}" for k, v in shared)
        )
        console.print(
            "  the runs one after the other (CPU): "
            + ", ".join(f"{k.removeprefix('one process: ')} {v:.2f}" for k, v in alone)
        )
        for label, took in (
            ("read log", r.read_log),
            ("read external", r.read_external),
            ("replay", r.replay),
            ("replay, one process", r.replay_one_process),
        ):
            reps = ", ".join(f"{t.wall:.2f} ({t.cpu:.2f} CPU)" for t in took)
            console.print(f"  {label} seconds per rep: {reps}")
    console.print(machine_info(MEASURED_PACKAGES))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000, help="events in the log [100000]")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions [3]")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL"),
        help="also measure on a fresh database of this server [LEADFLOW_TEST_POSTGRES_URL]",
    )
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        sqlite_settings = Settings(data_dir=Path(tmp) / "sqlite")
        results.append(measure("sqlite", sqlite_settings, args.events, args.reps))
        if args.postgres_url:
            with postgres_database(args.postgres_url) as url:
                pg_settings = Settings(data_dir=Path(tmp) / "pg", database_url=url)
                results.append(measure("postgres", pg_settings, args.events, args.reps))
    report(results)


if __name__ == "__main__":
    main()
