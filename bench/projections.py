"""Projection rebuild speed: `leadflow projections rebuild` against the library's own read of
the same events, same store, same run; then the latency of every report over the result.

Run from the repository root (no Temporal needed):

    .venv/bin/python bench/projections.py [--events N] [--reps R] [--quick]
        [--backend sqlite|postgres|both] [--postgres-url URL] [--report-requests N]

It builds a log of ~100k lead events (captures with their identity indexes, the decisions a
default ruleset makes, follow-ups, qualifications, deals, email opens, some campaign spend;
~5 events per lead) by appending through the event log, then measures, interleaved rep by
rep:

  - baseline: eventsourcing's notification log `select` of the events a projection reads,
    a section of the application's `log_section_size` at a time, through the library's stock
    recorder (eventsourcing_sqlalchemy), each deserialised with the application's mapper
    (`mapper.to_domain_event`): what any eventsourcing read model pays at least;
  - `rebuild` of each registered projection (`leadflow.bootstrap.projections()`), through
    `projections.projector.rebuild`, the function `leadflow projections rebuild` runs (minus
    its progress bar); "all" is their sum, what the command takes without a NAME.

Rates are events per second of wall time; ratio = rebuild / baseline. Last, the API runs in
this process over the rebuilt read models and each `/v1/reports/*` endpoint is requested
`--report-requests` times (p50/p95/max). For the issue's 100k leads: `--events 500000`.
PostgreSQL runs when `--postgres-url` or LEADFLOW_TEST_POSTGRES_URL names a server: a fresh
database is created there and dropped (WITH (FORCE)) on the way out.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/projections.py`, this file's folder leads sys.path and bench/rules.py
# would shadow the `rules` package: the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import os
import random
import secrets
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.domain import Aggregate
from fastapi.testclient import TestClient
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from api.app import create_app
from bench.environment import machine_info
from domain.events import parse_event
from domain.identity import campaign_id_for, identity_index_id
from domain.lead import Campaign, IdentityIndex, Lead
from domain.state import Decision
from leadflow.bootstrap import Store, open_store, projections
from leadflow.settings import Settings
from projections.base import LEAD_TOPICS, read_page
from projections.leads import LeadsProjection
from projections.projector import PAGE_SIZE
from projections.rebuild import REBUILD_SUFFIX, rebuild
from store.log import EventLog

TARGET_RATIO = 0.5
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CAPTURE_EVERY = timedelta(minutes=5)  # 100k events: ~20k leads over ~70 days
WEEKS_OF_SPEND = 13
# Leads whose first events are saved together; their later events (follow-ups, deals) are
# saved one chunk later, so a lead's stream spans log pages as it does in production.
CHUNK = 250

console = Console(width=None if sys.stdout.isatty() else 132)

# Their versions are printed with the results.
MEASURED_PACKAGES = ("eventsourcing", "eventsourcing-sqlalchemy", "sqlalchemy", "psycopg")


# --- the log ------------------------------------------------------------------------------

SOURCES = ("website", "website", "ads", "trade-show", "referral", "crm")
CHANNELS = ("organic", "paid-search", "social", "email", "event")
REGIONS = ("east", "west", "north", "south")
TEAMS = {"east": ("rep-e1", "rep-e2", "rep-e3"), "west": ("rep-w1", "rep-w2")}
CAMPAIGNS = tuple(f"camp-{i}" for i in range(12))


@dataclass
class LogShape:
    """What the built log holds (printed with the results)."""

    leads: int = 0
    lead_events: int = 0
    other_events: int = 0  # identity indexes, campaigns


def _parsed(body: dict[str, Any], at: datetime) -> dict[str, Any]:
    # The data exactly as the API stores it (validated and normalised).
    return parse_event({**body, "occurred_at": at.isoformat()}, now=at, phone_region="CN").data


def _first_events(lead_no: int, rng: random.Random, shape: LogShape) -> tuple[Lead, list[Any]]:
    """A capture and what the default ruleset decides right away; also the identity
    index streams an API capture writes beside it."""
    at = START + lead_no * CAPTURE_EVERY + timedelta(seconds=rng.uniform(0, 60))
    region = rng.choice(REGIONS)
    intent = rng.choice(("low", "medium", "high"))
    data = _parsed(
        {
            "type": "lead.captured",
            "data": {
                "email": f"lead-{lead_no}@example{lead_no % 97}.com",
                **({"phone": f"+86138{lead_no:08d}"} if rng.random() < 0.3 else {}),
                "name": f"Lead {lead_no}",
                "company": f"Company {lead_no % 3000}",
                "source": rng.choice(SOURCES),
                "channel": rng.choice(CHANNELS),
                "region": region,
                "industry": rng.choice(("software", "retail", "manufacturing", "finance")),
                "company_size": rng.choice(("1-10", "11-50", "51-200", "201-1000")),
                "campaign_id": rng.choice(CAMPAIGNS),
                "form_id": "contact-us",
                "intent": intent,
                "attributes": {"utm_campaign": "spring-2026", "landing_page": "/pricing"},
            },
        },
        at,
    )
    capture_id = str(uuid4())
    lead = Lead.capture(uuid4(), capture_id, at, data)
    others: list[Any] = [
        IdentityIndex.for_identity(identity_index_id("email", data["email"]), lead.id)
    ]
    if "phone" in data:
        others.append(
            IdentityIndex.for_identity(identity_index_id("phone", data["phone"]), lead.id)
        )

    def decide(event_type: str, data: dict[str, Any], rule_id: str | None = "default") -> None:
        lead.record_decision(
            Decision(event_type, data, rule_id),
            event_id=str(uuid4()),
            occurred_at=at,
            ruleset_version=1,
            caused_by=capture_id,
        )

    team = "east" if region == "east" else "west" if region == "west" else None
    if team is None:
        decide("lead.returned_to_pool", {"reason": "unassigned"}, None)
    else:
        owner = rng.choice(TEAMS[team])
        decide("lead.assigned", {"owner": owner, "team": team, "strategy": "round_robin"})
        due = (at + timedelta(hours=24)).isoformat()
        decide("lead.task_created", {"task": "first_follow_up", "due_at": due})
    decide(
        "experiment.variant_assigned",
        {"experiment": "follow-up-process", "variant": "AB"[lead_no % 2]},
    )
    if intent == "low":
        decide("nurture.enrolled", {"sequence": "weekly-30d"})
        message = {"message_id": uuid4().hex, "template": "welcome", "variant": None}
        decide("nurture.email_sent", message)
    shape.leads += 1
    shape.other_events += len(others)
    return lead, others


def _later_events(lead: Lead, rng: random.Random) -> None:
    """What happens to a lead over the following days: follow-ups, stages, a deal."""
    state = lead.state
    at = datetime.fromisoformat(str(state.created_at))

    def post(event_type: str, data: dict[str, Any], hours: float) -> None:
        nonlocal at
        at += timedelta(hours=hours)
        parsed = _parsed({"type": event_type, "lead_id": str(lead.id), "data": data}, at)
        lead.record(event_type, str(uuid4()), at, parsed)

    if state.owner is not None and rng.random() < 0.7:
        post("lead.followed_up", {"rep_id": state.owner, "kind": "call"}, rng.uniform(1, 30))
        if rng.random() < 0.5:
            post("lead.qualified", {"stage": "MQL"}, rng.uniform(2, 72))
            if rng.random() < 0.5:
                post("lead.qualified", {"stage": "SQL"}, rng.uniform(2, 72))
                if rng.random() < 0.5:
                    post("lead.opportunity_opened", {"amount": "5000"}, rng.uniform(2, 72))
                    if rng.random() < 0.5:
                        post("lead.won", {"amount": "4800", "currency": "CNY"}, 48)
                    else:
                        post("lead.lost", {"reason": "budget"}, 48)
    if state.sequences and rng.random() < 0.4:
        post("email.opened", {"message_id": uuid4().hex}, rng.uniform(1, 48))


def build_log(store: Store, lead_events: int, seed: int = 7) -> LogShape:
    """Append about `lead_events` lead events (a chunk more at most), with the identity
    indexes and some campaign spend."""
    rng = random.Random(seed)
    shape = LogShape()
    log = store.event_log
    pending: list[Lead] = []  # leads whose later events go into the next chunk
    while True:
        batch: list[Aggregate] = []
        for lead in pending:
            _later_events(lead, rng)
            if lead.pending_events:
                batch.append(lead)
        pending = []
        if shape.lead_events < lead_events:
            for _ in range(CHUNK):
                lead, others = _first_events(shape.leads, rng, shape)
                pending.append(lead)
                batch.extend([lead, *others])
        if not batch:
            break
        shape.lead_events += sum(len(a.pending_events) for a in batch if isinstance(a, Lead))
        log.save(*batch)
    for i, campaign_key in enumerate(CAMPAIGNS):
        campaign = Campaign.register(campaign_id_for(campaign_key), campaign_key)
        for week in range(WEEKS_OF_SPEND):
            start = START + timedelta(weeks=week)
            spend = {
                "campaign_id": campaign_key,
                "amount": str(1000 + 100 * i),
                "currency": "CNY",
                "period_start": start.date().isoformat(),
                "period_end": (start + timedelta(days=6)).date().isoformat(),
            }
            campaign.record_spend(
                str(uuid4()),
                start,
                _parsed({"type": "campaign.spend_recorded", "data": spend}, start),
            )
        shape.other_events += len(campaign.pending_events)
        log.save(campaign)
    return shape


# --- what is measured ----------------------------------------------------------------------


def library_log(store: Store) -> EventLog:
    """The same log through the library's stock recorder (eventsourcing_sqlalchemy, not
    leadflow's `LogRecorder`) and the application's mapper: the baseline reads with it."""
    url = store.engine.url.render_as_string(hide_password=False)
    return EventLog(env={"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": url})


def library_read(log: EventLog, topics: tuple[str, ...]) -> int:
    """The baseline: every event of `topics` through the notification log, a section at a
    time, deserialised with the application's mapper."""
    section = log.notification_log
    to_domain_event = log.mapper.to_domain_event
    position: int | None = None
    count = 0
    while notifications := section.select(
        position, log.log_section_size, topics=topics, inclusive_of_start=position is None
    ):
        for notification in notifications:
            to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id
    return count


