"""A timer-heavy stretch: N leads' timers coming due as densely as this machine can make them,
and how late they fire, against the same due times on bare Temporal in the same run.

Run from the repository root:

    .venv/bin/python bench/timers.py --rate 25        # 10,000 timers, ~27 min
    .venv/bin/python bench/timers.py --leads 1000     # ~3 min

A lead's timer starts when the lead is decided (`lead.assigned`), so timers can only come
due as densely as leads are decided: on this 2-core machine ~40 a second, so 10,000 timers
fall due over ~4 minutes, not one (the densest possible here; 10,000 in one minute needs
~170 decisions a second).

leadflow: `leadflow dev` (SQLite, fresh data dir, no UI) with the default ruleset whose
`first_follow_up` timer runs out after D seconds instead of 24 h (the `remind` rule then
queues the owner's reminder), the default directory with unlimited capacities; N leads
posted at `--rate` leads/s (open loop) and all assigned; D is long enough for every lead to
be decided before the first timer is due, so firing happens alone. A timer has fired when
its `lead.timer_fired` row is in the log (a watcher polls the SQLite file every 10 ms);
its due time is the one the workflow planned (`due_at`, read back from the log).

bare Temporal: its own dev server and a worker subprocess (16 activity threads, as
leadflow's); N workflows each sleeping until a due time, then appending one row to a
SQLite file (WAL, synchronous FULL: as leadflow's log). Their due times are leadflow's
shifted to start after all N are started, so both see the same pattern of due times.

Lateness = when the row was seen - the due time. Reported: p50/p90/p99/max for both and
the ratio of p99s, the firing window, and the CPU of each system's processes from a second
before its first timer was due until its last one fired.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/timers.py`: the repository root first (bench/rules.py would shadow
# the `rules` package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from temporalio import workflow
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench.environment import machine_info, work_dir
from bench.latency import (
    ADMIN_KEY,
    BARE_ASSIGNED,
    LEADFLOW_ASSIGNED,
    MEASURED_PACKAGES,
    BareActivities,
    BareLead,
    Leadflow,
    LogWatcher,
    ProcessGroups,
    SqliteRows,
    api_client,
    bare_worker_client,
    child_env,
    create_bare_table,
    drive,
    lead_id_of,
    leadflow_processes,
    pct,
    process_cpu_seconds,
    start_dev,
    unlimited_directory,
    wait_ready,
)
from delivery.temporal import connect
from domain.lead import Lead
from leadflow.bootstrap import open_store
from leadflow.dev import temporal_dev_server_args
from leadflow.settings import Settings
from store.rulebook import default_ruleset_document
from tests.support import free_ports, group_members

console = Console(width=None if sys.stdout.isatty() else 140)

TIMER = "first_follow_up"
TIMER_FIRED_TOPIC = f"{Lead.TimerFired.__module__}:{Lead.TimerFired.__qualname__}"
LEADFLOW_FIRED = (
    "SELECT id, originator_id FROM leadflow_events WHERE topic = '"
    + TIMER_FIRED_TOPIC
    + "' AND id > {p}"
)
BARE_TIMER_QUEUE = "bench-bare-timers"
BARE_TIMER_WORKFLOW = "BareTimer"
START_RATE = 200.0  # bare workflows started per second
WATCH_SECONDS = 0.01


# --- the bare baseline ---------------------------------------------------------------------


@dataclass
class BareTimer:
    key: str
    due: str  # RFC 3339


@workflow.defn(name=BARE_TIMER_WORKFLOW)
class BareTimerWorkflow:
    @workflow.run
    async def run(self, timer: BareTimer) -> None:
        wait = datetime.fromisoformat(timer.due) - workflow.now()
        await asyncio.sleep(max(0.0, wait.total_seconds()))  # a durable timer
        await workflow.execute_local_activity_method(
            BareActivities.record, BareLead(timer.key), start_to_close_timeout=timedelta(seconds=30)
        )


async def run_bare_worker(address: str, database: str) -> None:
    """The worker subprocess: polls until SIGINT/SIGTERM."""
    client, stop = await bare_worker_client(address)
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "bench.timers", "bench.latency"
        )
    )
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with Worker(
            client,
            task_queue=BARE_TIMER_QUEUE,
            workflows=[BareTimerWorkflow],
            activities=[BareActivities(database).record],
            activity_executor=executor,
            workflow_runner=runner,
        ):
            await stop.wait()


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Firing:
    """One system's timers: each key's due time and when its row was seen (wall clock)."""

    name: str
    due: dict[str, float]
    seen: dict[str, float]
    cpu: dict[str, float]  # process -> CPU seconds while its timers fired

    def lateness(self) -> list[float]:
        return sorted(self.seen[key] - due for key, due in self.due.items() if key in self.seen)

    def window(self) -> float:
        return max(self.due.values()) - min(self.due.values())


def wall(watcher: LogWatcher) -> dict[str, float]:
    """The watcher's sightings (perf_counter) on the wall clock."""
    offset = time.time() - time.perf_counter()
    return {key: at + offset for key, at in dict(watcher.seen).items()}