def leadflow_read(store: Store) -> int:
    """A reference: the projector's own read of the lead events (`read_page`: leadflow's
    recorder, the mapper, and the events as the projections take them), no folding."""
    position = count = 0
    while (page := read_page(store.event_log, position, PAGE_SIZE)).entries:
        count += len(page.entries)
        position = page.last
    return count


@dataclass
class Result:
    shape: LogShape
    names: list[str]  # the projections, in the order `leadflow projections rebuild` takes
    library: dict[tuple[str, ...], int]  # events of each projection's topics
    topics: dict[str, tuple[str, ...]]  # each projection's topics
    seconds: dict[str, list[float]] = field(default_factory=dict)  # per label, per rep
    replayed: dict[str, int] = field(default_factory=dict)


def measure(store: Store, lead_events: int, reps: int) -> Result:
    started = time.perf_counter()
    shape = build_log(store, lead_events)
    console.log(
        f"log built: {shape.leads:,} leads, {shape.lead_events:,} lead events, "
        f"{shape.other_events:,} other events in {time.perf_counter() - started:.0f} s"
    )
    live, building = projections(), projections(REBUILD_SUFFIX)
    library = library_log(store)
    try:
        topics = {p.name: tuple(p.topics) for p in live}
        result = Result(shape, [p.name for p in live], {}, topics)

        def run(label: str, action: Callable[[], int]) -> int:
            start = time.perf_counter()
            done = action()
            result.seconds.setdefault(label, []).append(time.perf_counter() - start)
            return done

        # Warm-up: the page cache, statement caches, imports of the first decodes.
        library_read(library, LEAD_TOPICS)
        leadflow_read(store)
        for rep in range(reps):
            console.log(f"rep {rep + 1}/{reps}")
            for wanted in dict.fromkeys(topics.values()):
                result.library[wanted] = run(
                    f"library {wanted}", partial(library_read, library, wanted)
                )
            if run("leadflow read", lambda: leadflow_read(store)) != shape.lead_events:
                raise RuntimeError("the projector's read missed lead events")
            # What `leadflow projections rebuild` does without a NAME: each one in turn.
            for one, new in zip(live, building, strict=True):
                replayed = run(one.name, partial(rebuild, store.event_log, store.engine, one, new))
                # A rebuild that skipped events would look fast.
                if replayed != result.library[topics[one.name]]:
                    raise RuntimeError(f"{one.name} replayed {replayed} events of its topics")
                result.replayed[one.name] = replayed
        check_leads(store, shape)
        return result
    finally:
        library.close()


def check_leads(store: Store, shape: LogShape) -> None:
    """The rebuilt `leads` table has one row per lead."""
    table = LeadsProjection().table
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(table)).scalar_one()
    if rows != shape.leads:
        raise RuntimeError(f"leads has {rows} rows, expected {shape.leads}")


# --- backends -------------------------------------------------------------------------------


def sqlite_settings(tmp: Path) -> contextlib.AbstractContextManager[Settings]:
    return contextlib.nullcontext(Settings(data_dir=tmp / "sqlite", database_url=None))


@contextlib.contextmanager
def postgres_settings(tmp: Path, server_url: str) -> Iterator[Settings]:
    """A fresh database on the server of `server_url`, dropped however we leave."""
    url = make_url(server_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bench_proj_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        database_url = url.set(drivername="postgresql", database=name)
        yield Settings(
            data_dir=tmp / "postgres",
            database_url=database_url.render_as_string(hide_password=False),
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def opened(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


# --- report latency -------------------------------------------------------------------------

ADMIN_KEY = "lf_bench_admin"
REPORTS = (
    "/v1/reports/sources",
    "/v1/reports/funnel",
    "/v1/reports/campaign-roi?interval=week",
    "/v1/reports/campaign-roi?interval=month",
    "/v1/reports/leaderboard",
    "/v1/reports/follow-up-efficiency",
    "/v1/reports/kpis",
    "/v1/reports/experiments",
    "/v1/reports/experiments?metric=MQL",
    "/v1/reports/sources?from=2026-02-01&to=2026-03-01",
    "/v1/reports/funnel?format=csv",
)


def report_latencies(settings: Settings, requests: int) -> dict[str, list[float]]:
    """Milliseconds per request of each report, the API in this process (its lifespan
    run by the test client; Temporal unreachable, as ingest allows), over the read models
    the rebuilds left in place."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{probe.getsockname()[1]}"
    settings = settings.model_copy(
        update={"bootstrap_admin_key": ADMIN_KEY, "temporal_address": nowhere}
    )
    latencies: dict[str, list[float]] = {path: [] for path in REPORTS}
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings)) as client:
        for path in REPORTS:  # warm-up: statement caches, the first page reads
            client.get(path, headers=headers).raise_for_status()
        for _ in range(requests):
            for path in REPORTS:
                start = time.perf_counter()
                client.get(path, headers=headers).raise_for_status()
                latencies[path].append((time.perf_counter() - start) * 1e3)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- report ---------------------------------------------------------------------------------


def report(results: dict[str, Result]) -> None:
    table = Table(title="Projection rebuild (median of reps; ratio = rebuild / library read)")
    for column in ("backend", "measurement", "events", "events/s", "seconds"):
        table.add_column(
            column, justify="left" if column in ("backend", "measurement") else "right"
        )
    for column in ("ratio", "target", "met", "spread"):
        table.add_column(column, justify="center" if column == "met" else "right")

    def row(backend: str, title: str, events: int, runs: list[float], base: float | None) -> None:
        seconds = statistics.median(runs)
        spread = (max(runs) - min(runs)) / seconds / 2 if len(runs) > 1 else 0.0
        ratio = None if base is None else base / seconds
        is_rebuild = title.startswith("rebuild")
        table.add_row(
            backend,
            title,
            f"{events:,}",
            f"{events / seconds:,.0f}",
            f"{seconds:.2f}",
            "" if ratio is None else f"{ratio:.2f}x",
            f">= {TARGET_RATIO}x" if is_rebuild else "",
            ("yes" if ratio and ratio >= TARGET_RATIO else "NO") if is_rebuild else "",
            f"±{spread:.0%}",
        )

    for backend, result in results.items():
        s = result.seconds
        lead_base = statistics.median(s[f"library {LEAD_TOPICS}"])
        row(
            backend,
            "library read of the lead events (baseline)",
            result.shape.lead_events,
            s[f"library {LEAD_TOPICS}"],
            None,
        )
        row(
            backend,
            "ref: leadflow's read (read_page), no fold",
            result.shape.lead_events,
            s["leadflow read"],
            lead_base,
        )
        for name in result.names:
            topics = result.topics[name]
            base = statistics.median(s[f"library {topics}"])
            row(backend, f"rebuild {name}", result.replayed[name], s[name], base)
        # The CLI without NAME: every projection in turn, each reading its events once.
        totals = [sum(per_rep) for per_rep in zip(*(s[n] for n in result.names), strict=True)]
        base_all = sum(statistics.median(s[f"library {result.topics[n]}"]) for n in result.names)
        row(
            backend,
            f"rebuild all {len(result.names)} (the CLI without NAME)",
            result.shape.lead_events,
            totals,
            base_all,
        )
        table.add_section()
    console.print(table)
    for backend, result in results.items():
        shape = result.shape
        console.print(
            f"{backend}: {shape.leads:,} leads, {shape.lead_events:,} lead events "
            f"({shape.lead_events / shape.leads:.1f} per lead), {shape.other_events:,} other "
            "events in the log (identity indexes, campaign spend)."
        )
    console.print(
        "Each projection's baseline is the library reading the events of its topics (stock "
        "eventsourcing_sqlalchemy recorder, notification log sections of log_section_size, "
        "the application's mapper); 'rebuild all' against the library reading the log once "
        "per projection (its events/s: lead events in the log / total time). spread = half "
        "the range over the median."
    )


def report_latency_table(
    latencies: dict[str, dict[str, list[float]]], results: dict[str, Result], requests: int
) -> None:
    table = Table(title=f"Report latency, ms ({requests} requests each, in-process API)")
    table.add_column("backend")
    table.add_column("endpoint")
    for column in ("leads", "p50", "p95", "max"):
        table.add_column(column, justify="right")
    for backend, per_path in latencies.items():
        for path, values in per_path.items():
            table.add_row(
                backend,
                path,
                f"{results[backend].shape.leads:,}",
                f"{percentile(values, 0.5):.1f}",
                f"{percentile(values, 0.95):.1f}",
                f"{max(values):.1f}",
            )
        table.add_section()
    console.print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, help="lead events in the log [100,000; quick 20,000]")
    parser.add_argument("--reps", type=int, help="repetitions, median reported [3; quick 2]")
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument(
        "--report-requests",
        type=int,
        default=30,
        help="requests per report endpoint for the latency table; 0 skips it [30]",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL"),
        help="a PostgreSQL server where a database may be created [LEADFLOW_TEST_POSTGRES_URL]",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    events = args.events or (20_000 if args.quick else 100_000)
    reps = args.reps or (2 if args.quick else 3)
    console.print(f"[bold]Machine:[/] {machine_info(MEASURED_PACKAGES)}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: dict[str, Result] = {}
    latencies: dict[str, dict[str, list[float]]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as tmp:
        for name in backends:
            setup: contextlib.AbstractContextManager[Settings]
            if name == "postgres":
                if not args.postgres_url:
                    console.print(
                        "[yellow]postgres skipped: give --postgres-url or set "
                        "LEADFLOW_TEST_POSTGRES_URL[/]"
                    )
                    continue
                setup = postgres_settings(Path(tmp), args.postgres_url)
            else:
                setup = sqlite_settings(Path(tmp))
            try:
                with setup as settings:
                    with opened(settings) as store:
                        console.log(f"{name}: building the log")
                        results[name] = measure(store, events, reps)
                    if args.report_requests:
                        console.log(f"{name}: report latency")
                        latencies[name] = report_latencies(settings, args.report_requests)
            except psycopg.OperationalError as exc:
                console.print(f"[yellow]{name} skipped: PostgreSQL unreachable ({exc})[/]")
    if results:
        report(results)
    if latencies:
        report_latency_table(latencies, results, args.report_requests)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"total {time.perf_counter() - started:.0f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