def follow_up_after(seconds: int) -> dict[str, Any]:
    """The default ruleset, its first follow-up due `seconds` after assignment."""
    document = default_ruleset_document()
    for timer in document["timers"]:
        if timer["id"] == TIMER:
            timer["after"] = f"PT{seconds}S"
    document["name"] = f"timers-in-{seconds}s"
    return document


async def until_seen(
    watcher: LogWatcher, keys: set[str], seconds: float, what: str, pids: list[int]
) -> None:
    """Until `watcher` has seen every key; RuntimeError after `seconds`, or as soon as one
    of the process groups `pids` doing the work has exited."""
    deadline = time.monotonic() + seconds
    while not keys <= watcher.seen.keys():
        if not all(group_members(pid) for pid in pids):
            raise RuntimeError(f"{what}: a process exited (see its log in the work dir)")
        if time.monotonic() > deadline:
            missing = len(keys - watcher.seen.keys())
            raise RuntimeError(f"{what}: {missing} of {len(keys)} not seen after {seconds:.0f} s")
        await asyncio.sleep(0.5)


def due_times(data_dir: Path, leads: set[str]) -> dict[str, float]:
    """Each lead's `first_follow_up` due time, as its workflow planned it (from the log)."""
    store = open_store(Settings(data_dir=data_dir, bootstrap_admin_key=None))
    try:
        due: dict[str, float] = {}
        position = 0
        while notifications := store.event_log.recorder.select_notifications(
            start=position, limit=1000, topics=[TIMER_FIRED_TOPIC], inclusive_of_start=False
        ):
            for notification in notifications:
                event = store.event_log.logged_event_decoder.decode(notification)
                if event.lead_id in leads and event.data.get("timer") == TIMER:
                    due[event.lead_id] = datetime.fromisoformat(event.data["due_at"]).timestamp()
            position = notifications[-1].id
        return due
    finally:
        store.close()


class ProcessCpu:
    """CPU seconds of some processes from now until `used()`."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.before = {label: process_cpu_seconds(pid) for label, pid in processes.items()}

    def used(self) -> dict[str, float]:
        return {
            label: process_cpu_seconds(pid) - self.before[label]
            for label, pid in self.processes.items()
        }


async def measure_leadflow(
    http: httpx.AsyncClient, temporal: Client, pgid: int, data_dir: Path, args: argparse.Namespace
) -> Firing:
    """N leads posted and assigned, then their timers watched as they fire."""
    log = data_dir / "leadflow.db"
    assigned = LogWatcher(SqliteRows(log, LEADFLOW_ASSIGNED), lead_id_of, WATCH_SECONDS)
    fired = LogWatcher(SqliteRows(log, LEADFLOW_FIRED), lead_id_of, WATCH_SECONDS)
    for watcher in (assigned, fired):
        watcher.start()
    try:
        sending = args.leads / args.rate
        delay = int(sending * args.headroom) + 60
        published = await http.post("/v1/rulesets", json=follow_up_after(delay))
        published.raise_for_status()
        version = published.json()["version"]
        (await http.post(f"/v1/rulesets/{version}/activate")).raise_for_status()
        system = Leadflow([http], temporal, assigned, functools.partial(leadflow_processes, pgid))
        console.log(f"leadflow: {args.leads:,} leads at {args.rate:g}/s, timers due {delay} s on")
        run = await drive(system, args.rate, sending, abort=False, drain=delay - sending - 10)
        leads = {key for key in run.keys if key is not None and key in assigned.seen}
        if run.errors or len(leads) < args.leads:
            raise RuntimeError(f"{len(leads)} of {args.leads} leads assigned: {run.errors[:3]}")
        console.log(f"leadflow: {len(leads):,} leads assigned; waiting for their timers")
        # The CPU is counted from a second before the first timer is due.
        await asyncio.sleep(min(assigned.seen.values()) + delay - 1 - time.perf_counter())
        cpu = ProcessCpu(system.processes())
        await until_seen(fired, leads, delay + 4 * sending + 300, "leadflow's timers", [pgid])
        used = cpu.used()
        return Firing("leadflow", due_times(data_dir, leads), wall(fired), used)
    finally:
        for watcher in (assigned, fired):
            watcher.stopping.set()
            watcher.join()


async def measure_bare(
    temporal: Client, processes: dict[str, int], database: Path, pattern: list[float]
) -> Firing:
    """One bare workflow per due time of `pattern` (seconds after the first), the first due
    once every workflow has been started."""
    watcher = LogWatcher(
        SqliteRows(database, BARE_ASSIGNED), lambda row: str(row[1]), WATCH_SECONDS
    )
    watcher.start()
    try:
        lead_in = len(pattern) / START_RATE + 30
        first = time.time() + lead_in
        due = {f"timer-{i}": first + offset for i, offset in enumerate(pattern)}
        console.log(f"bare: {len(due):,} workflows, the first timer due in {lead_in:.0f} s")
        gate = asyncio.Semaphore(64)

        async def start(key: str, at: float) -> None:
            async with gate:
                await temporal.start_workflow(
                    BARE_TIMER_WORKFLOW,
                    BareTimer(key, datetime.fromtimestamp(at, UTC).isoformat()),
                    id=key,
                    task_queue=BARE_TIMER_QUEUE,
                )

        await asyncio.gather(*(start(key, at) for key, at in due.items()))
        early = first - time.time()
        if early < 0:
            raise RuntimeError(f"starting the bare workflows ran {-early:.0f} s past the first due")
        await asyncio.sleep(early - 1)
        cpu = ProcessCpu(processes)
        waiting = lead_in + max(pattern) + 300
        await until_seen(watcher, set(due), waiting, "bare timers", list(processes.values()))
        return Firing("bare", due, wall(watcher), cpu.used())
    finally:
        watcher.stopping.set()
        watcher.join()


# --- the report ----------------------------------------------------------------------------


def report(leadflow: Firing, bare: Firing) -> None:
    table = Table(
        title=f"{len(leadflow.due):,} timers due over {leadflow.window():.0f} s "
        f"({len(leadflow.due) / max(1.0, leadflow.window()):.0f} a second): lateness, ms"
    )
    table.add_column("")
    for column in ("leadflow", "bare Temporal", "ratio"):
        table.add_column(column, justify="right")
    late = {firing.name: firing.lateness() for firing in (leadflow, bare)}
    for label, p in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)):
        ours, theirs = (pct(late[name], p) * 1e3 for name in ("leadflow", "bare"))
        table.add_row(label, f"{ours:,.0f}", f"{theirs:,.0f}", f"{ours / theirs:.2f}x")
    for firing in (leadflow, bare):
        per_timer = 1e3 * sum(firing.cpu.values()) / max(1, len(firing.due))
        table.add_row(f"CPU ms per timer fired ({firing.name})", *_cpu_cells(firing, per_timer))
    console.print(table)
    for firing in (leadflow, bare):
        console.print(
            f"{firing.name}: CPU seconds while its timers fired: "
            + ", ".join(f"{label} {seconds:.1f}" for label, seconds in sorted(firing.cpu.items()))
        )


def _cpu_cells(firing: Firing, per_timer: float) -> list[str]:
    cell = f"{per_timer:.1f}"
    return [cell, "", ""] if firing.name == "leadflow" else ["", cell, ""]


# --- running -------------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        tmp = work_dir(stack, args.work_dir, "leadflow-timers-")
        groups = ProcessGroups()
        stack.callback(groups.stop_all)
        api_port, lf_temporal_port, bare_port = free_ports(3)
        dev_log = tmp / "leadflow-dev.log"
        env = {"LEADFLOW_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
        if args.max_cached_workflows is not None:
            env["LEADFLOW_MAX_CACHED_WORKFLOWS"] = str(args.max_cached_workflows)
        lf_pgid = start_dev(groups, tmp, api_port, lf_temporal_port, env, dev_log)
        bare_db = tmp / "bare.db"
        create_bare_table(str(bare_db))
        bare_processes = {
            "bare temporal": groups.start(
                "bare temporal",
                temporal_dev_server_args(tmp / "bare-temporal.db", bare_port, ui_port=None),
                child_env(tmp / "pycache"),
                tmp / "bare-temporal.log",
            ),
            "bare worker": groups.start(
                "bare worker",
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--bare-worker",
                    f"127.0.0.1:{bare_port}",
                    str(bare_db),
                ],
                child_env(tmp / "pycache"),
                tmp / "bare-worker.log",
            ),
        }

        async def main_async() -> tuple[Firing, Firing]:
            async with api_client(f"http://127.0.0.1:{api_port}") as http:
                await wait_ready(http, lf_pgid, dev_log)
                (await http.put("/v1/directory", json=unlimited_directory())).raise_for_status()
                lf_temporal = await connect(f"127.0.0.1:{lf_temporal_port}", "default")
                leadflow = await measure_leadflow(
                    http, lf_temporal, lf_pgid, tmp / "leadflow", args
                )
            first = min(leadflow.due.values())
            pattern = sorted(due - first for due in leadflow.due.values())
            bare_temporal = await connect(
                f"127.0.0.1:{bare_port}", "default", data_converter=DataConverter.default
            )
            bare = await measure_bare(bare_temporal, bare_processes, bare_db, pattern)
            return leadflow, bare

        report(*asyncio.run(main_async()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000, help="timers [10,000]")
    parser.add_argument("--rate", type=float, default=40.0, help="leads posted a second [40]")
    parser.add_argument(
        "--headroom",
        type=float,
        default=1.5,
        help="the timers run out after this x the sending time + 60 s [1.5]",
    )
    parser.add_argument(
        "--max-cached-workflows",
        type=int,
        help="the worker's sticky cache (LEADFLOW_MAX_CACHED_WORKFLOWS) [leadflow's default]",
    )
    parser.add_argument("--work-dir", type=Path, help="keep the processes' files here")
    parser.add_argument("--bare-worker", nargs=2, metavar=("ADDRESS", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        # Its workflow from `bench.timers`, not `__main__`: the sandbox passes it through.
        from bench import timers

        asyncio.run(timers.run_bare_worker(*args.bare_worker))
        return
    console.print(f"[bold]Machine:[/] {machine_info(MEASURED_PACKAGES)}")
    run_all(args)


if __name__ == "__main__":
    main()
